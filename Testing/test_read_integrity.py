"""Issue 20 items 1-2: truncated volume files and NaN / Inf voxels are refused by the one reader every verb
uses, with a one-line message naming the file, and the verbs write nothing."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from conftest import shared_path
from nodsynth.cli.main import main
from nodsynth.errors import InputError
from nodsynth.measure import measure_nodule
from nodsynth.volume import Volume
from nodsynth.io.volume_files import read_volume, write_volume

FORMATS = [("nii.gz", True), ("nii", False), ("nrrd", False), ("nrrd", True), ("mha", False), ("mha", True)]
CASE = "LIDC-IDRI-0001_R_1.nii.gz"


@pytest.fixture(scope="module")
def real_voi():
    """The real LIDC-IDRI-0001 nodule VOI (int16 HU) and its expert mask."""
    return (read_volume(shared_path("lidc_vois", "image", CASE)),
            read_volume(shared_path("lidc_vois", "nodule_mask", CASE)))


def centre_point(mask: Volume) -> str:
    centre = mask.index_to_world(np.argwhere(mask.array > 0).mean(axis=0)[::-1])
    return "--point=" + ",".join(f"{v:.2f}" for v in centre)


def cut(path, fraction: float) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * fraction)])


@pytest.mark.parametrize("suffix,compress", FORMATS)
@pytest.mark.parametrize("fraction", [0.7, 0.995])
def test_truncated_file_is_refused_by_segment(real_voi, tmp_path, capsys, suffix, compress, fraction):
    ct, mask = real_voi
    path = tmp_path / f"ct.{suffix}"
    write_volume(ct, path, compress=compress)
    cut(path, fraction)
    out = tmp_path / "out" / "mask.nii.gz"
    assert main(["segment", "--ct", str(path), centre_point(mask), "--out", str(out)]) == 2
    message = capsys.readouterr().err.strip()
    assert "\n" not in message and f"{path} is truncated" in message and "bytes of voxel data expected" in message
    assert not out.parent.exists()


def test_truncated_message_gives_the_sizes(real_voi, tmp_path):
    ct, _ = real_voi
    path = tmp_path / "ct.nii"
    write_volume(ct, path, compress=False)
    expected = ct.array.size * 2
    path.write_bytes(path.read_bytes()[:-1000])
    with pytest.raises(InputError, match=f"{expected:,} bytes of voxel data expected, {expected - 1000:,} found"):
        read_volume(path)


def test_complete_files_still_read_identically(real_voi, tmp_path):
    ct, _ = real_voi
    for suffix, compress in FORMATS:
        path = tmp_path / f"ct_{int(compress)}.{suffix}"
        write_volume(ct, path, compress=compress)
        assert np.array_equal(read_volume(path).array, ct.array)


def nan_ct(ct: Volume, value: float, box=(slice(2, 4), slice(5, 9), slice(6, 7))) -> Volume:
    array = ct.array.astype(np.float32)
    array[box] = value
    return ct.with_array(array)


@pytest.mark.parametrize("suffix", ["nii.gz", "nrrd", "mha"])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_nonfinite_ct_is_refused_naming_count_and_place(real_voi, tmp_path, suffix, value):
    ct, _ = real_voi
    path = tmp_path / f"ct.{suffix}"
    write_volume(nan_ct(ct, value), path)
    with pytest.raises(InputError) as caught:
        read_volume(path)
    assert str(caught.value) == (f"{path} holds 8 NaN or infinite voxel(s) within voxel index i,j,k = [6, 5, 2]..[6, 8, 3]; "
                                 "a CT, label map or mask must hold finite numbers")


def test_measure_refuses_nan_and_never_writes_nan_json(real_voi, tmp_path, capsys):
    ct, mask = real_voi
    ct_path, mask_path, out = tmp_path / "ct.nii.gz", tmp_path / "mask.nii.gz", tmp_path / "m.json"
    k, j, i = np.argwhere(mask.array > 0)[0]
    write_volume(nan_ct(ct, np.nan, (slice(k, k + 1), slice(j, j + 1), slice(i, i + 1))), ct_path)
    write_volume(mask, mask_path)
    assert main(["measure", "--ct", str(ct_path), "--mask", str(mask_path), "--json", str(out)]) == 2
    assert "1 NaN or infinite voxel(s) at voxel index" in capsys.readouterr().err
    assert not out.exists()
    with pytest.raises(InputError, match="NaN or infinite"):  # the library too, given an in-memory CT
        measure_nodule(nan_ct(ct, np.nan, (slice(k, k + 1), slice(j, j + 1), slice(i, i + 1))), mask)


def test_all_nan_ct_is_not_called_a_picture(real_voi, tmp_path, capsys):
    ct, mask = real_voi
    path = tmp_path / "ct.nii.gz"
    write_volume(ct.with_array(np.full(ct.array.shape, np.nan, np.float32)), path)
    assert main(["segment", "--ct", str(path), centre_point(mask), "--out", str(tmp_path / "m.nii.gz")]) == 2
    message = capsys.readouterr().err
    assert f"{ct.array.size:,} NaN or infinite voxel(s)" in message and "8-bit" not in message


def test_nan_mask_and_label_map_are_refused(real_voi, tmp_path, capsys):
    ct, mask = real_voi
    ct_path, mask_path = tmp_path / "ct.nii.gz", tmp_path / "mask.nrrd"
    write_volume(ct, ct_path)
    write_volume(nan_ct(mask, np.nan), mask_path)
    assert main(["measure", "--ct", str(ct_path), "--mask", str(mask_path)]) == 2
    assert f"{mask_path} holds 8 NaN" in capsys.readouterr().err


def test_detached_data_file_truncation_names_both_files(real_voi, tmp_path):
    ct, _ = real_voi
    header = tmp_path / "ct.mhd"
    write_volume(ct, header, compress=False)
    raw = next(p for p in tmp_path.iterdir() if p.suffix == ".raw")
    cut(raw, 0.5)
    with pytest.raises(InputError, match=f"{header}: its data file {raw} is truncated"):
        read_volume(header)


def test_bgzip_style_multi_member_gzip_reads(real_voi, tmp_path):
    """A .nii.gz made of several gzip members in a row (bgzip, pigz --independent) is complete."""
    import gzip

    ct, _ = real_voi
    plain = tmp_path / "ct.nii"
    write_volume(ct, plain, compress=False)
    data = plain.read_bytes()
    members = tmp_path / "members.nii.gz"
    members.write_bytes(b"".join(gzip.compress(data[a:a + 5000]) for a in range(0, len(data), 5000)))
    assert np.array_equal(read_volume(members).array, ct.array)
    shutil.copy(members, tmp_path / "cut.nii.gz")
    cut(tmp_path / "cut.nii.gz", 0.9)
    with pytest.raises(InputError, match="is truncated"):
        read_volume(tmp_path / "cut.nii.gz")


@pytest.mark.parametrize("edit", ["magic", "spacing"])
def test_corrupted_nifti_header_is_refused(real_voi, tmp_path, edit):
    """SimpleITK reads a .nii without its magic as Analyze 7.5 and takes a NaN spacing as 1 mm."""
    import struct

    ct, _ = real_voi
    path = tmp_path / "ct.nii"
    write_volume(ct, path, compress=False)
    data = bytearray(path.read_bytes())
    if edit == "magic":
        data[344:348] = b"xx1\0"
    else:
        struct.pack_into("<f", data, 80, float("nan"))
    path.write_bytes(bytes(data))
    expected = ("is not a NIfTI file" if edit == "magic"
                else r"the NIfTI header's voxel spacing \(pixdim\) is not finite: \[nan, ")
    with pytest.raises(InputError, match=expected):
        read_volume(path)


def test_in_memory_nan_ct_is_refused_by_the_ct_check(real_voi):
    """The library path (no file): segment_nodule's CT check names the NaN voxels, not an 8-bit picture."""
    from nodsynth.segment import segment_nodule

    ct, mask = real_voi
    all_nan = ct.with_array(np.full(ct.array.shape, np.nan, np.float32))
    centre = mask.index_to_world(np.argwhere(mask.array > 0).mean(axis=0)[::-1])
    with pytest.raises(InputError) as caught:
        segment_nodule(all_nan, centre)
    assert str(caught.value).startswith(f"the CT holds {ct.array.size:,} NaN or infinite voxel(s)")
