"""Audit reports: ``report.json`` (machines), ``report.md`` (a table to paste) and ``report.html`` (one
self-contained file: the tables and three matplotlib plots embedded as base64 PNG — risk-coverage per setup,
accuracy / hallucination / abstention per category, and the calibration diagram).

``report.json``::

    {"meta": {dataset, setups, grader, n_questions, categories, skipped_rows, resamples, seed, model},
     "setups": {<setup>: {
         "overall": GROUP, "per_category": {<category>: GROUP, ...},
         "risk_coverage": [[coverage, risk], ...], "calibration": [{low, high, count, confidence, accuracy}],
         "mean_latency_s": float}}}
    GROUP = {"n", "correct", "incorrect", "not_attempted", "long_answers",
             <metric>: {"value", "ci_low", "ci_high"} for each of METRIC_NAMES}

Metric names are ARCHITECTURE.md's in snake_case (:data:`eval.audit._metrics.METRIC_NAMES`); a value is
``null`` where the metric is undefined (coverage of a category with no answerable question, ...).
"""

from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from eval.audit._metrics import METRIC_NAMES, Outcomes, calibration_bins, estimate_all, risk_coverage
from eval.audit._runner import AuditRun
from eval.audit._types import Grade, Record

__all__ = ["build_report", "render_html", "render_markdown", "write_reports"]

_TABLE_METRICS = (
    "accuracy",
    "hallucination_rate",
    "abstention_rate",
    "coverage",
    "correct_given_attempted",
    "f_score",
    "aurc",
    "ece",
)


def _group(records: list[Record], resamples: int, seed: int) -> dict[str, Any]:
    grades = [r.grade for r in records]
    group: dict[str, Any] = {
        "n": len(records),
        "correct": grades.count(Grade.CORRECT),
        "incorrect": grades.count(Grade.INCORRECT),
        "not_attempted": grades.count(Grade.NOT_ATTEMPTED),
        "long_answers": sum(1 for r in records if r.claims),
    }
    for name, estimate in estimate_all(Outcomes.of(records), resamples=resamples, seed=seed).items():
        group[name] = asdict(estimate)
    return group


def build_report(run: AuditRun) -> dict[str, Any]:
    """The ``report.json`` object of a finished run (layout in the module docstring)."""
    cfg = run.config
    categories = sorted({q.category for q in run.dataset.questions})
    setups: dict[str, Any] = {}
    for name, records in run.records.items():
        outcomes = Outcomes.of(records)
        setups[name] = {
            "overall": _group(records, cfg.resamples, cfg.seed),
            "per_category": {
                c: _group([r for r in records if r.category == c], cfg.resamples, cfg.seed) for c in categories
            },
            "risk_coverage": [list(p) for p in risk_coverage(outcomes)],
            "calibration": [asdict(b) for b in calibration_bins(outcomes)],
            "mean_latency_s": sum(r.answer.latency_s for r in records) / len(records) if records else None,
        }
    meta = {
        "dataset": run.dataset.name,
        "setups": list(cfg.setups),
        "grader": cfg.grader,
        "model": cfg.model,
        "n_questions": len(run.dataset.questions),
        "categories": {c: sum(1 for q in run.dataset.questions if q.category == c) for c in categories},
        "skipped_rows": list(run.dataset.skipped),
        "limit": cfg.limit,
        "resamples": cfg.resamples,
        "seed": cfg.seed,
        "metrics": list(METRIC_NAMES),
    }
    return {"meta": meta, "setups": setups}


def _fmt(est: dict[str, Any]) -> str:
    if est["value"] is None:
        return "—"
    if est["ci_low"] is None:
        return f"{est['value']:.3f}"
    return f"{est['value']:.3f} [{est['ci_low']:.3f}, {est['ci_high']:.3f}]"


def _rows(report: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    rows = []
    for name, data in report["setups"].items():
        rows.append((name, "all", data["overall"]))
        rows += [(name, c, g) for c, g in data["per_category"].items()]
    return rows


def render_markdown(report: dict[str, Any]) -> str:
    """A Markdown report: one table, setups by category, each figure with its 95% interval."""
    meta = report["meta"]
    lines = [
        f"# Factuality audit — {meta['dataset']}",
        "",
        f"{meta['n_questions']} questions ({', '.join(f'{c}: {n}' for c, n in meta['categories'].items())}); "
        f"grader `{meta['grader']}`; 95% bootstrap intervals ({meta['resamples']} resamples, seed {meta['seed']}).",
        "",
        "| setup | category | n | " + " | ".join(_TABLE_METRICS) + " |",
        "|---|---|---:|" + "---|" * len(_TABLE_METRICS),
    ]
    for name, cat, group in _rows(report):
        cells = " | ".join(_fmt(group[m]) for m in _TABLE_METRICS)
        lines.append(f"| {name} | {cat} | {group['n']} | {cells} |")
    lines.append("")
    for name, data in report["setups"].items():
        claim = data["overall"]["claim_support_ratio"]
        if claim["value"] is not None:
            lines.append(
                f"- {name}: claim support ratio {_fmt(claim)} over {data['overall']['long_answers']} long answers"
            )
    if meta["skipped_rows"]:
        lines.append(
            f"- {len(meta['skipped_rows'])} malformed dataset rows skipped: {'; '.join(meta['skipped_rows'][:10])}"
        )
    return "\n".join(lines) + "\n"


def _png(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _plots(report: dict[str, Any]) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    setups = report["setups"]
    out = []
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, data in setups.items():
        points = data["risk_coverage"]
        if points:
            ax.step(
                [0.0] + [p[0] for p in points],
                [points[0][1]] + [p[1] for p in points],
                where="pre",  # risk k holds on (coverage k-1, coverage k]: the area aurc measures
                label=f"{name} (AURC {_fmt(data['overall']['aurc'])})",
            )
    ax.set(xlabel="coverage (answerable questions)", ylabel="risk (incorrect / covered)", xlim=(0, 1), ylim=(0, 1))
    ax.set_title("Risk-coverage")
    ax.legend(fontsize=7)
    out.append(("Risk-coverage", _png(fig)))
    plt.close(fig)

    categories = list(report["meta"]["categories"])
    fig, axes = plt.subplots(1, 3, figsize=(13, 4), sharey=True)
    width = 0.8 / max(len(setups), 1)
    for ax, metric in zip(axes, ("accuracy", "hallucination_rate", "abstention_rate"), strict=True):
        for i, (name, data) in enumerate(setups.items()):
            xs = [j + i * width for j in range(len(categories))]
            groups = [data["per_category"][c][metric] for c in categories]
            values = [g["value"] or 0.0 for g in groups]
            errs = [
                [v - (g["ci_low"] if g["ci_low"] is not None else v) for v, g in zip(values, groups, strict=True)],
                [(g["ci_high"] if g["ci_high"] is not None else v) - v for v, g in zip(values, groups, strict=True)],
            ]
            ax.bar(xs, values, width, yerr=errs, capsize=2, label=name)
        ax.set_xticks([j + width * (len(setups) - 1) / 2 for j in range(len(categories))], categories, rotation=20)
        ax.set_title(metric.replace("_", " "))
        ax.set_ylim(0, 1)
    axes[0].legend(fontsize=7)
    out.append(("Per category (95% intervals)", _png(fig)))
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect calibration")
    for name, data in setups.items():
        bins = [b for b in data["calibration"] if b["count"]]
        ax.plot(
            [b["confidence"] for b in bins],
            [b["accuracy"] for b in bins],
            marker="o",
            label=f"{name} (ECE {_fmt(data['overall']['ece'])})",
        )
    ax.set(xlabel="confidence", ylabel="accuracy of attempted answers", xlim=(0, 1), ylim=(0, 1))
    ax.set_title("Calibration (10 bins)")
    ax.legend(fontsize=7)
    out.append(("Calibration", _png(fig)))
    plt.close(fig)
    return out


def render_html(report: dict[str, Any]) -> str:
    """One self-contained HTML page: the table and the plots (no external resources)."""
    meta = report["meta"]
    head = "".join(f"<th>{html.escape(m)}</th>" for m in ("setup", "category", "n", *_TABLE_METRICS))
    body = "".join(
        "<tr>"
        + f"<td>{html.escape(name)}</td><td>{html.escape(cat)}</td><td>{g['n']}</td>"
        + "".join(f"<td>{html.escape(_fmt(g[m]))}</td>" for m in _TABLE_METRICS)
        + "</tr>"
        for name, cat, g in _rows(report)
    )
    figures = "".join(
        f'<h2>{html.escape(title)}</h2><img alt="{html.escape(title)}" src="data:image/png;base64,{data}">'
        for title, data in _plots(report)
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>Factuality audit — {html.escape(meta['dataset'])}</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;font-size:12px}"
        "td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}img{max-width:100%}</style></head><body>"
        f"<h1>Factuality audit — {html.escape(meta['dataset'])}</h1>"
        f"<p>{meta['n_questions']} questions; grader {html.escape(meta['grader'])}; values with 95% bootstrap "
        f"intervals ({meta['resamples']} resamples).</p>"
        f"<table><tr>{head}</tr>{body}</table>{figures}</body></html>\n"
    )


def write_reports(run: AuditRun, out_dir: str | Path) -> dict[str, Any]:
    """Write ``report.json``, ``report.md`` and ``report.html`` into ``out_dir``; returns the report object."""
    out = Path(out_dir)
    report = build_report(run)
    (out / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (out / "report.md").write_text(render_markdown(report), encoding="utf-8")
    (out / "report.html").write_text(render_html(report), encoding="utf-8")
    return report
