"""Exam-level values of a conversion, validated and encoded once per exam.

Every instance of an exam (each OP image and the Stereometric Relationship
object) takes its Patient, Study and Equipment attributes from one
:class:`ExamContext`, so those attributes are byte-identical across the
study, as dcentvfy and archives expect.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from dataclasses import dataclass
from typing import Any

from eyer_desktop import __version__
from eyer_desktop.core.dicom.charset import (
    CharacterSet,
    check_identifier,
    check_length,
    clean_line,
    person_name,
    prepare_text,
    remove_control_characters,
    truncate_encoded,
)
from eyer_desktop.core.dicom.dates import (
    format_date,
    format_datetime,
    format_study_id,
    format_time,
    format_utc_offset,
)
from eyer_desktop.core.dicom.options import ConversionOptions, NameOrder
from eyer_desktop.core.errors import ConversionError
from eyer_desktop.core.exams import Exam, ExamType, PatientName

logger = logging.getLogger(__name__)

MANUFACTURER = "Phelcom Technologies"
MODEL_NAME = "Eyer"
CONVERTER_VERSION = f"Eyer Desktop {__version__}"

# Maximum lengths in bytes of the value representations used here (PS3.5
# Table 6.2-1).
SH_MAX = 16
LO_MAX = 64
PN_MAX = 64
LT_MAX = 10240
UI_MAX = 64
IS_MAX = 2**31 - 1

# Series Description of each exam type, as the device names them.
SERIES_DESCRIPTIONS = {
    ExamType.COLOR: "Color",
    ExamType.RED_FREE: "Red-free",
    ExamType.TEXTURE: "Texture",
    ExamType.STEREO: "Stereo",
    ExamType.PANORAMIC: "Panoramic",
}
MONTAGE_SERIES_DESCRIPTION = "Panoramic montage"
STEREO_SERIES_DESCRIPTION = "Stereo relationship"

_UID_PATTERN = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*")


@dataclass(frozen=True)
class ExamContext:
    """Validated, encodable exam-level attribute values.

    Text values are already transliterated for the character set and checked
    against their length limits. Empty strings are written as empty Type 2
    attributes; None means the attribute is left out.
    """

    exam: Exam
    options: ConversionOptions
    charset: CharacterSet
    # Patient
    patient_name: str
    patient_id: str
    issuer_of_patient_id: str | None
    patient_birth_date: str
    patient_sex: str
    patient_comments: str
    # General Study (Study Date and Time are the capture date and time)
    study_instance_uid: str
    study_id: str
    accession_number: str
    referring_physician_name: str
    study_description: str | None
    requested_procedure_id: str
    requested_procedure_description: str
    scheduled_procedure_step_id: str
    # General Series
    series_number: str
    # General Equipment
    institution_name: str | None
    station_name: str | None
    device_serial_number: str
    software_versions: tuple[str, str]
    # Times of capture and of conversion
    capture_date: str
    capture_time: str
    acquisition_datetime: str
    timezone_offset: str
    creation_date: str
    creation_time: str
    # Ophthalmic acquisition
    pupil_dilated: str


def build_context(
    exam: Exam, options: ConversionOptions, created_at: dt.datetime | None = None
) -> ExamContext:
    """Validate the exam-level values and encode them for the character set.

    Args:
        exam: The exam to convert.
        options: Conversion settings.
        created_at: Instance creation time; now when None.

    Raises:
        ConversionError: A value is invalid or too long for its attribute.
    """
    charset = options.specific_character_set
    captured = _capture_time(exam)
    created = (created_at or dt.datetime.now(dt.UTC)).astimezone(captured.tzinfo)
    worklist = exam.worklist

    study_uid = exam.uids.study_instance_uid
    if worklist is not None and worklist.study_instance_uid:
        study_uid = worklist.study_instance_uid
    check_uid("Study Instance UID", study_uid)
    procedure_description = _requested_procedure_description(exam, charset)

    return ExamContext(
        exam=exam,
        options=options,
        charset=charset,
        patient_name=_patient_name(exam.patient.name, options.name_order, charset),
        patient_id=_patient_id(exam, options, charset),
        issuer_of_patient_id=_issuer_of_patient_id(exam, charset),
        patient_birth_date=_date(exam.patient.birth_date),
        patient_sex=exam.patient.sex.value if exam.patient.sex else "",
        patient_comments=_patient_comments(exam, charset),
        study_instance_uid=study_uid,
        study_id=format_study_id(captured),
        accession_number=_worklist_identifier(
            "Accession Number", worklist.accession_number if worklist else "", charset
        ),
        referring_physician_name=_referring_physician(exam, charset),
        study_description=procedure_description or None,
        requested_procedure_id=_worklist_identifier(
            "Requested Procedure ID",
            worklist.requested_procedure_id if worklist else "",
            charset,
        ),
        requested_procedure_description=procedure_description,
        scheduled_procedure_step_id=_worklist_identifier(
            "Scheduled Procedure Step ID",
            worklist.scheduled_procedure_step_id if worklist else "",
            charset,
        ),
        series_number=_series_number(exam),
        institution_name=_institution_name(exam, options, charset),
        station_name=_station_name(options, charset),
        device_serial_number=_equipment_text(
            "Device serial number", exam.device.serial_number, charset
        ),
        software_versions=(
            _equipment_text(
                "Camera software version", exam.device.software_version, charset
            ),
            CONVERTER_VERSION,
        ),
        capture_date=_date(captured.date()),
        capture_time=format_time(captured),
        acquisition_datetime=format_datetime(captured),
        timezone_offset=format_utc_offset(captured),
        creation_date=_date(created.date()),
        creation_time=format_time(created),
        pupil_dilated=_pupil_dilated(exam.pupil_dilated),
    )


def check_uid(field: str, uid: str) -> None:
    """Raise ConversionError unless the text is a valid DICOM UID."""
    if len(uid) > UI_MAX or not _UID_PATTERN.fullmatch(uid):
        raise ConversionError(
            f"{field} {uid!r} is not a valid DICOM UID (digits and dots, no "
            f"leading zeros, at most {UI_MAX} characters). Correct the exam's UIDs."
        )


def _capture_time(exam: Exam) -> dt.datetime:
    captured = exam.captured_at
    if captured.tzinfo is None or captured.utcoffset() is None:
        raise ConversionError(
            f"Exam {exam.exam_id}: the capture time has no UTC offset. "
            f"Record the device's UTC offset with the capture time."
        )
    return captured


def _date(value: dt.date | None) -> str:
    return format_date(value) if value is not None else ""


def _patient_name(name: PatientName, order: NameOrder, charset: CharacterSet) -> str:
    if order is NameOrder.FAMILY_GIVEN:
        components = [name.family, name.given, name.middle]
    else:
        components = [name.given, name.family, name.middle]
    value = person_name(components, charset)
    check_length(
        "Patient's Name",
        value,
        PN_MAX,
        charset,
        "Shorten the patient's name in the exam's patient data.",
        vr="PN",
    )
    return value


def _patient_id(exam: Exam, options: ConversionOptions, charset: CharacterSet) -> str:
    worklist = exam.worklist
    if worklist is not None and worklist.patient_id:
        return check_identifier(
            "Patient ID from the worklist",
            worklist.patient_id,
            LO_MAX,
            charset,
            "Correct the patient ID in the worklist.",
            vr="LO",
        )
    value = options.dicom_prefix + exam.patient.document.number
    return check_identifier(
        "Patient ID (DICOM prefix + clinic document)",
        value,
        LO_MAX,
        charset,
        "Shorten the DICOM prefix or correct the clinic document number.",
        vr="LO",
    )


def _issuer_of_patient_id(exam: Exam, charset: CharacterSet) -> str | None:
    worklist = exam.worklist
    if worklist is not None and worklist.patient_id:
        issuer = worklist.issuer_of_patient_id
    else:
        issuer = exam.patient.document.type
    if not issuer.strip():
        return None
    return check_identifier(
        "Issuer of Patient ID",
        issuer,
        LO_MAX,
        charset,
        "Shorten the clinic document type or the worklist's issuer.",
        vr="LO",
    )


def _patient_comments(exam: Exam, charset: CharacterSet) -> str:
    content = {
        "anamnesis": exam.anamnesis,
        "diopters": {"right": exam.diopters.right, "left": exam.diopters.left},
    }
    try:
        text = json.dumps(_clean_json(content, charset), ensure_ascii=False)
    except (TypeError, ValueError) as err:
        raise ConversionError(
            f"Exam {exam.exam_id}: the anamnesis cannot be written as JSON "
            f"({err}). Keep only text, numbers, true/false, lists and objects."
        ) from err
    check_length(
        "Patient Comments (anamnesis and diopters as JSON)",
        text,
        LT_MAX,
        charset,
        "Shorten the anamnesis answers.",
        vr="LT",
    )
    return text


def _clean_json(value: Any, charset: CharacterSet) -> Any:
    """Transliterate and strip control characters from every string of a JSON
    value. JSON escapes the C0 controls itself; C1 controls and lone
    surrogates are removed.
    """
    if isinstance(value, str):
        text = prepare_text(value, charset)
        return "".join(
            character
            for character in text
            if not 0x7F <= ord(character) <= 0x9F
            and not 0xD800 <= ord(character) <= 0xDFFF
        )
    if isinstance(value, dict):
        return {
            _clean_json(str(key), charset): _clean_json(item, charset)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [_clean_json(item, charset) for item in value]
    return value


def _worklist_identifier(field: str, value: str, charset: CharacterSet) -> str:
    if not value:
        return ""
    return check_identifier(
        field, value, SH_MAX, charset, "Correct the value in the worklist.", vr="SH"
    )


def _referring_physician(exam: Exam, charset: CharacterSet) -> str:
    worklist = exam.worklist
    if worklist is None or not worklist.referring_physician_name:
        return ""
    # The worklist already delivers a PN value: keep its component separators,
    # clean each component.
    components = remove_control_characters(worklist.referring_physician_name)
    groups = components.split("=")[0].split("\\")[0].split("^")
    value = person_name(groups, charset)
    check_length(
        "Referring Physician's Name",
        value,
        PN_MAX,
        charset,
        "Correct the referring physician's name in the worklist.",
        vr="PN",
    )
    return value


def _requested_procedure_description(exam: Exam, charset: CharacterSet) -> str:
    worklist = exam.worklist
    if worklist is None:
        return ""
    return _description(worklist.requested_procedure_description, charset)


def _series_number(exam: Exam) -> str:
    number = exam.sequence_number
    if not 0 <= number <= IS_MAX:
        raise ConversionError(
            f"Exam {exam.exam_id}: sequential number {number} does not fit the "
            f"DICOM IS type (0 to {IS_MAX}). Correct the exam's sequential number."
        )
    return str(number)


def _description(text: str, charset: CharacterSet) -> str:
    # NOTE: descriptions are cut to 64 bytes at a character boundary instead of
    # failing the conversion; they only label the study for people.
    value = clean_line(prepare_text(text, charset).replace("\\", "/"))
    return truncate_encoded(value, LO_MAX, charset)


def _institution_name(
    exam: Exam, options: ConversionOptions, charset: CharacterSet
) -> str | None:
    name = exam.device.clinic_name.strip() or options.institution_name.strip()
    if not name:
        return None
    # NOTE: a clinic name over 64 bytes is cut at a character boundary. The
    # name only labels the source, so it must not stop every exam of the
    # clinic from converting.
    value = _description(name, charset)
    if value != clean_line(prepare_text(name, charset).replace("\\", "/")):
        logger.info("Institution Name cut to %d bytes", LO_MAX)
    return value


def _station_name(options: ConversionOptions, charset: CharacterSet) -> str | None:
    name = clean_line(prepare_text(options.station_name, charset))
    if not name:
        return None
    check_length(
        "Station name",
        name,
        SH_MAX,
        charset,
        "Use a station name of at most 16 characters.",
        vr="SH",
    )
    return name


def _equipment_text(field: str, text: str, charset: CharacterSet) -> str:
    value = clean_line(prepare_text(text, charset))
    if "\\" in value:
        raise ConversionError(
            f"{field} {value!r} contains a backslash, which DICOM does not allow "
            f"in it. Correct the device information of the exam."
        )
    check_length(
        field,
        value,
        LO_MAX,
        charset,
        "Correct the device information of the exam.",
        vr="LO",
    )
    return value


def _pupil_dilated(value: bool | None) -> str:
    if value is None:
        return ""
    return "YES" if value else "NO"
