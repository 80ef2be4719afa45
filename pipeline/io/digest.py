"""A digest of a file's frames: SHA-256 of their shape and values (as float32), the same for the
same frames in any format. What a map and a catalogue record of the frames they were made from,
computed as the frames are read for labelling (no pass of its own), and what `evaluate` and
`activity` compare with the frames they are given.
"""

from __future__ import annotations

import hashlib

import numpy as np

from pipeline.io.base import FrameFile


class FramesDigest:
    """The digest, fed one raw frame at a time, in order."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self._sha = hashlib.sha256(repr(tuple(int(n) for n in shape)).encode())
        self.frames = 0

    def add(self, raw: np.ndarray) -> None:
        self._sha.update(np.ascontiguousarray(raw, dtype="<f4").tobytes())
        self.frames += 1

    def hexdigest(self) -> str:
        return self._sha.hexdigest()


def frames_sha256(ff: FrameFile) -> str:
    """The digest of every frame of an open file (one pass over its frames)."""
    digest = FramesDigest(ff.shape)
    for index in range(ff.n_frames):
        digest.add(ff.read("frames", index))
    return digest.hexdigest()
