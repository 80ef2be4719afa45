"""The generalisation table: methods in words, each macro cluster F1 with its interval and the
true events it rests on, and a method better or worse than the classical reference only where
the intervals are apart."""

import json

from pipeline.evaluation.suite import suite_markdown, write_suite
from pipeline.evaluation.tables import compare

CLASSES = ["background", "tritium"]


def _scores(macro: float, half_width: float = 0.05, events: int = 40) -> dict:
    interval = [macro - half_width, macro + half_width]
    return {
        "macro_cluster_f1": macro,
        "macro_cluster_f1_interval": interval,
        "macro_pixel_iou": macro / 2,
        "per_class": {
            "tritium": {
                "cluster_f1": macro,
                "cluster_f1_interval": interval,
                "pixel_iou": macro / 2,
                "true_events": events,
            }
        },
    }


SUMMARIES = {
    "quiet": {"unet": _scores(0.8), "init": _scores(0.7), "classical": _scores(0.6)},
    "noisy": {"unet": _scores(0.6), "init": _scores(0.9), "classical": _scores(0.65)},
    "thin": {"unet": _scores(0.3, events=3), "init": _scores(0.5), "classical": _scores(0.5)},
}


def test_a_method_is_better_or_worse_only_where_the_intervals_are_apart():
    assert compare(SUMMARIES["quiet"]["unet"], SUMMARIES["quiet"]["classical"]) == "better"
    assert compare(SUMMARIES["thin"]["unet"], SUMMARIES["thin"]["classical"]) == "worse"
    # 0.60 against 0.65: intervals overlap, no claim either way
    assert compare(SUMMARIES["noisy"]["unet"], SUMMARIES["noisy"]["classical"]) == (
        "within uncertainty"
    )
    bare = {"macro_cluster_f1": 0.9}  # a summary without intervals makes no claim
    assert compare(bare, {"macro_cluster_f1": 0.1}) == "within uncertainty"


def test_the_table_names_methods_in_words_and_counts_each_against_the_classical_one():
    text = suite_markdown(SUMMARIES, CLASSES)
    assert (
        "fine-tuned U-Net against classical, macro cluster F1 (95% intervals): better on 1, "
        "worse on 1, within uncertainty on 1 of 3 detectors." in text
    )
    assert (
        "starting U-Net against classical, macro cluster F1 (95% intervals): better on 1, "
        "worse on 0, within uncertainty on 2" in text
    )  # quiet: intervals touch
    assert "classical against" not in text
    header = "| detector | class | true events | fine-tuned U-Net cluster F1 |"
    assert header in text
    assert "| **noisy** | **macro** | **40** | **0.600 (0.55-0.65)** | **0.300** |" in text


def test_the_table_opens_with_each_detectors_macro_score_and_its_events(tmp_path):
    text = suite_markdown(SUMMARIES, CLASSES)
    row = "| thin | tritium 3 | 0.300 (0.25-0.35) | 0.500 (0.45-0.55) | 0.500 (0.45-0.55) |"
    assert text.index(row) < text.index("Per class")
    paths = []
    for detector, summary in SUMMARIES.items():
        (tmp_path / detector).mkdir()
        paths.append(tmp_path / detector / "summary.json")
        paths[-1].write_text(json.dumps(summary))
    out = write_suite(paths, list(SUMMARIES), tmp_path / "suite.md", CLASSES)
    html = out.with_suffix(".html").read_text()
    assert (
        html.index("never saw") < html.index("<td>0.900 (0.85-0.95)</td>") < html.index("Per class")
    )


MALFORMED = {
    "a list": ([1, 2], "not an evaluation summary: the top level: Input should be a valid"),
    "a method that is a number": ({"unet": 3}, "unet: Input should be a valid dictionary"),
    "no macro score": (
        {"unet": {"macro_pixel_iou": 0.1, "per_class": {}}},
        "unet.macro_cluster_f1: Field required",
    ),
    "a score that is text": (
        {"unet": {**_scores(0.5), "macro_cluster_f1": "high"}},
        "unet.macro_cluster_f1: Input should be a valid number",
    ),
    "a class without its scores": (
        {"unet": {**_scores(0.5), "per_class": {"tritium": {}}}},
        "unet.per_class.tritium.cluster_f1: Field required",
    ),
    "a class missing": (
        {"unet": {**_scores(0.5), "per_class": {}}},
        "unet has no scores of classes ['tritium']",
    ),
    "no method": ({}, "an evaluation summary of no method"),
    "other methods than the first": ({"init": _scores(0.5)}, "methods ['init'], where the first"),
    "not JSON": ("{unclosed", "not an evaluation summary (Expecting"),
}


def test_malformed_summaries_are_one_line_naming_the_file_and_what_is_wrong(tmp_path):
    import json

    import pytest

    from pipeline.config import ConfigError
    from pipeline.evaluation.suite import write_suite

    good = tmp_path / "good.json"
    good.write_text(json.dumps({"unet": _scores(0.7)}))
    for case, (content, message) in MALFORMED.items():
        bad = tmp_path / f"{case}.json"
        bad.write_text(content if isinstance(content, str) else json.dumps(content))
        out = tmp_path / f"{case}.md"
        with pytest.raises(ConfigError) as info:
            write_suite([good, bad], ["a", "b"], out, CLASSES)
        text = str(info.value)
        assert text.startswith(str(bad)) and message in text and "\n" not in text, (case, text)
        assert not out.exists() and not out.with_suffix(".html").exists()


def test_tritium_efficiency_and_purity_come_with_their_counts_and_intervals():
    from pipeline.evaluation.suite import proportion_cell, tritium_frame

    scores = _scores(0.8, events=40)
    scores["per_class"]["tritium"] |= {
        "cluster_efficiency": 0.9,
        "cluster_purity": 0.75,
        "predicted_clusters": 48,
    }
    table = tritium_frame({"quiet": {"unet": scores}})
    row = table.iloc[0]
    assert row["method"] == "fine-tuned U-Net"
    assert row["efficiency (found/true)"].endswith(" 36/40")
    assert row["purity (right/called)"].endswith(" 36/48")
    # Jeffreys interval of 36 of 40: 2.5 % and 97.5 % quantiles of Beta(36.5, 4.5), 0.780, 0.965
    assert proportion_cell(36, 40) == "0.900 (0.78-0.97) 36/40"
    assert proportion_cell(0, 0) == "n/a (0)"
    assert "Tritium, per detector" in suite_markdown({"quiet": {"unet": scores}}, ["bg", "tritium"])
