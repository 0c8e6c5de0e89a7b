"""A validation split by patient: no patient's CTs are in both the training and the validation set.

A patient is a manifest's ``patient_id`` (else the CT file's stem). ``--val-patients`` names the
validation patients; ``--val-fraction F`` takes ``ceil(F x patients)`` of them, the first in an order
keyed by the seed (SHA-256 of seed and id), so the split does not depend on the list's order.
"""
from __future__ import annotations

import argparse
import hashlib
import math
from typing import Sequence

from ..errors import InputError


def validation_patients(patient_ids: Sequence[str], fraction: float = 0.0, named: Sequence[str] = (),
                        seed: int = 0) -> set[str]:
    """The patients held out for validation (empty: no validation)."""
    patients = sorted(set(patient_ids))
    if named:
        unknown = sorted(set(named) - set(patients))
        if unknown:
            raise InputError(f"--val-patients names patients not in the data: {', '.join(unknown)}")
        chosen = set(named)
    elif fraction:
        if not 0.0 < fraction < 1.0:
            raise InputError(f"--val-fraction must be between 0 and 1 (exclusive), got {fraction}")
        order = sorted(patients, key=lambda p: hashlib.sha256(f"{int(seed)}:{p}".encode("utf-8")).hexdigest())
        chosen = set(order[: math.ceil(fraction * len(patients))])
    else:
        return set()
    if len(chosen) >= len(patients):
        raise InputError(f"the validation split takes all {len(patients)} patients; none would be left to train on")
    return chosen


def add_arguments(parser: argparse.ArgumentParser, patients: str) -> None:
    """``--val-fraction``, ``--val-patients``, ``--val-every``; ``patients`` says where patient ids come from."""
    validation = parser.add_argument_group(f"validation (a split by patient: {patients})")
    validation.add_argument("--val-fraction", type=float, default=0.0,
                            help="hold out this fraction of the patients (rounded up; chosen by --seed)")
    validation.add_argument("--val-patients", nargs="+", default=[], metavar="ID", help="hold out these patients")
    validation.add_argument("--val-every", type=int, help="validation loss every N steps (default: --save-every) and at the end")
