"""A trainer SIGKILLed right after a given optimizer step, as a crash or a pre-empted job ends it.

Run as ``python Testing/killer_train.py STEP TRAINER OPTIONS...`` (TRAINER ``controlnet`` or ``hrldm``,
OPTIONS those of ``nodsynth train TRAINER``): the process trains on one thread and kills itself when
step STEP + 1 has been computed, so the last checkpoint on disk is the one written at or before STEP.
"""
from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys

import torch

if __name__ == "__main__":
    torch.set_num_threads(1)
    kill_after, name = int(sys.argv[1]), sys.argv[2]
    trainer = importlib.import_module(f"nodsynth.train.{name}")
    parser = argparse.ArgumentParser()
    trainer.add_arguments(parser)
    args = parser.parse_args(sys.argv[3:])

    def progress(fraction: float, message: str = "") -> None:
        if round(fraction * args.steps) > kill_after:
            os.kill(os.getpid(), signal.SIGKILL)

    trainer.run(args, progress)
