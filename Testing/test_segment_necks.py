"""nodsynth.segment.component.split_at_necks: a blob the opening left partly attached to the
nodule goes back to the blob, the split falling on the neck between the two."""
from __future__ import annotations

import numpy as np

from nodsynth.segment.component import split_at_necks
from nodsynth.segment.mm_morphology import component_of, distance_from_voxel_mm, edt_mm

SPACING_KJI = (1.0, 0.7, 0.7)
SHAPE = (24, 40, 48)
NODULE_CENTRE = (12, 20, 14)  # voxel k, j, i
NODULE_MM, BLOB_MM, CENTRES_APART_MM = 5.0, 3.0, 7.0


def dumbbell():
    """Two overlapping balls along i and where (in mm along i from the nodule centre) their surfaces meet."""
    nodule = distance_from_voxel_mm(SHAPE, NODULE_CENTRE, SPACING_KJI) <= NODULE_MM
    blob_centre = (NODULE_CENTRE[0], NODULE_CENTRE[1], NODULE_CENTRE[2] + CENTRES_APART_MM / SPACING_KJI[2])
    blob = distance_from_voxel_mm(SHAPE, blob_centre, SPACING_KJI) <= BLOB_MM
    neck_mm = (CENTRES_APART_MM ** 2 + NODULE_MM ** 2 - BLOB_MM ** 2) / (2 * CENTRES_APART_MM)
    along_i_mm = (np.arange(SHAPE[2]) - NODULE_CENTRE[2]) * SPACING_KJI[2]
    return nodule, blob, neck_mm, np.broadcast_to(along_i_mm, SHAPE)


def test_the_blob_side_of_the_neck_goes_back_to_the_blob():
    nodule, blob, neck_mm, along_i_mm = dumbbell()
    piece = nodule | blob
    depth = edt_mm(piece, SPACING_KJI)
    core = component_of(depth > 0.5 * NODULE_MM, NODULE_CENTRE)  # the blob's own deep part is not the core
    opened = piece & (along_i_mm < neck_mm + 1.5)  # an opening that kept the blob's near side too
    kept = split_at_necks(depth, core, opened)
    assert not (kept & ~opened).any()
    assert (kept & core).sum() == core.sum()
    assert not (kept & (along_i_mm > neck_mm + 0.75)).any(), "the blob's side of the neck is given back"
    nodule_side = nodule & (along_i_mm < neck_mm - 0.75)
    assert (kept & nodule_side).sum() == nodule_side.sum(), "the nodule's side of the neck is kept"


def test_nothing_changes_when_the_opening_removed_nothing():
    nodule, _, _, _ = dumbbell()
    depth = edt_mm(nodule, SPACING_KJI)
    core = depth > 0.5 * NODULE_MM
    assert np.array_equal(split_at_necks(depth, core, nodule), nodule)
