"""The inference runtimes: which one runs, the ONNX copy of a checkpoint (exported once, again
when the checkpoint changes), ONNX Runtime's probabilities equal to torch's, and the same map
file from either; the prefetching reader keeps frames in order."""

import h5py
import numpy as np
import pytest
import torch

from pipeline.config import ConfigError
from pipeline.core.hashing import file_sha256
from pipeline.inference import runtime
from pipeline.inference.infer import infer_file
from pipeline.inference.predictor import Predictor
from pipeline.network.model import build_model, model_card, save_checkpoint

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


def test_auto_runs_onnxruntime_for_fp32_on_the_cpu_and_torch_elsewhere():
    assert runtime.choose_runtime("auto", CPU, None) == "onnxruntime"
    assert runtime.choose_runtime("auto", CPU, torch.bfloat16) == "torch"
    assert runtime.choose_runtime("auto", CUDA, torch.bfloat16) == "torch"
    assert runtime.choose_runtime("torch", CPU, None) == "torch"
    with pytest.raises(ConfigError, match="fp32 on the CPU"):
        runtime.choose_runtime("onnxruntime", CUDA, None)
    with pytest.raises(ConfigError, match="bfloat16 on cpu"):
        runtime.choose_runtime("onnxruntime", CPU, torch.bfloat16)


@pytest.fixture
def saved(tiny, tmp_path):
    torch.manual_seed(0)
    model = build_model(tiny.model, len(tiny.classes)).eval()
    path = tmp_path / "model.pt"
    save_checkpoint(path, model, model_card(tiny, "h", {}))
    return model, path


def test_the_onnx_copy_is_exported_once_into_its_cache_and_again_for_a_new_checkpoint(
    tiny, saved, tmp_path
):
    model, path = saved
    cache = tmp_path / "onnx"
    onnx_file = runtime.export_onnx(model, 2, file_sha256(path), cache)
    assert onnx_file == cache / f"{file_sha256(path)}.onnx" and onnx_file.is_file()
    assert not path.with_suffix(".onnx").exists()  # nothing is written beside a checkpoint
    stamp = onnx_file.stat().st_mtime_ns
    assert (
        runtime.export_onnx(model, 2, file_sha256(path), cache).stat().st_mtime_ns == stamp
    )  # reused
    torch.manual_seed(1)
    save_checkpoint(path, build_model(tiny.model, len(tiny.classes)), model_card(tiny, "h", {}))
    changed = runtime.export_onnx(model, 2, file_sha256(path), cache)
    assert changed != onnx_file and changed.is_file()  # a new checkpoint, a copy of its own
    changed.write_bytes(b"truncated")
    runtime.export_onnx(model, 2, file_sha256(path), cache)  # an unreadable copy is replaced
    assert runtime._stored_hash(changed) is not None


def test_a_checkpoint_named_like_an_onnx_file_is_never_overwritten(tiny, saved, tmp_path):
    model, path = saved
    named = tmp_path / "m.onnx"
    named.write_bytes(path.read_bytes())
    before = named.read_bytes()
    runtime.export_onnx(model, 2, file_sha256(named), tmp_path / "onnx")
    assert named.read_bytes() == before


@pytest.mark.parametrize("shape", [(96, 80), (40, 200)])
def test_onnxruntime_gives_torchs_probabilities(tiny, saved, shape, tmp_path):
    model, path = saved
    network = runtime.runtime_network(model, "onnxruntime", file_sha256(path), 2, tmp_path / "onnx")
    charge = np.random.default_rng(4).normal(0, 2.0, shape).astype(np.float32)
    charge[20:24, 30:33] += 300.0
    cfg = tiny.infer.model_copy(update={"channels_last": False})
    by_torch = Predictor(model, 64, tiny.normalise, cfg, CPU, multiple=4).probabilities(charge, 2.0)
    by_onnx = Predictor(network, 64, tiny.normalise, cfg, CPU, multiple=4).probabilities(
        charge, 2.0
    )
    np.testing.assert_allclose(by_onnx, by_torch, atol=1e-4)


def test_infer_writes_the_same_map_with_either_runtime(tiny, tiny_files, saved, tmp_path):
    _, path = saved
    labels = {}
    for engine in ("torch", "onnxruntime"):
        out = tmp_path / f"{engine}.h5"
        settings = {"model": str(path), "runtime": engine, "amp": "off", "probabilities": True}
        config = tiny.model_copy(update={"infer": tiny.infer.model_copy(update=settings)})
        infer_file(config, tiny_files["val"], out, progress=False)
        with h5py.File(out) as f:
            labels[engine] = (f["labels"][()], f["probabilities"][()].astype(np.float32))
    np.testing.assert_array_equal(labels["onnxruntime"][0], labels["torch"][0])
    np.testing.assert_allclose(labels["onnxruntime"][1], labels["torch"][1], atol=2e-3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_frames_reach_the_gpu_through_pinned_memory(tiny, saved):
    model, _ = saved
    predictor = Predictor(model, 64, tiny.normalise, tiny.infer, CUDA)
    on_gpu = predictor._to_device(np.ones((2, 8, 8), np.float32))
    assert on_gpu.device.type == "cuda" and float(on_gpu.sum()) == 128.0


def test_an_unwritable_cache_exports_to_the_temporary_directory(saved, monkeypatch, tmp_path):
    model, path = saved
    monkeypatch.setattr(runtime.tempfile, "gettempdir", lambda: str(tmp_path / "tmp"))
    real_export = runtime._export
    cache = tmp_path / "read-only"

    def read_only_cache(model, channels, digest, target):
        if target.parent == cache:
            raise PermissionError(13, "Permission denied")
        return real_export(model, channels, digest, target)

    monkeypatch.setattr(runtime, "_export", read_only_cache)
    exported = runtime.export_onnx(model, 2, file_sha256(path), cache)
    assert exported.parent == tmp_path / "tmp" / "ccd-decay-unet-onnx"
    assert (
        runtime.export_onnx(model, 2, file_sha256(path), cache) == exported
    )  # found there next time
