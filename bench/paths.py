"""The U-Net inference paths the benchmarks compare, as `infer` settings (shared by
bench_infer.py and bench_suite_paths.py)."""

from __future__ import annotations

from typing import Any

from pipeline.config import Config, InferConfig, set_key

PATHS: dict[str, dict[str, Any]] = {
    f"{mode}-{engine}-{precision}": {
        "sparse.enabled": mode == "sparse",
        "runtime": engine,
        "amp": "off" if precision == "fp32" else "bf16",
    }
    for mode in ("dense", "sparse")
    for engine in ("torch", "onnxruntime")
    for precision in ("fp32", "bf16")
    if not (engine == "onnxruntime" and precision == "bf16")
}


def infer_config(config: Config, path: str, settings: dict[str, Any]) -> Config:
    """`config` with the infer settings of `path`, then `settings` (dotted keys)."""
    infer = config.infer.model_dump()
    for key, value in {**PATHS[path], **settings}.items():
        set_key(infer, key, value)
    return config.model_copy(update={"infer": InferConfig(**infer)})
