"""Atomic file output: write beside the target, then rename over it.

A reader never sees a half-written file, and a failed write leaves no file behind.
"""
from __future__ import annotations

import contextlib
import os
import secrets
import time
from pathlib import Path
from typing import Iterator, Mapping, Optional, Sequence

from ..errors import InputError


def file_suffixes(path: Path) -> str:
    """All suffixes of a file name ('.nii.gz' for 'a.nii.gz'), so writers pick the right format."""
    return "".join(path.suffixes[-2:]) if path.name.endswith(".gz") else path.suffix


def _new_file(folder: Path, prefix: str, suffix: str, mode: int) -> Path:
    """Create an empty file of a new random name; ``mode`` is masked by the umask as for any new file."""
    while True:
        path = folder / f"{prefix}{secrets.token_hex(6)}{suffix}"
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, mode))
            return path
        except FileExistsError:
            continue


FIRST_RETRY_S = 0.001


def retry_refused(action, patience_s: float):
    """``action()``, tried again with a doubling pause while it raises ``PermissionError`` and the
    pauses add up to at most ``patience_s`` seconds (then the error goes up). On Windows a file another
    process holds open can be neither replaced nor removed, and one being replaced cannot be opened:
    the holder lets go within milliseconds."""
    pause, waited = FIRST_RETRY_S, 0.0
    while True:
        try:
            return action()
        except PermissionError:
            if waited + pause > patience_s:
                raise
            time.sleep(pause)
            waited += pause
            pause *= 2


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, *, private: bool = False, patience_s: float = 0.0) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; move it onto ``target`` on success.

    The temporary name keeps the target's suffixes (``.nii.gz``, ``.nrrd``, ``.csv``)
    so format-by-extension writers such as SimpleITK behave as for the real name.
    On any exception the temporary file is removed and ``target`` is left untouched.
    The file gets the usual permissions (0644 under umask 022), or owner-only 0600 when ``private``.
    ``patience_s``: how long to keep trying when another process holds ``target`` open (Windows
    refuses to replace it meanwhile; see :func:`retry_refused`).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_file(target.parent, f".{target.name}.", f".tmp{file_suffixes(target)}", 0o600 if private else 0o666)
    try:
        yield tmp
        retry_refused(lambda: os.replace(tmp, target), patience_s)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text_atomic(target: str | os.PathLike, text: str, private: bool = False) -> Path:
    """Write ``text`` (UTF-8) to ``target`` atomically (owner-only when ``private``) and return the target path."""
    with atomic_path(target, private=private) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(target)


def write_bytes_atomic(target: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``target`` atomically and return the target path."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def write_csv_atomic(target: str | os.PathLike, rows: Sequence[Mapping[str, object]],
                     columns: Optional[Sequence[str]] = None) -> Path:
    """Write ``rows`` (dicts) as a CSV with a header atomically; ``columns`` default to the first row's keys."""
    import csv
    import io

    if columns is None:
        if not rows:
            raise ValueError("cannot infer CSV columns from no rows; pass columns")
        columns = list(rows[0])
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return write_text_atomic(target, buffer.getvalue())


@contextlib.contextmanager
def staged_folder(target: str | os.PathLike, replaceable: str = "") -> Iterator[Path]:
    """Yield a hidden sibling folder to fill; move it onto ``target`` on success.

    ``target`` must not exist or be an empty folder (else :class:`~nodsynth.errors.InputError`
    before anything is written), unless ``replaceable`` names a file that marks ``target`` as an
    earlier output of the same kind: such a folder is replaced whole. On any exception the staging
    folder is removed, so a reader sees either the earlier ``target`` or a complete new one.
    """
    import shutil

    target = Path(target)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        if not (replaceable and target.is_dir() and (target / replaceable).is_file()):
            marker = f" (no {replaceable} in it)" if replaceable and target.is_dir() else ""
            raise InputError(f"{target} already exists and is not an empty folder{marker}; choose a new output folder")
    target.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(6)
    staging = target.parent / f".{target.name}.{token}.staging"
    staging.mkdir()  # the usual permissions (umask), unlike mkdtemp's owner-only folder
    try:
        yield staging
        if target.exists() and not any(target.iterdir()):
            target.rmdir()
        if target.exists():
            earlier = target.parent / f".{target.name}.{token}.replaced"
            os.replace(target, earlier)
            os.replace(staging, target)
            shutil.rmtree(earlier, ignore_errors=True)
        else:
            os.replace(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
