"""Atomic outputs: the one home of "write to a temporary, then rename into place".

Every file or directory the pipeline writes goes through `atomic_output` (files) or
`atomic_directory` (a staging directory whose files are moved into the output directory). A
temporary is `.<name>.tmp-<host>-<pid>-<token>` beside its output: unique per output and per
call, so two outputs (a map and its catalogue, two jobs on one node, two nodes on a shared
file system) never share one. It is removed when the block raises (any exception, including
KeyboardInterrupt), when the rename fails, and, once `install_signal_cleanup` has run (the
command line does it), on SIGTERM and SIGINT, the signals SLURM and Snakemake send. A process
killed with SIGKILL cannot clean up: its temporaries are removed by the next atomic write
beside them, once no process of that pid is alive on this host.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

TMP_MARK = ".tmp-"
_live: dict[Path, int] = {}  # temporary -> pid of the process that made it
_groups: list[tuple[int, list[Path]]] = []  # (pid, outputs moved into place) of open groups
_HOST = socket.gethostname().replace("-", "_") or "host"


def temporary_name(path: Path) -> Path:
    """A fresh temporary path beside `path` (nothing is created)."""
    token = secrets.token_hex(4)
    return path.with_name(f".{path.name}{TMP_MARK}{_HOST}-{os.getpid()}-{token}")


def _owner(tmp_name: str, output_name: str) -> tuple[str, int] | None:
    """(host, pid) encoded in a temporary's name for `output_name`, or None if not one of ours."""
    prefix = f".{output_name}{TMP_MARK}"
    if not tmp_name.startswith(prefix):
        return None
    parts = tmp_name[len(prefix) :].rsplit("-", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    return parts[0], int(parts[1])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_stale(path: str | Path) -> list[Path]:
    """Remove the temporaries of `path` left by dead processes of this host; returns them."""
    path = Path(path)
    removed: list[Path] = []
    if not path.parent.is_dir():
        return removed
    for entry in path.parent.iterdir():
        owner = _owner(entry.name, path.name)
        if owner is None or owner[0] != _HOST or _alive(owner[1]):
            continue
        _remove(entry)
        removed.append(entry)
    return removed


def _remove(tmp: Path) -> None:
    if tmp.is_dir() and not tmp.is_symlink():
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


@contextlib.contextmanager
def _registered(tmp: Path) -> Iterator[Path]:
    _live[tmp] = os.getpid()
    try:
        yield tmp
    except BaseException:
        _remove(tmp)
        raise
    finally:
        _live.pop(tmp, None)


@contextlib.contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it over `path` when the block succeeds,
    remove it on any error (also when the rename itself fails: an OSError naming `path`)."""
    path = Path(path)
    remove_stale(path)
    tmp = temporary_name(path)
    with _registered(tmp):
        yield tmp
        try:
            os.replace(tmp, path)
        except OSError as exc:
            raise OSError(
                f"{path}: cannot move the finished file into place ({exc.strerror})"
            ) from None
        for _, moved in _groups:
            moved.append(path)


@contextlib.contextmanager
def output_group() -> Iterator[None]:
    """Outputs that appear together or not at all (a map and its catalogue): if the block
    raises, or a signal ends the process, after some of them were moved into place, those are
    removed again."""
    entry: tuple[int, list[Path]] = (os.getpid(), [])
    _groups.append(entry)
    try:
        yield
    except BaseException:
        for path in entry[1]:
            _remove(path)
        raise
    finally:
        _groups.remove(entry)


@contextlib.contextmanager
def atomic_directory(out: str | Path, last: str | None = None) -> Iterator[Path]:
    """Yield a staging directory beside the directory `out`; on success move every file in it
    into `out` (created if needed), the file named `last` after all others, so that its
    presence means the set is complete (an old `last` is removed before anything moves)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(out)
    staging = temporary_name(out)
    with _registered(staging):
        staging.mkdir()
        yield staging
        out.mkdir(exist_ok=True)
        if last is not None:
            (out / last).unlink(missing_ok=True)
        for item in sorted(staging.iterdir(), key=lambda p: p.name == last):
            os.replace(item, out / item.name)
        _remove(staging)


def remove_live_temporaries() -> None:
    """Remove every temporary this process has open, and the outputs of its unfinished output
    groups (a signal is ending it)."""
    for tmp, pid in list(_live.items()):
        if pid == os.getpid():  # not a forked worker's copy of its parent's list
            _remove(tmp)
    for pid, moved in list(_groups):
        if pid == os.getpid():
            for path in moved:
                _remove(path)


_ending: list[int] = []  # the signal that is ending this process, once one came


def _on_signal(signum: int, frame: FrameType | None) -> None:
    _ending.append(signum)
    remove_live_temporaries()
    raise SystemExit(128 + signum)


def ending_signal() -> int | None:
    """The signal that is ending this process, if one came: a library that caught the
    handler's SystemExit mid-call (h5py wraps what interrupts a write as an OSError) must not
    turn the stop into a bad-input error."""
    return _ending[0] if _ending else None


def install_signal_cleanup() -> None:
    """SIGTERM and SIGINT remove this process's temporaries, then exit with 128 + signal."""
    _ending.clear()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _on_signal)
