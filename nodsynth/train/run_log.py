"""The TensorBoard log of a training run (``--tensorboard``): ``<out>/tensorboard``, written by rank 0 only.

Scalars ``train/loss``, ``train/lr`` and ``val/loss`` per optimizer step; view with
``tensorboard --logdir <out>/tensorboard``. Needs the ``tensorboard`` package (``pip install
nodsynth[train]``); asking for the log without it is refused before any work.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional

from ..errors import InputError

FOLDER = "tensorboard"


def add_argument(parser: argparse.ArgumentParser) -> None:
    """``--tensorboard``."""
    parser.add_argument("--tensorboard", action="store_true",
                        help="TensorBoard log (loss, lr, validation loss) in OUT/tensorboard (needs the tensorboard package)")


class RunLog:
    """Scalars to TensorBoard, or nothing when not asked for (or not rank 0)."""

    def __init__(self, out_dir: Path, enabled: bool) -> None:
        self._writer: Optional[object] = None
        if not enabled:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:
            raise InputError("--tensorboard needs the tensorboard package: pip install tensorboard "
                             "(or nodsynth[train])") from exc
        self._writer = SummaryWriter(log_dir=str(Path(out_dir) / FOLDER))

    def scalar(self, name: str, value: float, step: int) -> None:
        if self._writer is not None:
            self._writer.add_scalar(name, float(value), int(step))

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
