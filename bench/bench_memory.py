"""Peak memory and time per pixel of `python -m pipeline infer` over frame files of growing size.

    python bench/bench_memory.py [--sizes-gb 0.0625,0.25,1] [--model results/model/best.pt]

Each file holds float32 1024 x 1024 frames, uncompressed (file size = data size), tiled from a
few simulated frames. Each size runs in its own process; its peak resident memory comes from the
kernel (wait4's ru_maxrss). Prints one JSON line per size, then one with the spreads: memory
should not grow with the file (the issue's goal: within 10% from 0.5 GB to 8 GB) and the time per
pixel should stay flat.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import h5py
import numpy as np

from pipeline.config import load_config
from pipeline.simulation.simulate import simulate_file

FRAME = 1024
SEED_FRAMES = 4


def tiled_file(source: Path, path: Path, n_frames: int) -> None:
    """`n_frames` frames cycling through the source's, uncompressed, with its attributes."""
    with h5py.File(source) as src, h5py.File(path, "w") as out:
        frames = src["frames"][()]
        for key, value in src.attrs.items():
            if key != "class_names":
                out.attrs[key] = value
        data = out.create_dataset(
            "frames", (n_frames, FRAME, FRAME), "float32", chunks=(1, FRAME, FRAME)
        )
        for i in range(n_frames):
            data[i] = frames[i % len(frames)]


def run_infer(model: str, frames: Path, out: Path) -> tuple[float, float]:
    """(megapixels per second of the stage itself, as it reports it; peak RSS in MB) of one
    inference process. Interpreter start and imports are excluded from the rate."""
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pipeline",
                "infer",
                "--model",
                model,
                "--input",
                str(frames),
                "--output",
                str(out),
            ],
            stdout=stdout,
            stderr=stderr,
        )
        _, status, usage = os.wait4(process.pid, 0)
        stdout.seek(0)
        stderr.seek(0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"infer failed on {frames}: {stderr.read().decode()[-500:]}")
        rate = re.search(rb"([0-9.]+) megapixels/s", stdout.read())
    if rate is None:
        raise SystemExit(f"infer on {frames} printed no rate")
    return float(rate.group(1)), usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes-gb", default="0.0625,0.25,1")
    parser.add_argument("--model", default="results/model/best.pt")
    args = parser.parse_args()
    if not Path(args.model).is_file():
        raise SystemExit(f"{args.model}: no such checkpoint (train first, or pass --model)")
    sizes = [float(s) for s in args.sizes_gb.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        folder = Path(tmp)
        config = load_config(overrides={"detector.height": FRAME, "detector.width": FRAME})
        source = simulate_file(config, folder / "seed.h5", SEED_FRAMES, seed=1, progress=False)[0]
        for size in sizes:
            n_frames = max(1, round(size * 2**30 / (FRAME * FRAME * 4)))
            frames = folder / f"frames_{size:g}gb.h5"
            tiled_file(source, frames, n_frames)
            rate, peak_mb = run_infer(args.model, frames, folder / "map.h5")
            row = {
                "bench": "memory",
                "file_gb": round(frames.stat().st_size / 2**30, 3),
                "frames": n_frames,
                "peak_rss_mb": round(peak_mb, 1),
                "us_per_pixel": round(1 / rate, 4),
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
            frames.unlink()
    peaks = np.array([r["peak_rss_mb"] for r in rows])
    times = np.array([r["us_per_pixel"] for r in rows])
    print(
        json.dumps(
            {
                "bench": "memory_summary",
                "sizes_gb": sizes,
                "peak_rss_growth": round(float(peaks[-1] / peaks[0] - 1), 4),
                "time_per_pixel_spread": round(float(times.max() / times.min() - 1), 4),
            }
        )
    )


if __name__ == "__main__":
    main()
