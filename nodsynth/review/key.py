"""The answer key of a reading study: ``STUDY/key.csv`` and its SHA-256 in ``STUDY/study.json``.

``key.csv`` has the columns :data:`KEY_COLUMNS`; ``truth`` is ``real`` or ``synthetic``, ``source``
names the input nodule (the same nodule has the same source in every phase, which pairs its
answers across phases), ``diameter_mm`` is in millimetres. The study records the SHA-256 of the key
file's bytes; scoring refuses a key whose hash differs (edited, truncated or from another study).
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
from ..casetables import parse_float, read_rows
from ..weights import sha256_of
from .study_inputs import TRUTHS

KEY_COLUMNS = ("case_id", "phase", "truth", "source", "subtype", "diameter_mm")
KEY_FILE = "key.csv"
STUDY_FILE = "study.json"


@dataclass(frozen=True)
class KeyRow:
    case_id: str
    phase: str
    truth: str
    source: str
    subtype: str
    diameter_mm: float


def key_text(rows: Sequence[KeyRow]) -> str:
    """The key as CSV text (header, one line per case, ``\\n`` line ends)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(KEY_COLUMNS)
    for r in rows:
        writer.writerow([r.case_id, r.phase, r.truth, r.source, r.subtype, f"{r.diameter_mm:.2f}"])
    return buffer.getvalue()


def read_key(path: str | os.PathLike) -> list[KeyRow]:
    """The rows of a key file, checked: known truths, numeric diameters, each (phase, case) once."""
    path = Path(path)
    rows, seen = [], set()
    for line, row in read_rows(path, KEY_COLUMNS, "key"):
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


def locate_key(key: Optional[str | os.PathLike] = None, study: Optional[str | os.PathLike] = None) -> Path:
    """The key file to score with: ``--key`` or ``STUDY/key.csv``, verified against the study's hash.

    With ``--key`` alone the hash is checked when a ``study.json`` lies beside the key. Raises
    :class:`InputError` when the key's SHA-256 differs from the one the study recorded.
    """
    if key is None and study is None:
        raise InputError("give the key (--key KEY.csv) or the study folder (--study STUDY)")
    key_path = Path(key) if key is not None else Path(study) / KEY_FILE
    study_json = Path(study) / STUDY_FILE if study is not None else key_path.parent / STUDY_FILE
    if not key_path.is_file():
        raise InputError(f"key not found: {key_path}")
    if study is not None and not study_json.is_file():
        raise InputError(f"{study} is not a study folder: {study_json} is missing")
    if study_json.is_file():
        expected, actual = study_key_sha256(study_json), sha256_of(key_path)
        if expected != actual:
            raise InputError(f"{key_path} is not the key of {study_json.parent}: its SHA-256 {actual[:16]}... "
                             f"differs from the {expected[:16]}... the study recorded (the key was changed)")
    return key_path
