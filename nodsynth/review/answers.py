"""Reader answer sheets: ``reader,phase,case_id,answer,confidence,seconds``.

One row per answer; ``answer`` is ``real`` or ``synthetic``, ``confidence`` (optional) an integer
1..5, ``seconds`` (optional) the reading time. The Slicer reading session writes these files
(:mod:`.reading`); :func:`read_answer_sheets` checks a set of them against a study's key: every
phase and case must exist in the key, and a reader answers each case of a phase once. Reader names
that differ only in case or surrounding spaces (``R1``, ``r1``) are one reader, named as first
written, with a warning.
"""
from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional, Sequence

from ..errors import InputError
from ..io.tables import parse_float, read_rows
from .key import KeyRow
from .study_inputs import TRUTHS

ANSWER_COLUMNS = ("reader", "phase", "case_id", "answer", "confidence", "seconds")
ANSWERS = TRUTHS
"""A reader answers that a case is ``real`` or ``synthetic``."""
CONFIDENCE_LEVELS = (1, 2, 3, 4, 5)
READER_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class Answer:
    reader: str
    phase: str
    case_id: str
    answer: str
    confidence: Optional[int] = None
    seconds: Optional[float] = None


def check_reader(reader: str) -> str:
    """A reader name: letters, digits, ``_ . -`` (it names a file), at most 64 characters."""
    if not READER_PATTERN.match(reader or ""):
        raise InputError(f"reader name {reader!r} must be letters, digits, '_', '.' or '-' (at most 64, "
                         "starting with a letter or digit)")
    return reader


def make_answer(reader: str, phase: str, case_id: str, answer: str, confidence: object = None,
                seconds: object = None, where: str = "answer") -> Answer:
    """A checked :class:`Answer`: known answer word, confidence 1..5 or empty, seconds >= 0 or empty."""
    check_reader(reader)
    word = str(answer).strip().lower()
    if word not in ANSWERS:
        raise InputError(f"{where}: answer must be 'real' or 'synthetic', got {answer!r}")
    level = None
    if confidence not in (None, ""):
        number = parse_float(str(confidence), where, "confidence")
        if number not in CONFIDENCE_LEVELS:
            raise InputError(f"{where}: confidence must be an integer 1..5, got {confidence!r}")
        level = int(number)
    duration = None if seconds in (None, "") else parse_float(str(seconds), where, "seconds")
    if duration is not None and duration < 0:
        raise InputError(f"{where}: seconds must be >= 0, got {seconds!r}")
    return Answer(reader, str(phase), str(case_id), word, level, duration)


def read_answer_sheet(path: str | os.PathLike) -> list[Answer]:
    """The answers of one CSV file (format checks only; see :func:`check_against_key`)."""
    path = Path(path)
    return [make_answer(r["reader"], r["phase"], r["case_id"], r["answer"], r.get("confidence"), r.get("seconds"),
                        where=f"{path} line {line}")
            for line, r in read_rows(path, ("reader", "phase", "case_id", "answer"), "answer sheet")]


def check_against_key(answers: Sequence[Answer], key: Sequence[KeyRow]) -> None:
    """Raise :class:`InputError` for an unknown phase or case, or a reader answering a case twice."""
    phases = {r.phase for r in key}
    cases = {(r.phase, r.case_id) for r in key}
    seen = set()
    for a in answers:
        if a.phase not in phases:
            raise InputError(f"reader {a.reader}: unknown phase {a.phase!r} (the key has {', '.join(sorted(phases))})")
        if (a.phase, a.case_id) not in cases:
            raise InputError(f"reader {a.reader}: unknown case {a.case_id!r} in phase {a.phase!r}")
        if (a.reader, a.phase, a.case_id) in seen:
            raise InputError(f"reader {a.reader} answered case {a.case_id!r} of phase {a.phase!r} more than once")
        seen.add((a.reader, a.phase, a.case_id))


def reader_identity(name: str) -> str:
    """What makes two reader names one reader: the name without surrounding spaces, case-folded."""
    return name.strip().casefold()


def merge_reader_spellings(answers: Sequence[Answer]) -> list[Answer]:
    """``answers`` with every reader named by the first spelling of its :func:`reader_identity`; warns
    (:class:`UserWarning`) naming the spellings taken as one reader."""
    spellings: dict[str, list[str]] = {}
    for a in answers:
        names = spellings.setdefault(reader_identity(a.reader), [])
        if a.reader not in names:
            names.append(a.reader)
    for names in spellings.values():
        if len(names) > 1:
            warnings.warn(f"reader names {', '.join(repr(n) for n in names)} differ only in case or spaces: "
                          f"scored as one reader {names[0]!r}", stacklevel=2)
    return [replace(a, reader=spellings[reader_identity(a.reader)][0]) for a in answers]


def read_answer_sheets(paths: Sequence[str | os.PathLike], key: Sequence[KeyRow]) -> list[Answer]:
    """All answers of the given files (reader spellings merged, :func:`merge_reader_spellings`), checked
    against ``key`` (duplicates across files included)."""
    if not paths:
        raise InputError("no answer sheets given")
    answers = merge_reader_spellings([a for p in paths for a in read_answer_sheet(p)])
    check_against_key(answers, key)
    return answers
