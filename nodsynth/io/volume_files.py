"""Reading and writing volume files: NIfTI / NRRD / MetaImage through SimpleITK after the voxel-data
integrity check, a DICOM CT series folder or a DICOM SEG file; writes are atomic."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Optional

import numpy as np

from ..errors import InputError
from ..volume import Volume
from .atomic import atomic_path
from .voxel_data import check_voxel_data


VOLUME_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")


def read_volume_grid(path: str | os.PathLike) -> Volume:
    """The voxel grid of a volume file from its header alone (the array is a zero-size broadcast of the
    file's shape: nothing is read into memory; a DICOM series is read whole)."""
    import SimpleITK as sitk

    from .dicom.series import dicom_kind

    if dicom_kind(path) is not None:
        volume = read_volume(path)
        return volume.with_array(np.broadcast_to(np.zeros((), np.uint8), volume.shape_kji))

    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as exc:
        raise InputError(f"cannot read {path} as a volume: {str(exc).strip().splitlines()[-1]}") from exc
    if reader.GetDimension() != 3:
        raise InputError(f"{path} is not a 3-D volume")
    i, j, k = reader.GetSize()
    return Volume(np.broadcast_to(np.zeros((), np.uint8), (k, j, i)), reader.GetSpacing(), reader.GetOrigin(),
                  np.asarray(reader.GetDirection()).reshape(3, 3))


def volume_stem(path: str | os.PathLike) -> str:
    """``cts/case_01.nii.gz`` -> ``case_01``: a volume file's name without its (double) suffix; a DICOM
    series chosen in a folder, ``cts/case_01::UID`` -> ``case_01_UID``."""
    from .dicom.series import split_series_path

    folder, uid = split_series_path(path)
    if uid is not None:
        return f"{folder.name}_{uid}"
    name = Path(path).name
    for suffix in sorted(VOLUME_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


def _check_volume_path(path: Path) -> None:
    if not path.name.lower().endswith(VOLUME_SUFFIXES):
        raise InputError(f"{path}: unsupported volume format; use one of {', '.join(VOLUME_SUFFIXES)} or a folder "
                         "holding a DICOM CT series")


def read_volume(path: str | os.PathLike) -> Volume:
    """Read a NIfTI / NRRD / MetaImage volume, a folder holding a DICOM CT series (``FOLDER::UID``
    picks one of several; see :mod:`nodsynth.io.dicom.read`) or a DICOM SEG file (a label map on its CT's
    grid, :mod:`nodsynth.io.dicom.seg_read`), into LPS geometry.

    Refused with :class:`InputError`: a file holding less voxel data than its header says (truncated),
    and NaN / infinite voxels (see :mod:`nodsynth.io.voxel_data`).
    """
    import SimpleITK as sitk

    from .dicom.series import dicom_kind

    kind = dicom_kind(path)
    if kind == "series":
        from .dicom.read import read_ct_series

        return read_ct_series(path)
    if kind == "file":
        from .dicom.seg_read import read_segmentation

        return read_segmentation(path)
    path = Path(path)
    if not path.is_file():
        raise InputError(f"volume file not found: {path}")
    _check_volume_path(path)
    check_voxel_data(path)
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise InputError(f"cannot read {path} as a volume: {str(exc).strip().splitlines()[-1]}") from exc
    return Volume.from_sitk(image)


def write_volume(volume: Volume, path: str | os.PathLike, compress: bool = True,
                 metadata: Optional[Mapping[str, str]] = None) -> Path:
    """Write ``volume`` atomically; the format follows the extension (``.nii.gz``, ``.nrrd``, ``.mha``).

    ``metadata``: header entries (SimpleITK metadata keys); NRRD and MHA keep any key, NIfTI only its
    fixed fields (``ITK_FileNotes`` is its 80-character ``descrip``).
    """
    import SimpleITK as sitk

    path = Path(path)
    _check_volume_path(path)
    image = volume.to_sitk()
    for key, value in (metadata or {}).items():
        image.SetMetaData(str(key), str(value))
    with atomic_path(path) as tmp:
        sitk.WriteImage(image, str(tmp), useCompression=compress)
    return path
