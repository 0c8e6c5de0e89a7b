"""Assemble the demo patient: anatomy, vessel and airway trees, nodules, HU, label map.

Everything draws from one ``numpy.random.Generator`` seeded by the caller in a fixed order,
so the same seed gives bit-identical arrays.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
from scipy import ndimage

from .. import labels
from ..progress import CancelToken, ProgressFn, check_cancel, no_progress
from ..volume import Volume
from . import anatomy as A
from .nodules import (LOBULATION, NoduleSpec, nodule_hu, nodule_masks, random_bumps,
                      vessel_contact_center_mm, wall_contact_center_mm)
from .tubes import TubeSegment, grow_tree, polyline_tube, prune_near, rasterise_tubes

GRID_SIZE_IJK = (256, 256, 128)
SPACING_MM = (1.25, 1.25, 2.0)
"""A valid MAISI output grid: field of view 320 x 320 x 256 mm."""

# --- tubes in the mediastinum (LPS mm) -------------------------------------------------------
AORTA_PATH_MM = ((-4.0, -22.0, -20.0), (-4.0, -22.0, 72.0), (10.0, -10.0, 84.0), (26.0, 10.0, 84.0),
                 (28.0, 36.0, 72.0), (26.0, 38.0, 60.0), (26.0, 38.0, -140.0))
AORTA_RADIUS_MM = 12.0
AORTA_LUNG_CLEARANCE_MM = 5.0
TRACHEA_PATH_MM = ((0.0, 20.0, 140.0), (0.0, 20.0, 28.0))
TRACHEA_RADIUS_MM = 9.0
CARINA_MM = (0.0, 20.0, 28.0)
MAIN_BRONCHUS_END_MM = {-1: (-26.0, 16.0, 12.0), +1: (30.0, 12.0, 6.0)}
MAIN_BRONCHUS_RADIUS_MM = {-1: 6.5, +1: 6.0}
AIRWAY_WALL_MM = 1.3

# --- trees inside the lungs ------------------------------------------------------------------
LOBAR_BRONCHUS_DIRECTIONS = {
    -1: ((-0.45, -0.1, 0.88), (-0.55, -0.75, -0.3), (-0.45, 0.45, -0.75)),
    +1: ((0.45, -0.1, 0.88), (0.6, -0.7, -0.35), (0.45, 0.45, -0.75)),
}
"""Right: upper, middle, lower lobe bronchus; left: upper, lingula, lower."""
ARTERY_HILUM_MM = {-1: (-20.0, 8.0, 14.0), +1: (21.0, 8.0, 10.0)}
VEIN_HILUM_MM = {-1: (-22.0, -6.0, -8.0), +1: (23.0, -6.0, -10.0)}
VESSEL_ROOTS_PER_HILUM = 10
"""Each hilum sends this many trees towards random points of its lung (density follows volume)."""
VESSEL_ROOT_RADIUS_MM = {"artery": 4.5, "vein": 4.0}
VESSEL_ROOT_LENGTH_FRACTION = 0.3
"""A root segment covers this fraction of the way from the hilum to its target point."""
VESSEL_TREE_DEPTH = 8
AIRWAY_ROOT = (16.0, 4.0, 3)
"""Root length (mm), radius (mm) and depth of every lobar airway tree."""
DIRECTION_JITTER = 0.12

# --- nodules: (name, kind, lobe, centre or wall-search start (mm), radius mm) ---------------
NODULE_PLAN = (
    ("solid", "solid", 30, (-75.0, -15.0, 55.0), 6.0),
    ("part_solid", "part-solid", 28, (80.0, -25.0, 25.0), 9.0),
    ("ground_glass", "ground-glass", 32, (-70.0, 40.0, -35.0), 7.0),
    ("juxta_pleural", "juxta-pleural", 29, (80.0, 35.0, -40.0), 7.0),
)
JUXTA_PLEURAL_DIRECTION = (0.75, 0.66, 0.0)
JUXTA_VASCULAR = ("juxta_vascular", "juxta-vascular", 5.0)
CENTER_JITTER_MM = 2.0
VESSEL_CLEARANCE_MM = 3.0
"""Other vessels and airways keep at least this distance from a nodule's surface."""
NODULE_SPACING_MM = 12.0
LUNG_MARGIN_MM = 4.0
"""A free-standing nodule keeps this much lung between its surface and the pleura."""

# --- Hounsfield units: (mean, texture amplitude) ---------------------------------------------
HU_AIR = -1000.0
HU_FAT = (-95.0, 10.0)
HU_MEDIASTINAL_FAT = (-85.0, 10.0)
HU_MUSCLE = (45.0, 8.0)
HU_LIVER = (55.0, 8.0)
HU_STOMACH = (30.0, 8.0)
HU_BLOOD = (40.0, 6.0)
HU_SPINAL_CANAL = (25.0, 5.0)
HU_LUNG = (-850.0, 22.0)
LUNG_GRAVITY_HU = 35.0
"""Dependent (posterior) lung is denser by up to this much."""
HU_AIRWAY_WALL = (20.0, 8.0)
HU_RIB_CORTEX = 950.0
HU_MARROW = (350.0, 40.0)
HU_VERTEBRA = (300.0, 30.0)
HU_NEURAL_ARCH = 700.0
HU_DISC = (80.0, 8.0)
HU_STERNUM = (450.0, 40.0)
TEXTURE_SIGMA_VOXELS = (1.0, 1.6, 1.6)
PSF_SIGMA_VOXELS = (0.45, 0.7, 0.7)
"""Scanner blur (k, j, i), about 2 mm full width at half maximum."""
NOISE_SIGMA_VOXELS = 0.6
NOISE_STD_HU = 14.0
HU_RANGE = (-1024, 3071)


@dataclass
class PhantomNodule:
    """One nodule of the demo patient and its true mask on the CT grid."""

    name: str
    kind: str
    """solid / part-solid / ground-glass / juxta-pleural / juxta-vascular"""
    subtype: str
    """solid / part-solid / ground-glass (the HR-LDM subtype)"""
    center_lps: np.ndarray
    """Design centre, LPS mm (a click here lands inside the nodule)."""
    diameter_mm: float
    """Design diameter (the wall cuts part of a juxta-pleural nodule off)."""
    mask: Volume
    """uint8 0/1 true mask on the CT grid."""
    lobe: int
    """MAISI id of the lobe that holds the nodule (28-32)."""


@dataclass
class DemoPatient:
    """Synthetic chest CT with its MAISI label map, true nodule masks and vessel mask."""

    ct: Volume
    """int16 Hounsfield units."""
    labelmap: Volume
    """uint8 MAISI ids (lobes 28-32, airway 132, trachea 57, ribs 63-86, nodules 23, body 200)."""
    nodules: list[PhantomNodule]
    vessels: Volume
    """uint8 0/1 pulmonary vessels (inside the lungs they carry the lobe id in the label map)."""
    seed: int

    def lung_mask(self) -> Volume:
        """uint8 0/1: the five lobes and the nodules in them."""
        return lung_mask(self.labelmap)


def lung_mask(labelmap: Volume) -> Volume:
    """uint8 0/1 lung mask of a MAISI label map: lobes 28-32 and lung nodules (23)."""
    ids = list(labels.LOBE_IDS) + [labels.NODULE]
    return labelmap.with_array(np.isin(labelmap.array, ids).astype(np.uint8))


def demo_grid() -> Volume:
    """Empty uint8 volume on the demo grid: LPS, identity direction, centred on the world origin."""
    size = np.asarray(GRID_SIZE_IJK)
    spacing = np.asarray(SPACING_MM)
    origin = -0.5 * (size - 1) * spacing
    return Volume(np.zeros(tuple(size[::-1]), np.uint8), spacing, origin, np.eye(3))


def _mask_lookup(grid: Volume, mask: np.ndarray):
    """``inside(points_lps) -> bool`` by nearest voxel of ``mask``; points off the grid are outside."""
    size = np.asarray(grid.size_ijk)

    def inside(points_mm: np.ndarray) -> np.ndarray:
        ijk = np.rint(grid.world_to_index(np.atleast_2d(points_mm))).astype(int)
        ok = np.all((ijk >= 0) & (ijk < size), axis=1)
        result = np.zeros(len(ijk), bool)
        result[ok] = mask[ijk[ok, 2], ijk[ok, 1], ijk[ok, 0]]
        return result

    return inside


def _unit_texture(shape: tuple[int, ...], sigma: tuple[float, ...], rng: np.random.Generator) -> np.ndarray:
    """Spatially correlated Gaussian noise with zero mean and unit variance (float32)."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape, dtype=np.float32), sigma)
    return (field - field.mean()) / field.std()


def _jittered(direction, rng: np.random.Generator) -> np.ndarray:
    return np.asarray(direction, float) + rng.normal(scale=DIRECTION_JITTER, size=3)


def _lung_trees(rng, grid: Volume, sides: dict[int, np.ndarray], inside) -> tuple[list[TubeSegment], list[TubeSegment]]:
    """Pulmonary vessel trees (arteries and veins) and the lobar airway trees.

    ``sides`` maps ``-1`` / ``+1`` to the right / left lung mask; arterial roots aim at random voxels
    of it, venous roots at random voxels below their hilum.
    """
    vessels: list[TubeSegment] = []
    airways: list[TubeSegment] = []
    for side in (-1, +1):
        for kind, hilum in (("artery", ARTERY_HILUM_MM), ("vein", VEIN_HILUM_MM)):
            start = np.asarray(hilum[side])
            region = sides[side]
            if kind == "vein":  # the inferior pulmonary veins drain the lower lung
                region = region & (np.arange(grid.shape_kji[0])[:, None, None] < grid.world_to_kji(start)[0])
            for flat in rng.choice(np.flatnonzero(region), VESSEL_ROOTS_PER_HILUM, replace=False):
                kji = np.unravel_index(flat, grid.shape_kji)
                target = grid.index_to_world(np.asarray(kji[::-1], float))
                reach = np.linalg.norm(target - start)
                vessels += _reindexed(grow_tree(start, target - start, VESSEL_ROOT_LENGTH_FRACTION * reach,
                                                VESSEL_ROOT_RADIUS_MM[kind], VESSEL_TREE_DEPTH, rng, inside),
                                      len(vessels))
        for direction in LOBAR_BRONCHUS_DIRECTIONS[side]:
            length, radius, depth = AIRWAY_ROOT
            airways += _reindexed(grow_tree(MAIN_BRONCHUS_END_MM[side], _jittered(direction, rng), length,
                                            radius, depth, rng, inside), len(airways))
    return vessels, airways


def _reindexed(tree: list[TubeSegment], offset: int) -> list[TubeSegment]:
    """Shift a tree's parent indices so it can be appended to a list ``offset`` long."""
    return [TubeSegment(s.start_mm, s.end_mm, s.radius_start_mm, s.radius_end_mm, s.depth,
                        s.parent + offset if s.parent >= 0 else -1) for s in tree]


def _ancestors(segments: list[TubeSegment], index: int) -> frozenset[int]:
    chain = set()
    while index >= 0:
        chain.add(index)
        index = segments[index].parent
    return frozenset(chain)


def _sphere_directions() -> np.ndarray:
    """26 unit vectors (cube faces, edges, corners) for checking a ball's surface."""
    grid = np.array([[a, b, c] for a in (-1, 0, 1) for b in (-1, 0, 1) for c in (-1, 0, 1) if (a, b, c) != (0, 0, 0)],
                    float)
    return grid / np.linalg.norm(grid, axis=1, keepdims=True)


def _plan_nodules(rng, inside_lung, lobe_at) -> list[NoduleSpec]:
    specs = []
    for name, kind, lobe, point, radius in NODULE_PLAN:
        point = np.asarray(point) + rng.uniform(-CENTER_JITTER_MM, CENTER_JITTER_MM, 3)
        if kind == "juxta-pleural":
            point = wall_contact_center_mm(point, JUXTA_PLEURAL_DIRECTION, radius, inside_lung)
        core_offset = rng.normal(scale=0.2 * radius / np.sqrt(3), size=3)
        specs.append(NoduleSpec(name, kind, lobe, point, radius, random_bumps(rng), core_offset))
        if lobe_at(point) != lobe:
            raise AssertionError(f"phantom plan error: nodule {name} is not in lobe {lobe}")
    return specs


def _reach_mm(spec: NoduleSpec) -> float:
    return spec.radius_mm * (1.0 + 2 * LOBULATION)


def _place_juxta_vascular(rng, vessels, airways, specs, inside_lung, lobe_at) -> tuple[NoduleSpec, int]:
    name, kind, radius = JUXTA_VASCULAR
    directions = _sphere_directions()
    reach = radius * (1.0 + 2 * LOBULATION)

    def fits(center: np.ndarray) -> bool:
        if lobe_at(center) not in labels.LOBES:
            return False
        if not inside_lung(center + (reach + LUNG_MARGIN_MM) * directions).all():
            return False
        if any(np.linalg.norm(center - s.center_mm) < _reach_mm(s) + reach + NODULE_SPACING_MM for s in specs):
            return False
        return all(np.linalg.norm(0.5 * (a.start_mm + a.end_mm) - center) > reach + 15.0 for a in airways)

    found = vessel_contact_center_mm(vessels, radius, fits, rng)
    if found is None:
        raise AssertionError("phantom plan error: no vessel fits a juxta-vascular nodule")
    center, index = found
    spec = NoduleSpec(name, kind, int(lobe_at(center)), center, radius, random_bumps(rng), np.zeros(3))
    return spec, index


def make_demo_patient(seed: int = 0, progress: Optional[ProgressFn] = None,
                      cancel: Optional[CancelToken] = None) -> DemoPatient:
    """Build the deterministic synthetic chest CT (256 x 256 x 128 at 1.25 x 1.25 x 2 mm).

    Same ``seed`` -> identical arrays. Takes a few seconds on one CPU core.
    """
    report = progress or no_progress
    rng = np.random.default_rng(seed)
    grid = demo_grid()
    g = A.ChestGrid.of(grid)
    shape = grid.shape_kji

    report(0.0, "anatomy")
    aorta_segments = polyline_tube(AORTA_PATH_MM, AORTA_RADIUS_MM)
    aorta = rasterise_tubes(aorta_segments, grid)
    heart = np.broadcast_to(A.heart_mask(g), shape)
    excluded = A.heart_mask(g, A.PERICARDIAL_FAT_MM) | rasterise_tubes(aorta_segments, grid,
                                                                       AORTA_LUNG_CLEARANCE_MM)
    left, right = A.lung_side_mask(g, +1, excluded), A.lung_side_mask(g, -1, excluded)
    lung = left | right
    lobes = A.lobe_labels(g, left, right)
    inside_lung = _mask_lookup(grid, lung)

    def lobe_at(point_mm: np.ndarray) -> int:
        i, j, k = np.rint(grid.world_to_index(point_mm)).astype(int)
        return int(lobes[k, j, i]) if grid.contains_kji((k, j, i)) else 0

    check_cancel(cancel)
    report(0.15, "vessel and airway trees")
    vessel_tree, airway_tree = _lung_trees(rng, grid, {-1: right, +1: left}, inside_lung)
    specs = _plan_nodules(rng, inside_lung, lobe_at)
    for spec in specs:
        vessel_tree = prune_near(vessel_tree, spec.center_mm, _reach_mm(spec) + VESSEL_CLEARANCE_MM)
        airway_tree = prune_near(airway_tree, spec.center_mm, _reach_mm(spec) + VESSEL_CLEARANCE_MM)
    jv_spec, jv_index = _place_juxta_vascular(rng, vessel_tree, airway_tree, specs, inside_lung, lobe_at)
    vessel_tree = prune_near(vessel_tree, jv_spec.center_mm, _reach_mm(jv_spec) + VESSEL_CLEARANCE_MM,
                             keep=_ancestors(vessel_tree, jv_index))
    specs.append(jv_spec)

    check_cancel(cancel)
    report(0.3, "rasterising")
    vessels = rasterise_tubes(vessel_tree, grid) & lung
    central_airway = polyline_tube(TRACHEA_PATH_MM, TRACHEA_RADIUS_MM)
    bronchi = [seg for side in (-1, +1) for seg in polyline_tube(
        (CARINA_MM, MAIN_BRONCHUS_END_MM[side]), MAIN_BRONCHUS_RADIUS_MM[side])] + airway_tree
    trachea_lumen = rasterise_tubes(central_airway, grid)
    trachea_all = rasterise_tubes(central_airway, grid, AIRWAY_WALL_MM)
    bronchus_lumen = rasterise_tubes(bronchi, grid)
    bronchus_all = rasterise_tubes(bronchi, grid, AIRWAY_WALL_MM)
    ribs, rib_cortex = A.rib_labels(g)
    vertebrae, discs = A.vertebra_labels(g)
    ribs, rib_cortex = np.broadcast_to(ribs, shape), np.broadcast_to(rib_cortex, shape)
    vertebrae, discs = np.broadcast_to(vertebrae, shape), np.broadcast_to(discs, shape)
    sternum = np.broadcast_to(A.sternum_mask(g), shape)
    liver, stomach = A.below_diaphragm_masks(g)

    nodule_whole, nodule_core = [], []
    for spec in specs:
        whole, core = nodule_masks(spec, grid)
        whole &= lung & ~bronchus_all
        if spec.kind == "juxta-vascular":
            whole &= ~vessels
        nodule_whole.append(whole)
        nodule_core.append(core & whole)

    check_cancel(cancel)
    report(0.45, "texture")
    tex = _unit_texture(shape, TEXTURE_SIGMA_VOXELS, rng)
    rho = A.body_rho(g.x, g.y)

    def paint(hu: np.ndarray, where: np.ndarray, level: tuple[float, float]) -> None:
        where = np.broadcast_to(where, shape)
        hu[where] = level[0] + level[1] * tex[where]

    hu = np.full(shape, HU_AIR, np.float32)
    paint(hu, rho < 1.0, HU_FAT)
    paint(hu, ((rho < A.SKIN_FAT_RHO) & (rho >= A.CHEST_WALL_INNER_RHO)) | A.paraspinal_muscle_mask(g), HU_MUSCLE)
    paint(hu, rho < A.CHEST_WALL_INNER_RHO, HU_MEDIASTINAL_FAT)
    paint(hu, liver, HU_LIVER)
    paint(hu, stomach, HU_STOMACH)
    paint(hu, heart | aorta, HU_BLOOD)
    paint(hu, A.spinal_cord_mask(g), HU_SPINAL_CANAL)
    gravity = LUNG_GRAVITY_HU * np.clip((g.y + 60.0) / 120.0, 0.0, 1.0)
    hu[lung] = (HU_LUNG[0] + HU_LUNG[1] * tex + gravity)[lung]
    paint(hu, vessels, HU_BLOOD)
    paint(hu, trachea_all | bronchus_all, HU_AIRWAY_WALL)
    hu[trachea_lumen | bronchus_lumen] = HU_AIR
    paint(hu, ribs > 0, HU_MARROW)
    hu[rib_cortex] = HU_RIB_CORTEX
    paint(hu, vertebrae > 0, HU_VERTEBRA)
    canal_distance = A.distance_to_axis_mm(g, A.SPINAL_CANAL_CENTER_XY_MM)
    hu[np.broadcast_to(canal_distance >= A.SPINAL_CANAL_RADIUS_MM, shape) & (vertebrae > 0)
       & np.broadcast_to(A.distance_to_axis_mm(g, A.SPINE_CENTER_XY_MM) > A.VERTEBRA_RADIUS_MM, shape)] \
        = HU_NEURAL_ARCH
    paint(hu, discs, HU_DISC)
    paint(hu, sternum, HU_STERNUM)
    for spec, whole, core in zip(specs, nodule_whole, nodule_core):
        hu[whole] = nodule_hu(spec, tex[whole], core[whole])

    check_cancel(cancel)
    report(0.6, "scanner blur and noise")
    hu = ndimage.gaussian_filter(hu, PSF_SIGMA_VOXELS)
    noise = _unit_texture(shape, (NOISE_SIGMA_VOXELS,) * 3, rng)
    hu += NOISE_STD_HU * noise
    ct_array = np.clip(np.rint(hu), *HU_RANGE).astype(np.int16)

    report(0.85, "label map")
    lab = np.zeros(shape, np.uint8)
    lab[np.broadcast_to(rho < 1.0, shape)] = labels.BODY
    lab[liver] = labels.label_dict()["liver"]
    lab[stomach] = labels.label_dict()["stomach"]
    lab[heart] = labels.label_dict()["heart"]
    lab[aorta] = labels.label_dict()["aorta"]
    lab[np.broadcast_to(A.spinal_cord_mask(g), shape)] = labels.label_dict()["spinal cord"]
    lab[lung] = lobes[lung]
    lab[bronchus_all] = labels.AIRWAY
    lab[trachea_all] = labels.TRACHEA
    lab[ribs > 0] = ribs[ribs > 0]
    lab[vertebrae > 0] = vertebrae[vertebrae > 0]
    lab[sternum] = labels.label_dict()["sternum"]
    nodules = []
    for spec, whole in zip(specs, nodule_whole):
        lab[whole] = labels.NODULE
        nodules.append(PhantomNodule(spec.name, spec.kind, spec.subtype, np.asarray(spec.center_mm, float),
                                     2.0 * spec.radius_mm, grid.with_array(whole.astype(np.uint8)), spec.lobe))
    report(1.0, "demo patient ready")
    return DemoPatient(grid.with_array(ct_array), grid.with_array(lab), nodules,
                       grid.with_array(vessels.astype(np.uint8)), seed)
