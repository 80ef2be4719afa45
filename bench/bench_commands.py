"""Whole commands, as a user runs them: `pipeline infer` (the shipped model) against
`pipeline classical` on the same frames, start-up, reading, tracking and writing included.

    python bench/bench_commands.py [--frames 4] [--size 1024] [--repeats 3] [--model ccd-unet-v1]

Simulates `--frames` frames of `--size`² (the default detector, seed 1) and one frame of 64²,
then runs each command `--repeats` times, alternating, each in a fresh folder (so each infer run
opens its own MLflow store, as a first run in a user's folder does). Prints one JSON line per
command and frame file: the best and median wall time, and for the 64² frame the fixed cost of
a command (what it pays before and after the pixels).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def simulate(folder: Path, name: str, frames: int, size: int) -> Path:
    path = folder / f"{name}.h5"
    subprocess.run(
        [sys.executable, "-m", "pipeline", "simulate", "--out", str(path), "--frames",
         str(frames), "--height", str(size), "--width", str(size), "--seed", "1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return path


def command(method: str, frames: Path, output: Path, model: str) -> list[str]:
    common = ["--input", str(frames), "--output", str(output)]
    if method == "infer":
        return [sys.executable, "-m", "pipeline", "infer", "--model", model, *common]
    return [sys.executable, "-m", "pipeline", "classical", *common]


def timed(argv: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {done.stderr.strip()[-400:]}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", default="ccd-unet-v1")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        inputs = {
            f"{args.frames}x{args.size}^2": simulate(folder, "big", args.frames, args.size),
            "1x64^2": simulate(folder, "small", 1, 64),
        }
        for label, frames in inputs.items():
            times: dict[str, list[float]] = {"infer": [], "classical": []}
            for repeat in range(args.repeats):
                for method in times:
                    run = folder / f"{method}-{label}-{repeat}"
                    run.mkdir()
                    argv = command(method, frames, run / "map.h5", args.model)
                    times[method].append(timed(argv, run))
            for method, seconds in times.items():
                row = {"command": f"pipeline {method}", "frames": label, "repeats": args.repeats,
                       "best_s": round(min(seconds), 2),
                       "median_s": round(statistics.median(seconds), 2)}  # fmt: skip
                print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
