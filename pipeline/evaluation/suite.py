"""The generalisation suite (the `suite` stage): every method on every held-out detector, side by
side.

Owns reading the `summary.json` that `evaluate` wrote for each detector of the suite (held-out
detectors away from the training detector, simulated with seeds never used in training) and
writing one table, a row per detector and class and a macro row per detector, as Markdown
(`suite.md`) and as HTML for the Snakemake report (`suite.html`, beside it).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from pipeline.config import ConfigError
from pipeline.config.stages import SuiteSettings
from pipeline.core.atomic import atomic_output
from pipeline.core.errors import one_line
from pipeline.core.stage import INPUT, OUTPUT, Beside, Flag, Stage, file_flag
from pipeline.evaluation import tables
from pipeline.results.metrics import jeffreys_interval
from pipeline.results.naming import unique_names
from pipeline.tracking import registry


class _ClassScores(BaseModel):
    model_config = ConfigDict(extra="allow")
    cluster_f1: float | None
    pixel_iou: float | None
    cluster_f1_interval: tuple[float | None, float | None] | None = None
    true_events: int | None = None


class _MethodScores(BaseModel):
    model_config = ConfigDict(extra="allow")
    macro_cluster_f1: float | None
    macro_pixel_iou: float | None
    macro_cluster_f1_interval: tuple[float | None, float | None] | None = None
    per_class: dict[str, _ClassScores]


_SUMMARY = TypeAdapter(dict[str, _MethodScores])


def read_summaries(
    paths: Sequence[str | Path], names: Sequence[str], classes: Sequence[str] = ()
) -> dict[str, dict]:
    """detector name -> the evaluation summary (method -> scores) of its summary.json, each
    checked: the scores the table shows, for every class of `classes` but the first, and the
    same methods on every detector."""
    if len(paths) != len(names):
        raise ConfigError(f"{len(names)} suite names for {len(paths)} summary files")
    summaries = {}
    for name, path in zip(names, paths, strict=True):
        try:
            summaries[name] = json.loads(Path(path).read_text())
            _SUMMARY.validate_python(summaries[name])
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not an evaluation summary ({one_line(exc)})") from None
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(part) for part in error["loc"]) or "the top level"
            raise ConfigError(
                f"{path}: not an evaluation summary: {where}: {error['msg']}"
            ) from None
        _check_methods(path, summaries[name], classes, next(iter(summaries.values())))
    return summaries


def _check_methods(path: str | Path, summary: dict, classes: Sequence[str], first: dict) -> None:
    if not summary:
        raise ConfigError(f"{path}: an evaluation summary of no method")
    if list(summary) != list(first):
        raise ConfigError(
            f"{path}: methods {list(summary)}, where the first summary has {list(first)}"
        )
    for method, scores in summary.items():
        missing = [c for c in classes[1:] if c not in scores["per_class"]]
        if missing:
            raise ConfigError(f"{path}: {method} has no scores of classes {missing}")


def suite_frame(summaries: dict[str, dict], classes: Sequence[str]) -> pd.DataFrame:
    """The table: detector, class, its true events, then per method (in words) its cluster F1
    with the interval and its pixel IoU."""
    rows = []
    for detector, summary in summaries.items():
        first = next(iter(summary.values()))["per_class"]
        for cls in [*classes[1:], "macro"]:
            events = sum(first[c].get("true_events", 0) for c in classes[1:])
            if cls != "macro":
                events = first[cls].get("true_events", "?")
            row = {"detector": detector, "class": cls, "true events": events}
            for method, scores in summary.items():
                label = tables.method_label(method, scores)
                own = scores if cls == "macro" else scores["per_class"][cls]
                prefix = "macro_" if cls == "macro" else ""
                row[f"{label} cluster F1"] = tables.score_cell(
                    own[f"{prefix}cluster_f1"], own.get(f"{prefix}cluster_f1_interval")
                )
                row[f"{label} pixel IoU"] = tables.score_cell(own[f"{prefix}pixel_iou"])
            rows.append(row)
    return pd.DataFrame(rows)


def macro_frame(summaries: dict[str, dict], classes: Sequence[str]) -> pd.DataFrame:
    """The generalisation table at a glance: a row per detector with the true events it rests
    on, a column per method (in words) with its macro cluster F1 and interval."""
    rows = {}
    for detector, summary in summaries.items():
        first = next(iter(summary.values()))["per_class"]
        row = {"true events": tables.events_cell(first, classes)}
        for method, scores in summary.items():
            row[tables.method_label(method, scores)] = tables.score_cell(
                scores["macro_cluster_f1"], scores.get("macro_cluster_f1_interval")
            )
        rows[detector] = row
    return pd.DataFrame(rows).T.rename_axis("detector")


def proportion_cell(k: float, n: float) -> str:
    """'0.912 (0.85-0.95) 52/57': a proportion, its Jeffreys interval and the counts."""
    if n <= 0:
        return "n/a (0)"
    low, high = jeffreys_interval(k, n, tables.F1_CONFIDENCE)
    return f"{k / n:.3f} ({low:.2f}-{high:.2f}) {round(k)}/{round(n)}"


def tritium_frame(summaries: dict[str, dict], cls: str = "tritium") -> pd.DataFrame:
    """Per detector and method: the tritium cluster efficiency (true betas found) and purity
    (clusters called tritium that are), each with its interval and counts."""
    rows = []
    for detector, summary in summaries.items():
        for method, scores in summary.items():
            own = scores["per_class"].get(cls, {})
            events, clusters = own.get("true_events") or 0, own.get("predicted_clusters") or 0
            found = round((own.get("cluster_efficiency") or 0.0) * events)
            pure = round((own.get("cluster_purity") or 0.0) * clusters)
            rows.append(
                {
                    "detector": detector,
                    "method": tables.method_label(method, scores),
                    f"{cls} cluster F1": tables.score_cell(
                        own.get("cluster_f1"), own.get("cluster_f1_interval")
                    ),
                    "efficiency (found/true)": proportion_cell(found, events),
                    "purity (right/called)": proportion_cell(pure, clusters),
                }
            )
    return pd.DataFrame(rows)


def suite_markdown(summaries: dict[str, dict], classes: Sequence[str]) -> str:
    macro = macro_frame(summaries, classes).reset_index()
    confidence = f"{tables.F1_CONFIDENCE:.0%}"
    lines = [
        f"Macro cluster F1 (mean over the signal classes, {confidence} interval from the counts) "
        "on each simulated detector the models never trained on:",
        "",
    ]
    lines += _markdown_rows(macro, bold=lambda row: False)
    lines += ["", *tables.verdict_lines(summaries), ""]
    if "tritium" in classes:
        lines += [
            f"Tritium, per detector: cluster efficiency and purity ({confidence} Jeffreys "
            "intervals, counts):",
            "",
            *_markdown_rows(tritium_frame(summaries), bold=lambda row: False),
            "",
        ]
    lines += ["Per class:", ""]
    lines += _markdown_rows(suite_frame(summaries, classes), bold=lambda row: row[1] == "macro")
    return "\n".join(lines) + "\n"


def _markdown_rows(table: pd.DataFrame, bold) -> list[str]:
    lines = ["| " + " | ".join(table.columns) + " |", "|---" * len(table.columns) + "|"]
    for row in table.itertuples(index=False):
        cells = [f"**{c}**" if bold(row) else str(c) for c in row]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def write_suite(
    summary_paths: Sequence[str | Path],
    names: Sequence[str],
    out: str | Path,
    classes: Sequence[str],
) -> Path:
    """Write `out` (Markdown) and its `.html` twin of the summary files; returns `out`."""
    return write_tables(read_summaries(summary_paths, names, classes), out, classes)


def write_tables(summaries: dict[str, dict], out: str | Path, classes: Sequence[str]) -> Path:
    """Write `out` (Markdown) and its `.html` twin of the read summaries; returns `out`."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    html = "\n".join(
        [
            "<h3>Macro cluster F1 on each detector the model never saw</h3>",
            f"<p>Mean over the signal classes, with its {tables.F1_CONFIDENCE:.0%} interval "
            "from the counts; a method is better or worse than another only where the "
            "intervals are apart.</p>",
            macro_frame(summaries, classes).to_html(border=0),
            *(f"<p>{line}</p>" for line in tables.verdict_lines(summaries)),
            "<h3>Tritium: cluster efficiency and purity</h3>",
            tritium_frame(summaries).to_html(index=False, border=0) if "tritium" in classes else "",
            "<h3>Per class</h3>",
            suite_frame(summaries, classes).to_html(index=False, border=0),
        ]
    )
    with atomic_output(out.with_suffix(".html")) as tmp:
        tmp.write_text(html)
    with atomic_output(out) as tmp:
        tmp.write_text(suite_markdown(summaries, classes))
    return out


def model_scores(summaries: dict[str, dict]) -> dict[str, float]:
    """Model (its checkpoint's SHA-256) -> its mean macro cluster F1 over the detectors, for each
    method that one model made on every detector (what each evaluated map says it was made
    with, `made_from`)."""
    scores = {}
    for method in next(iter(summaries.values()), {}):
        results = [s.get(method, {}) for s in summaries.values()]
        models = {r.get("made_from", {}).get("model_sha256") for r in results}
        if len(models) == 1 and None not in models:
            f1 = [r["macro_cluster_f1"] or 0.0 for r in results]
            scores[models.pop()] = sum(f1) / len(f1)
    return scores


def _version_scores(settings: SuiteSettings, scores: dict[str, float]) -> dict[str, float]:
    """Registered version -> mean macro cluster F1, for the scored models registered here."""
    versions = {sha: registry.version_of(settings.tracking, sha) for sha in scores}
    return {str(v.version): scores[sha] for sha, v in versions.items() if v is not None}


def run(
    settings: SuiteSettings,
    summaries: Sequence[str | Path],
    out: str | Path,
    names: Sequence[str] = (),
) -> str:
    """The `suite` stage: the table of every detector's `summary.json` (named by `names`, else
    by the folder each summary is in), written to `out` and its HTML twin; with tracking, the
    registry's `best` alias moved to the registered model version with the highest mean (a
    tracking step after the table, which depends on the summaries only); the table."""
    named = unique_names(names, summaries, "--names", lambda p: Path(p).parent.name)
    read = read_summaries(summaries, named, settings.classes)
    table = write_tables(read, out, settings.classes)
    lines = [f"{table.read_text()}wrote {table} and {table.with_suffix('.html')}"]
    scores = _version_scores(settings, model_scores(read)) if settings.tracking.enabled else {}
    if scores:
        best = registry.mark_best(settings.tracking, scores, ",".join(read))
        lines.append(f"registry: {settings.tracking.registered_model}@best is version {best}")
    return "\n".join(lines)


STAGE = Stage(
    "suite",
    "the generalisation suite: each method on each detector, side by side",
    "Reads: the summary.json that `evaluate` wrote for each detector. Writes: a table with "
    "a row per detector and class (Markdown) and its HTML twin.",
    run,
    SuiteSettings,
    (
        file_flag("--summaries", "summary.json per detector", INPUT, nargs="+"),
        Flag("--names", "a detector name per summary", arg="names", nargs="+"),
        file_flag(
            "--out",
            "Markdown table to write (.md)",
            OUTPUT,
            suffixes=(".md",),
            beside=(Beside("the HTML twin of --out", suffix=".html"),),
        ),
    ),
    tracks=True,
)
