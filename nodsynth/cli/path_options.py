"""Which options of the verbs (and trainers) name files to read and which name files or folders to
write, and the one check every verb runs on them before any work (:func:`check_path_options`): no
output is an input (:func:`~.common.refuse_overwrite`) and every output can be written
(:func:`~.common.require_writable`).

Options are known by their ``dest`` (the same name means the same role in every verb); the test
``Testing/test_cli_outputs.py`` fails when a verb gains an option that is in neither set nor known
not to be a path.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .common import refuse_overwrite, require_writable

OUTPUT_OPTIONS = frozenset({"out", "out_dir", "out_mask", "json", "html", "png", "stats", "cache", "logs", "jobs_dir",
                            "key_out", "annotations_from_labelmaps"})
"""Files or folders a verb writes (``cache``: a feature cache, read and written; ``key_out``: ``turing build --key``)."""
INPUT_OPTIONS = frozenset({
    "input", "spec", "manifest", "ct", "ct_dir", "mask", "labelmap", "lung", "lung_mask", "edited_labelmap",
    "changed", "real", "synthetic", "vois", "csv", "data_root", "annotations", "detections", "scans",
    "excluded", "network", "network_weights", "organs", "totalsegmentator", "nodule", "shapes", "histogram",
    "presets", "masks", "library", "key", "study", "answers", "weights", "config", "engine_options",
    "token_file", "pair", "resume", "autoencoder", "cts", "labelmaps", "qc_stats", "like",
    "basic_auth_file", "folder", "embeddings", "matrix", "test",
    "init", "bundle", "nodules"})
"""Files or folders a verb reads (some of these options also take a word: ``--histogram library``)."""


def _paths(value: Any) -> list[Path]:
    """The paths an option's value holds (one, a list, a list of lists; None: not given)."""
    if value is None or isinstance(value, bool):
        return []
    if isinstance(value, (list, tuple)):
        return [p for v in value for p in _paths(v)]
    return [Path(value)]


def check_path_options(args: argparse.Namespace) -> None:
    """Refuse (:class:`~nodsynth.errors.InputError`) an output that is an input or cannot be written."""
    options = vars(args)
    outputs = [p for name in sorted(OUTPUT_OPTIONS & options.keys()) for p in _paths(options[name])]
    inputs = [p for name in sorted(INPUT_OPTIONS & options.keys()) for p in _paths(options[name])]
    refuse_overwrite(outputs, inputs)
    require_writable(outputs)
