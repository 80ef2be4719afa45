"""The typed sections of the readout's own artefacts undone in calibration, before any
reconstruction labels a frame: charge-transfer inefficiency (`calibrate.cti`) and pedestal jumps
and trap columns (`calibrate.jumps`); pipeline/calibration/restore.py."""

from __future__ import annotations

from pydantic import Field

from pipeline.config.base import Section


class CtiCorrectionConfig(Section):
    """CTI measured on a file's own deposits and undone: pipeline/calibration/cti.py."""

    enabled: bool
    seed_sigma: float = Field(gt=0)
    lags: int = Field(ge=1, le=20)
    trail_px: float = Field(gt=0, le=100)
    min_share: float = Field(ge=0, lt=0.5)
    significance: float = Field(ge=0)
    min_runs: int = Field(ge=1)


class JumpsConfig(Section):
    """Pedestal jumps and trap columns found in each frame and undone (calibration/jumps.py)."""

    enabled: bool
    window_px: int = Field(ge=8, le=512)
    min_sigma: float = Field(gt=0)
    max_per_row: int = Field(ge=1, le=10)
    columns: bool
