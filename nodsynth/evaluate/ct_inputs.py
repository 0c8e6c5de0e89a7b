"""Which CT files make up one side (real or synthetic) of a comparison.

A side is a folder (every volume file under it, recursively, in sorted order) or a list file:
``.txt`` with one path per line (the published script's file lists) or ``.csv`` with a header
holding a ``path`` (or ``ct`` / ``image``) column. Relative paths are relative to the list file.
"""
from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Optional

from ..io.tables import manifest_path, read_text
from ..errors import InputError
from ..io.volume_files import VOLUME_SUFFIXES

CSV_PATH_COLUMNS = ("path", "ct", "image")


def _is_volume(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(VOLUME_SUFFIXES)


def _listed_paths(list_file: Path) -> list[str]:
    text = read_text(list_file, "CT list")
    if list_file.suffix.lower() != ".csv":
        return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    reader = csv.DictReader(text.splitlines())
    column = next((c for c in CSV_PATH_COLUMNS if c in (reader.fieldnames or [])), None)
    if column is None:
        raise InputError(f"{list_file}: a CSV list needs a header with one of the columns "
                         f"{', '.join(CSV_PATH_COLUMNS)}; found {reader.fieldnames}")
    return [(row.get(column) or "").strip() for row in reader if (row.get(column) or "").strip()]


def list_ct_files(spec: str | os.PathLike, side: str) -> list[Path]:
    """The CT files of one side; raises :class:`InputError` for a missing or empty folder or list."""
    source = Path(spec)
    if source.is_dir():
        files = sorted(p for p in source.rglob("*") if _is_volume(p))
        if not files:
            raise InputError(f"{side}: the folder {source} holds no CT volume ({', '.join(VOLUME_SUFFIXES)})")
        return files
    if not source.is_file():
        raise InputError(f"{side}: {source} is neither a folder nor a list file")
    files = []
    for entry in _listed_paths(source):
        path = manifest_path(source, entry)
        if not _is_volume(path):
            raise InputError(f"{side}: {source} lists {entry}, which is not a volume file "
                             f"({', '.join(VOLUME_SUFFIXES)}) that exists")
        files.append(path)
    if not files:
        raise InputError(f"{side}: the list {source} names no file")
    return files


def first_images(files: list[Path], count: Optional[int]) -> list[Path]:
    """The first ``count`` files in sorted order (all when None), as ``compute_fid_2-5d_ct.py --num_images`` takes them."""
    if count is None:
        return files
    if count < 1:
        raise InputError(f"--num-images must be at least 1, got {count}")
    return sorted(files, key=str)[:count]


def named_sets(specs: list[str], count: Optional[int] = None) -> dict[str, list[Path]]:
    """``NAME=FOLDER_OR_LIST`` entries (``evaluate fid --matrix``) -> name -> CT files (see :func:`list_ct_files`)."""
    sets: dict[str, list[Path]] = {}
    for spec in specs:
        name, sep, source = spec.partition("=")
        if not sep or not name or not source:
            raise InputError(f"--matrix takes NAME=FOLDER_OR_LIST entries, got {spec!r}")
        if name in sets:
            raise InputError(f"--matrix names the set {name!r} twice")
        sets[name] = first_images(list_ct_files(source, f"--matrix {name}"), count)
    if len(sets) < 2:
        raise InputError(f"--matrix needs at least two sets to compare, got {len(sets)}")
    return sets
