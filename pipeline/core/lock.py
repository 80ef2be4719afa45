"""An output folder one process writes at a time.

Two `train` runs on one `--out` would both report success while the folder holds one run's
checkpoints. The first holds an exclusive lock (fcntl, released by the kernel when the process
ends, however it ends) on OUT/train.lock; a second is refused in one line naming the holder.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from pipeline.core.errors import ConfigError


@contextlib.contextmanager
def exclusive(folder: Path, name: str, what: str) -> Iterator[None]:
    """Hold folder/name locked while the block runs; ConfigError if another process holds it."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise ConfigError(
                f"{folder}: {what} is being written by {holder} (lock {path}); wait for it, "
                "or give another folder"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"process {os.getpid()}\n")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
