"""The tables a reader sees of an evaluation: methods named in words, each cluster F1 with its
95 % interval, the true events it rests on, and a win claimed only where intervals are apart.

Owns the words for the workflow's method names (`unet`, `init`, `classical`), the cells
("0.835 (0.80-0.87)") and the comparison of two methods on one detector: "better" or "worse"
only where their macro cluster F1 intervals do not overlap, else "within uncertainty". The
intervals themselves come from the counts (pipeline/results/metrics.py,
`cluster_f1_intervals`); a summary written without them shows its scores bare.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

F1_CONFIDENCE = 0.95  # the credibility of every F1 interval the tables and summaries give
REFERENCE = "classical"  # what every other method is compared with
METHOD_WORDS = {
    "unet": "fine-tuned U-Net",
    "init": "starting U-Net",  # train.init: the shipped model in the default config
    "classical": "classical",
    "ceiling": "ceiling (trees that know the truth)",
}


def method_label(name: str, scores: Mapping) -> str:
    """A method in words: the workflow's names spelled out, the starting model named by the
    checkpoint its map was made with ("starting U-Net (ccd-unet-v1)"); other names as given."""
    words = METHOD_WORDS.get(name, name)
    model = (scores.get("made_from") or {}).get("model")
    if name == "init" and model:
        return f"{words} ({Path(model).stem})"
    return words


def score_cell(value: float | None, interval: Sequence[float | None] | None = None) -> str:
    """'0.835 (0.80-0.87)': the score and its interval, 'n/a' where it is undefined."""
    if value is None:
        return "n/a"
    if not interval or None in interval:
        return f"{value:.3f}"
    low, high = interval
    return f"{value:.3f} ({low:.2f}-{high:.2f})"


def events_cell(per_class: Mapping[str, Mapping], classes: Sequence[str]) -> str:
    """The true events of each signal class: 'muon 5, electron 2, tritium 59'."""
    return ", ".join(f"{c} {per_class[c].get('true_events', '?')}" for c in classes[1:])


def compare(scores: Mapping, reference: Mapping) -> str:
    """'better', 'worse' or 'within uncertainty': `scores`'s macro cluster F1 against the
    reference's, a difference only where their intervals do not overlap."""
    own, other = scores.get("macro_cluster_f1_interval"), reference.get("macro_cluster_f1_interval")
    if not own or not other or None in (*own, *other):
        return "within uncertainty"  # no interval: no claim
    if own[0] > other[1]:
        return "better"
    if own[1] < other[0]:
        return "worse"
    return "within uncertainty"


def dataset_verdicts(summary: Mapping[str, Mapping]) -> str:
    """On one dataset, each method against the reference: 'fine-tuned U-Net better than
    classical, starting U-Net within uncertainty of classical' (95 % intervals)."""
    reference = REFERENCE if REFERENCE in summary else list(summary)[-1]
    against = method_label(reference, summary[reference])
    words = {
        "better": "better than",
        "worse": "worse than",
        "within uncertainty": "within uncertainty of",
    }
    return ", ".join(
        f"{method_label(m, s)} {words[compare(s, summary[reference])]} {against}"
        for m, s in summary.items()
        if m != reference
    )


def verdict_lines(summaries: Mapping[str, Mapping[str, Mapping]]) -> list[str]:
    """Per method, against the reference (the classical reconstruction): on how many detectors
    it is better or worse with the 95 % intervals of their macro cluster F1 apart, and on how
    many the difference is within uncertainty."""
    first = next(iter(summaries.values()))
    reference = REFERENCE if REFERENCE in first else list(first)[-1]
    lines = []
    for method in first:
        if method == reference:
            continue
        verdicts = [compare(s[method], s[reference]) for s in summaries.values()]
        label = method_label(method, first[method])
        against = method_label(reference, first[reference])
        lines.append(
            f"{label} against {against}, macro cluster F1 ({F1_CONFIDENCE:.0%} intervals): "
            f"better on {verdicts.count('better')}, worse on {verdicts.count('worse')}, "
            f"within uncertainty on {verdicts.count('within uncertainty')} of "
            f"{len(verdicts)} detectors."
        )
    return lines


def comparison_rows(summary: dict, classes: Sequence[str]) -> tuple[list[str], list[list[str]]]:
    """Header and rows: per class its true events, then per method (in words) the cluster F1
    with its interval and the pixel IoU; the macro averages and the tritium count bias."""
    names = list(summary)
    confidence = f"{F1_CONFIDENCE:.0%}"
    header = ["class", "true events"] + [
        f"{method_label(n, summary[n])} {what}"
        for n in names
        for what in (f"cluster F1 ({confidence} interval)", "pixel IoU")
    ]
    first = summary[names[0]]["per_class"]
    rows = [
        [cls, str(first[cls].get("true_events", "?"))]
        + [
            cell
            for n in names
            for cell in (
                score_cell(
                    summary[n]["per_class"][cls]["cluster_f1"],
                    summary[n]["per_class"][cls].get("cluster_f1_interval"),
                ),
                score_cell(summary[n]["per_class"][cls]["pixel_iou"]),
            )
        ]
        for cls in classes[1:]
    ]
    macro = [
        cell
        for n in names
        for cell in (
            score_cell(summary[n]["macro_cluster_f1"], summary[n].get("macro_cluster_f1_interval")),
            score_cell(summary[n]["macro_pixel_iou"]),
        )
    ]
    total = sum(first[c].get("true_events", 0) for c in classes[1:])
    rows.append(["**macro (signal)**", str(total), *macro])
    bias = [f"{summary[n]['tritium_count_bias_per_frame']:+.2f}" for n in names]
    rows.append(["tritium count bias / frame", "", *[cell for b in bias for cell in (b, "")]])
    return header, rows


def summary_dataset(summary: dict) -> str:
    """The frames a summary scored, in words: 'heldout.h5 (8 frames)'."""
    scored = next(iter(summary.values())).get("scored_on") or {}
    if not scored:
        return "its frames"
    return f"{scored['truth']} ({scored['frames']} frames)"


def comparison_title(summary: dict, dataset: str) -> str:
    """What the table scores, on what, and how to read it."""
    methods = ", ".join(method_label(n, s) for n, s in summary.items())
    return (
        f"{methods} on {dataset}, scored against its truth. Cluster F1 with its "
        f"{F1_CONFIDENCE:.0%} interval from the counts (true events per class); macro cluster "
        f"F1: {dataset_verdicts(summary) if len(summary) > 1 else 'one method'} (intervals "
        "apart, or within uncertainty)."
    )


def comparison_table(summary: dict, classes: Sequence[str], dataset: str) -> str:
    """The comparison as Markdown: a line saying what it shows, then the table."""
    header, rows = comparison_rows(summary, classes)
    lines = [comparison_title(summary, dataset), ""]
    lines += ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def comparison_html(summary: dict, classes: Sequence[str], dataset: str) -> str:
    """The comparison as HTML (for the Snakemake report): the same line, then the table."""
    header, rows = comparison_rows(summary, classes)
    table = pd.DataFrame([[cell.strip("*") for cell in row] for row in rows], columns=header)
    title = html.escape(comparison_title(summary, dataset))
    return f"<p>{title}</p>\n" + table.to_html(index=False, border=0)
