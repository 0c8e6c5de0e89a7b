"""One cohort case: every planned nodule of the case put into its source in one go (op ``cohort_case``).

* ``ids``: the nodules' label mask (uint16, nodule ``i`` of the case = ``i``, 0 elsewhere), on the source grid;
* with a label map: the label map with every new nodule painted as label 23 (a NodMAISI twin's condition);
* with a CT: the CT with every nodule inserted by the engine, one call per nodule, each on the CT the previous
  one left: ``inpaint`` (classic, HR-LDM) or, for engines that edit through the label map (NodMAISI), an ROI
  ``edit`` of the label map with the nodule painted in (one small box each, however far apart the nodules are).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..engines.base import DEFAULT_INPAINT_STEPS, EditRequest, Engine, InpaintRequest, SynthesisResult
from ..engines.registry import ENGINE_OPERATIONS
from ..labels import NODULE
from ..place import resolve_lung
from ..progress import CancelToken, ProgressFn, check_cancel, no_progress
from ..shapes import ShapeLibrary
from ..sphere import sphere_diameter_mm
from ..volume import Volume
from .nodule import local_mask, nodule_shape
from .table import centre_lps


def nodule_ids(rows: list[dict], grid: Volume, library: Optional[ShapeLibrary]) -> Volume:
    """The label mask of the case's nodules (uint16, ``nodule_id`` of each row) on ``grid``."""
    ids = np.zeros(grid.shape_kji, dtype=np.uint16)
    for row in rows:
        seed = int(row["seed"])
        mask = local_mask(nodule_shape(row["shape_source"], library), grid, centre_lps(row),
                          float(row["diameter_mm"]), seed)
        ids[mask.slices()][mask.array] = int(row["nodule_id"])
    return grid.with_array(ids)


def painted_labelmap(labelmap: Volume, ids: Volume) -> Volume:
    """The label map with every nodule of ``ids`` (any mask: non-zero voxels) as label 23."""
    labels = np.array(labelmap.array, copy=True)
    labels[np.asarray(ids.array) > 0] = NODULE
    return labelmap.with_array(labels)


@dataclass
class EngineOptions:
    name: str
    sampler: str
    steps: Optional[int]
    margin_mm: float


def insert_all(engine: Engine, options: EngineOptions, ct: Volume, labelmap: Optional[Volume], ids: Volume,
               rows: list[dict], progress: Optional[ProgressFn] = None,
               cancel: Optional[CancelToken] = None) -> SynthesisResult:
    """The CT with every nodule of ``ids`` inserted, one engine call per nodule on the CT the previous call left
    (see the module docstring)."""
    report = progress or no_progress
    start = time.perf_counter()
    inpaints = "inpaint" in ENGINE_OPERATIONS.get(options.name, ("inpaint",))
    lung = resolve_lung(ct, labelmap)[0] if inpaints else None
    current, current_map, result = ct, labelmap, None
    labels = np.asarray(ids.array)
    for number, row in enumerate(rows):
        check_cancel(cancel)
        report(number / len(rows), f"nodule {row['nodule_id']} of {len(rows)}")
        mask = ct.with_array((labels == int(row["nodule_id"])).astype(np.uint8))
        if inpaints:
            request = InpaintRequest(current, mask, subtype=row["subtype"], lung_mask=lung, sampler=options.sampler,
                                     seed=int(row["seed"]), steps=options.steps or DEFAULT_INPAINT_STEPS[options.sampler])
            result = engine.inpaint(request, cancel=cancel)
        else:
            edited = painted_labelmap(current_map, mask)
            result = engine.edit(EditRequest(current, current_map, edited, seed=int(row["seed"]),
                                             margin_mm=options.margin_mm,
                                             **({"steps": options.steps} if options.steps else {})), cancel=cancel)
            current_map = edited
        current = result.ct
    result.seconds = time.perf_counter() - start
    return result


def nodule_facts(ids: Volume, rows: list[dict]) -> list[dict]:
    """Per nodule: voxels, equivalent-sphere diameter (mm) and centroid (LPS mm) of its mask in ``ids``."""
    labels = np.asarray(ids.array)
    facts = []
    for row in rows:
        kji = np.argwhere(labels == int(row["nodule_id"]))
        centroid = ids.index_to_world(kji[:, ::-1].astype(np.float64)).mean(axis=0)
        facts.append({"nodule_id": int(row["nodule_id"]), "voxels": int(len(kji)),
                      "equivalent_diameter_mm": round(sphere_diameter_mm(len(kji) * ids.voxel_volume_mm3), 3),
                      "centroid_lps_mm": [round(float(v), 3) for v in centroid]})
    return facts
