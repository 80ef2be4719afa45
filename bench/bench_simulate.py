"""Simulator speed: frames per second for default 1024 x 1024 frames on one core.

    python bench/bench_simulate.py [--frames 10] [--seed 1]

Prints one JSON line. Goal (issue 2): <= ~2 s per 1024 x 1024 frame on one core.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np

from pipeline.config import load_config
from pipeline.simulation.simulate import make_detector, simulate_frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    config = load_config()
    detector = make_detector(config.detector)
    seconds = []
    for index in range(args.frames):
        rng = np.random.default_rng(np.random.SeedSequence(args.seed, spawn_key=(index,)))
        start = time.perf_counter()
        simulate_frame(config, detector, rng)
        seconds.append(time.perf_counter() - start)
    print(
        json.dumps(
            {
                "bench": "simulate",
                "frame_shape": [config.detector.height, config.detector.width],
                "frames": args.frames,
                "frames_per_s": round(args.frames / sum(seconds), 3),
                "mean_s_per_frame": round(float(np.mean(seconds)), 3),
                "max_s_per_frame": round(float(np.max(seconds)), 3),
                "threads": os.environ.get("OMP_NUM_THREADS", "unset"),
                "machine": platform.processor() or platform.machine(),
            }
        )
    )


if __name__ == "__main__":
    main()
