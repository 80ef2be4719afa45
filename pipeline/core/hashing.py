"""SHA-256 of files, streamed: what links a run to its data, a model to its registered version
and an ONNX copy to its checkpoint."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

HASH_BLOCK = 1 << 20


def data_hash(paths: Iterable[str | Path], extra: str = "") -> str:
    """SHA-256 over the names and bytes of the input files (streamed), and `extra` (what
    simulated-on-the-fly data depend on)."""
    digest = hashlib.sha256(extra.encode())
    for path in sorted(Path(p) for p in paths):
        digest.update(os.fsencode(path.name))  # the bytes of any name
        _update_with_file(digest, path)
    return digest.hexdigest()


def file_sha256(path: str | Path) -> str:
    """SHA-256 of one file's bytes (streamed), as `sha256sum` prints it."""
    digest = hashlib.sha256()
    _update_with_file(digest, Path(path))
    return digest.hexdigest()


def _update_with_file(digest: Any, path: Path) -> None:
    with path.open("rb") as fh:
        while block := fh.read(HASH_BLOCK):
            digest.update(block)
