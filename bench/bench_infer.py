"""End-to-end inference throughput of every U-Net path and of the classical reconstruction, on
the same frames, in the same run: reading, calibrating, labelling, the cluster catalogue and
writing the map file all count.

    python bench/bench_infer.py [--config C.yaml] [--model ccd-unet-v1] [--frames 8]
                                [--occupancy low high] [--repeats 3] [--device auto]
                                [--paths dense-torch-fp32 sparse-onnxruntime-fp32 ...]

Paths: dense or sparse (`infer.sparse`), torch or onnxruntime (`infer.runtime`), fp32 or bf16
(`infer.amp`; bf16 only where the CPU computes it natively, or on CUDA). Frames come from the
simulator (seeded): `low` occupancy is the default held-out detector (simulate.datasets.heldout),
`high` the busy one (suite_busy, 5x the sources); or `--input` (any readable frame file). The
methods alternate `--repeats` times; each figure is the median. Prints one JSON line per path
and occupancy, after a line naming the machine and its CPU features. On a GPU it also samples
the GPU's utilisation.
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
from paths import PATHS, infer_config  # bench/paths.py

from pipeline.config import Config, load_config
from pipeline.inference.classical import classical_file
from pipeline.inference.infer import infer_file
from pipeline.network.device import cpu_has_native_bf16
from pipeline.simulation.simulate import simulate_file

OCCUPANCY = {"low": "heldout", "high": "suite_busy"}  # simulate.datasets used
CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "avx_vnni", "amx_bf16", "amx_tile")


def cpu_features() -> dict:
    """The CPU's model name and the vector features that decide the fp32/bf16 speed."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {"cpu": platform.processor() or platform.machine(), "features": None}
    fields = dict(line.split(":", 1) for line in info.splitlines()[:40] if ":" in line)
    fields = {key.strip(): value.strip() for key, value in fields.items()}
    flags = fields.get("flags", "").split()
    cpu = fields.get("model name") or platform.machine()
    return {"cpu": cpu, "features": [f for f in CPU_FLAGS if f in flags]}


def frames_file(args: argparse.Namespace, dataset: str, folder: Path) -> Path:
    """`args.frames` frames of the simulated dataset (its detector and sources, its seed)."""
    spec = load_config(args.config).simulate.datasets[dataset]
    sim = load_config(args.config, overrides=dict(spec.overrides))
    path = folder / f"{dataset}.h5"
    return simulate_file(sim, path, args.frames, seed=spec.seed, progress=False)[0]


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


def time_path(config: Config, name: str, frames: Path, model: str, out: Path, device: str):
    settings = infer_config(config, name, {"model": model, "device": device})
    result = infer_file(settings, frames, out / "unet.h5", out / "unet.parquet", progress=False)
    return result.seconds, result.pixels


def time_classical(config: Config, frames: Path, out: Path) -> float:
    result = classical_file(config, frames, out / "c.h5", out / "c.parquet", progress=False)
    return result.seconds


def runnable(name: str, device: str) -> bool:
    if device == "cuda":
        return "onnxruntime" not in name
    return "bf16" not in name or cpu_has_native_bf16()


def bench(config: Config, frames: Path, args: argparse.Namespace, device: str, label: str):
    paths = [p for p in args.paths if runnable(p, device)]
    seconds: dict[str, list[float]] = {p: [] for p in [*paths, "classical"]}
    sampler = GpuSampler() if device == "cuda" else None
    with tempfile.TemporaryDirectory(prefix="bench-infer-") as tmp:
        if sampler:
            sampler.start()
        for _ in range(args.repeats):
            for name in paths:
                spent, pixels = time_path(config, name, frames, args.model, Path(tmp), device)
                seconds[name].append(spent)
            seconds["classical"].append(time_classical(config, frames, Path(tmp)))
        if sampler:
            sampler.stop.set()
    classical = pixels / 1e6 / statistics.median(seconds["classical"])
    for name, spent in seconds.items():
        rate = pixels / 1e6 / statistics.median(spent)
        line = {"bench": "infer", "occupancy": label, "path": name, "mpix_s": round(rate, 3)}
        line["over_classical"] = round(rate / classical, 3)
        line["megapixels"] = round(pixels / 1e6, 2)
        if sampler and sampler.samples and name != "classical":
            line["gpu_busy_percent"] = round(statistics.mean(sampler.samples), 1)
        print(json.dumps(line), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default=None)
    parser.add_argument("--model", default="ccd-unet-v1", help="checkpoint or shipped name")
    parser.add_argument("--input", default=None, help="a frame file instead of simulated frames")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--occupancy", nargs="+", default=["low", "high"], choices=OCCUPANCY)
    parser.add_argument("--paths", nargs="+", default=list(PATHS), choices=list(PATHS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    args = parser.parse_args()
    config = load_config(args.config)
    device = "cuda" if args.device == "auto" and torch.cuda.is_available() else args.device
    device = "cpu" if device == "auto" else device
    import onnxruntime

    machine = {"bench": "infer", **cpu_features(), "threads": torch.get_num_threads()}
    machine.update(torch=torch.__version__, onnxruntime=onnxruntime.__version__)
    if device == "cuda":
        machine["gpu"] = torch.cuda.get_device_name(0)
    print(json.dumps(machine), flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-frames-") as tmp:
        if args.input:
            bench(config, Path(args.input), args, device, Path(args.input).name)
            return
        for label in args.occupancy:
            frames = frames_file(args, OCCUPANCY[label], Path(tmp))
            bench(config, frames, args, device, label)


if __name__ == "__main__":
    main()
