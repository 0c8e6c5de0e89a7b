"""HTML page of a scored reading study: the tables of :func:`.score.score_answers` and a bar plot.

The plot is inline SVG (no script, no external file): per phase and reader (and pooled when there
are several readers) the accuracy with its Wilson 95 % interval, the real and synthetic correct
rates and the fooling rate, against a dashed 50 % chance line. A ``study`` entry in the scores
(:func:`score_metadata`: when they were scored, the readers, the key file and its SHA-256) heads the page.
"""
from __future__ import annotations

import os
from datetime import datetime, timezone
from typing import Optional

from ..weights import sha256_of
from .html import escape, page, table

RATES = (("accuracy", "accuracy", "#2f6db5"), ("real_correct_rate", "real correct", "#4a9d5b"),
         ("synthetic_correct_rate", "synthetic correct", "#c9822b"), ("fooling_rate", "fooling", "#b3403a"))
STATS_COLUMNS = ("group", "n", "real_as_real", "real_as_synthetic", "synthetic_as_real", "synthetic_as_synthetic",
                 "accuracy_pct", "real_correct_pct", "synthetic_correct_pct", "fooling_pct", "ci95_pct", "p_value",
                 "roc_auc")
STATS_HEADERS = ("group", "n", "real→real", "real→synthetic", "synthetic→real", "synthetic→synthetic", "accuracy %",
                 "real correct %", "synthetic correct %", "fooling %", "accuracy 95% CI (Wilson) %",
                 "p vs chance (exact binomial)", "ROC AUC")
PERCENT_DIGITS = {c: 1 for c in STATS_COLUMNS if c.endswith("_pct")}
BAR_WIDTH, BAR_GAP, GROUP_WIDTH, PLOT_HEIGHT, MARGIN, LEGEND_STEP = 18, 3, 170, 220, 40, 140


STUDY_FIELDS = (("scored_utc", "scored (UTC)"), ("readers", "readers"), ("reader_names", "reader names"),
                ("answers", "answers"), ("phases", "phases"), ("key", "key file"), ("key_sha256", "key SHA-256"))


def score_metadata(key_path: str | os.PathLike, scores: dict, shown_path: Optional[str] = None,
                   now: Optional[datetime] = None) -> dict:
    """The study facts a score report states: date scored, readers, answers, phases, key file (as ``shown_path``
    when given) and its SHA-256."""
    readers = sorted({r for result in scores["phases"].values() for r in result["readers"]})
    return {"scored_utc": (now or datetime.now(timezone.utc)).strftime("%Y-%m-%d %H:%M"), "readers": len(readers),
            "reader_names": ", ".join(readers), "answers": sum(r["pooled"]["n"] for r in scores["phases"].values()),
            "phases": ", ".join(scores["phases"]), "key": shown_path or os.fspath(key_path), "key_sha256": sha256_of(key_path)}


def _pct(value: Optional[float]) -> Optional[float]:
    return None if value is None else round(100.0 * value, 1)


def stats_row(group: str, stats: dict, auc: Optional[float] = None) -> dict:
    """One table row of a STATS object (rates in percent, one decimal, as HR-LDM reports them)."""
    confusion = stats["confusion"]
    low, high = stats["accuracy_ci95"]
    return {"group": group, "n": stats["n"], "real_as_real": confusion["real"]["real"],
            "real_as_synthetic": confusion["real"]["synthetic"], "synthetic_as_real": confusion["synthetic"]["real"],
            "synthetic_as_synthetic": confusion["synthetic"]["synthetic"],
            "accuracy_pct": _pct(stats["accuracy"]), "real_correct_pct": _pct(stats["real_correct_rate"]),
            "synthetic_correct_pct": _pct(stats["synthetic_correct_rate"]), "fooling_pct": _pct(stats["fooling_rate"]),
            "ci95_pct": "" if low is None else f"{100 * low:.1f}-{100 * high:.1f}",
            "p_value": stats["p_value_vs_chance"], "roc_auc": auc}


def bar_plot(scores: dict) -> str:
    """Inline SVG bar plot of the rates per phase and reader (see the module docstring)."""
    groups = []
    for phase, result in scores["phases"].items():
        readers = result["readers"]
        groups += [(f"{phase} · {r}", s) for r, s in readers.items()]
        if len(readers) > 1:
            groups.append((f"{phase} · pooled", result["pooled"]))
    bars_width = len(RATES) * (BAR_WIDTH + BAR_GAP) - BAR_GAP
    width = 2 * MARGIN + max(len(groups) * GROUP_WIDTH, len(RATES) * LEGEND_STEP)
    height = PLOT_HEIGHT + 2 * MARGIN + 30

    def y(rate: float) -> float:
        return MARGIN + PLOT_HEIGHT * (1.0 - rate)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="reading rates per phase and reader">']
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        chance = ' stroke-width="1.5" stroke-dasharray="6 4"' if tick == 0.5 else ' stroke-width="0.5"'
        parts.append(f'<line x1="{MARGIN}" x2="{width - MARGIN}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" '
                     f'stroke="#bbb"{chance}/>'
                     f'<text x="{MARGIN - 6}" y="{y(tick) + 4:.1f}" font-size="11" text-anchor="end">{int(tick * 100)}%</text>')
    for g, (label, stats) in enumerate(groups):
        left = MARGIN + g * GROUP_WIDTH + (GROUP_WIDTH - bars_width) / 2
        for b, (key, name, colour) in enumerate(RATES):
            value = stats[key]
            if value is None:
                continue
            x = left + b * (BAR_WIDTH + BAR_GAP)
            parts.append(f'<rect x="{x:.1f}" y="{y(value):.1f}" width="{BAR_WIDTH}" height="{PLOT_HEIGHT * value:.1f}" '
                         f'fill="{colour}"><title>{escape(label)}: {name} {100 * value:.1f}%</title></rect>')
        low, high = stats["accuracy_ci95"]
        if low is not None:
            cx = left + BAR_WIDTH / 2
            parts.append(f'<line x1="{cx:.1f}" x2="{cx:.1f}" y1="{y(low):.1f}" y2="{y(high):.1f}" stroke="#000"/>')
        parts.append(f'<text x="{MARGIN + (g + 0.5) * GROUP_WIDTH:.1f}" y="{MARGIN + PLOT_HEIGHT + 16}" '
                     f'font-size="11" text-anchor="middle">{escape(label)}</text>')
    legend_y = MARGIN + PLOT_HEIGHT + 36
    for b, (_, name, colour) in enumerate(RATES):
        parts.append(f'<rect x="{MARGIN + b * LEGEND_STEP}" y="{legend_y - 9}" width="10" height="10" fill="{colour}"/>'
                     f'<text x="{MARGIN + b * LEGEND_STEP + 14}" y="{legend_y}" font-size="11">{name}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def score_html(scores: dict, title: str = "Visual Turing test") -> str:
    """The complete HTML page of a scoring result."""
    study = scores.get("study")
    body = [] if not study else [
        "<h2>Study</h2>", table(("field", "value"), [{"field": label, "value": str(study[key])} for key, label in STUDY_FIELDS
                                                     if key in study], sortable=False, table_id="study")]
    body += ['<p class="note">Rows of each confusion count are the truth, columns the answer; fooling = synthetic '
            "cases answered real; accuracy interval: Wilson 95 %; p: exact two-sided binomial test of the correct "
            "answers against 0.5; ROC AUC from the signed confidences (0.5 = chance).</p>",
            "<h2>Rates</h2>", bar_plot(scores)]
    for phase, result in scores["phases"].items():
        aucs = scores["roc_auc"].get(phase, {})
        rows = [stats_row(r, s, aucs.get("readers", {}).get(r)) for r, s in result["readers"].items()]
        rows.append(stats_row("pooled", result["pooled"], aucs.get("pooled")))
        body += [f"<h2>Phase: {escape(phase)}</h2>", table(STATS_COLUMNS, rows, headers=STATS_HEADERS, digits=PERCENT_DIGITS)]
        for section, title_text in (("by_subtype", "by subtype"), ("by_size_bin", "by size bin (mm)")):
            groups = scores[section].get(phase, {})
            if groups:
                body += [f"<h3>{escape(phase)}, {title_text} (readers pooled)</h3>",
                         table(STATS_COLUMNS, [stats_row(g, s) for g, s in groups.items()], headers=STATS_HEADERS,
                               digits=PERCENT_DIGITS)]
    if scores["agreement"]:
        body += ["<h2>Agreement between readers</h2>",
                 table(("phase", "method", "kappa"), [{"phase": p, **a} for p, a in scores["agreement"].items()])]
    mcnemar = [{"reader": r, "phases": name, **test} for r, tests in scores["mcnemar"].items()
               for name, test in tests.items()]
    if mcnemar:
        body += ["<h2>McNemar between phases (same reader, same nodules)</h2>",
                 table(("reader", "phases", "n_pairs", "only_first_correct", "only_second_correct", "p_value"),
                       mcnemar)]
    return page(title, "\n".join(body))
