"""A frame's charge with the readout's own artefacts undone, in the reverse of the order the
readout made them: pedestal jumps (the baseline, last: pipeline/calibration/jumps.py), then
charge-transfer inefficiency (pipeline/calibration/cti.py), then the charge of bad columns
starting at a trap (jumps.trap_columns); and the pixels whose charge is mostly what they put
there, which the truth calls artefact. `infer` and `classical` label the restored charge and
their catalogues sum it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from pipeline.calibration import cti, jumps
from pipeline.config.readout import JumpsConfig
from pipeline.config.stages import FrameSections

# charge (e-) and noise (e-) -> labels (H, W), probabilities (C, H, W) or None
Label = Callable[[np.ndarray, float], tuple[np.ndarray, np.ndarray | None]]


class Restorer:
    """Undoes the jumps `jumps_cfg` finds in each frame and the file's CTI `measured` where it
    counts (None: not measured); keeps the last frame's result for its catalogue."""

    def __init__(
        self, jumps_cfg: JumpsConfig, measured: cti.CTI | None, label_noise_multiple: float
    ) -> None:
        self.jumps_cfg, self.measured = jumps_cfg, measured
        self.transfer = measured if measured is not None and measured.corrects else None
        self.label_noise_multiple = label_noise_multiple
        self._last: tuple[np.ndarray, np.ndarray] | None = None

    @classmethod
    def for_file(cls, path: str | Path, config: FrameSections) -> Restorer:
        """The restorer of `path` with `config.calibrate`: its CTI measured here."""
        cal = config.calibrate
        measured = cti.measure_file(path, config, cal.cti) if cal.cti.enabled else None
        return cls(cal.jumps, measured, config.physics.label_noise_multiple)

    def notes(self) -> list[str]:
        """What was measured, for the command's report."""
        return [self.measured.describe()] if self.measured is not None else []

    def attrs(self) -> dict[str, str]:
        """The map file's record of it."""
        return self.measured.attrs() if self.measured is not None else {}

    def labeller(self, label: Label, classes: Sequence[str], artefact_class: str) -> Label:
        """`label` (charge, noise -> labels, probabilities) on the restored charge, the pixels
        the artefacts made set to `artefact_class` (the labels as they are where `classes`
        lacks it)."""
        artefact = classes.index(artefact_class) if artefact_class in classes else None

        def restored_label(
            read: np.ndarray, noise_e: float
        ) -> tuple[np.ndarray, np.ndarray | None]:
            if not self.active:
                return label(read, noise_e)
            charge, made = self(read, noise_e)
            labels, probs = label(charge, noise_e)
            if artefact is not None:
                labels[made] = artefact
            return labels, probs

        return restored_label

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
        """The charge a catalogue sums: the restored charge of the frame just restored (`read`
        itself), else the charge as read (nothing restored)."""
        if self._last is not None and self._last[0] is read:
            return self._last[1]
        return read
