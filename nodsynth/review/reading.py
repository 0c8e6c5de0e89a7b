"""A reader's session through a blinded study: the state behind Slicer's *Reading session*.

:class:`ReadingSession` opens a study folder from its ``study.json`` alone - it never opens the
key - and walks the cases in reading order: every cropped case before any full-context case, each
phase in the study's random order. Each answer is appended at once to the reader's CSV
(:data:`~.answers.ANSWER_COLUMNS`, ``STUDY/answers/<reader>.csv`` by default) as one line, flushed
and fsync'ed, so a crash loses at most the answer being written; a torn last line (no newline) is
dropped when the session is opened again. Opening an existing sheet resumes at the first
unanswered case; answering out of order or twice is refused.
"""
from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..errors import InputError
from .answers import ANSWER_COLUMNS, Answer, check_reader, make_answer, read_answer_sheet
from .key import STUDY_FILE
from .study import PHASES

ANSWERS_DIR = "answers"


@dataclass(frozen=True)
class ReadingCase:
    """One case as the reader sees it: phase, blinded id, files (absolute) and the nodule's point (LPS mm)."""

    phase: str
    case_id: str
    volume: Path
    montage: Optional[Path]
    point_lps_mm: tuple[float, float, float]


def study_cases(study_dir: str | os.PathLike) -> list[ReadingCase]:
    """The cases of a study in reading order (cropped phase first), from ``study.json`` only."""
    folder = Path(study_dir)
    path = folder / STUDY_FILE
    try:
        study = json.loads(path.read_text(encoding="utf-8"))
        listed = study["cases"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{folder} is not a reading study: cannot read {path} ({exc})") from exc
    cases = []
    for phase in sorted(listed, key=lambda p: PHASES.index(p) if p in PHASES else len(PHASES)):
        for entry in listed[phase]:
            montage = entry.get("montage")
            cases.append(ReadingCase(phase, entry["case_id"], folder / entry["volume"],
                                     folder / montage if montage else None,
                                     tuple(float(v) for v in entry.get("point_lps_mm", (0.0, 0.0, 0.0)))))
    if not cases:
        raise InputError(f"{path} lists no cases")
    return cases


def drop_torn_line(path: Path) -> None:
    """Cut a last line that was not finished (no trailing newline) off an answer sheet."""
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with open(path, "r+b") as handle:
            handle.truncate(data.rfind(b"\n") + 1)


class ReadingSession:
    """One reader's progress through a study (see the module docstring).

    ``ReadingSession(study_dir, reader, answers_path=None)``; then :attr:`current` (the case to show,
    None when finished), :meth:`answer` (record it and move on), :attr:`answered` / :attr:`total`.
    """

    def __init__(self, study_dir: str | os.PathLike, reader: str,
                 answers_path: Optional[str | os.PathLike] = None) -> None:
        self.reader = check_reader(reader)
        self.study_dir = Path(study_dir)
        self.cases = study_cases(self.study_dir)
        self.path = Path(answers_path) if answers_path else self.study_dir / ANSWERS_DIR / f"{reader}.csv"
        self.answers: list[Answer] = []
        if self.path.is_file():
            drop_torn_line(self.path)
            if len(self.path.read_bytes().splitlines()) > 1:  # a header and at least one answer
                self.answers = read_answer_sheet(self.path)
        self._check_resumed()

    def _check_resumed(self) -> None:
        """The sheet must be this reader's answers to the first cases, in order, each once."""
        for number, answer in enumerate(self.answers):
            if answer.reader != self.reader:
                raise InputError(f"{self.path} holds answers of reader {answer.reader!r}, not {self.reader!r}")
            if number >= len(self.cases) or (answer.phase, answer.case_id) != (self.cases[number].phase,
                                                                                 self.cases[number].case_id):
                raise InputError(f"{self.path} line {number + 2}: case {answer.case_id!r} ({answer.phase}) is not "
                                 "the next case of this study; the sheet belongs to another study or was edited")

    @property
    def total(self) -> int:
        return len(self.cases)

    @property
    def answered(self) -> int:
        return len(self.answers)

    @property
    def current(self) -> Optional[ReadingCase]:
        """The first unanswered case, or None when every case is answered."""
        return self.cases[self.answered] if self.answered < self.total else None

    def answer(self, case_id: str, answer: str, confidence: Optional[int] = None,
               seconds: Optional[float] = None) -> Answer:
        """Record the answer to the current case (``case_id`` must be it) and append it to the sheet."""
        case = self.current
        if case is None:
            raise InputError("every case of this study is already answered")
        if case_id != case.case_id:
            done = {a.case_id for a in self.answers}
            reason = "was already answered" if case_id in done else f"is not the current case ({case.case_id})"
            raise InputError(f"case {case_id!r} {reason}")
        record = make_answer(self.reader, case.phase, case.case_id, answer, confidence, seconds,
                             where=f"case {case_id}")
        self._append(record)
        self.answers.append(record)
        return record

    def _append(self, record: Answer) -> None:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        new = not self.path.is_file() or self.path.stat().st_size == 0
        if new:
            writer.writerow(ANSWER_COLUMNS)
        writer.writerow([record.reader, record.phase, record.case_id, record.answer,
                         "" if record.confidence is None else record.confidence,
                         "" if record.seconds is None else f"{record.seconds:.3f}"])
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8", newline="") as handle:
            handle.write(buffer.getvalue())
            handle.flush()
            os.fsync(handle.fileno())
