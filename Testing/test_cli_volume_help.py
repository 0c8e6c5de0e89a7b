"""Issue 26: every verb option that names a CT, label map or mask says, in ``--help``, that a DICOM series
folder works too (``FOLDER`` or ``FOLDER::SERIES_INSTANCE_UID``), as the reader does; and the verbs that
checked for a file accept the folder."""
from __future__ import annotations

import argparse

import pytest

from nodsynth.cli.main import build_parser

VOLUME_OPTIONS = [  # listed here by hand, independently of nodsynth.cli.volume_options
    ("nodsynth augment", "--ct"), ("nodsynth dicom export", "--ct"), ("nodsynth dicom export", "--mask"),
    ("nodsynth encode", "--cts"), ("nodsynth encode", "--labelmaps"),
    ("nodsynth histograms from-mask", "--ct"), ("nodsynth histograms from-mask", "--mask"),
    ("nodsynth inpaint", "--ct"), ("nodsynth inpaint", "--mask"), ("nodsynth inpaint", "--labelmap"),
    ("nodsynth inpaint", "--lung"), ("nodsynth labelmap build", "--ct"), ("nodsynth labelmap build", "--organs"),
    ("nodsynth labelmap build", "--nodule"), ("nodsynth labelmap validate", "labelmap"),
    ("nodsynth labelmap validate", "--ct"), ("nodsynth measure", "--ct"), ("nodsynth measure", "--mask"),
    ("nodsynth measure", "--labelmap"), ("nodsynth measure", "--lung-mask"), ("nodsynth qc stats", "--cts"),
    ("nodsynth qc stats", "--labelmaps"), ("nodsynth qc check", "--ct"), ("nodsynth qc check", "--labelmap"),
    ("nodsynth review compare", "--real"), ("nodsynth review compare", "--synthetic"),
    ("nodsynth review compare", "--labelmap"), ("nodsynth review compare", "--mask"),
    ("nodsynth review compare", "--edited-labelmap"), ("nodsynth review compare", "--changed"),
    ("nodsynth segment", "--ct"), ("nodsynth segment", "--lung"), ("nodsynth twin", "--labelmap"),
]


def _options(parser: argparse.ArgumentParser, path: str = "nodsynth"):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _options(sub, f"{path} {name}")
        elif not isinstance(action, argparse._HelpAction):
            yield (path, (action.option_strings or [action.dest])[0]), action


OPTIONS = dict(_options(build_parser()))


@pytest.mark.parametrize("key", VOLUME_OPTIONS, ids=[" ".join(k) for k in VOLUME_OPTIONS])
def test_each_volume_option_says_it_takes_a_dicom_series_folder(key):
    text = OPTIONS[key].help
    assert "NIfTI/NRRD/MHA" in text and "DICOM series folder" in text and "FOLDER::SERIES_INSTANCE_UID" in text, \
        f"{' '.join(key)}: {text!r}"


def test_review_compare_takes_dicom_series_folders(tmp_path):
    """``--real`` / ``--synthetic`` were refused as 'file not found' when they named a series folder."""
    from nodsynth.cli.verbs.review import pairs_from_args

    for name in ("real", "synthetic"):
        (tmp_path / name).mkdir()
    args = build_parser().parse_args(["review", "compare", "--real", str(tmp_path / "real"), "--synthetic",
                                      f"{tmp_path / 'synthetic'}::1.2.3", "--out", str(tmp_path / "out")])
    [pair] = pairs_from_args(args)
    assert pair.real == tmp_path / "real"
