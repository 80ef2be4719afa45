"""Finds radioactive-decay tracks in CCD and pixel-detector images with a U-Net.

Stages, one module each: `config` (the one config system), `io` (frame and map files; a package:
base, formats, read, write), `simulate` with `physics` (the simulator's sources and transport) and
`cli` (`python -m pipeline <stage>`).
"""

__version__ = "0.1.0"
