"""The network's geometry, shared by tiling, training, inference and the metrics.

Owns the sizes a U-Net accepts (multiples of 2^depth; 32 for depth <= 5), the padding label
`IGNORE` that losses and metrics skip, and the start positions of overlapping windows.
"""

from __future__ import annotations

import math

NET_MULTIPLE = 32  # a U-Net of depth <= 5 halves the size 5 times
IGNORE = 255  # label of padded pixels: skipped by the loss and the metrics


def padded(size: int, multiple: int = NET_MULTIPLE) -> int:
    """`size` rounded up to the network's multiple."""
    return int(math.ceil(size / multiple) * multiple)


def tile_starts(length: int, size: int, overlap: int) -> list[int]:
    """Starts of tiles covering [0, length); the last one is flush with the end."""
    if length <= size:
        return [0]
    stride = size - overlap
    starts = list(range(0, length - size, stride))
    return [*starts, length - size]
