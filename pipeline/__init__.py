"""Finds radioactive-decay tracks in CCD and pixel-detector images with a U-Net.

Stages, one module each: `io` (frame and map files, a package: base, formats, read, write), `simulate` (+ `physics`, the simulator's
sources and transport), `config` (the one config system) and `cli` (`python -m pipeline <stage>`).
"""

__version__ = "0.1.0"
