"""The headline numbers: every activity and score read from its result file and said in words;
a file that is not what it should be is one line."""

import json

import pytest

from pipeline.cli import main

ACTIVITY = {
    "activity_bq": 0.06457,
    "interval_bq": [0.03351, 0.09771],
    "confidence": 0.95,
    "detected": True,
    "decision_threshold_bq": 0.02107,
    "mda_bq": 0.04405,
    "tritium_counts": 83.2,
    "live_time_s": 4800.0,
    "efficiency": 0.2934,
}


EVENTS = {"muon": 27, "electron": 21, "tritium": 134, "xray": 169, "alpha": 14, "artefact": 40}


def _method(macro: float, interval: list[float]) -> dict:
    return {
        "macro_cluster_f1": macro,
        "macro_cluster_f1_interval": interval,
        "macro_pixel_iou": 0.6,
        "per_class": {
            name: {"cluster_f1": macro, "pixel_iou": 0.5, "true_events": events}
            for name, events in EVENTS.items()
        },
        "made_from": {"model": "models/ccd-unet-v1.pt"},
        "scored_on": {"truth": "heldout.h5", "frames": 8},
    }


def test_the_headline_says_each_result_in_words(tmp_path, capsys):
    activity = tmp_path / "heldout.json"
    activity.write_text(json.dumps(ACTIVITY))
    undetected = tmp_path / "run42.classical.json"
    unsure = {
        "detected": False,
        "activity_bq": 0.01,
        "mda_bq": None,
        "calibration_uncertainty": 0.72,
    }
    undetected.write_text(json.dumps({**ACTIVITY, **unsure}))
    summary = tmp_path / "summary.json"
    scores = {"init": _method(0.846, [0.81, 0.88]), "classical": _method(0.718, [0.67, 0.76])}
    summary.write_text(json.dumps(scores))
    out = tmp_path / "headline.rst"
    argv = ["headline", "--activity", str(activity), str(undetected), "--summary", str(summary)]
    assert main([*argv, "--suite-summaries", str(summary), "--out", str(out)]) == 0
    text = out.read_text()
    assert text.startswith("Headline numbers\n================\n")
    assert (
        "Tritium activity of ``heldout``: **0.06457 Bq** (95% interval 0.03351-0.09771 Bq), "
        "**detected** (above the decision threshold); decision threshold 0.02107 Bq, minimum "
        "detectable activity 0.04405 Bq; 83.2 tritium clusters fitted over 4800 s" in text
    )
    assert "``run42`` (classical): **0.01 Bq**" in text and "**not detected**" in text
    assert "no detection limit (the efficiency is uncertain by 72%: a reference sample" in text
    assert (
        "Held-out frames heldout.h5 (8 frames), macro cluster F1 (95% interval): starting U-Net "
        "(ccd-unet-v1) 0.846 (0.81-0.88), classical 0.718 (0.67-0.76); starting U-Net "
        "(ccd-unet-v1) better than classical; true events: "
        "muon 27, electron 21, tritium 134, xray 169, alpha 14, artefact 40." in text
    )
    assert "Generalisation suite (1 simulated detectors never trained on): starting U-Net" in text
    assert "better on 1, worse on 0, within uncertainty on 0 of 1 detectors" in text
    assert capsys.readouterr().out.endswith(f"wrote {out}\n")


@pytest.mark.parametrize(
    "content, said",
    [
        ("{broken", "not an activity JSON (Expecting"),
        ("[1, 2]", "not an activity JSON (a JSON object)"),
        (json.dumps({"activity_bq": 1.0}), "not an activity JSON (no 'interval_bq')"),
    ],
)
def test_what_is_not_an_activity_is_one_line_and_writes_nothing(tmp_path, capsys, content, said):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    out = tmp_path / "h.rst"
    assert main(["headline", "--activity", str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert said in err and err.count("\n") == 1, err
    assert not out.exists()
