"""Modules shared by the OP image and the Stereometric Relationship objects.

Each function fills one module of PS3.3 from an :class:`ExamContext`.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID

from eyer_desktop.core.dicom.context import MANUFACTURER, MODEL_NAME, ExamContext
from eyer_desktop.core.uids import (
    IMPLEMENTATION_CLASS_UID,
    IMPLEMENTATION_VERSION_NAME,
)


@dataclass(frozen=True)
class Code:
    """A coded concept: code value, coding scheme designator, code meaning."""

    value: str
    scheme: str
    meaning: str

    def item(self) -> Dataset:
        """Return the concept as a code sequence item."""
        item = Dataset()
        item.CodeValue = self.value
        item.CodingSchemeDesignator = self.scheme
        item.CodeMeaning = self.meaning
        return item


@dataclass(frozen=True)
class SeriesInfo:
    """The General Series values that differ between an exam's series."""

    instance_uid: str
    modality: str
    description: str
    laterality: str | None = None


def reference_item(
    sop_class_uid: str, sop_instance_uid: str, purpose: Code | None = None
) -> Dataset:
    """Return an image reference item, with its purpose of reference if given."""
    item = Dataset()
    item.ReferencedSOPClassUID = sop_class_uid
    item.ReferencedSOPInstanceUID = sop_instance_uid
    if purpose is not None:
        item.PurposeOfReferenceCodeSequence = [purpose.item()]
    return item


def add_patient(ds: Dataset, context: ExamContext) -> None:
    """Fill the Patient module (C.7.1.1)."""
    ds.PatientName = context.patient_name
    ds.PatientID = context.patient_id
    if context.issuer_of_patient_id is not None:
        ds.IssuerOfPatientID = context.issuer_of_patient_id
    ds.PatientBirthDate = context.patient_birth_date
    ds.PatientSex = context.patient_sex
    ds.PatientComments = context.patient_comments


def add_general_study(ds: Dataset, context: ExamContext) -> None:
    """Fill the General Study module (C.7.2.1)."""
    ds.StudyInstanceUID = context.study_instance_uid
    ds.StudyDate = context.capture_date
    ds.StudyTime = context.capture_time
    ds.ReferringPhysicianName = context.referring_physician_name
    ds.StudyID = context.study_id
    ds.AccessionNumber = context.accession_number
    if context.study_description is not None:
        ds.StudyDescription = context.study_description


def add_general_series(ds: Dataset, context: ExamContext, series: SeriesInfo) -> None:
    """Fill the General Series module (C.7.3.1), with the worklist request."""
    ds.Modality = series.modality
    ds.SeriesInstanceUID = series.instance_uid
    ds.SeriesNumber = context.series_number
    if series.laterality is not None:
        ds.Laterality = series.laterality
    ds.SeriesDate = context.capture_date
    ds.SeriesTime = context.capture_time
    ds.SeriesDescription = series.description
    ds.BodyPartExamined = "EYE"

    request = _request_attributes(context)
    if request is not None:
        ds.RequestAttributesSequence = [request]


def _request_attributes(context: ExamContext) -> Dataset | None:
    """Return the Request Attributes Sequence item of a worklist exam."""
    if context.exam.worklist is None:
        return None
    if not (context.requested_procedure_id or context.scheduled_procedure_step_id):
        return None
    item = Dataset()
    if context.accession_number:
        item.AccessionNumber = context.accession_number
    item.StudyInstanceUID = context.study_instance_uid
    if context.requested_procedure_description:
        item.RequestedProcedureDescription = context.requested_procedure_description
    if context.requested_procedure_id:
        item.RequestedProcedureID = context.requested_procedure_id
    if context.scheduled_procedure_step_id:
        item.ScheduledProcedureStepID = context.scheduled_procedure_step_id
    return item


def add_general_equipment(ds: Dataset, context: ExamContext) -> None:
    """Fill the General Equipment module (C.7.5.1)."""
    ds.Manufacturer = MANUFACTURER
    if context.institution_name is not None:
        ds.InstitutionName = context.institution_name
    if context.station_name is not None:
        ds.StationName = context.station_name
    ds.ManufacturerModelName = MODEL_NAME
    if context.device_serial_number:
        ds.DeviceSerialNumber = context.device_serial_number
    ds.SoftwareVersions = list(context.software_versions)


def add_sop_common(ds: Dataset, context: ExamContext, sop_class_uid: str) -> None:
    """Fill the SOP Common module (C.12.1), except the SOP Instance UID."""
    ds.SpecificCharacterSet = context.charset.value
    ds.SOPClassUID = sop_class_uid
    ds.InstanceCreationDate = context.creation_date
    ds.InstanceCreationTime = context.creation_time
    ds.TimezoneOffsetFromUTC = context.timezone_offset


def file_meta(
    context: ExamContext,
    sop_class_uid: str,
    sop_instance_uid: str | None,
    transfer_syntax_uid: str,
) -> FileMetaDataset:
    """Return the File Meta Information (PS3.10 7.1) of an instance, without
    Media Storage SOP Instance UID when ``sop_instance_uid`` is None.
    """
    meta = FileMetaDataset()
    meta.FileMetaInformationVersion = b"\x00\x01"
    meta.MediaStorageSOPClassUID = UID(sop_class_uid)
    if sop_instance_uid is not None:
        meta.MediaStorageSOPInstanceUID = UID(sop_instance_uid)
    meta.TransferSyntaxUID = UID(transfer_syntax_uid)
    meta.ImplementationClassUID = UID(IMPLEMENTATION_CLASS_UID)
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    if context.options.source_ae_title:
        meta.SourceApplicationEntityTitle = context.options.source_ae_title
    return meta
