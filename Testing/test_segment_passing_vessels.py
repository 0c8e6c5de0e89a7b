"""nodsynth.segment.passing_vessels: a vessel fused along a nodule's surface without a neck is
given back to the vessel; a vessel that runs into the nodule, or a blob, is not mistaken for one."""
from __future__ import annotations

import numpy as np
import pytest

from nodsynth.segment.component import isolate_nodule
from nodsynth.segment.mm_morphology import distance_from_voxel_mm
from nodsynth.segment.passing_vessels import fit_tube, remove_passing_vessels, voxel_points_mm

SPACING_KJI = (1.25, 0.7, 0.7)
SHAPE = (40, 64, 64)
CENTRE_KJI = (20, 32, 32)
NODULE_RADIUS_MM = 5.0
VESSEL_RADIUS_MM = 1.6


def positions_mm() -> np.ndarray:
    """Position (mm) of every voxel, shape ``SHAPE + (3,)``, from the array origin."""
    grids = np.meshgrid(*[np.arange(n) * s for n, s in zip(SHAPE, SPACING_KJI)], indexing="ij")
    return np.stack(grids, axis=-1)


def tube_mask(point_mm, direction, radius_mm: float) -> np.ndarray:
    """Voxels within ``radius_mm`` of the infinite line through ``point_mm`` along ``direction``."""
    direction = np.asarray(direction, dtype=float) / np.linalg.norm(direction)
    offset = positions_mm() - np.asarray(point_mm)
    along = offset @ direction
    return np.linalg.norm(offset - along[..., None] * direction, axis=-1) <= radius_mm


def ball() -> np.ndarray:
    return distance_from_voxel_mm(SHAPE, CENTRE_KJI, SPACING_KJI) <= NODULE_RADIUS_MM


def centre_mm() -> np.ndarray:
    return np.asarray(CENTRE_KJI) * np.asarray(SPACING_KJI)


def test_fit_tube_measures_a_cylinder_and_refuses_a_ball():
    direction = np.array([0.3, 1.0, 0.5]) / np.linalg.norm([0.3, 1.0, 0.5])
    cylinder = tube_mask(centre_mm(), direction, 2.0) & (distance_from_voxel_mm(SHAPE, CENTRE_KJI, SPACING_KJI) <= 12)
    tube = fit_tube(voxel_points_mm(cylinder, SPACING_KJI))
    assert tube is not None
    assert abs(abs(tube.direction @ direction) - 1.0) < 0.01
    assert tube.radius_mm == pytest.approx(2.0, rel=0.15)
    assert fit_tube(voxel_points_mm(ball(), SPACING_KJI)) is None


def test_a_vessel_running_past_the_nodule_is_given_back():
    nodule = ball()
    # axis 1.2 vessel radii outside the nodule surface: the tube overlaps the nodule's rim, no neck
    axis_point = centre_mm() + np.array([0.0, NODULE_RADIUS_MM + 0.6 * VESSEL_RADIUS_MM, 0.0])
    vessel = tube_mask(axis_point, (0.35, 0.0, 1.0), VESSEL_RADIUS_MM) & ~nodule
    found = isolate_nodule(nodule | vessel, CENTRE_KJI, SPACING_KJI)
    near = distance_from_voxel_mm(SHAPE, CENTRE_KJI, SPACING_KJI) <= NODULE_RADIUS_MM + 2 * VESSEL_RADIUS_MM
    vessel_near = vessel & near
    assert (found & vessel_near).sum() <= 0.15 * vessel_near.sum(), "the fused stretch of the vessel is taken back"
    assert (found & nodule).sum() >= 0.9 * nodule.sum()
    dice = 2 * (found & nodule).sum() / (found.sum() + nodule.sum())
    assert dice >= 0.9


def test_a_vessel_running_into_the_nodule_takes_nothing_from_it():
    nodule = ball()
    vessel = tube_mask(centre_mm(), (0.2, 0.0, 1.0), VESSEL_RADIUS_MM) & ~nodule  # enters and leaves through the centre
    kept = remove_passing_vessels(nodule, vessel, CENTRE_KJI, SPACING_KJI, NODULE_RADIUS_MM, 0.5 * NODULE_RADIUS_MM)
    assert np.array_equal(kept, nodule)


def test_the_same_vessel_moved_past_the_nodule_is_taken_back():
    nodule = ball()
    axis_point = centre_mm() + np.array([0.0, NODULE_RADIUS_MM + 0.6 * VESSEL_RADIUS_MM, 0.0])
    vessel = tube_mask(axis_point, (0.2, 0.0, 1.0), VESSEL_RADIUS_MM) & ~nodule
    fused = vessel & (distance_from_voxel_mm(SHAPE, CENTRE_KJI, SPACING_KJI) <= NODULE_RADIUS_MM + 2.0)
    kept = remove_passing_vessels(nodule | fused, vessel & ~fused, CENTRE_KJI, SPACING_KJI, NODULE_RADIUS_MM,
                                  0.5 * NODULE_RADIUS_MM)
    assert (kept & fused).sum() <= 0.3 * fused.sum(), "the stretch the earlier steps kept goes back to the vessel"
    assert (kept & nodule).sum() >= 0.85 * nodule.sum()


def test_a_vessel_that_stops_at_the_nodule_takes_nothing_from_it():
    """The tube of the previous test, present on one side of the contact only: it reaches the
    nodule (or turns away at it) but is not seen beyond it, so it does not run past."""
    nodule = ball()
    direction = np.array([0.2, 0.0, 1.0]) / np.linalg.norm([0.2, 0.0, 1.0])
    axis_point = centre_mm() + np.array([0.0, NODULE_RADIUS_MM + 0.6 * VESSEL_RADIUS_MM, 0.0])
    vessel = tube_mask(axis_point, direction, VESSEL_RADIUS_MM) & ~nodule
    one_side = vessel & ((positions_mm() - axis_point) @ direction < 0)
    fused = one_side & (distance_from_voxel_mm(SHAPE, CENTRE_KJI, SPACING_KJI) <= NODULE_RADIUS_MM + 2.0)
    both_sides_taken = remove_passing_vessels(nodule | fused, vessel & ~fused, CENTRE_KJI, SPACING_KJI,
                                              NODULE_RADIUS_MM, 0.5 * NODULE_RADIUS_MM)
    assert (both_sides_taken & fused).sum() < fused.sum(), "the same stretch is taken while the vessel goes on"
    kept = remove_passing_vessels(nodule | fused, one_side & ~fused, CENTRE_KJI, SPACING_KJI, NODULE_RADIUS_MM,
                                  0.5 * NODULE_RADIUS_MM)
    assert np.array_equal(kept, nodule | fused)
