"""Shape library from the real LIDC nodule masks, procedural shapes, placement on a CT grid."""
from __future__ import annotations

import csv

import numpy as np
import pytest
from scipy import ndimage

from conftest import shared_path
from nodsynth.cli.main import main
from nodsynth.errors import InputError
from nodsynth.shapes import (ShapeLibrary, bounding_diameter_mm, place_shape, procedural_shape, random_rotation,
                             shape_measurements)
from nodsynth.volume import Volume
from nodsynth.io.volume_files import read_volume


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    masks = shared_path("lidc_vois", "nodule_mask")
    out = tmp_path_factory.mktemp("shapes") / "lidc_shapes.npz"
    assert main(["shapes", "build", "--masks", str(masks), "--out", str(out)]) == 0
    return ShapeLibrary.load(out)


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * np.logical_and(a, b).sum() / (a.sum() + b.sum())


def test_library_measurements_follow_reader_diameters(library):
    rows = list(csv.DictReader(open(shared_path("lidc_vois", "nodules.csv"))))
    assert len(library) == len(rows) == 736
    by_file = {e["source"]: e for e in library.entries}
    reader = np.array([float(r["diameter_mm"]) for r in rows])
    equivalent = np.array([by_file[r["file"]]["equivalent_diameter_mm"] for r in rows])
    rank = lambda x: np.argsort(np.argsort(x))
    spearman = np.corrcoef(rank(reader), rank(equivalent))[0, 1]
    print(f"Spearman(reader diameter, equivalent diameter) over 736 nodules = {spearman:.3f}")
    assert spearman > 0.8
    assert all(e["bounding_diameter_mm"] >= e["equivalent_diameter_mm"] * 0.9 for e in library.entries)


def test_shape_round_trip_onto_its_own_grid(library):
    """Placing a stored shape back at its centroid and equivalent diameter reproduces the real mask."""
    by_file = {e["source"]: i for i, e in enumerate(library.entries)}
    dices = []
    for name in ("LIDC-IDRI-0001_R_1.nii.gz", "LIDC-IDRI-0003_R_2.nii.gz"):
        mask = read_volume(shared_path("lidc_vois", "nodule_mask", name))
        entry = library.entries[by_file[name]]
        placed = place_shape(library.shapes[by_file[name]], mask, entry["centroid_lps_mm"],
                             entry["equivalent_diameter_mm"])
        dices.append(_dice(mask.array > 0, placed.array > 0))
    print("round-trip Dice:", np.round(dices, 3).tolist())
    assert min(dices) > 0.8


def test_place_shape_scales_and_stays_in_its_sphere(library):
    ct = Volume(np.zeros((40, 80, 80), np.int16), spacing=(0.7, 0.7, 1.25), origin=(-20.0, 10.0, -50.0))
    centre = ct.index_to_world([40, 40, 20])
    shape, _ = library.pick(seed=3)
    volumes = []
    for diameter in (8.0, 16.0):
        mask = place_shape(shape, ct, centre, diameter, rotation=random_rotation(5))
        kji = np.argwhere(mask.array > 0)
        distance = np.linalg.norm(ct.index_to_world(kji[:, ::-1].astype(float)) - centre, axis=1)
        assert distance.max() <= 1.1 * bounding_diameter_mm(shape, diameter) / 2
        volumes.append(mask.array.sum() * ct.voxel_volume_mm3)
    assert 6.0 < volumes[1] / volumes[0] < 10.5  # volume grows as diameter^3 (8x)
    with pytest.raises(InputError, match="outside"):
        place_shape(shape, ct, centre + 500.0, 10.0)
    with pytest.raises(InputError, match="positive"):
        place_shape(shape, ct, centre, 0.0)


def test_procedural_shapes():
    ct = Volume(np.zeros((50, 90, 90), np.int16), spacing=(0.6, 0.6, 0.6))
    centre = ct.index_to_world([45, 45, 25])

    def measure(**kw):
        mask = place_shape(procedural_shape(seed=2, **kw), ct, centre, 24.0)
        m = shape_measurements(mask)
        border = (mask.array > 0) & ~ndimage.binary_erosion(mask.array > 0)
        return m, border.sum() / (mask.array > 0).sum()

    sphere, sphere_ratio = measure()
    assert abs(sphere["equivalent_diameter_mm"] - 24.0) < 1.5 and sphere["elongation"] < 1.1
    elongated, _ = measure(elongation=2.0)
    assert 1.7 < elongated["elongation"] < 2.3
    _, lobulated_ratio = measure(lobulation=1.0)
    _, spiculated_ratio = measure(spiculation=1.0)
    print(f"surface/volume voxel ratio: sphere {sphere_ratio:.3f}, lobulated {lobulated_ratio:.3f}, "
          f"spiculated {spiculated_ratio:.3f}")
    assert lobulated_ratio > sphere_ratio and spiculated_ratio > sphere_ratio
    assert np.array_equal(procedural_shape(1.5, 0.3, 0.3, seed=4), procedural_shape(1.5, 0.3, 0.3, seed=4))
    assert not np.array_equal(procedural_shape(1.5, 0.3, 0.3, seed=4), procedural_shape(1.5, 0.3, 0.3, seed=5))
    with pytest.raises(InputError, match="elongation"):
        procedural_shape(elongation=0.5)
    with pytest.raises(InputError, match="spiculation"):
        procedural_shape(spiculation=2.0)


def test_cli_errors(tmp_path, capsys):
    assert main(["shapes", "build", "--masks", str(tmp_path / "none"), "--out", str(tmp_path / "x.npz")]) == 2
    assert "not found" in capsys.readouterr().err
    assert not (tmp_path / "x.npz").exists()
    with pytest.raises(InputError, match=".npz"):
        ShapeLibrary(np.zeros((1, 8, 8, 8), np.uint8), [{}]).save(tmp_path / "lib.bin")


@pytest.mark.parametrize("spacing", [(1.25, 1.25, 2.0), (0.7, 0.7, 1.0)])
@pytest.mark.parametrize("kw", [{}, {"elongation": 1.2, "lobulation": 0.4, "spiculation": 0.2},
                                {"elongation": 2.0, "spiculation": 1.0}])
def test_a_placed_nodule_measures_the_equivalent_diameter_asked(spacing, kw):
    """The diameter of place_shape is the equivalent-sphere diameter: the mask's volume gives it back (1 mm)."""
    ct = Volume(np.zeros((40, 64, 64), np.int16), spacing=spacing)
    centre = ct.index_to_world([32, 32, 20])
    for diameter in (6.0, 12.0, 20.0):
        shape = procedural_shape(seed=3, **kw)
        mask = place_shape(shape, ct, centre, diameter, rotation=random_rotation(1))
        measured = shape_measurements(mask)
        assert measured["equivalent_diameter_mm"] == pytest.approx(diameter, abs=1.0), (kw, diameter)
        assert measured["bounding_diameter_mm"] >= diameter
