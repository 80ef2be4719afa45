"""Atomic outputs: one unique temporary per output, removed on error, on a failed rename, on
SIGTERM and SIGINT, and (when a killed process could not) by the next write beside it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pipeline.core import atomic
from pipeline.core.atomic import atomic_directory, atomic_output


def temporaries(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if atomic.TMP_MARK in p.name)


def test_each_output_and_each_call_gets_its_own_temporary(tmp_path):
    with atomic_output(tmp_path / "a.h5") as one, atomic_output(tmp_path / "a.h5") as two:
        with atomic_output(tmp_path / "b.parquet") as three:
            assert len({one, two, three}) == 3
            assert all(t.parent == tmp_path and t.name.startswith(".") for t in (one, two, three))
            three.write_text("3")
        two.write_text("2")
        one.write_text("1")
    assert (tmp_path / "a.h5").read_text() == "1"  # the last rename wins, nothing is mixed
    assert (tmp_path / "b.parquet").read_text() == "3"
    assert temporaries(tmp_path) == []


@pytest.mark.parametrize("error", [ValueError, KeyboardInterrupt, SystemExit])
def test_an_error_removes_the_temporary_and_leaves_no_output(tmp_path, error):
    with pytest.raises(error), atomic_output(tmp_path / "a.h5") as tmp:
        tmp.write_text("half")
        raise error()
    assert list(tmp_path.iterdir()) == []


def test_a_failed_rename_is_one_line_naming_the_output_and_removes_the_temporary(tmp_path):
    target = tmp_path / "out.h5"
    target.mkdir()
    (target / "keep").write_text("a directory in the way")
    message = r"out\.h5: cannot move the finished file into place"
    with pytest.raises(OSError, match=message), atomic_output(target) as tmp:
        tmp.write_text("done")
    assert temporaries(tmp_path) == [] and (target / "keep").exists()


def test_a_staging_directory_moves_in_with_its_last_file_last(tmp_path):
    out = tmp_path / "eval"
    out.mkdir()
    (out / "summary.json").write_text("old")
    with pytest.raises(RuntimeError), atomic_directory(out, last="summary.json") as staging:
        (staging / "plot.png").write_text("p")
        raise RuntimeError("plotting failed")
    assert temporaries(tmp_path) == [] and (out / "summary.json").read_text() == "old"
    with atomic_directory(out, last="summary.json") as staging:
        (staging / "plot.png").write_text("p")
        (staging / "summary.json").write_text("new")
    assert sorted(p.name for p in out.iterdir()) == ["plot.png", "summary.json"]
    assert temporaries(tmp_path) == [] and (out / "summary.json").read_text() == "new"


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_temporaries_of_dead_processes_are_removed_by_the_next_write(tmp_path):
    host = atomic._HOST
    dead = tmp_path / f".a.h5.tmp-{host}-{dead_pid()}-0123abcd"
    dead_dir = tmp_path / f".a.h5.tmp-{host}-{dead_pid()}-89abcdef"
    alive = tmp_path / f".a.h5.tmp-{host}-{os.getpid()}-00000000"
    elsewhere = tmp_path / f".a.h5.tmp-othernode-{dead_pid()}-11111111"  # shared file system
    other_output = tmp_path / f".b.h5.tmp-{host}-{dead_pid()}-22222222"
    for path in (dead, alive, elsewhere, other_output):
        path.write_text("left over")
    dead_dir.mkdir()
    (dead_dir / "plot.png").write_text("x")
    with atomic_output(tmp_path / "a.h5") as tmp:
        tmp.write_text("new")
    assert not dead.exists() and not dead_dir.exists()
    assert alive.exists() and elsewhere.exists() and other_output.exists()
    assert (tmp_path / "a.h5").read_text() == "new"


HOLDER = textwrap.dedent(
    """
    import sys, time
    from pipeline.core.atomic import atomic_output, install_signal_cleanup
    install_signal_cleanup()
    with atomic_output(sys.argv[1]) as tmp:
        tmp.write_text("partial")
        print("ready", flush=True)
        time.sleep(60)
    """
)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_sigint_remove_the_temporary(tmp_path, signum):
    target = tmp_path / "map.h5"
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(target)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "ready"
    assert len(temporaries(tmp_path)) == 1
    started = time.monotonic()
    proc.send_signal(signum)
    assert proc.wait(timeout=30) == 128 + signum
    assert time.monotonic() - started < 30
    assert list(tmp_path.iterdir()) == []


def test_a_forked_child_never_removes_its_parents_temporaries(tmp_path):
    """A data-loader worker inherits the list of live temporaries; a signal to it must not
    remove the parent's files."""
    with atomic_output(tmp_path / "a.h5") as tmp:
        tmp.write_text("parent's")
        pid = os.fork()
        if pid == 0:  # the child: what its signal handler would do
            atomic.remove_live_temporaries()
            os._exit(0)
        os.waitpid(pid, 0)
        assert tmp.exists()
        atomic.remove_live_temporaries()  # the parent's own call does remove it
        assert not tmp.exists()
        tmp.write_text("rewritten")


def test_outputs_of_a_group_appear_together_or_not_at_all(tmp_path):
    """A map and its catalogue: a failure (or a signal) after the first is in place removes it."""
    from pipeline.core.atomic import output_group, remove_live_temporaries

    first, second = tmp_path / "c.parquet", tmp_path / "m.h5"
    with pytest.raises(RuntimeError), output_group():
        with atomic_output(first) as tmp:
            tmp.write_text("catalogue")
        assert first.is_file()  # in place, but its group is not finished
        raise RuntimeError("the map failed")
    assert list(tmp_path.iterdir()) == []
    with output_group():
        for path in (first, second):
            with atomic_output(path) as tmp:
                tmp.write_text(path.name)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.parquet", "m.h5"]
    # what the SIGTERM handler does mid-group: the group's finished outputs go too
    with output_group():
        with atomic_output(tmp_path / "late.csv") as tmp:
            tmp.write_text("x")
        remove_live_temporaries()
        assert not (tmp_path / "late.csv").exists()
