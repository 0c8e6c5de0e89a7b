"""Helpers shared by CLI verbs: point parsing, progress bars, resumable batches, outputs kept off inputs."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence, TypeVar

from ..errors import InputError
from ..progress import ProgressFn

T = TypeVar("T")


def parse_triple(text: str, name: str) -> tuple[float, float, float]:
    """``"x,y,z"`` -> three floats; raises :class:`InputError` naming ``name`` otherwise."""
    parts = [p for p in text.replace(" ", "").split(",") if p]
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 3:
        raise InputError(f"{name} must be three comma-separated numbers like 12.5,-40,100, got {text!r}")
    return values  # type: ignore[return-value]


def progress_bar(desc: str, total: float = 1.0, enabled: Optional[bool] = None) -> ProgressFn:
    """A ``progress(fraction, message)`` callback drawing a tqdm bar on stderr (off when not a TTY)."""
    from tqdm import tqdm

    bar = tqdm(total=total, desc=desc, unit="", file=sys.stderr,
               disable=(not sys.stderr.isatty()) if enabled is None else not enabled,
               bar_format="{desc}: {percentage:3.0f}%|{bar}| {postfix}")

    def report(fraction: float, message: str) -> None:
        bar.n = min(max(fraction, 0.0), 1.0) * total
        bar.set_postfix_str(message, refresh=False)
        bar.refresh()
        if fraction >= 1.0:
            bar.close()

    return report


def run_batch(items: Sequence[T], work: Callable[[T], None], is_done: Callable[[T], bool],
              desc: str, name: Callable[[T], str] = str) -> dict[str, list[str]]:
    """Run ``work`` on each item not yet done (resumable), with a progress bar.

    Returns ``{"done": [...], "skipped": [...], "failed": [...]}`` (item names); one failing
    item is reported on stderr and does not stop the others.
    """
    from tqdm import tqdm

    outcome: dict[str, list[str]] = {"done": [], "skipped": [], "failed": []}
    for item in tqdm(list(items), desc=desc, unit="item", file=sys.stderr, disable=not sys.stderr.isatty()):
        label = name(item)
        if is_done(item):
            outcome["skipped"].append(label)
            continue
        try:
            work(item)
            outcome["done"].append(label)
        except Exception as exc:  # one bad case must not stop a batch of thousands
            print(f"{desc}: {label}: {exc}", file=sys.stderr)
            outcome["failed"].append(label)
    return outcome


def summary_line(outcome: dict[str, Iterable[str]]) -> str:
    return ", ".join(f"{len(list(v))} {k}" for k, v in outcome.items())


def _file_id(path: os.PathLike) -> Optional[tuple[int, int]]:
    """(device, inode) of an existing file or folder (symlinks followed), else None."""
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_dev, status.st_ino


def overwritten_input(output: os.PathLike, inputs: Iterable[Optional[os.PathLike]]) -> Optional[os.PathLike]:
    """The input file (None: not given) that ``output`` is: the same path, a symlink to it or a hard link
    of it; None when it is none of them. An input folder is not one: an output folder equal to it gets
    new files beside the inputs (``train --out`` into the ``--weights`` folder)."""
    resolved, file_id = Path(output).resolve(), _file_id(output)
    for source in inputs:
        if source is not None and not Path(source).is_dir() and (
                Path(source).resolve() == resolved or (file_id is not None and _file_id(source) == file_id)):
            return source
    return None


def refuse_overwrite(outputs: Sequence[Optional[os.PathLike]], inputs: Sequence[Optional[os.PathLike]]) -> None:
    """:class:`InputError` when an output path (None: not written) is one of the input paths
    (:func:`overwritten_input`), before anything is written."""
    for out in outputs:
        source = None if out is None else overwritten_input(out, inputs)
        if source is not None:
            raise InputError(f"the output {out} would overwrite the input {source}")


def unwritable_reason(path: os.PathLike) -> Optional[str]:
    """Why ``path`` (a file or folder to write; missing folders above it are created) cannot be written,
    or None: the nearest existing folder it goes in is not a folder or not writable (read-only included)."""
    target = Path(path).absolute()
    folder = target if target.is_dir() else next(p for p in target.parents if p.exists())
    if not folder.is_dir():
        return f"{folder} is a file, not a folder"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"the folder {folder} is not writable"
    return None


def require_writable(outputs: Sequence[Optional[os.PathLike]]) -> None:
    """:class:`InputError` naming the first output (None: not written) that cannot be written (before any work)."""
    for out in outputs:
        reason = None if out is None else unwritable_reason(out)
        if reason is not None:
            raise InputError(f"cannot write {out}: {reason}")
