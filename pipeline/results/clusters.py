"""Cluster catalogue (written by the `infer` and `classical` stages, read by `activity`).

Owns turning a per-pixel class map into physics objects: the 8-connected components of each
signal class (scipy.ndimage), and per cluster its frame, id, class, number of pixels, charge
(electrons), energy (keV), charge-weighted centroid and spreads (pixels) and mean class
probability: the catalogue of docs/frame_format.md, written as Parquet and CSV. Also the
component vote that gives every connected deposit of a probability map one class.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from scipy import ndimage

from pipeline.core.components import EIGHT_CONNECTED, moments
from pipeline.core.errors import CatalogueError, one_line
from pipeline.io import FrameFile, atomic_output
from pipeline.io.digest import frames_sha256
from pipeline.results import priors
from pipeline.results.metrics import normalised_entropy


def catalogue_twin(path: str | Path) -> Path:
    """The CSV written beside a Parquet catalogue."""
    return Path(path).with_suffix(".csv")


COLUMNS = (
    "frame",
    "cluster",
    "class",
    "class_name",
    "pixels",
    "charge_e",
    "energy_kev",
    "x",
    "y",
    "sigma_x",
    "sigma_y",
    "probability",
    "uncertainty",
)


def frame_clusters(
    labels: np.ndarray,
    charge_e: np.ndarray,
    classes: Sequence[str],
    pair_energy_ev: float,
    frame: int = 0,
    probabilities: np.ndarray | None = None,
    first_id: int = 1,
) -> pd.DataFrame:
    """The catalogue rows of one frame's map. Centroids and spreads weight pixels by their
    (positive) charge; x is the column, y the row, pixel centres at integers. Sums run over the
    labelled pixels only (bincount), so the cost after labelling is that of the deposits."""
    rows = []
    for cls in range(1, len(classes)):
        components, n = ndimage.label(labels == cls, structure=EIGHT_CONNECTED)
        if n == 0:
            continue
        m = moments(components, n, charge_e)
        prob, uncertain = np.full(n, np.nan), np.full(n, np.nan)
        if probabilities is not None:
            prob = m.total(probabilities[cls][m.rows, m.cols].astype(np.float64)) / m.pixels
            entropy = normalised_entropy(probabilities[:, m.rows, m.cols])
            uncertain = m.total(entropy.astype(np.float64)) / m.pixels
        rows.append(
            pd.DataFrame(
                {
                    "frame": frame,
                    "class": cls,
                    "class_name": classes[cls],
                    "pixels": m.pixels.astype(int),
                    "charge_e": m.charge,
                    "energy_kev": m.charge * pair_energy_ev / 1000.0,
                    "x": m.x,
                    "y": m.y,
                    "sigma_x": np.sqrt(np.maximum(m.xx, 0)),
                    "sigma_y": np.sqrt(np.maximum(m.yy, 0)),
                    "probability": prob,
                    "uncertainty": uncertain,
                }
            )
        )
    table = pd.concat(rows, ignore_index=True) if rows else empty_catalogue()
    table["cluster"] = np.arange(first_id, first_id + len(table))
    return table[list(COLUMNS)]


def component_vote(probabilities: np.ndarray) -> np.ndarray:
    """Labels (H, W) uint8 from class probabilities (C, H, W), one class per deposit.

    The pixels whose most probable class is not background form 8-connected components; each
    component takes the signal class with the largest summed probability over its pixels. One
    particle makes one connected deposit, so a track the network labels half muon, half electron
    becomes one muon instead of a string of fragments of both classes."""
    components, n, posteriors = priors.component_posteriors(probabilities)
    if n == 0:
        return probabilities.argmax(axis=0).astype(np.uint8)
    return vote(components, posteriors)


def vote(components: np.ndarray, posteriors: np.ndarray) -> np.ndarray:
    """Labels (H, W) uint8: each component 1..n takes the signal class of its largest posterior
    (posteriors (n, C-1)); 0 is background."""
    component_class = np.concatenate([[0], 1 + posteriors.argmax(axis=1)]).astype(np.uint8)
    return component_class[components]


def empty_catalogue() -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype=float) for name in COLUMNS})


MADE_FROM = b"ccd_decay_unet.made_from"  # Parquet metadata: the frame file a catalogue is of


def write_catalogue(
    table: pd.DataFrame, path: str | Path, made_from: Mapping[str, str] | None = None
) -> list[Path]:
    """Parquet at `path` (with `made_from`, the frame file's name and SHA-256, in its metadata)
    and a CSV twin, each written atomically."""
    path = Path(path)
    outputs = [path, catalogue_twin(path)]
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    if made_from:
        metadata = {**(arrow.schema.metadata or {}), MADE_FROM: json.dumps(dict(made_from))}
        arrow = arrow.replace_schema_metadata(metadata)
    with atomic_output(outputs[0]) as tmp, tmp.open("wb") as handle:  # any bytes in its name
        pq.write_table(arrow, handle)
    with atomic_output(outputs[1]) as tmp:
        table.to_csv(tmp, index=False)
    return outputs


def read_catalogue(path: str | Path, needed: Sequence[str] = COLUMNS) -> pd.DataFrame:
    """A catalogue written by `write_catalogue` (Parquet), with the `needed` columns, each
    frame index a non-negative integer and each energy finite; CatalogueError otherwise."""
    path = Path(path)
    if not path.is_file():
        raise CatalogueError(f"{path}: no such catalogue file")
    with open(path, "rb") as handle:
        magic = handle.read(4)
    if magic != b"PAR1":
        hint = " (give the .parquet file, not its CSV twin)" if path.suffix == ".csv" else ""
        raise CatalogueError(f"{path}: not a Parquet catalogue; first bytes {magic!r}{hint}")
    try:
        with path.open("rb") as handle:
            table = pd.read_parquet(handle)
    except (pa.ArrowException, OSError, ValueError) as exc:  # damaged, or not a table we read
        raise CatalogueError(f"{path}: cannot read the catalogue ({one_line(exc)})") from None
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise CatalogueError(
            f"{path}: catalogue lacks columns {missing} (it has {list(table.columns)})"
        )
    frames = pd.to_numeric(table.get("frame", pd.Series(dtype=float)), errors="coerce")
    if frames.isna().any() or (frames < 0).any() or (frames % 1 != 0).any():
        raise CatalogueError(f"{path}: column 'frame' holds values that are not frame indices")
    energy = pd.to_numeric(table.get("energy_kev", pd.Series(dtype=float)), errors="coerce")
    if not np.isfinite(energy.to_numpy(dtype=float)).all():
        raise CatalogueError(f"{path}: column 'energy_kev' holds non-finite or non-numeric values")
    return table


def catalogue_made_from(path: str | Path) -> dict[str, str]:
    """What the catalogue says it was made from (`write_catalogue`'s `made_from`; {} if none)."""
    with Path(path).open("rb") as handle:
        metadata = pq.read_schema(handle).metadata or {}
    return dict(json.loads(metadata.get(MADE_FROM, b"{}")))


def check_made_from(catalogue: str | Path, frames: FrameFile) -> None:
    """CatalogueError if the catalogue records the digest of other frames than `frames`' (one
    pass over them)."""
    made_from = catalogue_made_from(catalogue)
    recorded = made_from.get("frames_sha256")
    if recorded and recorded != frames_sha256(frames):
        raise CatalogueError(
            f"{catalogue}: made from {made_from.get('source', 'other frames')}, not from "
            f"{frames.path} (their frames differ); give the frame file it was made from"
        )
