"""The MLflow store, checked before a stage does any work: tracking never blocks the science.

A server that does not answer (MLflow's client waits 120 s per request and retries 7 times), a
store that cannot be written (a read-only folder or database file) or a file that is not a
database would surface minutes into a run, as a long traceback after the work was done. Here
each is one line, naming the store, before anything is read; MLflow's own requests get the same
short time-out.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from pathlib import Path

from pipeline.config.runs import TrackingConfig
from pipeline.core.errors import ConfigError

SQLITE, FILE = "sqlite:///", "file:"
SQLITE_MAGIC = b"SQLite format 3\x00"
HINT = "or set tracking.enabled: false"


def check_store(tracking: TrackingConfig) -> None:
    """ConfigError (one line) if the store of `tracking.uri` cannot be reached or written."""
    uri = tracking.uri
    if uri.startswith(("http://", "https://")):
        _check_server(uri, tracking.timeout_s)
    elif uri.startswith(SQLITE):
        database = Path(uri.removeprefix(SQLITE))
        _check_writable(uri, database.parent, database)
        _check_writable(uri, database.parent, database.parent / "mlartifacts")
        if database.is_file() and database.stat().st_size:
            with database.open("rb") as fh:
                if fh.read(len(SQLITE_MAGIC)) != SQLITE_MAGIC:
                    raise ConfigError(
                        f"tracking.uri {uri}: {database} is not an SQLite database; "
                        f"name a new file {HINT}"
                    )
    else:
        folder = Path(uri.removeprefix(FILE).removeprefix("//"))
        _check_writable(uri, folder.parent, folder)


def _check_server(uri: str, timeout_s: float) -> None:
    os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(max(1, round(timeout_s)))
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "1"
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout_s):
            return
    except urllib.error.HTTPError:
        return  # it answered: a server without /health is still a server
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ConfigError(
            f"tracking.uri {uri}: no MLflow server answered within {timeout_s:g} s ({reason}); "
            f"start it, check tracking.uri, {HINT}"
        ) from None


def _check_writable(uri: str, parent: Path, target: Path) -> None:
    """`target` (a file or folder of the store) can be written, or created in `parent`."""
    where = target if target.exists() else parent if parent.exists() else None
    if where is None:
        raise ConfigError(f"tracking.uri {uri}: folder {parent} does not exist; create it {HINT}")
    if not os.access(where, os.W_OK):
        raise ConfigError(f"tracking.uri {uri}: {where} cannot be written (read-only?); {HINT}")
