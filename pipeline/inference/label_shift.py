"""The component vote under the priors of the data (`infer.priors`).

Owns `LabelShift`: for each frame, the network's deposits and their cluster posteriors; in mode
`adapt` the priors of the clusters mapped so far in the file estimated by EM from the model card's
`training_priors` (pipeline/results/priors.py, Saerens et al. 2002), in mode `stated` the user's,
and each deposit's class voted under them. What it used goes to the map's attributes (`priors`,
`priors_source`) and the MLflow run. A card without training priors (ccd-unet-v1) votes as trained.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from pipeline.config import ConfigError, PriorsConfig
from pipeline.results import clusters, priors


class LabelShift:
    """Votes the deposits of frame after frame of one file under its priors."""

    def __init__(self, cfg: PriorsConfig, card: dict[str, Any], classes: Sequence[str]) -> None:
        self.cfg, self.signal = cfg, list(classes[1:])
        stated = card.get("training_priors")
        self.training = (
            np.array([float(stated.get(c, 0.0)) for c in self.signal]) if stated else None
        )
        if self.training is not None:
            self.training = np.maximum(self.training, 1e-6) / np.maximum(self.training, 1e-6).sum()
        self.source = self._source(stated is not None)
        self.priors = self._initial()
        self.posteriors: list[np.ndarray] = []

    def _source(self, has_training: bool) -> str:
        if self.cfg.mode == "training" or not has_training:
            return "training (the model card states none)" if not has_training else "training"
        if self.cfg.mode == "stated":
            return "stated (infer.priors.stated)"
        return f"adapted (EM label shift, pseudo_count {self.cfg.pseudo_count:g})"

    def _initial(self) -> np.ndarray | None:
        if self.training is None or self.cfg.mode == "training":
            return self.training
        if self.cfg.mode == "stated":
            missing = [c for c in self.signal if c not in self.cfg.stated]
            if missing:
                raise ConfigError(
                    f"infer.priors.stated: no prior for {missing} (stated: "
                    f"{sorted(self.cfg.stated)}; needed: {self.signal})"
                )
            values = np.array([self.cfg.stated[c] for c in self.signal], dtype=float)
            return values / values.sum()
        return self.training.copy()

    @property
    def active(self) -> bool:
        return self.training is not None and self.cfg.mode != "training"

    def label(self, probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(labels (H, W) uint8, the probabilities under the priors) of one frame."""
        if not self.active:
            return clusters.component_vote(probabilities), probabilities
        assert self.training is not None and self.priors is not None
        components, n, posteriors = priors.component_posteriors(probabilities)
        if self.cfg.mode == "adapt" and n:
            self.posteriors.append(posteriors)
            self.priors = priors.adapted_priors(
                np.concatenate(self.posteriors), self.training, self.cfg.pseudo_count
            )
        moved = priors.reweighted_probabilities(probabilities, self.training, self.priors)
        if n == 0:
            return probabilities.argmax(axis=0).astype(np.uint8), moved
        return clusters.vote(
            components, priors.reweighted(posteriors, self.training, self.priors)
        ), moved

    def attrs(self) -> dict[str, str]:
        """The priors the file's deposits were voted under, and where they came from."""
        if self.priors is None:
            return {"priors_source": self.source}
        values = {c: round(float(p), 5) for c, p in zip(self.signal, self.priors, strict=True)}
        return {"priors": json.dumps(values), "priors_source": self.source}
