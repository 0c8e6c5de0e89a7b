"""What the headless batch scripts (``Resources/Scripts/*_batch.py``) share (Slicer side).

``Slicer --no-main-window --python-script S.py -- ARGS`` does not exit by itself when the script
raises (only under ``--testing``): :func:`run_script` ends Slicer through ``slicer.util.exit`` on
every path, non-zero when anything failed. Cases run one by one: a case whose outputs all exist is
skipped (so a re-run resumes), a failing case is recorded and the batch goes on, and a failed case
leaves none of its outputs behind (each output is written atomically, and what a case wrote before
it failed is removed). Failures go to ``failed.csv`` in the output folder. Only the functions that
touch the scene import ``slicer``, so the rest is tested with plain pytest.
"""
from __future__ import annotations

import argparse
import csv
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from nodsynth.io.atomic import write_csv_atomic
from nodsynth.io.tables import manifest_path, read_rows
from nodsynth.errors import InputError, NodsynthError
from nodsynth.io.volume_files import VOLUME_SUFFIXES

EXIT_OK, EXIT_FAILED_CASES, EXIT_BAD_INPUT, EXIT_CRASH = 0, 1, 2, 3
FAILED_CSV = "failed.csv"


def script_arguments(argv: Sequence[str]) -> list:
    """The script's own arguments: Slicer passes what follows ``--``."""
    argv = list(argv)
    return argv[argv.index("--") + 1:] if "--" in argv else argv


@dataclass
class BatchReport:
    """Cases done, skipped (already finished) and failed (case id -> message)."""

    done: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    failed: dict = field(default_factory=dict)

    def run(self, case_id: str, outputs: Sequence[Path], work: Callable[[], None]) -> None:
        """Run one case unless all its ``outputs`` exist; a failure is recorded, never raised."""
        outputs = [Path(p) for p in outputs]
        if outputs and all(p.exists() for p in outputs):
            self.skipped.append(case_id)
            print(f"{case_id}: done before, skipped")
            return
        existing = {p for p in outputs if p.exists()}
        try:
            work()
        except Exception as exc:  # one bad case must not stop the batch
            for path in outputs:
                if path.exists() and path not in existing:
                    path.unlink()
            message = str(exc) or type(exc).__name__
            self.failed[case_id] = message
            print(f"{case_id}: FAILED: {message}", file=sys.stderr)
            return
        self.done.append(case_id)
        print(f"{case_id}: done")

    def finish(self, out_dir: Path) -> int:
        """Write ``failed.csv`` (or remove a stale one), print the summary; the exit status."""
        failed_csv = Path(out_dir) / FAILED_CSV
        if self.failed:
            write_csv_atomic(failed_csv, [{"case": c, "error": m} for c, m in self.failed.items()], ["case", "error"])
        elif failed_csv.exists():
            failed_csv.unlink()
        print(f"{len(self.done)} case(s) done, {len(self.skipped)} skipped (done before), {len(self.failed)} failed"
              + (f": see {failed_csv}" if self.failed else ""))
        return EXIT_FAILED_CASES if self.failed else EXIT_OK


def run_script(main: Callable[[list], int], argv: Sequence[str]) -> int:
    """Run ``main(arguments)`` and end Slicer with its status, whatever happens: bad input (a
    :class:`NodsynthError`, or the arguments) -> 2 with its message, an unexpected exception -> 3
    with its traceback. Returns the status (Slicer exits once the script returns)."""
    try:
        status = int(main(script_arguments(argv)) or 0)
    except SystemExit as exc:  # argparse: --help (0) or bad arguments (2)
        status = exc.code if isinstance(exc.code, int) else EXIT_BAD_INPUT
    except (NodsynthError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        status = EXIT_BAD_INPUT
    except BaseException:  # noqa: BLE001 - Slicer must exit whatever went wrong
        traceback.print_exc()
        status = EXIT_CRASH
    import slicer

    slicer.util.exit(status)
    return status


def argument_parser(description: str) -> argparse.ArgumentParser:
    """A parser whose usage names the Slicer command line the script runs under, and whose help says
    which files name a CT or label map (as the verbs' help does)."""
    from nodsynth.cli.volume_options import VOLUME_FORMATS

    return argparse.ArgumentParser(description=description, usage=(
        "Slicer --no-main-window --python-script %(prog)s -- [options]"),
        epilog=f"A CT or label map (named in a CSV or an option): {VOLUME_FORMATS}; a label map also as a DICOM SEG "
               "file.")


def add_manifest_option(parser: argparse.ArgumentParser) -> None:
    """``--manifest`` (and ``--shard``): every batch script also runs a ``nodsynth batch`` manifest."""
    parser.add_argument("--manifest", help="instead of the options above: a nodsynth batch manifest (JSON Lines, any "
                        "op), run as `nodsynth batch run MANIFEST --executor inline` runs it (records, resume, "
                        "failed.jsonl)")
    parser.add_argument("--shard", help="with --manifest: run share i/n of it (e.g. one task of a cluster array)")


def run_manifest_file(manifest: str, shard=None, weights_dir: str = "") -> int:
    """Run a batch manifest in this (Slicer's) process through :func:`nodsynth.batch.run_manifest`;
    the exit status (1 when a job failed)."""
    from nodsynth.batch import run_manifest

    def report(fraction: float, message: str) -> None:
        print(f"{100 * fraction:5.1f} % {message}", flush=True)

    summary = run_manifest(manifest, executor="inline", shard=shard, weights_dir=weights_dir or None, progress=report)
    print(summary.table())
    return EXIT_OK if summary.ok else EXIT_FAILED_CASES


def require_options(parser: argparse.ArgumentParser, args: argparse.Namespace, names: Sequence[str]) -> None:
    """Options a script needs when no ``--manifest`` is given (argparse exits with status 2 otherwise)."""
    missing = [f"--{n.replace('_', '-')}" for n in names if getattr(args, n) in (None, "")]
    if missing:
        parser.error(f"{', '.join(missing)} required (or give --manifest)")


def output_folder(path: str) -> Path:
    """The output folder (created); it must not be a file."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"the output folder {folder} is a file")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def load_volume_node(path: str, label: bool = False):
    """A volume node read from ``path`` (Slicer's reader; a DICOM CT series folder or SEG file by nodsynth's
    reader, :func:`nodsynth.io.volume_files.read_volume`), or an error naming the file."""
    import slicer

    from nodsynth.io.dicom.series import dicom_kind, split_series_path

    if dicom_kind(path) is not None:
        from nodsynth.io.volume_files import read_volume

        from .volumes import node_from_volume

        return node_from_volume(read_volume(path), split_series_path(path)[0].name, label=label)
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        return slicer.util.loadVolume(str(path), {"labelmap": label, "show": False})
    except RuntimeError as exc:
        raise InputError(f"cannot read {path} as a volume: {str(exc).splitlines()[0]}") from exc


class CaseNodes:
    """Remove the nodes a case added to the scene when it ends, so a batch of thousands of cases does
    not keep them all in memory."""

    def __enter__(self) -> "CaseNodes":
        import slicer

        self._before = {node.GetID() for node in slicer.util.getNodesByClass("vtkMRMLNode")}
        return self

    def __exit__(self, *exc) -> None:
        import slicer

        for node in slicer.util.getNodesByClass("vtkMRMLNode"):
            if node.GetID() not in self._before and node.GetScene() is not None:
                slicer.mrmlScene.RemoveNode(node)


def read_case_table(source: str, required: Sequence[str], path_columns: Sequence[str] = (),
                    folder_column: str = "") -> list:
    """The cases of a CSV as ``[(line, {column: text})]`` (``path_columns`` resolved against the CSV's
    folder), or, when ``source`` is a folder and ``folder_column`` is given, one case per volume file
    in it. Checked whole: a missing column, an empty required cell or no case is an error naming it."""
    source_path = Path(source)
    if source_path.is_dir():
        if not folder_column:
            raise InputError(f"{source_path} is a folder; this needs a CSV with columns {', '.join(required)}")
        volumes = sorted(p for p in source_path.iterdir() if p.name.lower().endswith(VOLUME_SUFFIXES))
        if not volumes:
            raise InputError(f"{source_path}: no volumes ({', '.join(VOLUME_SUFFIXES)}) in the folder")
        return [(0, {folder_column: p}) for p in volumes]
    cases = []
    for line, row in read_rows(source_path, required, "case list"):
        empty = [c for c in required if not row.get(c)]
        if empty:
            raise InputError(f"{source_path}, line {line}: empty {', '.join(empty)}")
        for column in path_columns:
            row[column] = manifest_path(source_path, row.get(column, ""))
        cases.append((line, row))
    return cases


def read_earlier_rows(path) -> list:
    """The rows of a table an earlier run wrote (a resumed run keeps them and adds its own), or ``[]``."""
    if not Path(path).is_file():
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def unique_outputs(paths: Sequence[Path]) -> list:
    """``paths`` when no two cases write one file; else an error naming the file."""
    seen = set()
    for path in paths:
        if path in seen:
            raise InputError(f"two cases would write {path} (their names repeat)")
        seen.add(path)
    return list(paths)
