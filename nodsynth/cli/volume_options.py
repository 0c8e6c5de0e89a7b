"""The options of the verbs that name a CT, label map or mask, and what they accept, said once: every
such option's help ends with :data:`VOLUME_FORMATS` (they are all read by
:func:`nodsynth.io.volume_files.read_volume`). :func:`describe_volume_options` adds it when the parser is built.
"""
from __future__ import annotations

import argparse

VOLUME_FORMATS = "NIfTI/NRRD/MHA, or a DICOM series folder: FOLDER or FOLDER::SERIES_INSTANCE_UID"

VOLUME_OPTIONS = frozenset({"ct", "labelmap", "edited_labelmap", "lung", "lung_mask", "mask", "changed", "organs"})
"""Options (by ``dest``) that name one CT, label map or mask in every verb that has them."""
VERB_VOLUME_OPTIONS = {"nodsynth review compare": {"real", "synthetic"}, "nodsynth labelmap build": {"nodule"},
                       "nodsynth qc stats": {"cts", "labelmaps"}, "nodsynth encode": {"cts", "labelmaps"}}
"""Options whose name means a volume only in these verbs (elsewhere: a table, a list or a point)."""


def describe_volume_options(parser: argparse.ArgumentParser, path: str = "nodsynth") -> None:
    """Append :data:`VOLUME_FORMATS` to the help of every volume option under ``parser`` (recursively)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub_parser in action.choices.items():
                describe_volume_options(sub_parser, f"{path} {name}")
        elif action.help and (action.dest in VOLUME_OPTIONS or action.dest in VERB_VOLUME_OPTIONS.get(path, ())):
            action.help = f"{action.help} ({VOLUME_FORMATS})"
