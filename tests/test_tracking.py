"""Tracking helpers: flattened params, commit, data hash."""

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
