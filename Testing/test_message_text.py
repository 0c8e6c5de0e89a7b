"""Issue 20 item 7: messages show numbers as numbers (no numpy reprs) and a CSV that is not UTF-8 gets a
one-line error naming the file and the expected encoding, not a UnicodeDecodeError traceback."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import shared_path
from nodsynth.cli.main import main
from nodsynth.errors import InputError
from nodsynth.labelmap import as_integer_labelmap
from nodsynth.volume import Volume
from nodsynth.io.volume_files import read_volume, write_volume

CASE = "LIDC-IDRI-0001_R_1.nii.gz"
LATIN1_NAME = "Gérard Dupré".encode("latin-1")


def test_non_integer_label_is_shown_as_a_number(tmp_path):
    labels = read_volume(shared_path("lidc_vois", "nodule_mask", CASE))
    array = labels.array.astype(np.float32)
    array[array > 0] = 23.4
    with pytest.raises(InputError) as caught:
        as_integer_labelmap(labels.with_array(array))
    message = str(caught.value)
    assert "e.g. 23.4" in message and "np." not in message and "float32" not in message


def test_bad_geometry_numbers_are_shown_as_numbers():
    with pytest.raises(InputError) as caught:
        Volume(np.zeros((2, 2, 2)), spacing=np.array([1.0, np.nan, 1.0], np.float32))
    assert str(caught.value) == "spacing (mm) must be three finite numbers, got [1.0, nan, 1.0]"


def latin1_csv(path, header: str, row: str) -> None:
    path.write_bytes(header.encode() + b"\n" + row.encode() + b"," + LATIN1_NAME + b"\n")


def test_latin1_pins_csv_names_the_file_and_utf8(tmp_path, capsys):
    ct = shared_path("lidc_vois", "image", CASE)
    table = tmp_path / "annotations.csv"
    latin1_csv(table, "ct_nifti_file,nodule_id,coordX,coordY,coordZ,reader",
               f"{ct.name},1,56.2,86.3,-115.9")
    out = tmp_path / "out"
    assert main(["segment", "--csv", str(table), "--ct-dir", str(ct.parent), "--out-dir", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    offset = table.read_bytes().index(b"\xe9")
    assert err == (f"nodsynth segment: error: {table} is not UTF-8 text (byte 0xe9 at byte {offset}); "
                   "save the annotation CSV as UTF-8")
    assert not out.exists()


def test_latin1_augment_manifest(tmp_path, capsys):
    labels = tmp_path / "labels"
    labels.mkdir()
    write_volume(read_volume(shared_path("lidc_vois", "nodule_mask", CASE)), labels / "a.nii.gz")
    manifest = tmp_path / "manifest.csv"
    latin1_csv(manifest, "label,note", "a.nii.gz")
    out = tmp_path / "out"
    assert main(["augment", str(manifest), "--out", str(out), "--percent", "90"]) == 2
    err = capsys.readouterr().err
    assert f"{manifest} is not UTF-8 text" in err and "save the manifest as UTF-8" in err
    assert not out.exists()


def test_latin1_batch_manifest(tmp_path, capsys):
    manifest = tmp_path / "jobs.jsonl"
    manifest.write_bytes(b'{"id": "caf\xe9", "op": "segment"}\n')
    assert main(["batch", "check", str(manifest)]) == 2
    assert f"{manifest} is not UTF-8 text (byte 0xe9 at byte 11); save the manifest as UTF-8" in capsys.readouterr().err
