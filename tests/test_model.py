"""The U-Net and its checkpoint: card contents, safe loading, refusals."""

import pytest
import torch

from pipeline.network.model import (
    CheckpointError,
    build_model,
    load_checkpoint,
    load_model,
    model_card,
    save_checkpoint,
)


@pytest.mark.parametrize("head", ["plain", "full_resolution"])
def test_model_maps_tiles_to_per_class_logits(tiny, head):
    cfg = tiny.model.model_copy(update={"head": head})
    model = build_model(cfg, len(tiny.classes))
    x = torch.zeros(2, cfg.in_channels, 64, 64)
    x[:, :, 10, 20] = 5.0  # one bright pixel
    logits = model.eval()(x)
    assert logits.shape == (2, len(tiny.classes), 64, 64)
    # the head sees full resolution: a single pixel changes the logits at that pixel
    changed = (logits - model(torch.zeros_like(x))).abs().sum(dim=(0, 1))
    assert changed[10, 20] > 0


def test_checkpoint_round_trip_holds_everything_inference_needs(tiny, tmp_path):
    torch.manual_seed(0)
    model = build_model(tiny.model, len(tiny.classes))
    card = model_card(tiny, "abc123", {"macro_iou": 0.5})
    save_checkpoint(tmp_path / "m.pt", model, card)
    loaded, loaded_card = load_model(
        tmp_path / "m.pt", classes=tiny.classes, in_channels=tiny.model.in_channels
    )
    assert loaded_card["classes"] == tiny.classes
    assert loaded_card["normalise"] == tiny.normalise.model_dump()
    assert loaded_card["tile_size"] == tiny.tiles.size
    assert loaded_card["training_data_hash"] == "abc123"
    for a, b in zip(model.state_dict().values(), loaded.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]  # no temporary left


def test_refuses_corrupt_foreign_and_mismatched_checkpoints(tiny, tmp_path):
    save_checkpoint(
        tmp_path / "m.pt", build_model(tiny.model, len(tiny.classes)), model_card(tiny, "h", {})
    )
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes((tmp_path / "m.pt").read_bytes()[:1000])
    card = model_card(tiny, "h", {})
    card["normalise"]["kind"] = "asinh_noise"  # one channel, for a two-channel network
    save_checkpoint(tmp_path / "one_channel.pt", build_model(tiny.model, len(tiny.classes)), card)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    cases = [
        (tmp_path / "absent.pt", {}, "no such checkpoint"),
        (corrupt, {}, "not a readable checkpoint"),
        (foreign, {}, "not a pipeline checkpoint"),
        (tmp_path / "m.pt", {"classes": ["background", "tritium"]}, "do not match"),
        (tmp_path / "m.pt", {"in_channels": 3}, "input channels, data has 3"),
        (tmp_path / "one_channel.pt", {}, "2 input channels, its normalise.kind makes 1"),
    ]
    for path, kwargs, pattern in cases:
        with pytest.raises(CheckpointError, match=pattern) as info:
            load_model(path, **kwargs)
        assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)


def test_untrusted_pickles_are_not_executed(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("executed",))

    path = tmp_path / "evil.pt"
    torch.save({"state_dict": {}, "card": Evil()}, path)
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(path)
