"""Names of the methods and detectors in a table: one per file, each once.

A table keyed by name keeps one entry per name, so two maps that share a file stem (`a/unet.h5`,
`b/unet.h5`) or a repeated `--names` would silently lose a method; here they are refused, and so
are names that MLflow's metric keys cannot hold (a file name of undecodable bytes, brackets).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

from pipeline.core.errors import ConfigError, printable

SAFE_NAME = re.compile(r"[A-Za-z0-9_\-. :/]+")


def unique_names(
    given: Sequence[str],
    paths: Sequence[str | Path],
    flag: str,
    default: Callable[[str | Path], str],
) -> list[str]:
    """`given` (one per path) or each path's `default` name; ConfigError (one line) if the
    counts differ, a name is empty, or a name repeats."""
    if given and len(given) != len(paths):
        raise ConfigError(f"{flag} gives {len(given)} names for {len(paths)} files")
    names = [printable(n) for n in (given or [default(p) for p in paths])]  # text of any bytes
    repeated = sorted(n for n, k in Counter(names).items() if k > 1)
    if repeated:
        where = f"{flag}" if given else f"the default names (give {flag})"
        raise ConfigError(f"{where}: {repeated} named more than once; each file needs its own name")
    if any(not n.strip() for n in names):
        raise ConfigError(f"{flag}: a name is empty")
    unsafe = [n for n in names if not SAFE_NAME.fullmatch(n)]
    if unsafe:
        where = f"{flag}" if given else f"the default names (give {flag})"
        raise ConfigError(
            f"{where}: {unsafe} hold characters other than letters, digits, '_', '-', '.', "
            "' ', ':' and '/' (what MLflow's metric names and the tables can hold)"
        )
    return names
