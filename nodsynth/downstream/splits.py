"""Patient-grouped splits: the test patients, and each training fraction as disjoint folds of patients.

No patient is ever in two roles: a test patient is neither a training patient nor the patient (or donor)
of any synthetic nodule (:func:`require_disjoint_roles`). Without a test table, the test set is
``TEST_SHARE`` of the real patients, drawn (seeded) among those no synthetic nodule comes from.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from ..errors import InputError
from .cases import Nodule

TEST_SHARE = 0.2


def patients_of(nodules: Iterable[Nodule]) -> set[str]:
    """Every patient whose data the nodules carry (CT patients and donors)."""
    return set().union(*(n.patients() for n in nodules))


def draw_test_patients(real: Sequence[Nodule], synthetic: Sequence[Nodule], seed: int) -> set[str]:
    """``TEST_SHARE`` of the real patients (at least one), drawn among those no synthetic nodule comes from."""
    everyone = sorted({n.patient_id for n in real})
    wanted = max(1, int(round(TEST_SHARE * len(everyone))))
    linked = patients_of(synthetic)
    candidates = [p for p in everyone if p not in linked]
    if len(candidates) < wanted:
        raise InputError(f"a {TEST_SHARE:.0%} test split needs {wanted} real patient(s) that no synthetic nodule "
                         f"comes from, but only {len(candidates)} of {len(everyone)} are; give a test table with --test")
    if len(everyone) - wanted < 1:
        raise InputError(f"{len(everyone)} real patient(s): too few for a training and a test set")
    chosen = np.random.default_rng([seed, 0x7E57]).choice(len(candidates), size=wanted, replace=False)
    return {candidates[i] for i in chosen}


def require_disjoint_roles(train: Sequence[Nodule], synthetic: Sequence[Nodule], test: Sequence[Nodule]) -> None:
    """Refuse a test patient that is a training patient or the patient or donor of a synthetic nodule."""
    test_patients = {n.patient_id for n in test}
    for role, patients in (("training", patients_of(train)), ("synthetic-nodule (CT or donor)", patients_of(synthetic))):
        shared = sorted(test_patients & patients)
        if shared:
            raise InputError(f"{len(shared)} test patient(s) are also {role} patients (e.g. {shared[0]}); "
                             f"a test patient must not be seen in training")


def parse_fractions(text: str) -> list[int]:
    """Training fractions (percent) from ``"100,50,20,10"``; each must divide 100 (1/2/5/10 folds)."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or any(v < 1 or v > 100 or 100 % v for v in values) or len(set(values)) != len(values):
        raise InputError(f"--fractions must be distinct percentages that divide 100 (e.g. 100,50,20,10), got {text!r}")
    return values


def parse_retention(text: str) -> list[int]:
    """Real-data retention percentages (the HR-LDM ablation) from ``"100,50,20,10,0"``: distinct, 0..100."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or any(v < 0 or v > 100 for v in values) or len(set(values)) != len(values):
        raise InputError(f"--fractions (real data retained, %) must be distinct whole percentages 0..100 "
                         f"(e.g. 100,50,20,10,0), got {text!r}")
    return values


def fraction_folds(patients: Iterable[str], fraction: int, seed: int, run: int) -> list[list[str]]:
    """The training patients in ``100 // fraction`` disjoint folds (seeded shuffle; sorted within a fold)."""
    ordered = sorted(set(patients))
    folds = 100 // fraction
    if len(ordered) < folds:
        raise InputError(f"{len(ordered)} training patient(s) cannot make {folds} disjoint folds of {fraction} %")
    order = np.random.default_rng([seed, run, fraction]).permutation(len(ordered))
    return [sorted(ordered[i] for i in part) for part in np.array_split(order, folds)]
