"""A frame's charge with the readout's own artefacts undone, in the reverse of the order the
readout made them: pedestal jumps (the baseline, last: pipeline/calibration/jumps.py), then
charge-transfer inefficiency (pipeline/calibration/cti.py), then the charge of bad columns
starting at a trap (jumps.trap_columns); and the pixels whose charge is
mostly what they put there, which the truth calls artefact. `infer` labels the restored charge
and its catalogue sums it.
"""

from __future__ import annotations

import numpy as np

from pipeline.calibration import cti, jumps
from pipeline.config.reconstruction import JumpsConfig


class Restorer:
    """Undoes the jumps `jumps_cfg` finds in each frame and the file's measured CTI `transfer`
    (None: none undone); keeps the last frame's result for its catalogue."""

    def __init__(
        self, jumps_cfg: JumpsConfig, transfer: cti.CTI | None, label_noise_multiple: float
    ) -> None:
        self.jumps_cfg, self.transfer = jumps_cfg, transfer
        self.label_noise_multiple = label_noise_multiple
        self._last: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def active(self) -> bool:
        return self.jumps_cfg.enabled or self.transfer is not None

    def __call__(self, read: np.ndarray, noise_e: float) -> tuple[np.ndarray, np.ndarray]:
        """(the charge restored, (H, W) bool: the pixels the artefacts made)."""
        threshold = self.label_noise_multiple * noise_e
        charge, made = read, np.zeros(read.shape, dtype=bool)
        if self.jumps_cfg.enabled:
            steps, charge = jumps.find(read, noise_e, self.jumps_cfg)
            made |= jumps.raised(steps, charge, threshold)
        if self.transfer is not None:
            before = cti.correct(charge, self.transfer)
            made |= cti.trails(charge, before, threshold)
            charge = before
        if self.jumps_cfg.enabled and self.jumps_cfg.columns:
            columns, charge = jumps.trap_columns(charge, noise_e, self.jumps_cfg)
            made |= jumps.raised(columns, charge, threshold, along_columns=True)
        self._last = (read, charge)
        return charge, made

    def summed(self, read: np.ndarray) -> np.ndarray:
        """The restored charge of the frame just restored (`read` itself, else as read)."""
        if self._last is not None and self._last[0] is read:
            return self._last[1]
        return read
