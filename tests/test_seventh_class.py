"""A seventh class, added through configuration and one source function, goes through the whole
pipeline with the default six: simulated with per-pixel truth, trained on, mapped, scored and
counted in the activity's catalogue (pipeline/simulation/sources.py, pipeline/config/sources.py).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from pydantic import BaseModel, ConfigDict, Field

from pipeline.commands import settings_of
from pipeline.evaluation import evaluate
from pipeline.inference import infer
from pipeline.io import open_frames, open_map
from pipeline.learning.train import train
from pipeline.measurement import activity
from pipeline.network.model import load_checkpoint
from pipeline.simulation import sources
from pipeline.simulation.physics import Segments
from pipeline.simulation.simulate import simulate_file
from tests.conftest import tiny_config

CLASSES = ["background", "muon", "electron", "tritium", "xray", "alpha", "recoil"]


class RecoilConfig(BaseModel):
    """The recoil source's own section: checked when it is simulated."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    label: str
    rate_per_frame: float = Field(ge=0)
    energy_kev: tuple[float, float]


def recoil_segments(n, cfg: RecoilConfig, config, rng) -> Segments:
    """Point-like nuclear recoils anywhere in the bulk, uniform in electron-equivalent energy."""
    det = config.detector
    extent = [det.width * det.pixel_size_um, det.height * det.pixel_size_um]
    point = np.column_stack([rng.uniform(0, extent, (n, 2)), rng.uniform(0, det.thickness_um, n)])
    energy = rng.uniform(*cfg.energy_kev, n)
    return Segments(point, point.copy(), energy, np.arange(n), np.zeros(n))


@pytest.fixture
def recoil(tmp_path):
    """The tiny config with the recoil class and its source registered; unregistered after."""
    sources.register(sources.Source("recoil", RecoilConfig, recoil_segments))
    added = {"label": "recoil", "rate_per_frame": 4.0, "energy_kev": [3.0, 30.0]}
    config = tiny_config(
        tmp_path,
        classes=CLASSES,
        **{
            "sources.recoil": added,
            "train.class_weights.recoil": 1.0,
            "tracking.enabled": False,
            "activity.efficiency": 0.3,  # given: the fit alone is under test here
            "activity.efficiency_error": 0.03,
        },
    )
    yield config
    sources.SOURCES.pop("recoil")


def test_a_seventh_class_is_simulated_trained_mapped_scored_and_counted(recoil, tmp_path):
    config = recoil
    frames = simulate_file(config, tmp_path / "train.h5", 3, seed=21, progress=False)[0]
    val = simulate_file(config, tmp_path / "val.h5", 2, seed=22, progress=False)[0]
    with open_frames(val, config.io, config.classes) as truth:
        assert (truth.read("labels", 0) == CLASSES.index("recoil")).any()

    result = train(config, [frames], [val], tmp_path / "model", progress=False)
    best = result.out / "best.pt"
    assert load_checkpoint(best)["card"]["classes"] == CLASSES

    mapped = load_config_with_model(config, best)
    map_path, catalogue = tmp_path / "val.map.h5", tmp_path / "val.parquet"
    infer.run(settings_of(mapped, "infer"), val, map_path, catalogue)
    with open_map(map_path, config.io) as labelled:
        assert labelled.class_names == CLASSES

    evaluate.run(settings_of(config, "evaluate"), val, [map_path], tmp_path / "eval", ["unet"])
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert "recoil" in summary["unet"]["per_class"]

    out = tmp_path / "activity.json"
    activity.run(settings_of(config, "activity"), catalogue, val, out)
    measured = json.loads(out.read_text())
    assert len(measured["counts_per_frame"]["recoil"]) == 2
    assert np.isfinite(measured["activity_bq"])


def test_an_added_source_is_checked_by_its_own_model(recoil, tmp_path):
    """The config checks what every source has (label, rate); the source's own model checks the
    rest when it is simulated, naming the key."""
    from pipeline.config import ConfigError

    lacking = {"label": "recoil", "rate_per_frame": 1.0}  # no energy_kev
    config = tiny_config(
        tmp_path,
        classes=CLASSES,
        **{"sources.recoil": lacking, "train.class_weights.recoil": 1.0},
    )
    with pytest.raises(ConfigError, match=r"sources\.recoil\.energy_kev"):
        sources.configured(config)


def load_config_with_model(config, checkpoint):
    """`config` with infer.model the trained checkpoint."""
    return config.model_copy(
        update={"infer": config.infer.model_copy(update={"model": str(checkpoint)})}
    )
