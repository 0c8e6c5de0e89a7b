"""``nodsynth train <trainer> [options]``: run a trainer from :mod:`nodsynth.train` (``controlnet``, ``hrldm``).

Each trainer is a module ``nodsynth.train.<name>`` with ``add_arguments(parser)`` and
``run(args) -> int``. It is imported only when its sub-command runs (trainers import torch), so
``nodsynth --help`` stays fast; a trainer missing from the install gets a clear error.
"""
from __future__ import annotations

import argparse
import importlib

from ...errors import NodsynthError
from ..path_options import check_path_options

VERB = "train"
HELP = "train a model: controlnet (NodMAISI ControlNet) or hrldm (HR-LDM inpainting)"

TRAINERS = {
    "controlnet": "NodMAISI ControlNet on (CT, label map) pairs; MAISI autoencoder and U-Net frozen",
    "hrldm": "HR-LDM nodule inpainting model",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("trainer", choices=sorted(TRAINERS),
                        help="; ".join(f"{name}: {text}" for name, text in TRAINERS.items()))
    parser.add_argument("options", nargs=argparse.REMAINDER,
                        help="the trainer's options (see nodsynth train TRAINER --help)")


def trainer_module(name: str):
    """``nodsynth.train.<name>``; :class:`NodsynthError` when this install lacks it."""
    module_name = f"nodsynth.train.{name}"
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        raise NodsynthError(f"trainer {name!r} is not available in this install (module {module_name} is missing)") from exc


def run(args: argparse.Namespace) -> int:
    module = trainer_module(args.trainer)
    parser = argparse.ArgumentParser(prog=f"nodsynth train {args.trainer}", description=TRAINERS[args.trainer])
    module.add_arguments(parser)
    options = parser.parse_args(args.options)
    check_path_options(options)
    return int(module.run(options) or 0)
