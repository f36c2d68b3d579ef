"""Worklist request identifiers, name patterns and response mapping."""

from __future__ import annotations

import datetime as dt

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.uid import ExplicitVRLittleEndian

from eyer_desktop.core.errors import ValidationError
from eyer_desktop.core.exams import Sex
from eyer_desktop.core.net import WorklistItem, WorklistQuery

DAY = dt.date(2026, 3, 4)


def test_query_defaults_to_today() -> None:
    step = WorklistQuery().identifier().ScheduledProcedureStepSequence[0]

    assert step.ScheduledProcedureStepStartDate == f"{dt.date.today():%Y%m%d}"


def test_query_identifier_keys() -> None:
    query = WorklistQuery(
        station_ae_title="EYERDESKTOP",
        modality="OP",
        dates=(DAY, DAY + dt.timedelta(days=3)),
        patient_name="SILVA*",
    )

    identifier = query.identifier()

    step = identifier.ScheduledProcedureStepSequence[0]
    assert step.ScheduledStationAETitle == "EYERDESKTOP"
    assert step.Modality == "OP"
    assert step.ScheduledProcedureStepStartDate == "20260304-20260307"
    assert identifier.PatientName == ""
    for keyword in ("PatientID", "AccessionNumber", "StudyInstanceUID"):
        assert identifier[keyword].value in ("", None)
    assert "ScheduledProcedureStepID" in step


def test_query_any_date_sends_empty_key() -> None:
    step = WorklistQuery(dates=None).identifier().ScheduledProcedureStepSequence[0]

    assert step.ScheduledProcedureStepStartDate in ("", None)


@pytest.mark.parametrize(
    ("pattern", "name", "matches"),
    [
        ("conceição*", "CONCEIÇÃO^MARIA", True),
        ("CONCEICAO*", "CONCEIÇÃO^MARIA", True),
        ("*JOSÉ", "ÇAĞLAR^JOSÉ", True),
        ("?AĞ*", "ÇAĞLAR^JOSÉ", True),
        ("SILVA", "SILVA^JOAO", True),
        ("silva", "SOUZA^ANA", False),
        ("SILVA^JO?O", "SILVA^JOAO", True),
        ("Silva Ana", "SILVA^ANA", True),
        ("ANA SILVA", "SILVA^ANA", True),
        ("Ana  Silva*", "SILVA^ANA^MARIA", False),
        ("ana maria silva", "SILVA^ANA^MARIA", True),
        ("d'avila*", "D'ÁVILA^JOSÉ", True),
        ("A.B*", "AXB", False),
        ("", "ANYONE", True),
    ],
)
def test_local_name_matching(pattern: str, name: str, matches: bool) -> None:
    assert WorklistQuery(patient_name=pattern).matches_name(name) is matches


@pytest.mark.parametrize(
    "changes",
    [
        {"modality": "op"},
        {"modality": "X" * 17},
        {"station_ae_title": "A" * 17},
        {"patient_name": "A\\B"},
        {"dates": (DAY, DAY - dt.timedelta(days=1))},
    ],
)
def test_query_rejects_invalid_value(changes: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        WorklistQuery(**changes)  # type: ignore[arg-type]


def response(charset: str | None, name_bytes: bytes) -> Dataset:
    """Encode a worklist response and read it back, as pynetdicom delivers it."""
    dataset = Dataset()
    if charset:
        dataset.SpecificCharacterSet = charset
    dataset.PatientName = "PLACEHOLDER"
    dataset.PatientID = "P1"
    dataset.PatientSex = "O"
    dataset.PatientBirthDate = "19990231"
    step = Dataset()
    step.ScheduledProcedureStepStartDate = "20260304"
    step.ScheduledProcedureStepStartTime = "1405"
    step.Modality = "OP"
    dataset.ScheduledProcedureStepSequence = [step]
    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.31"
    dataset.file_meta.MediaStorageSOPInstanceUID = "2.25.1"
    buffer = DicomBytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    encoded = buffer.getvalue().replace(b"PLACEHOLDER ", b"PLACEHOLDER")
    encoded = encoded.replace(b"PLACEHOLDER", name_bytes.ljust(12, b" "))
    return dcmread(DicomBytesIO(encoded))


@pytest.mark.parametrize(
    ("charset", "codec"),
    [
        ("ISO_IR 100", "latin-1"),
        ("ISO_IR 192", "utf-8"),
        (None, "latin-1"),
        (None, "utf-8"),
    ],
)
def test_item_decodes_name(charset: str | None, codec: str) -> None:
    name = "JOÃO^ZÉ"
    identifier = response(charset, name.encode(codec))

    item = WorklistItem.from_identifier(identifier)

    assert item.patient_name.family == "JOÃO"
    assert item.patient_name.given == "ZÉ"


def test_item_maps_fields_and_invalid_values() -> None:
    item = WorklistItem.from_identifier(response("ISO_IR 192", b"A^B"))

    assert item.sex is Sex.OTHER
    assert item.birth_date is None  # 31 February
    assert item.scheduled_date == DAY
    assert item.scheduled_time == dt.time(14, 5)
    assert item.modality == "OP"
    assert item.accession_number == ""


def test_item_to_patient_and_link() -> None:
    item = WorklistItem.from_identifier(response("ISO_IR 192", b"SILVA^ANA^M"))

    patient = item.to_patient(document_type="CPF")
    link = item.to_worklist_link()

    assert patient.name.family == "SILVA"
    assert patient.name.given == "ANA"
    assert patient.name.middle == "M"
    assert patient.document.type == "CPF"
    assert patient.document.number == "P1"
    assert link.patient_id == "P1"
