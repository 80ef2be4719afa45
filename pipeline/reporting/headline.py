"""The headline numbers (the `headline` stage): what a reader wants first, on one page, in words.

Owns turning the workflow's results into a short reStructuredText list, the landing page of the
Snakemake report (report/workflow.rst includes it): each activity measured, with its interval,
whether it is a detection, the decision threshold and the detection limit; the held-out
comparison of the methods, each macro cluster F1 with its interval; and, per method, on how
many detectors of the generalisation suite it is better or worse than the classical
reconstruction with the intervals apart. Every number is read from a result file, none typed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from pipeline.config import ConfigError
from pipeline.config.stages import ClassesSettings
from pipeline.core.atomic import atomic_output
from pipeline.core.errors import one_line, printable
from pipeline.core.stage import INPUT, OUTPUT, Flag, Stage, file_flag
from pipeline.evaluation import tables
from pipeline.evaluation.suite import read_summaries
from pipeline.measurement.limits import limit_words
from pipeline.results.naming import unique_names


def _read_json(path: str | Path, what: str) -> dict:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not {what} ({one_line(exc)})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: not {what} (a JSON object)")
    return data


MDA = "minimum detectable activity"


def activity_line(path: str | Path) -> str:
    """One activity JSON in words."""
    result = _read_json(path, "an activity JSON")
    try:
        low, high = result["interval_bq"]
        verdict = (
            "**detected** (above the decision threshold)"
            if result["detected"]
            else "**not detected** (below the decision threshold)"
        )
        name, _, method = printable(Path(path).stem).partition(".")
        by = f" ({tables.METHOD_WORDS.get(method, method)})" if method else ""
        return (
            f"Tritium activity of ``{name}``{by}: "
            f"**{result['activity_bq']:.4g} Bq** ({result['confidence']:.0%} interval "
            f"{low:.4g}-{high:.4g} Bq), {verdict}; decision threshold "
            f"{result['decision_threshold_bq']:.4g} Bq, "
            f"{limit_words(result['mda_bq'], label=MDA)}{_why_no_limit(result)}; "
            f"{result['tritium_counts']:.1f} tritium clusters fitted "
            f"over {result['live_time_s']:g} s, efficiency {result['efficiency']:.3g}."
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: not an activity JSON (no {one_line(exc)})") from None


def _why_no_limit(result: dict) -> str:
    """Where no detection limit exists: the efficiency's uncertainty that forbids it."""
    if result["mda_bq"] is not None:
        return ""
    return (
        f" (the efficiency is uncertain by {result['calibration_uncertainty']:.0%}: a reference "
        "sample of known activity calibrates it; `pipeline forecast` gives the limits then)"
    )


def comparison_lines(summary: dict, classes: Sequence[str]) -> list[str]:
    """The held-out comparison: each method's macro cluster F1 with its interval."""
    scores = ", ".join(
        f"{tables.method_label(name, s)} "
        f"{tables.score_cell(s['macro_cluster_f1'], s.get('macro_cluster_f1_interval'))}"
        for name, s in summary.items()
    )
    first = next(iter(summary.values()))["per_class"]
    return [
        f"Held-out frames {tables.summary_dataset(summary)}, macro cluster F1 "
        f"({tables.F1_CONFIDENCE:.0%} interval): {scores}; "
        f"{tables.dataset_verdicts(summary) or 'one method'}; true events: "
        f"{tables.events_cell(first, classes)}."
    ]


def headline_text(
    classes: Sequence[str],
    activities: Sequence[str | Path],
    summary: str | Path | None,
    suite: dict[str, dict],
) -> str:
    """The headline as reStructuredText: a title and a bullet per result."""
    lines = [activity_line(path) for path in activities]
    if summary is not None:
        read = read_summaries([summary], ["held-out"], classes)["held-out"]
        lines += comparison_lines(read, classes)
    if suite:
        lines += [
            f"Generalisation suite ({len(suite)} simulated detectors never trained on): {line}"
            for line in tables.verdict_lines(suite)
        ]
    if not lines:
        raise ConfigError("nothing to report: give --activity, --summary or --suite-summaries")
    title = "Headline numbers"
    return "\n".join([title, "=" * len(title), "", *(f"- {line}" for line in lines)]) + "\n"


def run(
    settings: ClassesSettings,
    out: str | Path,
    activity: Sequence[str | Path] = (),
    summary: str | Path | None = None,
    suite_summaries: Sequence[str | Path] = (),
    names: Sequence[str] = (),
) -> str:
    """The `headline` stage: the headline numbers of the activity JSONs, the held-out `summary`
    and the suite's summaries (named by `names`, else by their folders), written to `out`
    (reStructuredText); the text."""
    suite = {}
    if suite_summaries:
        named = unique_names(names, suite_summaries, "--names", lambda p: Path(p).parent.name)
        suite = read_summaries(suite_summaries, named, settings.classes)
    text = headline_text(settings.classes, activity, summary, suite)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(out) as tmp:
        tmp.write_text(text)
    return f"{text}wrote {out}"


STAGE = Stage(
    "headline",
    "the headline numbers of the results, in words (the report's landing page)",
    "Reads: activity JSONs (`activity`), the held-out evaluation's summary.json and the "
    "suite's (`evaluate`). Writes: a reStructuredText page of the headline numbers.",
    run,
    ClassesSettings,
    (
        file_flag("--out", "reStructuredText file to write (.rst)", OUTPUT, suffixes=(".rst",)),
        file_flag("--activity", "activity JSONs", INPUT, nargs="+", required=False),
        file_flag("--summary", "the held-out evaluation's summary.json", INPUT, required=False),
        file_flag(
            "--suite-summaries", "summary.json per suite detector", INPUT, nargs="+", required=False
        ),
        Flag("--names", "a detector name per suite summary", arg="names", nargs="+"),
    ),
)
