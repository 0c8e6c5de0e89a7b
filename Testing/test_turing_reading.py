"""The reading session behind Slicer's Review > Reading session, on the study of ``nodsynth demo``'s
review step: never opens the key, cropped before full, crash-safe appends, resume, refusals."""
from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest

from nodsynth.cli.main import main
from nodsynth.errors import InputError
from nodsynth.review.answers import ANSWER_COLUMNS
from nodsynth.review.reading import ReadingSession, study_cases


@pytest.fixture(scope="module")
def demo_review(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo_review")
    assert main(["demo", "--out", str(out), "--steps", "review"]) == 0
    return out / "review"


@pytest.fixture()
def study(demo_review, tmp_path):
    """A copy of the demo study without its answers (its key lies beside it): whatever works here never read the key."""
    copy = tmp_path / "study"
    shutil.copytree(demo_review / "study", copy, ignore=shutil.ignore_patterns("answers"))
    return copy


def test_demo_review_step_writes_study_scores_and_reports(demo_review):
    recorded = json.loads((demo_review / "study" / "study.json").read_text())
    assert recorded["phases"] == ["cropped", "full"]
    assert all(len(recorded["cases"][p]) == 10 for p in ("cropped", "full"))
    scores = json.loads((demo_review / "score.json").read_text())
    assert {p: scores["phases"][p]["pooled"]["n"] for p in ("cropped", "full")} == {"cropped": 10, "full": 10}
    with open(demo_review / "study" / "answers" / "demo-reader.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == list(ANSWER_COLUMNS) and len(rows) == 20
    # the scored numbers are the sheet's: recount the confusion from the key and the answers
    assert not [p for p in (demo_review / "study").rglob("*") if "key" in p.name.lower()]  # readers get no key
    with open(demo_review / "study.key.csv", newline="") as handle:
        truth = {(r["phase"], r["case_id"]): r["truth"] for r in csv.DictReader(handle)}
    for phase in ("cropped", "full"):
        confusion = scores["phases"][phase]["pooled"]["confusion"]
        for t in ("real", "synthetic"):
            for a in ("real", "synthetic"):
                assert confusion[t][a] == sum(1 for r in rows if r["phase"] == phase and r["answer"] == a
                                              and truth[(phase, r["case_id"])] == t)
    for page in (demo_review / "report.html", demo_review / "compare" / "report.html"):
        assert page.read_text().startswith("<!DOCTYPE html>")
    with open(demo_review / "compare" / "nodules.csv", newline="") as handle:
        inserted = list(csv.DictReader(handle))
    assert len(inserted) == 5 and all(r["reproduced"] == "True" for r in inserted)
    with open(demo_review / "compare" / "cases.csv", newline="") as handle:
        assert float(next(csv.DictReader(handle))["bit_identical_fraction_outside"]) == 1.0


def test_cases_come_cropped_first_in_the_study_order(study):
    recorded = json.loads((study / "study.json").read_text())
    cases = study_cases(study)
    assert [c.case_id for c in cases] == [c["case_id"] for p in ("cropped", "full") for c in recorded["cases"][p]]
    assert [c.phase for c in cases] == ["cropped"] * 10 + ["full"] * 10
    assert all(c.volume.is_file() for c in cases) and all(c.montage.is_file() for c in cases[:10])
    assert all(c.montage is None for c in cases[10:]) and all(c.point_lps_mm == (0.0, 0.0, 0.0) for c in cases[:10])


def test_answers_are_appended_at_once_and_a_new_session_resumes(study):
    session = ReadingSession(study, "dr_a")
    assert (session.answered, session.total) == (0, 20)
    first = session.current
    session.answer(first.case_id, "real", 4, 12.0)
    lines = session.path.read_text().splitlines()
    assert lines == [",".join(ANSWER_COLUMNS), f"dr_a,cropped,{first.case_id},real,4,12.000"]
    for _ in range(11):
        session.answer(session.current.case_id, "synthetic", 2, 3.5)
    resumed = ReadingSession(study, "dr_a")  # e.g. after Slicer was closed
    assert resumed.answered == 12 and resumed.current == session.cases[12] and resumed.current.phase == "full"
    while resumed.current is not None:
        resumed.answer(resumed.current.case_id, "real")
    assert resumed.answered == 20 and len(resumed.path.read_text().splitlines()) == 21
    with pytest.raises(InputError, match="already answered"):
        resumed.answer(first.case_id, "real")


def test_a_torn_last_line_is_dropped_and_that_case_asked_again(study):
    session = ReadingSession(study, "dr_b")
    for _ in range(3):
        session.answer(session.current.case_id, "real", 5, 1.0)
    fourth = session.current
    with open(session.path, "a") as handle:  # a crash in the middle of writing the fourth answer
        handle.write(f"dr_b,cropped,{fourth.case_id},synth")
    resumed = ReadingSession(study, "dr_b")
    assert resumed.answered == 3 and resumed.current == fourth
    resumed.answer(fourth.case_id, "synthetic", 1, 2.0)
    assert session.path.read_text().splitlines()[-1] == f"dr_b,cropped,{fourth.case_id},synthetic,1,2.000"
    assert len(session.path.read_text().splitlines()) == 5


def test_refusals_leave_the_sheet_unchanged(study):
    session = ReadingSession(study, "dr_c")
    session.answer(session.current.case_id, "real")
    before = session.path.read_bytes()
    later = session.cases[5].case_id
    for args, message in (((later, "real"), "not the current case"),
                          ((session.current.case_id, "fake"), "answer must be"),
                          ((session.current.case_id, "real", 9), "confidence must be"),
                          ((session.cases[0].case_id, "real"), "already answered")):
        with pytest.raises(InputError, match=message):
            session.answer(*args)
    assert session.path.read_bytes() == before and session.answered == 1
    with pytest.raises(InputError, match="reader name"):
        ReadingSession(study, "../escape")


def test_a_sheet_of_another_study_or_reader_is_refused(study, tmp_path):
    sheet = tmp_path / "other.csv"
    sheet.write_text(",".join(ANSWER_COLUMNS) + "\ndr_d,cropped,ZZZZZZ,real,3,1.0\n")
    with pytest.raises(InputError, match="not the next case"):
        ReadingSession(study, "dr_d", answers_path=sheet)
    sheet.write_text(",".join(ANSWER_COLUMNS) + f"\nsomeone,cropped,{study_cases(study)[0].case_id},real,3,1.0\n")
    with pytest.raises(InputError, match="reader 'someone'"):
        ReadingSession(study, "dr_d", answers_path=sheet)


def test_a_session_sheet_scores_like_any_answer_sheet(demo_review, study, tmp_path):
    session = ReadingSession(study, "dr_e")
    rng = np.random.default_rng(1)
    while session.current is not None:
        session.answer(session.current.case_id, ("real", "synthetic")[int(rng.integers(2))], int(rng.integers(1, 6)))
    shutil.copy(demo_review / "study.key.csv", tmp_path / "study.key.csv")
    out = tmp_path / "scores.json"
    assert main(["turing", "score", "--study", str(study), "--answers", str(session.path),
                 str(demo_review / "study" / "answers" / "demo-reader.csv"), "--json", str(out)]) == 0
    scores = json.loads(out.read_text())
    assert sorted(scores["phases"]["cropped"]["readers"]) == ["demo-reader", "dr_e"]
    assert scores["agreement"]["full"]["method"] == "cohen"
    assert scores["mcnemar"]["dr_e"]["cropped vs full"]["n_pairs"] == 10
