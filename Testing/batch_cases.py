"""Inputs and manifests for the batch tests and benchmark.

Real inputs: an 80 x 80 x 80 crop (CT and MAISI label map, 1.25 x 1.25 x 2 mm) of the demo patient
around its solid and ground-glass nodules; NodMAISI twins use the tiny network configuration with
random weights saved as real checkpoints (``test_nodmaisi_engine.tiny_weights_folder``).
"""
from __future__ import annotations

import csv
import functools
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

REPO_ROOT = Path(__file__).resolve().parent.parent
CROP_START_KJI, CROP_STOP_KJI = (30, 90, 40), (110, 170, 120)
ENGINE_OPTIONS = {"nodmaisi": {"config": "maisi_tiny"}}
TIMING_KEYS = ("seconds",)
"""Wall-time fields of the verbs' JSON / CSV side outputs: the only content that differs between runs."""


@functools.lru_cache(maxsize=1)
def _patient():
    from nodsynth.phantom import make_demo_patient

    return make_demo_patient()


def write_inputs(folder: Path) -> dict:
    """The crop's CT and label map under ``folder`` and the solid nodule's centre (LPS mm)."""
    from nodsynth.io.volume_files import write_volume

    patient = _patient()
    folder.mkdir(parents=True, exist_ok=True)
    write_volume(patient.ct.crop(CROP_START_KJI, CROP_STOP_KJI), folder / "ct.nii.gz")
    write_volume(patient.labelmap.crop(CROP_START_KJI, CROP_STOP_KJI), folder / "labels.nii.gz")
    solid = next(n for n in patient.nodules if n.kind == "solid")
    return {"ct": folder / "ct.nii.gz", "labelmap": folder / "labels.nii.gz",
            "solid_lps": [round(float(v), 2) for v in solid.center_lps]}


def write_engine_options(folder: Path) -> Path:
    path = folder / "engine_options.json"
    path.write_text(json.dumps(ENGINE_OPTIONS))
    return path


def augment_row(job_id: str, labelmap: str, percent: float, out: str) -> dict:
    return {"id": job_id, "op": "augment", "inputs": {"labelmap": labelmap}, "params": {"percent": percent},
            "seed": 0, "outputs": {"labelmap": f"{out}/augment/{job_id}.nii.gz", "stats": f"{out}/augment/{job_id}.csv"}}


def inpaint_row(job_id: str, ct: str, labelmap: str, seed: int, out: str, subtype: str = "part-solid") -> dict:
    return {"id": job_id, "op": "inpaint", "inputs": {"ct": ct, "labelmap": labelmap},
            "params": {"sample": "inner", "diameter_mm": 8, "subtype": subtype, "engine": "classic"}, "seed": seed,
            "outputs": {"ct": f"{out}/inpaint/{job_id}.nii.gz", "mask": f"{out}/inpaint/{job_id}_mask.nii.gz",
                        "json": f"{out}/inpaint/{job_id}.json"}}


def twin_row(job_id: str, labelmap: str, seed: int, out: str) -> dict:
    return {"id": job_id, "op": "twin", "inputs": {"labelmap": labelmap},
            "params": {"steps": 1, "resample": True}, "seed": seed, "outputs": {"ct": f"{out}/twin/{job_id}.nii.gz"}}


def mixed_rows(out: str, augments: int, inpaints: int, twins: int, ct: str = "in/ct.nii.gz",
               labelmap: str = "in/labels.nii.gz") -> list[dict]:
    """``augments`` resizes (percents 95, 90, ...), ``inpaints`` insertions (seeds 0, 1, ...) and ``twins``
    NodMAISI twins (seeds 0, 1, ...) of the crop, twins last."""
    subtypes = ("solid", "part-solid", "ground-glass")
    rows = [augment_row(f"aug-{i:02d}", labelmap, 95 - 5 * i, out) for i in range(augments)]
    rows += [inpaint_row(f"ins-{i:02d}", ct, labelmap, i, out, subtypes[i % 3]) for i in range(inpaints)]
    rows += [twin_row(f"twin-{i:02d}", labelmap, i, out) for i in range(twins)]
    return rows


def write_manifest(path: Path, rows: Sequence[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def output_files(root: Path) -> set[str]:
    """Every file under ``root`` (relative paths), bookkeeping folders and failed lists excluded."""
    skip = (".records", ".claims", ".staging")
    return {str(p.relative_to(root)) for p in root.rglob("*")
            if p.is_file() and not any(part in skip for part in p.relative_to(root).parts)
            and not p.name.startswith("failed")}


def expected_outputs(rows: Sequence[dict], out: str) -> set[str]:
    return {os.path.relpath(p, out) for r in rows for p in r["outputs"].values()}


def comparable(path: Path) -> bytes:
    """File content with the wall-time fields of JSON / CSV side outputs removed; volumes as they are."""
    if path.suffix == ".json":
        data = json.loads(path.read_text())
        for key in TIMING_KEYS:
            data.pop(key, None)
        return json.dumps(data, sort_keys=True).encode()
    if path.suffix == ".csv":
        rows = list(csv.DictReader(io.StringIO(path.read_text())))
        return json.dumps([{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in rows]).encode()
    return path.read_bytes()


def journal(root: Path) -> list[dict]:
    """The journal lines of every manifest whose batch folder is ``root``."""
    return [json.loads(line) for path in sorted(root.glob(".records/*/journal.jsonl"))
            for line in path.read_text().splitlines()]


def record_file(root: Path, job_id: str) -> Path:
    """The one record of ``job_id`` in the batch folder ``root`` (records are kept per manifest)."""
    found = list(root.glob(f".records/*/{job_id}.json"))
    assert len(found) == 1, found
    return found[0]


def record_ids(root: Path) -> set[str]:
    return {p.stem for p in root.glob(".records/*/*.json")}


def nodsynth_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "nodsynth", *args]


def start_cli(*args: str, env: Optional[dict] = None) -> subprocess.Popen:
    """``python -m nodsynth ARGS`` from the repository root (this checkout's nodsynth)."""
    return subprocess.Popen(nodsynth_command(*args), cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, **(env or {})})


def run_cli(*args: str, timeout_s: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(nodsynth_command(*args), cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout_s)


def wait_until(condition, timeout_s: float, what: str, poll_s: float = 0.05):
    """Poll ``condition()`` until it returns something true; AssertionError naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(poll_s)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
