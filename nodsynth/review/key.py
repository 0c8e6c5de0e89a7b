"""The answer key of a reading study: ``STUDY.key.csv`` beside the study folder, its SHA-256 in ``STUDY/study.json``.

The key lies *beside* the folder readers receive, never in it (:func:`default_key_path`; studies
built before kept it as ``STUDY/key.csv``, which scoring still finds). It has the columns
:data:`KEY_COLUMNS`; ``truth`` is ``real`` or ``synthetic``, ``source`` names the input nodule (the
same nodule has the same source in every phase, which pairs its answers across phases),
``diameter_mm`` is in millimetres and ``seed`` is the seed that built the study (the same on every
row; older keys lack it). The study records the SHA-256 of the key file's bytes; scoring refuses a
key whose hash differs (edited, truncated or from another study).
"""
from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from ..errors import InputError
from ..io.tables import parse_float, read_rows
from ..weights import sha256_of
from .study_inputs import TRUTHS

KEY_COLUMNS = ("case_id", "phase", "truth", "source", "subtype", "diameter_mm", "seed")
REQUIRED_KEY_COLUMNS = KEY_COLUMNS[:-1]
"""Keys written before the seed was recorded lack the ``seed`` column; they are read all the same."""
KEY_SUFFIX = ".key.csv"
LEGACY_KEY_FILE = "key.csv"
"""Where studies built before kept the key: inside the study folder."""
STUDY_FILE = "study.json"


def default_key_path(study: str | os.PathLike) -> Path:
    """``STUDY.key.csv``: the key beside the study folder ``STUDY``."""
    study = Path(study)
    return study.with_name(study.name + KEY_SUFFIX)


@dataclass(frozen=True)
class KeyRow:
    case_id: str
    phase: str
    truth: str
    source: str
    subtype: str
    diameter_mm: float


def key_text(rows: Sequence[KeyRow], seed: int) -> str:
    """The key as CSV text (header, one line per case, ``\\n`` line ends) recording the study's ``seed``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(KEY_COLUMNS)
    for r in rows:
        writer.writerow([r.case_id, r.phase, r.truth, r.source, r.subtype, f"{r.diameter_mm:.2f}", seed])
    return buffer.getvalue()


def read_key(path: str | os.PathLike) -> list[KeyRow]:
    """The rows of a key file, checked: known truths, numeric diameters, each (phase, case) once."""
    path = Path(path)
    rows, seen = [], set()
    for line, row in read_rows(path, REQUIRED_KEY_COLUMNS, "key"):
        where = f"{path} line {line}"
        if row["truth"] not in TRUTHS:
            raise InputError(f"{where}: truth must be one of {', '.join(TRUTHS)}, got {row['truth']!r}")
        if not row["case_id"] or not row["phase"]:
            raise InputError(f"{where}: case_id and phase must not be empty")
        if (row["phase"], row["case_id"]) in seen:
            raise InputError(f"{where}: case {row['case_id']!r} appears twice in phase {row['phase']!r}")
        seen.add((row["phase"], row["case_id"]))
        diameter = parse_float(row["diameter_mm"], where, "diameter_mm")
        rows.append(KeyRow(row["case_id"], row["phase"], row["truth"], row["source"], row["subtype"],
                           float("nan") if diameter is None else diameter))
    return rows


def study_key_sha256(study_json: str | os.PathLike) -> str:
    """The key hash a study recorded."""
    try:
        recorded = json.loads(Path(study_json).read_text(encoding="utf-8"))["key_sha256"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{study_json}: not a study file with a key_sha256 ({exc})") from exc
    return str(recorded)


def _study_of_key(key_path: Path) -> Optional[Path]:
    """The study folder a key belongs to by its place: ``STUDY`` for ``STUDY.key.csv``, the key's own
    folder for a legacy ``STUDY/key.csv``; None when no study lies there."""
    candidates = [key_path.with_name(key_path.name[:-len(KEY_SUFFIX)])] if key_path.name.endswith(KEY_SUFFIX) else []
    return next((c for c in [*candidates, key_path.parent] if (c / STUDY_FILE).is_file()), None)


def locate_key(key: Optional[str | os.PathLike] = None, study: Optional[str | os.PathLike] = None) -> Path:
    """The key file to score with: ``--key``, else ``STUDY.key.csv`` beside ``--study`` (or a legacy
    ``STUDY/key.csv``), verified against the study's hash.

    With ``--key`` alone the hash is checked when the key's study lies beside it (:func:`_study_of_key`).
    Raises :class:`InputError` when the key's SHA-256 differs from the one the study recorded.
    """
    if key is None and study is None:
        raise InputError("give the key (--key KEY.csv) or the study folder (--study STUDY)")
    if key is not None:
        key_path = Path(key)
    else:
        key_path = default_key_path(study)
        if not key_path.is_file() and (Path(study) / LEGACY_KEY_FILE).is_file():
            key_path = Path(study) / LEGACY_KEY_FILE
    if not key_path.is_file():
        raise InputError(f"key not found: {key_path}")
    study_dir = Path(study) if study is not None else _study_of_key(key_path)
    if study is not None and not (study_dir / STUDY_FILE).is_file():
        raise InputError(f"{study} is not a study folder: {study_dir / STUDY_FILE} is missing")
    if study_dir is not None:
        expected, actual = study_key_sha256(study_dir / STUDY_FILE), sha256_of(key_path)
        if expected != actual:
            raise InputError(f"{key_path} is not the key of {study_dir}: its SHA-256 {actual[:16]}... "
                             f"differs from the {expected[:16]}... the study recorded (the key was changed)")
    return key_path
