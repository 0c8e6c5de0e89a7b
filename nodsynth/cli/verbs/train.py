"""``nodsynth train <trainer>``: run a trainer from :mod:`nodsynth.train` (``controlnet``, ``hrldm``).

Each trainer is a module ``nodsynth.train.<name>`` with ``add_arguments(parser)`` and
``run(args) -> int``; a trainer that is not installed gets a clear error instead of its options.
"""
from __future__ import annotations

import argparse
import importlib

from ...errors import NodsynthError

VERB = "train"
HELP = "train a model: controlnet (NodMAISI ControlNet) or hrldm (HR-LDM inpainting)"

TRAINERS = {
    "controlnet": "NodMAISI ControlNet on (CT, label map) pairs; MAISI autoencoder and U-Net frozen",
    "hrldm": "HR-LDM nodule inpainting model",
}


def _trainer_module(name: str):
    """``nodsynth.train.<name>``, or None when that module is not part of this install."""
    module_name = f"nodsynth.train.{name}"
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        return None


def _missing_trainer(name: str):
    def run(args: argparse.Namespace) -> int:
        raise NodsynthError(f"trainer {name!r} is not available in this install "
                            f"(module nodsynth.train.{name} is missing)")
    return run


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="trainer", metavar="TRAINER", required=True)
    for name, help_text in TRAINERS.items():
        module = _trainer_module(name)
        trainer = sub.add_parser(name, help=help_text, description=help_text)
        if module is None:
            trainer.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
            trainer.set_defaults(_train=_missing_trainer(name))
        else:
            module.add_arguments(trainer)
            trainer.set_defaults(_train=module.run)


def run(args: argparse.Namespace) -> int:
    return int(args._train(args) or 0)
