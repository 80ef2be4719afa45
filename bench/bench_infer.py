"""End-to-end inference throughput of the U-Net and of the classical reconstruction, on the same
frames, in the same run: reading, calibrating, labelling, the cluster catalogue and writing the
map file all count.

    python bench/bench_infer.py [--config C.yaml] [--model results/model/best.pt]
                                [--frames 8] [--size 1024] [--repeats 3] [--device auto]

Frames come from the simulator (seeded), or `--input` (any readable frame file). Without a
trained checkpoint an untrained model of the config's architecture is timed (the speed does not
depend on the weights). The two methods alternate `--repeats` times; each figure is the median.
Prints one JSON line. On a GPU (`--device cuda`) it also samples the GPU's utilisation.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import threading
import time
from pathlib import Path

import torch

from pipeline.classical import classical_file
from pipeline.config import Config, load_config
from pipeline.infer import infer_file, inference_dtype
from pipeline.model import build_model, model_card, save_checkpoint
from pipeline.simulate import simulate_file


def frames_file(config: Config, args: argparse.Namespace, folder: Path) -> Path:
    if args.input:
        return Path(args.input)
    sized = config.model_copy(
        update={
            "detector": config.detector.model_copy(update={"height": args.size, "width": args.size})
        }
    )
    return simulate_file(sized, folder / "frames.h5", args.frames, seed=1, progress=False)[0]


def checkpoint(config: Config, model: str | None, folder: Path) -> tuple[Path, bool]:
    if model and Path(model).is_file():
        return Path(model), True
    path = folder / "untrained.pt"
    torch.manual_seed(0)
    save_checkpoint(
        path, build_model(config.model, len(config.classes)), model_card(config, "untrained", {})
    )
    return path, False


class GpuSampler(threading.Thread):
    """Samples torch.cuda.utilization() (needs pynvml) every 50 ms while running."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.samples: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.samples.append(float(torch.cuda.utilization()))
            except Exception:  # no NVML: no figure
                return
            time.sleep(0.05)


def time_unet(config: Config, frames: Path, model: Path, out: Path, device: str) -> tuple:
    settings = {
        "model": str(model),
        "input": str(frames),
        "output": str(out / "unet.h5"),
        "catalogue": str(out / "unet.parquet"),
        "device": device,
    }
    result = infer_file(
        config.model_copy(update={"infer": config.infer.model_copy(update=settings)}),
        progress=False,
    )
    return result.seconds, result.pixels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default=None)
    parser.add_argument("--model", default="results/model/best.pt")
    parser.add_argument("--input", default=None, help="a frame file instead of simulated frames")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    args = parser.parse_args()
    config = load_config(args.config)
    device = "cuda" if args.device == "auto" and torch.cuda.is_available() else args.device
    device = "cpu" if device == "auto" else device
    with tempfile.TemporaryDirectory(prefix="bench-infer-") as tmp:
        folder = Path(tmp)
        frames = frames_file(config, args, folder)
        model, trained = checkpoint(config, args.model, folder)
        unet, classical, sampler = [], [], GpuSampler() if device == "cuda" else None
        if sampler:
            sampler.start()
        for _ in range(args.repeats):
            seconds, pixels = time_unet(config, frames, model, folder, device)
            unet.append(seconds)
            result = classical_file(
                config,
                frames,
                folder / "classical.h5",
                folder / "classical.parquet",
                progress=False,
            )
            classical.append(result.seconds)
        if sampler:
            sampler.stop.set()
    unet_rate = pixels / 1e6 / statistics.median(unet)
    classical_rate = pixels / 1e6 / statistics.median(classical)
    amp = inference_dtype(config.infer.amp, torch.device(device))
    print(
        json.dumps(
            {
                "bench": "infer",
                "device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu",
                "megapixels": round(pixels / 1e6, 2),
                "unet_mpix_s": round(unet_rate, 3),
                "classical_mpix_s": round(classical_rate, 3),
                "unet_over_classical": round(unet_rate / classical_rate, 3),
                "gpu_busy_percent": round(statistics.mean(sampler.samples), 1)
                if sampler and sampler.samples
                else None,
                "trained_model": trained,
                "encoder": config.model.encoder,
                "window": config.infer.window,
                "overlap": config.infer.overlap,
                "autocast": str(amp).removeprefix("torch.") if amp else "off",
                "threads": torch.get_num_threads(),
                "machine": platform.processor() or platform.machine(),
            }
        )
    )


if __name__ == "__main__":
    main()
