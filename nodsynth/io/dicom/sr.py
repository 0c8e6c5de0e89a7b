"""Nodule measurements written as a TID 1500 Measurement Report (highdicom Comprehensive 3D SR): per
segment of the SEG, its volume (SCT 118565006, mm3), equivalent-sphere diameter (SCT 81827009
Diameter, mm) and longest diameter (SCT 103339001 Long axis, mm), referencing the segment."""
from __future__ import annotations

from ... import __version__
from .seg import highdicom_module

CT_CHEST = ("24627-2", "LN", "CT Chest")


def measurement_report(segmentation, measurements: list, series_uid: str, uid_prefix=None,
                       manufacturer: str = "nodsynth"):
    """The SR; ``measurements[n - 1]`` (a :class:`~nodsynth.measure.NoduleMeasurement`) is segment n's."""
    hd = highdicom_module()
    from pydicom.sr.codedict import codes
    from pydicom.uid import generate_uid

    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=generate_uid(prefix=uid_prefix), name="nodsynth", model_name=f"nodsynth {__version__}"))
    source = hd.sr.SourceSeriesForSegmentation(
        segmentation.ReferencedSeriesSequence[0].SeriesInstanceUID)
    groups = []
    for number, record in enumerate(measurements, start=1):
        values = [(codes.SCT.Volume, record.volume_mm3, codes.UCUM.CubicMillimeter),
                  (codes.SCT.Diameter, record.equivalent_diameter_mm, codes.UCUM.Millimeter),
                  (codes.SCT.LongAxis, record.longest_diameter_mm, codes.UCUM.Millimeter)]
        groups.append(hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=hd.sr.TrackingIdentifier(uid=generate_uid(prefix=uid_prefix),
                                                         identifier=f"Nodule {number}"),
            referenced_segment=hd.sr.ReferencedSegment(
                sop_class_uid=segmentation.SOPClassUID, sop_instance_uid=segmentation.SOPInstanceUID,
                segment_number=number, source_series=source),
            finding_type=codes.SCT.Nodule, finding_sites=[hd.sr.FindingSite(codes.SCT.Lung)],
            measurements=[hd.sr.Measurement(name=name, value=float(value), unit=unit) for name, value, unit in values]))
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=observer),
        procedure_reported=hd.sr.CodedConcept(*CT_CHEST), imaging_measurements=groups)
    return hd.sr.Comprehensive3DSR(
        evidence=[segmentation], content=report, series_instance_uid=series_uid,
        series_number=segmentation.SeriesNumber + 1, sop_instance_uid=generate_uid(prefix=uid_prefix),
        instance_number=1, manufacturer=manufacturer, series_description="Nodule measurements", is_complete=True)
