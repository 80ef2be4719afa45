"""The network's runtime for inference (used by the `infer` stage).

Owns choosing what executes the U-Net's forward pass, and the ONNX copy of a checkpoint that
ONNX Runtime runs:

- `torch`: PyTorch eager, with autocast (bf16 on CPUs that compute it natively, on CUDA);
- `onnxruntime`: ONNX Runtime's CPU engine in fp32, 1.1-1.8x PyTorch eager fp32 on 2-core x86
  CPUs without native bf16 (bench/bench_infer.py), the same probabilities to 1e-5;
- `auto`: ONNX Runtime on the CPU where inference runs in fp32, PyTorch elsewhere.

The ONNX file is exported once per checkpoint into a cache of its own (`infer.onnx_cache`, by
default $XDG_CACHE_HOME/ccd-decay-unet/onnx), named by the checkpoint's SHA-256 and carrying it:
nothing is written beside a checkpoint (a shipped model's folder, a user's file of any name), a
changed checkpoint is another file, and an unreadable copy is exported again, atomically. Where
the cache cannot be written, the temporary directory holds it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from pipeline.config import ConfigError
from pipeline.core.atomic import atomic_output

if TYPE_CHECKING:
    import onnxruntime

ONNX_OPSET = 17
HASH_KEY = "checkpoint_sha256"


def choose_runtime(runtime: str, device: torch.device, amp: torch.dtype | None) -> str:
    """`torch` or `onnxruntime` for infer.runtime (`auto`: ONNX Runtime for fp32 on the CPU)."""
    if runtime == "onnxruntime" and (device.type != "cpu" or amp is not None):
        raise ConfigError(
            f"infer.runtime onnxruntime runs fp32 on the CPU; this run is "
            f"{amp or 'fp32'} on {device.type} (set infer.amp: off and infer.device: cpu)"
        )
    if runtime == "auto":
        return "onnxruntime" if device.type == "cpu" and amp is None else "torch"
    return runtime


def onnx_cache(configured: str | None) -> Path:
    """The folder of the ONNX copies: `infer.onnx_cache`, else the user's cache directory."""
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "ccd-decay-unet" / "onnx"


def _stored_hash(path: Path) -> str | None:
    import onnx
    from google.protobuf.message import DecodeError

    try:
        model = onnx.load(str(path), load_external_data=False)
    except (OSError, DecodeError):  # unreadable or partial: export again
        return None
    return next((p.value for p in model.metadata_props if p.key == HASH_KEY), None)


def export_onnx(model: nn.Module, in_channels: int, digest: str, cache: str | Path) -> Path:
    """The ONNX copy of the checkpoint whose SHA-256 is `digest` (exported from `model` unless an
    up-to-date one exists), in the folder `cache` as <SHA-256>.onnx, or in the temporary directory
    where `cache` cannot be written."""
    fallback = Path(tempfile.gettempdir()) / "ccd-decay-unet-onnx"
    targets = [Path(cache) / f"{digest}.onnx", fallback / f"{digest}.onnx"]
    for target in targets:
        if target.is_file() and _stored_hash(target) == digest:
            return target
    try:
        targets[0].parent.mkdir(parents=True, exist_ok=True)
        return _export(model, in_channels, digest, targets[0])
    except PermissionError:
        fallback.mkdir(parents=True, exist_ok=True)
        return _export(model, in_channels, digest, targets[1])


def _export(model: nn.Module, in_channels: int, digest: str, target: Path) -> Path:
    import onnx

    example = torch.zeros(1, in_channels, 64, 64)
    axes = {0: "batch", 2: "height", 3: "width"}
    with atomic_output(target) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            model.cpu().eval(),
            (example,),
            str(tmp),
            input_names=["x"],
            output_names=["logits"],
            dynamic_axes={"x": axes, "logits": axes},
            opset_version=ONNX_OPSET,
            dynamo=False,
        )
        exported = onnx.load(str(tmp))
        onnx.helper.set_model_props(exported, {HASH_KEY: digest})
        onnx.save(exported, str(tmp))
    return target


class OnnxNetwork(nn.Module):
    """A module whose forward runs an ONNX Runtime session (fp32, CPU) on the ONNX copy of the
    checkpoint whose SHA-256 is `digest`: drop-in for the U-Net in the `Predictor`. The copy is
    made, and the session opened, at the first forward pass: a run refused before any frame is
    labelled (unreadable, uncalibratable input) writes nothing."""

    def __init__(
        self, model: nn.Module, in_channels: int, digest: str, threads: int, cache: Path
    ) -> None:
        super().__init__()
        self.source, self.in_channels, self.digest = model, in_channels, digest
        self.threads, self.cache = threads, cache
        self._session: onnxruntime.InferenceSession | None = None

    def _open(self):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # idle threads sleep instead of spinning: the reader thread and torch's post-processing
        # share the cores between runs
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        path = export_onnx(self.source, self.in_channels, self.digest, self.cache)
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._session is None:
            self._session = self._open()
        inputs = np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)
        return torch.from_numpy(self._session.run(None, {"x": inputs})[0])


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """torch's intra-op threads set to `threads` inside the block, restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def runtime_network(
    model: nn.Module,
    runtime: str,
    digest: str,
    in_channels: int,
    cache: str | Path | None = None,
) -> nn.Module:
    """The module the Predictor runs: `model` itself, or its ONNX Runtime twin (the ONNX copy of
    the checkpoint whose SHA-256 is `digest`, in `cache`, default `onnx_cache(None)`)."""
    if runtime == "torch":
        return model
    folder = Path(cache) if cache is not None else onnx_cache(None)
    return OnnxNetwork(model, in_channels, digest, torch.get_num_threads(), folder)
