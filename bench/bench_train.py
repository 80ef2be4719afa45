"""Training throughput: tiles per second through the real data path (read, calibrate, augment,
normalise) and the optimiser step, on the CPU and, when present, the GPU.

    python bench/bench_train.py [--config configs/default.yaml] [--steps 20]

Prints one JSON line per device. The first epoch warms up; the second is timed.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
from pathlib import Path

import torch

from pipeline.config import load_config
from pipeline.learning.train import train
from pipeline.simulation.simulate import simulate_file


def measure(config_path: str | None, device: str, steps: int, folder: Path) -> dict:
    base = load_config(config_path)
    frames = folder / "bench.h5"
    if not frames.exists():
        small = load_config(config_path, {"detector.height": 512, "detector.width": 512})
        simulate_file(small, frames, 4, seed=1, progress=False)
    config = load_config(
        config_path,
        {
            "train.epochs": 2,
            "train.steps_per_epoch": steps,
            "train.val_tiles": 1,
            "train.device": device,
            "train.max_minutes": None,
            "tracking.enabled": False,
            "tiles.val_fraction": 0.25,
        },
    )
    result = train(config, [frames], [], folder / device, progress=False)
    return {
        "bench": "train",
        "device": device if device == "cpu" else torch.cuda.get_device_name(0),
        "tiles_per_s": round(result.state.history[-1]["tiles_per_s"], 2),
        "tile": base.tiles.size,
        "batch": base.train.batch_size,
        "encoder": base.model.encoder,
        "depth": base.model.depth,
        "threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default=None)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    with tempfile.TemporaryDirectory() as tmp:
        for device in devices:
            print(json.dumps(measure(args.config, device, args.steps, Path(tmp))), flush=True)


if __name__ == "__main__":
    main()
