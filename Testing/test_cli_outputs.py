"""Every verb's outputs are checked before any work (issue 20, items 4 and 5): no output may be an input
(the same path, a symlink to it or a hard link of it) and every output must be writable; a refusal is one
line, exit status 2, and nothing is written. The verbs' argparse parsers (every verb, sub-verb and
trainer) are enumerated, so an option added later is covered or makes this test fail."""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="the trainers' options (nodsynth train) are read from modules that import torch")

from batch_cases import mixed_rows, write_inputs, write_manifest  # noqa: E402
from nodsynth.cli.common import unwritable_reason  # noqa: E402
from nodsynth.cli.main import build_parser, main  # noqa: E402
from nodsynth.cli.path_options import INPUT_OPTIONS, OUTPUT_OPTIONS  # noqa: E402
from nodsynth.cli.verbs.train import TRAINERS, trainer_module  # noqa: E402

NOT_PATHS = frozenset({
    "account", "aet", "allow_host", "batch_size", "bootstrap", "box", "cache_gb", "cache_memory_gb", "called_aet",
    "center_slices_ratio", "clusters", "cpus_per_task", "crop_size", "crop_spacing", "cropped_spacing_mm",
    "cube_mm", "dataset_id", "device", "devices", "diameter_mm", "dimse", "elongation", "engine", "engines",
    "entry", "epochs", "executor", "expand_mm", "format", "fractions", "full", "full_spacing_mm", "gpus_per_task",
    "host", "job_name", "keep_hours", "kid_subset_size", "kid_subsets", "labels", "lambda_hist", "licence", "limit",
    "lobulation", "log_level", "lr", "margin_mm", "max_attempts", "max_retries", "max_synthetic", "max_tries",
    "max_upload_mb", "max_voi_mm", "mem", "method", "micro_batch", "mode", "n_real", "n_synthetic", "nodelay",
    "nodule_margin_mm", "num_images", "options", "partition", "patch", "patch_voxels", "patience", "percent",
    "phases", "point", "poly_power", "port", "protocol", "python", "query", "ray_address", "render", "retries", "runs",
    "same_study", "sample", "sampler", "save_every", "schedule_steps", "seed", "series", "series_uid", "server",
    "setup", "shard", "shards", "size", "slices", "spacing", "spiculation", "stale_after_s", "steps", "study_uid",
    "subtype", "synthetic_ratio", "target_shape", "threads", "threads_per_job", "time", "trainer", "tumor_weight",
    "url", "val_every", "val_fraction", "val_patients", "volume_format", "widen_factor", "workers"})
"""Options that take numbers, words, choices or commands, not files."""


def _leaves(parser: argparse.ArgumentParser, words: list[str]):
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield words, parser
    for sub in subs:
        for name, child in sub.choices.items():
            yield from _leaves(child, words + [name])


def command_parsers() -> dict[str, tuple[list[str], argparse.ArgumentParser]]:
    """``"verb sub"`` -> (its command words, its parser) for every verb, sub-verb and trainer."""
    found = {" ".join(w): (w, p) for w, p in _leaves(build_parser(), []) if w != ["train"]}
    for name in TRAINERS:
        parser = argparse.ArgumentParser(prog=f"nodsynth train {name}")
        trainer_module(name).add_arguments(parser)
        found[f"train {name}"] = (["train", name], parser)
    return found


PARSERS = command_parsers()


def value_options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if a.nargs != 0 and not isinstance(a, argparse._SubParsersAction)]


def dummy(action: argparse.Action, folder: Path) -> str:
    if action.choices:
        return str(list(action.choices)[0])
    if action.type in (int, float):
        return "1"
    return str(folder / f"absent_{action.dest}")


def argv_with(words: list[str], parser: argparse.ArgumentParser, given: dict[str, Path], folder: Path) -> list[str]:
    """A command line of this parser: ``given`` dest -> path, every other required option (and one option of
    each required group) a dummy value; nothing else."""
    needed = {a.dest for a in parser._actions if a.required}
    for group in parser._mutually_exclusive_groups:
        members = [a.dest for a in group._group_actions]
        if group.required and not set(members) & set(given):
            needed.add(members[0])
    positionals, options = [], []
    for action in value_options(parser):
        if action.dest not in given and action.dest not in needed:
            continue
        value = str(given[action.dest]) if action.dest in given else dummy(action, folder)
        values = [value] + ([dummy(action, folder)] * (action.nargs - 1) if isinstance(action.nargs, int) else [])
        if action.option_strings:
            options += [action.option_strings[0], *values]
        else:
            positionals += values
    return [*words, *positionals, *options]


def files_under(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in folder.rglob("*") if p.is_file() and not p.is_symlink()}


def test_every_path_option_of_every_verb_is_an_input_or_an_output():
    assert len(PARSERS) >= 28
    assert not INPUT_OPTIONS & OUTPUT_OPTIONS
    unknown = {f"{name}: {a.dest}" for name, (_, parser) in PARSERS.items() for a in value_options(parser)
               if a.dest not in INPUT_OPTIONS | OUTPUT_OPTIONS | NOT_PATHS}
    assert not unknown, f"classify these options in nodsynth/cli/path_options.py (or NOT_PATHS here): {unknown}"
    named = {a.dest for _, parser in PARSERS.values() for a in value_options(parser)}
    assert not (INPUT_OPTIONS | OUTPUT_OPTIONS) - named, "path_options lists options no verb has"


def commands_with(*roles: frozenset) -> list[str]:
    """The commands having an option of each of ``roles``."""
    return sorted(name for name, (_, parser) in PARSERS.items()
                  if all({a.dest for a in value_options(parser)} & role for role in roles))


@pytest.mark.parametrize("command", commands_with(OUTPUT_OPTIONS, INPUT_OPTIONS))
def test_no_output_may_be_an_input_same_path_symlink_or_hard_link(command, tmp_path, capsys):
    words, parser = PARSERS[command]
    dests = {a.dest for a in value_options(parser)}
    outputs, inputs = sorted(dests & OUTPUT_OPTIONS), sorted(dests & INPUT_OPTIONS)
    source = tmp_path / "input.nii.gz"
    source.write_bytes(b"an input that must survive")
    (tmp_path / "symlink.nii.gz").symlink_to(source)
    os.link(source, tmp_path / "hardlink.nii.gz")
    before = files_under(tmp_path)
    for output in outputs:
        for input_ in inputs:
            for alias in ("input.nii.gz", "symlink.nii.gz", "hardlink.nii.gz"):
                argv = argv_with(words, parser, {input_: source, output: tmp_path / alias}, tmp_path)
                assert main(argv) == 2, argv
                err = capsys.readouterr().err
                assert "would overwrite the input" in err and len(err.strip().splitlines()) == 1, (argv, err)
                assert files_under(tmp_path) == before, argv


@pytest.mark.parametrize("command", commands_with(OUTPUT_OPTIONS))
def test_an_output_that_cannot_be_written_is_refused_before_any_work(command, tmp_path, capsys):
    """Root writes through chmod: the folder an output goes in is a regular file here (NotADirectoryError)."""
    words, parser = PARSERS[command]
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    for output in sorted({a.dest for a in value_options(parser)} & OUTPUT_OPTIONS):
        argv = argv_with(words, parser, {output: blocker / "sub" / "x.json"}, tmp_path)
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert f"cannot write {blocker / 'sub' / 'x.json'}: {blocker} is a file, not a folder" in err, (argv, err)
        assert len(err.strip().splitlines()) == 1 and sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


def test_a_read_only_folder_is_unwritable_even_for_root():
    if os.access("/proc/sys", os.W_OK):
        pytest.skip("/proc/sys is writable here: no read-only filesystem to test with")
    assert unwritable_reason("/proc/sys/x.json") == "the folder /proc/sys is not writable"


# ------------------------------------------------------------------------ the reported cases, on real files
@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict:
    return write_inputs(tmp_path_factory.mktemp("outputs_inputs"))


def test_segment_writes_nothing_when_the_json_cannot_be_written(inputs, tmp_path, capsys):
    blocker = tmp_path / "ro"
    blocker.write_text("a file where a folder should be")
    point = ",".join(str(v) for v in inputs["solid_lps"])
    code = main(["segment", "--ct", str(inputs["ct"]), f"--point={point}", "--out", str(tmp_path / "ok.nii.gz"),
                 "--json", str(blocker / "x.json")])
    assert code == 2 and "cannot write" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ro"]  # the mask was not written either


@pytest.mark.parametrize("argv", [
    ["inpaint", "--ct", "{ct}", "--mask", "{mask}", "--out", "{mask}", "--engine", "classic"],
    ["inpaint", "--ct", "{ct}", "--labelmap", "{labelmap}", "--sample", "inner", "--out", "{labelmap}",
     "--engine", "classic"],
    ["inpaint", "--ct", "{ct}", "--mask", "{mask}", "--out", "{tmp}/new.nii.gz", "--out-mask", "{ct}",
     "--engine", "classic"],
    ["histograms", "from-mask", "--ct", "{ct}", "--mask", "{mask}", "--out", "{mask}"],
], ids=["inpaint out=mask", "inpaint out=labelmap", "inpaint out-mask=ct", "histograms out=mask"])
def test_the_reported_overwrites_are_refused(inputs, tmp_path, capsys, argv):
    from nodsynth.labels import NODULE
    from nodsynth.io.volume_files import read_volume, write_volume

    labels = read_volume(inputs["labelmap"])
    write_volume(labels.with_array((labels.array == NODULE).astype("uint8")), tmp_path / "mask.nii.gz")
    names = {"ct": inputs["ct"], "labelmap": inputs["labelmap"], "mask": tmp_path / "mask.nii.gz", "tmp": tmp_path}
    argv = [a.format(**names) for a in argv]
    kept = {p: Path(p).read_bytes() for p in (inputs["ct"], inputs["labelmap"], tmp_path / "mask.nii.gz")}
    assert main(argv) == 2
    assert "would overwrite the input" in capsys.readouterr().err
    assert all(Path(p).read_bytes() == data for p, data in kept.items())
    assert not (tmp_path / "new.nii.gz").exists()


def test_batch_check_and_run_refuse_an_unwritable_output_and_a_hard_linked_input(inputs, tmp_path, capsys):
    blocker = tmp_path / "out"
    blocker.write_text("a file where the output folder should be")
    rows = mixed_rows("out", 1, 0, 0, ct=str(inputs["ct"]), labelmap=str(inputs["labelmap"]))
    os.link(inputs["labelmap"], tmp_path / "linked.nii.gz")
    rows.append({**mixed_rows("elsewhere", 1, 0, 0, ct=str(inputs["ct"]), labelmap=str(inputs["labelmap"]))[0],
                 "id": "aug-linked"})
    rows[1]["outputs"]["labelmap"] = str(tmp_path / "linked.nii.gz")
    path = write_manifest(tmp_path / "manifest.jsonl", rows)
    for verb in ("check", "run"):
        assert main(["batch", verb, str(path)]) == 2
        err = capsys.readouterr().err
        assert f"output 'labelmap' cannot be written: {blocker} is a file, not a folder" in err, err
        assert "output 'labelmap' would overwrite its own input 'labelmap'" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["linked.nii.gz", "manifest.jsonl", "out"]


def test_an_output_folder_may_be_an_input_folder_but_not_an_input_file(tmp_path):
    """``train controlnet --out W --weights W`` writes its checkpoint beside the frozen networks it reads."""
    from nodsynth.cli.common import overwritten_input

    (tmp_path / "weights.pt").write_bytes(b"frozen")
    assert overwritten_input(tmp_path, [tmp_path]) is None
    assert overwritten_input(tmp_path / "weights.pt", [tmp_path, tmp_path / "weights.pt"]) == tmp_path / "weights.pt"
