"""Shared CLI helpers: point parsing, progress bars, resumable batches, outputs kept off inputs."""
from __future__ import annotations

import pytest

from nodsynth.cli.common import parse_triple, progress_bar, refuse_overwrite, run_batch, summary_line
from nodsynth.errors import InputError, NodsynthError


@pytest.mark.parametrize("text, expected", [
    ("12.5,-40,100", (12.5, -40.0, 100.0)),
    (" 1, 2 ,3 ", (1.0, 2.0, 3.0)),
    ("-1e2,0,+3.25", (-100.0, 0.0, 3.25)),
])
def test_parse_triple_reads_three_numbers(text, expected):
    assert parse_triple(text, "--point") == expected


@pytest.mark.parametrize("text", ["", "1,2", "1,2,3,4", "a,b,c", "1;2;3", "1,,2", "1,2,x"])
def test_parse_triple_rejects_anything_else_naming_the_option(text):
    with pytest.raises(InputError, match="--point must be three comma-separated numbers") as info:
        parse_triple(text, "--point")
    assert isinstance(info.value, NodsynthError)
    assert repr(text) in str(info.value)


def test_progress_bar_accepts_reports_when_disabled():
    report = progress_bar("work", enabled=False)
    for fraction in (0.0, 0.5, 1.0):
        report(fraction, f"at {fraction}")


def _batch(tmp_path, names, fail=()):
    done_dir = tmp_path / "done"
    done_dir.mkdir(exist_ok=True)
    calls = []

    def work(name):
        calls.append(name)
        if name in fail:
            raise InputError(f"{name} is broken")
        (done_dir / name).write_text("result")

    outcome = run_batch(names, work, is_done=lambda n: (done_dir / n).exists(), desc="batch")
    return outcome, calls


def test_run_batch_does_each_item_once_and_skips_finished_ones_on_rerun(tmp_path):
    names = ["a", "b", "c"]
    first, calls = _batch(tmp_path, names)
    assert first == {"done": names, "skipped": [], "failed": []} and calls == names
    second, calls = _batch(tmp_path, names + ["d"])
    assert second == {"done": ["d"], "skipped": names, "failed": []} and calls == ["d"]
    assert summary_line(second) == "1 done, 3 skipped, 0 failed"


def test_run_batch_reports_a_failure_and_carries_on(tmp_path, capsys):
    outcome, calls = _batch(tmp_path, ["a", "bad", "c"], fail={"bad"})
    assert outcome == {"done": ["a", "c"], "skipped": [], "failed": ["bad"]}
    assert calls == ["a", "bad", "c"]
    assert "bad is broken" in capsys.readouterr().err
    assert not (tmp_path / "done" / "bad").exists()
    retry, calls = _batch(tmp_path, ["a", "bad", "c"])
    assert retry == {"done": ["bad"], "skipped": ["a", "c"], "failed": []} and calls == ["bad"]


def test_run_batch_names_items_with_the_given_function(tmp_path):
    items = [{"id": 7}, {"id": 9}]
    outcome = run_batch(items, work=lambda item: None, is_done=lambda item: item["id"] == 9, desc="batch",
                        name=lambda item: f"nodule-{item['id']}")
    assert outcome == {"done": ["nodule-7"], "skipped": ["nodule-9"], "failed": []}


def test_refuse_overwrite_names_the_output_and_the_input_it_would_replace(tmp_path):
    ct, other = tmp_path / "ct.nii.gz", tmp_path / "sub" / ".." / "ct.nii.gz"  # the same file by another spelling
    refuse_overwrite([tmp_path / "out.json", None], [ct, None])
    with pytest.raises(InputError, match=f"the output {other} would overwrite the input {ct}"):
        refuse_overwrite([None, other], [None, ct])
