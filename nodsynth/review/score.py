"""Score a reading study: HR-LDM Table 2's confusion matrices and the statistics around them.

:func:`score_answers` returns (JSON-able)::

    {"phases": {PHASE: {"readers": {READER: STATS}, "pooled": STATS}},
     "agreement": {PHASE: {"kappa": k, "method": "cohen" | "fleiss"}},      # phases with >= 2 readers
     "by_subtype": {PHASE: {SUBTYPE: STATS}}, "by_size_bin": {PHASE: {BIN: STATS}},   # readers pooled
     "roc_auc": {PHASE: {"readers": {READER: auc}, "pooled": auc}},
     "mcnemar": {READER: {"PHASE_A vs PHASE_B": {"n_pairs", "only_first_correct",
                                                   "only_second_correct", "p_value"}}}}

STATS = ``{"n", "confusion": {truth: {answer: count}}, "accuracy", "real_correct_rate",
"synthetic_correct_rate", "fooling_rate", "accuracy_ci95", "p_value_vs_chance"}``: rows of the
confusion matrix are the truth, columns the answer; the fooling rate is the share of synthetic
cases answered real; the interval is Wilson's; the p-value is the exact two-sided binomial test of
the correct answers against 0.5. Rates are fractions (0..1; None where the denominator is 0).

ROC AUC ranks the answers by a signed confidence (synthetic answers +confidence, real answers
-confidence; synthetic is the positive class) over the answers that carry a confidence; 0.5 is
chance, above 0.5 the reader tells synthetic from real. McNemar pairs a reader's answers to the
same nodule (same truth and source in the key) in two phases.
"""
from __future__ import annotations

from collections import defaultdict
from itertools import combinations
from typing import Optional, Sequence

from .agreement import readers_agreement
from .answers import Answer
from .balance import SIZE_BIN_NAMES, size_bin
from .key import KeyRow
from .stats import binomial_p_two_sided, mcnemar_exact, roc_auc, wilson_interval
from .study_inputs import TRUTHS


def _rate(numerator: int, denominator: int) -> Optional[float]:
    return None if denominator == 0 else numerator / denominator


def reading_stats(pairs: Sequence[tuple[str, str]]) -> dict:
    """STATS of ``(truth, answer)`` pairs (see the module docstring)."""
    confusion = {t: {a: 0 for a in TRUTHS} for t in TRUTHS}
    for truth, answer in pairs:
        confusion[truth][answer] += 1
    a, b = confusion["real"]["real"], confusion["real"]["synthetic"]
    c, d = confusion["synthetic"]["real"], confusion["synthetic"]["synthetic"]
    n = a + b + c + d
    low, high = wilson_interval(a + d, n)
    return {"n": n, "confusion": confusion, "accuracy": _rate(a + d, n), "real_correct_rate": _rate(a, a + b),
            "synthetic_correct_rate": _rate(d, c + d), "fooling_rate": _rate(c, c + d),
            "accuracy_ci95": [low, high], "p_value_vs_chance": binomial_p_two_sided(a + d, n)}


def confidence_auc(answers: Sequence[Answer], truth_of: dict) -> Optional[float]:
    """ROC AUC of the signed confidences (module docstring); None without confidences or both truths."""
    rated = [a for a in answers if a.confidence is not None]
    return roc_auc([a.confidence if a.answer == "synthetic" else -a.confidence for a in rated],
                   [truth_of[(a.phase, a.case_id)].truth == "synthetic" for a in rated])


def _pairs(answers: Sequence[Answer], truth_of: dict) -> list[tuple[str, str]]:
    return [(truth_of[(a.phase, a.case_id)].truth, a.answer) for a in answers]


def _grouped(answers: Sequence[Answer], truth_of: dict, group) -> dict:
    groups = defaultdict(list)
    for a in answers:
        groups[group(truth_of[(a.phase, a.case_id)])].append(a)
    return {name: reading_stats(_pairs(items, truth_of)) for name, items in groups.items()}


def _mcnemar(answers: Sequence[Answer], truth_of: dict, phases: Sequence[str]) -> dict:
    correct = defaultdict(dict)  # reader -> {(phase, truth, source): correct?}
    for a in answers:
        row = truth_of[(a.phase, a.case_id)]
        correct[a.reader][(a.phase, row.truth, row.source)] = a.answer == row.truth
    result = {}
    for reader in sorted(correct):
        tests = {}
        for first, second in combinations(phases, 2):
            nodules = {(t, s) for (p, t, s) in correct[reader] if p == first} & \
                      {(t, s) for (p, t, s) in correct[reader] if p == second}
            outcomes = [(correct[reader][(first, *n)], correct[reader][(second, *n)]) for n in nodules]
            tests[f"{first} vs {second}"] = {"n_pairs": len(outcomes), **mcnemar_exact(
                sum(1 for x, y in outcomes if x and not y), sum(1 for x, y in outcomes if y and not x))}
        if tests:
            result[reader] = tests
    return result


def score_answers(key: Sequence[KeyRow], answers: Sequence[Answer]) -> dict:
    """The scoring JSON of checked answers (:func:`.answers.read_answer_sheets`) against ``key``."""
    truth_of = {(r.phase, r.case_id): r for r in key}
    phases = list(dict.fromkeys(r.phase for r in key))
    out: dict = {"phases": {}, "agreement": {}, "by_subtype": {}, "by_size_bin": {}, "roc_auc": {}}
    for phase in phases:
        in_phase = [a for a in answers if a.phase == phase]
        if not in_phase:
            continue
        readers = sorted({a.reader for a in in_phase})
        by_reader = {r: [a for a in in_phase if a.reader == r] for r in readers}
        out["phases"][phase] = {"readers": {r: reading_stats(_pairs(by_reader[r], truth_of)) for r in readers},
                                "pooled": reading_stats(_pairs(in_phase, truth_of))}
        agreement = readers_agreement({r: {a.case_id: a.answer for a in by_reader[r]} for r in readers})
        if agreement is not None:
            out["agreement"][phase] = agreement
        out["by_subtype"][phase] = dict(sorted(_grouped(in_phase, truth_of, lambda row: row.subtype).items()))
        bins = _grouped(in_phase, truth_of, lambda row: size_bin(row.diameter_mm))
        out["by_size_bin"][phase] = {b: bins[b] for b in SIZE_BIN_NAMES if b in bins}
        out["roc_auc"][phase] = {"readers": {r: confidence_auc(by_reader[r], truth_of) for r in readers},
                                 "pooled": confidence_auc(in_phase, truth_of)}
    out["mcnemar"] = _mcnemar(answers, truth_of, [p for p in phases if p in out["phases"]])
    return out
