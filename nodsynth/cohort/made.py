"""A planned cohort after its jobs ran: each case's CT, nodule masks and provenance, read from the plan folder.

Per nodule the geometry comes from the case's ``ids`` mask itself: centroid (LPS mm), equivalent-sphere
diameter (mm) and the axis-aligned world box (LPS mm) centred on the centroid that holds every voxel.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..batch.layout import layout_for
from ..batch.manifest import read_manifest
from ..batch.records import read_record
from ..io.tables import manifest_path, read_json
from ..errors import InputError
from ..sphere import sphere_diameter_mm
from ..volume import Volume
from ..io.volume_files import read_volume, volume_stem
from .plan import PLAN_FILES
from .table import case_rows, read_cohort

@dataclass
class MadeNodule:
    nodule_id: int
    row: dict
    centroid_lps: np.ndarray
    box_size_mm: np.ndarray  # LPS extents of the box centred on the centroid
    diameter_mm: float  # measured equivalent sphere


@dataclass
class MadeCase:
    case_id: str
    ct: Path
    ids: Path
    patient_id: str
    nodules: list[MadeNodule]
    provenance: dict


def nodule_geometry(ids: Volume, rows: list[dict]) -> list[MadeNodule]:
    labels = np.asarray(ids.array)
    half_voxel = 0.5 * np.abs(ids.direction) @ ids.spacing
    made = []
    for row in rows:
        kji = np.argwhere(labels == int(row["nodule_id"]))
        if len(kji) == 0:
            raise InputError(f"case {row['case_id']}: nodule {row['nodule_id']} has no voxel in its ids mask")
        points = ids.index_to_world(kji[:, ::-1].astype(np.float64))
        centroid = points.mean(axis=0)
        reach = np.maximum(points.max(axis=0) - centroid, centroid - points.min(axis=0)) + half_voxel
        made.append(MadeNodule(int(row["nodule_id"]), row, centroid, 2.0 * reach,
                               sphere_diameter_mm(len(kji) * ids.voxel_volume_mm3)))
    return made


def _weights(record: dict | None) -> dict:
    engine = (record or {}).get("engine") or {}
    return {role: f.get("sha256") for role, f in (engine.get("weights") or {}).items()}


def _absolute(table: Path, text: str) -> str | None:
    return str(manifest_path(table, text)) if text else None


def made_cases(folder: str | Path) -> list[MadeCase]:
    """Every case of the plan in ``folder``; :class:`InputError` listing the cases whose jobs have not run."""
    folder = Path(folder).absolute()
    table = folder / PLAN_FILES[0]
    rows = read_cohort(table)
    facts = read_json(folder / PLAN_FILES[2], "cohort plan facts")
    manifest = read_manifest(folder / PLAN_FILES[1])
    jobs = {job.id: job for job in manifest.jobs}
    layout = layout_for(manifest.jobs, manifest.path)
    cases, missing = [], []
    for case_id in dict.fromkeys(r["case_id"] for r in rows):
        names = facts.get("case_jobs", {}).get(case_id, {"ids": f"cohort-{case_id}", "ct": f"twin-{case_id}"})
        job, twin = jobs.get(names["ids"]), jobs.get(names["ct"])
        if job is None:
            raise InputError(f"{folder}: the manifest has no job for case {case_id}")
        final = twin or job
        ct, ids = final.outputs["ct"], job.outputs["ids"]
        if not (ct.is_file() and ids.is_file()):
            missing.append(case_id)
            continue
        mine = case_rows(rows, case_id)
        first = mine[0]
        source = manifest_path(table, first["source_ct"] or first["source_labelmap"])
        record = read_record(layout.record_path(final.id))
        provenance = {
            "synthetic": True, "engine": final.params.get("engine", facts["engine"]), "weights_sha256": _weights(record),
            "seeds": {"nodules": [int(r["seed"]) for r in mine], **({"twin": twin.seed} if twin else {})},
            "source_ct": _absolute(table, first["source_ct"]),
            "source_labelmap": _absolute(table, first["source_labelmap"]),
            "licences": {k: v for k, v in facts.get("licences", {}).items() if first[f"source_{k}"]},
            "qc_passed": ((record or {}).get("facts") or {}).get("qc_passed")}
        cases.append(MadeCase(case_id, ct, ids, volume_stem(source), nodule_geometry(read_volume(ids), mine),
                              provenance))
    if missing:
        shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        raise InputError(f"{folder}: {len(missing)} case(s) not made yet ({shown}); run nodsynth batch run "
                         f"{folder / PLAN_FILES[1]} first")
    return cases
