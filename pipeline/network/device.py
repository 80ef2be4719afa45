"""Where the network runs and in which precision, for training and inference alike.

Owns the device choice (`auto`: the local CUDA device where there is one, else the CPU), the
DDP process group torchrun describes, and the autocast dtype: training autocasts on CUDA only;
inference also on CPUs that compute bf16 natively (AMX or AVX512-BF16), where it is faster than
fp32.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from pipeline.core.errors import ConfigError


def pick_device(choice: str, key: str = "train.device", local_rank: int = 0) -> torch.device:
    """`auto`, `cpu` or `cuda` (the config key `key`) as a device; CUDA asked for and absent is
    a ConfigError naming the key."""
    if choice == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"config key '{key}' is 'cuda' but no CUDA device is available")
    if choice == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", local_rank)


def autocast_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """Training autocast: on CUDA only (`auto`: bf16 where supported, else fp16)."""
    if device.type != "cuda" or amp == "off":
        return None
    if amp == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"bf16": torch.bfloat16, "fp16": torch.float16}[amp]


def cpu_has_native_bf16() -> bool:
    """AMX or AVX512-BF16: bf16 convolutions run faster than fp32 on this CPU."""
    checks = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def inference_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """Autocast dtype of inference: on CUDA as in training (`auto`: bf16, fp16 without bf16);
    on the CPU `auto` is bf16 where the CPU computes it natively, else fp32."""
    if device.type == "cpu" and amp == "auto":
        return torch.bfloat16 if cpu_has_native_bf16() else None
    if device.type == "cpu":
        return {"bf16": torch.bfloat16, "fp16": torch.float16, "off": None}[amp]
    return autocast_dtype(amp, device)


@dataclass(frozen=True)
class Distributed:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(use_cuda: bool) -> Distributed:
    """Join the process group torchrun describes in the environment (a no-op for one process)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Distributed()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return Distributed(dist.get_rank(), world, int(os.environ.get("LOCAL_RANK", "0")))
