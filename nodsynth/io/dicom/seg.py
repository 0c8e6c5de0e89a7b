"""Nodule masks written as a DICOM Segmentation (highdicom), one segment a nodule, coded as the Slicer
modules code a nodule: category Morphologically Abnormal Structure (SCT 49755003), type Nodule
(SCT 27925004), anatomic region Lung (SCT 39607008)."""
from __future__ import annotations

import numpy as np

from ... import __version__
from ...errors import InputError
from ...volume import Volume


def highdicom_module():
    """highdicom, or a one-line :class:`InputError` saying how to install it."""
    try:
        import highdicom
    except ImportError as exc:
        raise InputError("writing DICOM SEG and SR needs highdicom: pip install 'nodsynth[dicom]'") from exc
    return highdicom


def nodule_segmentation(slices: list, nodules: list[Volume], series_uid: str, uid_prefix=None,
                        manufacturer: str = "nodsynth"):
    """A SEG over ``slices`` (the CT datasets, k order) with segment n = ``nodules[n - 1]`` (0/1 masks on
    the CT grid)."""
    hd = highdicom_module()
    from pydicom.sr.codedict import codes
    from pydicom.uid import generate_uid

    labels = np.zeros(nodules[0].shape_kji, np.uint8)
    for number, nodule in enumerate(nodules, start=1):
        labels[np.asarray(nodule.array) != 0] = number
    algorithm = hd.AlgorithmIdentificationSequence(name="nodsynth", version=__version__,
                                                   family=codes.cid7162.ArtificialIntelligence)
    descriptions = [hd.seg.SegmentDescription(
        segment_number=number, segment_label=f"Nodule {number}",
        segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
        segmented_property_type=codes.SCT.Nodule, anatomic_regions=[codes.SCT.Lung],
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.SEMIAUTOMATIC, algorithm_identification=algorithm)
        for number in range(1, len(nodules) + 1)]
    return hd.seg.Segmentation(
        source_images=slices, pixel_array=np.ascontiguousarray(labels),
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY, segment_descriptions=descriptions,
        series_instance_uid=series_uid, series_number=slices[0].SeriesNumber + 1,
        sop_instance_uid=generate_uid(prefix=uid_prefix), instance_number=1, manufacturer=manufacturer,
        manufacturer_model_name="nodsynth", software_versions=__version__, device_serial_number="0",
        series_description="Nodule segmentation")
