"""Two networks in cascade: one says whether charge is a particle, the other which particle.

A network trained with an artefact class (readout artefacts and light) knows what is not a
particle; one trained longer on particles alone can know better which particle it is. Owns
`share_particles`: each pixel keeps the first network's background and artefact probabilities,
and the probability left to the particles (1 - background - artefact) is shared among the
particle classes as the second network shares its own particle probability there. Where the
second sees no particle at all (under `FLOOR` in total), the first's shares stay. And
`first_artefacts`: the deposits the first network's own vote calls artefact, which stay artefact
(a crosstalk ghost is as sharp as its source: the second network, which has no artefact class,
would lend the particles the weight to outvote the first's doubt).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pipeline.results import clusters

FLOOR = 1e-6  # the second network's particle probability below which its shares are noise


def share_particles(
    first: np.ndarray,
    first_classes: Sequence[str],
    second: np.ndarray,
    second_classes: Sequence[str],
) -> np.ndarray:
    """(C1, H, W) probabilities: `first`'s, with the classes both networks know beyond their
    first (background) and the first's without a counterpart (artefact) re-shared as `second`
    shares them."""
    shared = [c for c in first_classes[1:] if c in second_classes[1:]]
    if not shared:
        return first
    mine = [list(first_classes).index(c) for c in shared]
    theirs = [list(second_classes).index(c) for c in shared]
    mass = first[mine].sum(axis=0)
    their_mass = second[theirs].sum(axis=0)
    seen = their_mass >= FLOOR
    shares = np.where(
        seen, second[theirs] / np.maximum(their_mass, FLOOR), first[mine] / np.maximum(mass, FLOOR)
    )
    out = first.copy()
    out[mine] = (mass * shares).astype(first.dtype)
    return out


def first_artefacts(first: np.ndarray, classes: Sequence[str], artefact: str) -> np.ndarray | None:
    """(H, W) bool: the pixels of the deposits the component vote on `first` gives `artefact`
    (None where the classes have none)."""
    if artefact not in classes:
        return None
    return clusters.component_vote(first) == list(classes).index(artefact)
