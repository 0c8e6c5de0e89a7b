"""A :class:`~nodsynth.volume.Volume` in HU written as a CT Image Storage series (one file a slice,
explicit VR little endian), with the header a :class:`SeriesHeader` gives.

Voxels are rounded to integer HU and clipped to the range the pixel encoding stores (signed 16-bit,
intercept 0, unless a source series' encoding is followed). Slice k is InstanceNumber k + 1 at its own
position, whichever way k runs along the slice normal (a reader sorts by position).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from ...errors import InputError
from ...volume import Volume
from .series import CT_IMAGE_STORAGE, pydicom_module


@dataclass(frozen=True)
class PixelEncoding:
    """How HU are stored: ``HU = stored * 1 + intercept``, in ``bits_stored`` bits, signed or not."""

    intercept: int = 0
    signed: bool = True
    bits_stored: int = 16

    @property
    def stored_range(self) -> tuple[int, int]:
        if self.signed:
            return -(1 << (self.bits_stored - 1)), (1 << (self.bits_stored - 1)) - 1
        return 0, (1 << self.bits_stored) - 1

    @classmethod
    def of(cls, header) -> "PixelEncoding":
        """The encoding of a source slice; the default one when its slope is not 1 or intercept not whole."""
        slope, intercept = float(header.get("RescaleSlope", 1)), float(header.get("RescaleIntercept", 0))
        if slope != 1 or intercept != round(intercept) or int(header.get("BitsAllocated", 16)) != 16:
            return cls()
        return cls(int(intercept), bool(int(header.get("PixelRepresentation", 1))), int(header.get("BitsStored", 16)))

    def stored(self, hu: np.ndarray) -> np.ndarray:
        """Integer HU (rounded) minus the intercept, clipped to the stored range, as 16-bit."""
        low, high = self.stored_range
        values = np.clip(np.rint(np.asarray(hu, np.float64)) - self.intercept, low, high)
        return values.astype(np.int16 if self.signed else np.uint16)


@dataclass
class SeriesHeader:
    """The patient, study, series and provenance attributes every slice of a written series carries."""

    patient: dict = field(default_factory=dict)   # PatientName, PatientID, PatientBirthDate, PatientSex
    study: dict = field(default_factory=dict)     # StudyInstanceUID, StudyDate, StudyTime, StudyID, ...
    frame_of_reference_uid: str = ""
    series_instance_uid: str = ""
    series_number: int = 1
    series_description: str = ""
    image_type: tuple = ("ORIGINAL", "PRIMARY", "AXIAL")
    derivation_description: str = ""
    manufacturer: str = ""
    patient_position: str = ""
    uid_prefix: Optional[str] = None
    encoding: PixelEncoding = field(default_factory=PixelEncoding)


def _ds(value: float) -> str:
    """A decimal string (DS, at most 16 characters) as exact as it holds."""
    for digits in range(10, -1, -1):
        text = f"{value:.{digits}f}".rstrip("0").rstrip(".") if digits else f"{value:.0f}"
        if len(text) <= 16:
            return "0" if text in ("-0", "") else text
    raise InputError(f"{value} does not fit a DICOM decimal string")


def ct_slices(volume: Volume, header: SeriesHeader) -> list:
    """The pydicom datasets of the series (file meta included), slice k -> InstanceNumber k + 1."""
    pydicom = pydicom_module()
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    row, column = volume.direction[:, 0], volume.direction[:, 1]
    stored = header.encoding.stored(volume.array)
    slices = []
    for k in range(volume.shape_kji[0]):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CT_IMAGE_STORAGE
        meta.MediaStorageSOPInstanceUID = generate_uid(prefix=header.uid_prefix)
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.SOPClassUID, ds.SOPInstanceUID = CT_IMAGE_STORAGE, meta.MediaStorageSOPInstanceUID
        for keyword, value in {**header.patient, **header.study}.items():
            setattr(ds, keyword, value)
        ds.Modality = "CT"
        ds.SeriesInstanceUID, ds.SeriesNumber = header.series_instance_uid, header.series_number
        ds.SeriesDescription = header.series_description
        ds.Laterality, ds.PatientPosition = "", header.patient_position
        ds.FrameOfReferenceUID, ds.PositionReferenceIndicator = header.frame_of_reference_uid, ""
        ds.Manufacturer = header.manufacturer
        ds.ImageType = list(header.image_type)
        if header.derivation_description:
            ds.DerivationDescription = header.derivation_description
        ds.InstanceNumber, ds.AcquisitionNumber, ds.KVP = k + 1, 1, ""
        ds.ImageOrientationPatient = [_ds(v) for v in (*row, *column)]
        ds.ImagePositionPatient = [_ds(v) for v in volume.index_to_world([0.0, 0.0, float(k)])]
        ds.PixelSpacing = [_ds(volume.spacing[1]), _ds(volume.spacing[0])]
        ds.SliceThickness = _ds(volume.spacing[2])
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.Rows, ds.Columns = volume.shape_kji[1], volume.shape_kji[2]
        ds.BitsAllocated, ds.BitsStored = 16, header.encoding.bits_stored
        ds.HighBit, ds.PixelRepresentation = header.encoding.bits_stored - 1, int(header.encoding.signed)
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = str(header.encoding.intercept), "1", "HU"
        ds.PixelData = np.ascontiguousarray(stored[k]).astype(stored.dtype.newbyteorder("<")).tobytes()
        pydicom.dataset.validate_file_meta(ds.file_meta, enforce_standard=True)
        slices.append(ds)
    return slices


def save_slices(slices: list, folder: Path) -> list[Path]:
    """Write each dataset as ``folder/IM00001.dcm`` ... (the folder exists); their paths."""
    paths = []
    for ds in slices:
        path = folder / f"IM{int(ds.InstanceNumber):05d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths
