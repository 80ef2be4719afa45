"""Tritium in a sample, end to end: simulated samples of known activity concentration (three
layer thicknesses, two back-surface layers), each measured as a user would (frames -> map and
catalogue -> efficiency frames of the same detector, mapped by the same method -> activity),
with the classical reconstruction and the shipped U-Net; every term of the systematics
re-simulated and labelled by the same method (`activity.model`). Prints one JSON line per sample
and method: the true and measured concentration (Bq/g), the 95 % interval and whether it covers
the truth, the decision threshold and the detection limit (ISO 11929), and the terms that
dominate the calibration's uncertainty.

    python bench/bench_sample.py [--frames 8] [--size 512] [--efficiency-frames 8]
        [--methods classical unet] [--samples "soil 1 mm"] [--back-layers 1.0] [--keep DIR]

`pipeline forecast --activity DIR/*.json` then gives each one's detection limit (Bq/g) against
counting time.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import h5py

from pipeline.cli import main as pipeline
from pipeline.config import load_config
from pipeline.measurement.sample import sample_scale
from pipeline.simulation.simulate import DRAWN_ATTR, simulate_file

SAMPLES = {  # thickness (um): a smear, a thin layer, a thick soil sample
    "deposit 0.05 um": 0.05,
    "layer 2 um": 2.0,
    "soil 1 mm": 1000.0,
}
BACK_LAYERS_UM = (0.3, 1.0)  # detector.backside_pcc_um: the efficiency's largest unknown
ENTERING_PER_FRAME = 40.0  # betas that reach the CCD per frame, whatever the sample
SHIPPED = "ccd-unet-v1"


def overrides(thickness_um: float, back_um: float, size: int, rate: float) -> dict:
    return {
        "detector.height": size,
        "detector.width": size,
        "detector.backside_pcc_um": back_um,
        "sources.tritium.sample.kind": "layer",
        "sources.tritium.sample.thickness_um": thickness_um,
        "sources.tritium.rate_per_frame": rate,
    }


def reach_fraction(thickness_um: float) -> float:
    """Decays per entering beta, for the rate that makes every sample as busy."""
    import numpy as np

    from pipeline.simulation import physics

    config = load_config(overrides=overrides(thickness_um, 1.0, 256, 1.0))
    seg = physics.tritium_segments(
        4000, config.sources.tritium, config.detector, config.physics, np.random.default_rng(0)
    )
    return len(np.unique(seg.event)) / 4000


def measure(folder: Path, sets: list[str], method: str) -> dict:
    """Map the data and its efficiency frames with `method`, then the activity."""
    mapper = ["classical"] if method == "classical" else ["infer", "--model", SHIPPED]
    labeller = "classical" if method == "classical" else SHIPPED
    sets = [*sets, f"--set=activity.model={labeller}"]  # the variants, labelled in-process
    for name in ("data", "efficiency"):
        argv = [*mapper, "--input", str(folder / f"{name}.h5"), "--output"]
        argv += [str(folder / f"{name}.{method}.h5"), "--catalogue"]
        assert pipeline([*argv, str(folder / f"{name}.{method}.parquet"), *sets]) == 0
    out = folder / f"activity.{method}.json"
    argv = ["activity", "--catalogue", str(folder / f"data.{method}.parquet"), "--frames"]
    argv += [str(folder / "data.h5"), "--efficiency-frames", str(folder / "efficiency.h5")]
    argv += ["--efficiency-catalogue", str(folder / f"efficiency.{method}.parquet")]
    assert pipeline([*argv, "--out", str(out), *sets]) == 0
    return json.loads(out.read_text())


def largest_terms(systematics: dict, n: int = 3) -> dict[str, float]:
    """The `n` terms of the activity's systematics with the largest spread (Bq)."""
    spreads = {
        name: term["standard_uncertainty_bq"]
        for name, term in systematics.items()
        if isinstance(term, dict) and "standard_uncertainty_bq" in term
    }
    return dict(sorted(spreads.items(), key=lambda item: -item[1])[:n])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument(
        "--efficiency-frames", type=int, default=8, help="per variant (activity.efficiency_frames)"
    )
    parser.add_argument("--methods", nargs="+", default=["classical", "unet"])
    parser.add_argument("--keep", type=Path, help="folder to copy each activity JSON into")
    parser.add_argument("--samples", nargs="+", choices=list(SAMPLES), default=list(SAMPLES))
    parser.add_argument("--back-layers", nargs="+", type=float, default=list(BACK_LAYERS_UM))
    args = parser.parse_args()
    for label in args.samples:
        thickness = SAMPLES[label]
        rate = ENTERING_PER_FRAME / reach_fraction(thickness)
        for back in args.back_layers:
            given = overrides(thickness, back, args.size, rate)
            given["activity.efficiency_frames"] = args.efficiency_frames
            config = load_config(overrides=given)
            sets = [f"--set={k}={v}" for k, v in given.items()] + ["--set=tracking.enabled=false"]
            with tempfile.TemporaryDirectory(prefix="bench-sample-") as tmp:
                folder = Path(tmp)
                data = simulate_file(config, folder / "data.h5", args.frames, 11, progress=False)[0]
                with h5py.File(data) as f:
                    decays = json.loads(f.attrs[DRAWN_ATTR])["tritium"]
                    live = args.frames * float(f.attrs["exposure_s"])
                assert pipeline(["efficiency", "--frames", str(data), "--out",
                                 str(folder / "efficiency.h5"), *sets]) == 0  # fmt: skip
                scale = sample_scale(
                    config.sources.tritium, args.size, args.size, config.detector.pixel_size_um
                )
                assert scale is not None
                truth = decays / live / scale.escape_mass_g
                for method in args.methods:
                    result = measure(folder, sets, method)
                    sample = result["sample"]
                    if args.keep:
                        args.keep.mkdir(parents=True, exist_ok=True)
                        name = f"{label.split()[0]}-{thickness:g}um-back{back:g}.{method}.json"
                        (args.keep / name).write_text(json.dumps(result))
                    low, high = sample["concentration_interval_bq_per_g"]
                    print(json.dumps({
                        "bench": "sample", "sample": label, "back_layer_um": back,
                        "method": method, "true_bq_per_g": round(truth, 2),
                        "measured_bq_per_g": sample["concentration_bq_per_g"],
                        "interval_bq_per_g": [low, high], "covers": low <= truth <= high,
                        "decision_threshold_bq_per_g": sample["decision_threshold_bq_per_g"],
                        "mda_bq_per_g": sample["mda_bq_per_g"], "decays": decays,
                        "calibration_uncertainty": result["calibration_uncertainty"],
                        "largest_terms": largest_terms(result["systematics"]),
                    }), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
