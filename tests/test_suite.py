"""The generalisation table: every method's wins are counted against the classical reference."""

from pipeline.evaluation.suite import suite_markdown, wins

CLASSES = ["background", "tritium"]


def _scores(macro: float) -> dict:
    return {
        "macro_cluster_f1": macro,
        "macro_pixel_iou": macro / 2,
        "per_class": {"tritium": {"cluster_f1": macro, "pixel_iou": macro / 2}},
    }


SUMMARIES = {
    "quiet": {"unet": _scores(0.8), "init": _scores(0.7), "classical": _scores(0.75)},
    "noisy": {"unet": _scores(0.6), "init": _scores(0.9), "classical": _scores(0.65)},
    "thin": {"unet": _scores(0.5), "init": _scores(0.5), "classical": _scores(0.5)},
}


def test_wins_count_detectors_where_a_method_reaches_the_reference():
    assert wins(SUMMARIES, "unet", "classical") == (2, 3)  # quiet, and the tie on thin
    assert wins(SUMMARIES, "init", "classical") == (2, 3)
    assert wins(SUMMARIES, "classical", "unet") == (2, 3)


def test_the_table_counts_every_method_against_the_classical_one():
    text = suite_markdown(SUMMARIES, CLASSES)
    assert "unet macro cluster F1 >= classical's on 2 of 3 detectors." in text
    assert "init macro cluster F1 >= classical's on 2 of 3 detectors." in text
    assert "classical macro cluster F1 >=" not in text
    assert "| **noisy** | **macro** | **0.600** | **0.300** | **0.900** |" in text


def test_the_table_opens_with_each_detectors_macro_score_per_method(tmp_path):
    import json

    from pipeline.evaluation.suite import write_suite

    text = suite_markdown(SUMMARIES, CLASSES)
    assert text.index("| noisy | 0.600 | 0.900 | 0.650 |") < text.index("Per class")
    paths = []
    for detector, summary in SUMMARIES.items():
        (tmp_path / detector).mkdir()
        paths.append(tmp_path / detector / "summary.json")
        paths[-1].write_text(json.dumps(summary))
    out = write_suite(paths, list(SUMMARIES), tmp_path / "suite.md", CLASSES)
    html = out.with_suffix(".html").read_text()
    assert html.index("never saw") < html.index("<td>0.900</td>") < html.index("Per class")


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
