"""Tracking helpers: flattened params, commit, data hash, and the store checked before any work."""

import pytest

from pipeline.config import ConfigError
from pipeline.core.hashing import data_hash
from pipeline.tracking.runs import flatten, git_commit


def test_flatten_nested_config():
    flat = flatten({"a": {"b": 1, "c": {"d": [1, 2]}}, "e": None, "f": {}})
    assert flat == {"a.b": "1", "a.c.d": "[1, 2]", "e": "None", "f": "{}"}


def test_data_hash_depends_on_content_not_order(tmp_path):
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    a.write_bytes(b"one")
    b.write_bytes(b"two")
    assert data_hash([a, b]) == data_hash([b, a])
    before = data_hash([a, b])
    b.write_bytes(b"tw0")
    assert data_hash([a, b]) != before


def test_git_commit_outside_a_repository_is_unknown(tmp_path):
    assert git_commit(tmp_path) == "unknown"
    assert len(git_commit().removesuffix("-dirty")) == 40  # the tests run inside the clone


def test_file_sha256_is_the_digest_of_the_bytes(tmp_path):
    import hashlib

    from pipeline.core.hashing import file_sha256

    path = tmp_path / "weights.pt"
    path.write_bytes(bytes(range(256)) * 5000)  # over one hash block
    assert file_sha256(path) == hashlib.sha256(path.read_bytes()).hexdigest()


def _tracking_config(tmp_path):
    from pipeline.config import load_config

    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    return load_config(overrides={"tracking.uri": uri, "tracking.experiment": "t"})


def test_a_tracked_run_ends_finished_failed_or_killed(tmp_path):
    """One context manager opens and ends every stage's run: FAILED when the stage raises,
    KILLED when it is interrupted, FINISHED otherwise; the stage and commit are tags."""
    import mlflow
    import pytest

    from pipeline.tracking.runs import tracked_run

    config = _tracking_config(tmp_path)
    ids = {}
    with tracked_run(config, "evaluate", {"truth": "t.h5"}) as tracker:
        ids["ok"] = tracker.run_id
    for name, error in (("failed", ValueError("bug")), ("killed", KeyboardInterrupt())):
        with pytest.raises(type(error)), tracked_run(config, "infer", {}) as tracker:
            ids[name] = tracker.run_id
            raise error
    client = mlflow.MlflowClient(tracking_uri=config.tracking.uri)
    status = {name: client.get_run(run_id).info.status for name, run_id in ids.items()}
    assert status == {"ok": "FINISHED", "failed": "FAILED", "killed": "KILLED"}
    tags = client.get_run(ids["ok"]).data.tags
    assert tags["stage"] == "evaluate" and tags["truth"] == "t.h5"
    assert tags["git_commit"] == git_commit()
    assert mlflow.active_run() is None


def test_without_tracking_a_tracked_run_opens_no_store(tmp_path):
    from pipeline.tracking.runs import tracked_run

    config = _tracking_config(tmp_path)
    config = config.model_copy(
        update={"tracking": config.tracking.model_copy(update={"enabled": False})}
    )
    with tracked_run(config, "infer", {}) as tracker:
        assert tracker.run_id is None and not tracker.active
    assert not (tmp_path / "mlruns.db").exists()


def _tracking(uri: str, timeout_s: float = 1.0):
    from pipeline.config import load_config

    return load_config(overrides={"tracking.uri": uri, "tracking.timeout_s": timeout_s}).tracking


def test_a_server_that_is_not_there_or_never_answers_is_one_line_within_the_time_out():
    """No line for 150 s was MLflow's client retrying; here the store is checked before any
    work, within tracking.timeout_s."""
    import socket
    import time

    from pipeline.tracking.store import check_store

    with socket.socket() as silent:  # accepts connections (the backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        port = silent.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(ConfigError, match=r"no MLflow server answered within 1 s") as info:
            check_store(_tracking(f"http://127.0.0.1:{port}"))
        assert time.monotonic() - started < 5 and "\n" not in str(info.value)
    with pytest.raises(ConfigError, match=f"tracking.uri http://127.0.0.1:{port}"):
        check_store(_tracking(f"http://127.0.0.1:{port}"))  # closed now: refused at once


def test_a_store_that_is_not_a_database_or_has_no_folder_is_refused(tmp_path):
    from pipeline.tracking.store import check_store

    not_db = tmp_path / "notes.txt"
    not_db.write_text("my notes")
    with pytest.raises(ConfigError, match="is not an SQLite database"):
        check_store(_tracking(f"sqlite:///{not_db}"))
    assert not_db.read_text() == "my notes"
    with pytest.raises(ConfigError, match="does not exist"):
        check_store(_tracking(f"sqlite:///{tmp_path}/no/such/folder/mlruns.db"))
    check_store(_tracking(f"sqlite:///{tmp_path}/mlruns.db"))  # a new store: fine


def test_infer_refuses_a_store_that_is_its_own_input_before_any_work(tmp_path, capsys):
    """`tracking.uri` naming infer's input: infer tracks, so the store is one of its outputs."""
    from pipeline.cli import main
    from tests.test_io import h5_file

    frames = h5_file(tmp_path / "frames.h5")
    before = frames.read_bytes()
    argv = ["infer", "--model", "ccd-unet-v1", "--input", str(frames)]
    argv += ["--output", str(tmp_path / "m.h5"), "--set", f"tracking.uri=sqlite:///{frames}"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "MLflow database" in err and err.count("\n") == 1
    assert frames.read_bytes() == before and not (tmp_path / "m.h5").exists()
