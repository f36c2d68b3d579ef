"""The on-disk exam format: one folder per exam with an ``exam.json`` manifest.

An exam folder contains ``exam.json`` and the original image files, by
convention under ``images/``. :func:`load_exam` validates every field of the
manifest and reports all problems at once, each naming the field path
(``patient.birth_date``, ``images[2].file``), the value and the fix.
:func:`save_exam` validates the same way and then replaces the manifest
atomically. ``docs/exam-format.md`` describes the format with a full example.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import os
import re
import tempfile
import unicodedata
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, TypeVar

from eyer_desktop.core.errors import ExamError, ValidationError
from eyer_desktop.core.exams import (
    ClinicDocument,
    DeviceInfo,
    Diopters,
    Exam,
    ExamImage,
    ExamType,
    ExamUids,
    ImageRole,
    Laterality,
    Patient,
    PatientName,
    Sex,
    StereoPair,
    WorklistLink,
    image_sop_instance_uid,
)

logger = logging.getLogger(__name__)

MANIFEST_NAME = "exam.json"
FORMAT_NAME = "eyer-exam"
FORMAT_VERSION = 1

# DICOM limits (PS3.5 6.2) of the elements these values end up in.
_LO_MAX = 64  # Long String: clinic document, device values, institution
_PN_MAX = 64  # one Person Name component group, "^" separators included
_SH_MAX = 16  # Short String: accession number, procedure and step ids
_UI_MAX = 64  # Unique Identifier
_SEQUENCE_MAX = 2**31 - 1  # SeriesNumber is an Integer String of 32 bits

_UID_PATTERN = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*")
_DATE_PATTERN = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_SHOWN_MAX = 60

# Plausible dates: older birth dates and capture dates are typing mistakes.
# Digital retinal cameras date from the 1990s, and a capture a little ahead
# of this computer's clock is allowed for devices whose clocks run fast.
EARLIEST_BIRTH_DATE = dt.date(1870, 1, 1)
EARLIEST_CAPTURE_DATE = dt.date(1990, 1, 1)
CAPTURE_CLOCK_TOLERANCE = dt.timedelta(days=1)

# Nearly every recorded refractive error lies inside this range, so a value
# outside it is most likely a typing mistake (1e300, a missing decimal point).
DIOPTER_MAX = 30.0

# Levels of objects and lists allowed in the anamnesis, its own braces
# included. An anamnesis such as {"diabetes": "yes"} is one level deep.
# Conversion walks the anamnesis recursively, so a much deeper value that the
# JSON parser accepts could still exceed Python's recursion limit there.
ANAMNESIS_DEPTH_MAX = 16

_TOP_KEYS = frozenset(
    {
        "format",
        "format_version",
        "exam_id",
        "sequence_number",
        "exam_type",
        "captured_at",
        "patient",
        "anamnesis",
        "diopters",
        "pupil_dilated",
        "device",
        "worklist",
        "uids",
        "images",
        "stereo_pairs",
    }
)

# Worklist values with the maximum length of the DICOM element each fills.
_WORKLIST_FIELDS: dict[str, int] = {
    "accession_number": _SH_MAX,
    "requested_procedure_id": _SH_MAX,
    "requested_procedure_description": _LO_MAX,
    "scheduled_procedure_step_id": _SH_MAX,
    "referring_physician_name": _PN_MAX,
    "patient_id": _LO_MAX,
    "issuer_of_patient_id": _LO_MAX,
}
_UID_FIELDS = (
    "study_instance_uid",
    "series_instance_uid",
    "montage_series_instance_uid",
    "stereo_series_instance_uid",
    "stereo_relationship_instance_uid",
    "synchronization_frame_of_reference_uid",
)


class ExamValidationError(ExamError):
    """One or more fields of an exam are invalid.

    Attributes:
        source: What was validated, such as ``exam /path/to/folder``.
        problems: Each invalid field with its value, the problem and the fix.
    """

    def __init__(self, source: str, problems: Sequence[ValidationError]) -> None:
        self.source = source
        self.problems = tuple(problems)
        if len(self.problems) == 1:
            message = f"{source}: {self.problems[0]}"
        else:
            lines = "\n".join(f"- {problem}" for problem in self.problems)
            message = f"{source} has {len(self.problems)} problems:\n{lines}"
        super().__init__(message)


def is_valid_uid(value: str) -> bool:
    """Return whether ``value`` is a valid DICOM UI value (PS3.5 9.1)."""
    return len(value) <= _UI_MAX and _UID_PATTERN.fullmatch(value) is not None


def load_exam(folder: Path) -> Exam:
    """Read and validate the manifest of an exam folder.

    Raises:
        ExamValidationError: The manifest is missing, unreadable or has invalid
            fields. Every problem found is listed.
    """
    source = f"exam {folder}"
    manifest = folder / MANIFEST_NAME
    try:
        text = manifest.read_text(encoding="utf-8-sig")
    except FileNotFoundError as err:
        problem = _problem(
            MANIFEST_NAME, None, "not found", "Choose a folder that contains exam.json"
        )
        raise ExamValidationError(source, [problem]) from err
    except (OSError, UnicodeDecodeError) as err:
        problem = _problem(
            MANIFEST_NAME,
            None,
            f"cannot be read ({err})",
            "Check the file's permissions, or restore it from a backup",
        )
        raise ExamValidationError(source, [problem]) from err

    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as err:
        problem = _problem(
            MANIFEST_NAME,
            None,
            f"is not valid JSON ({err})",
            "Repair the file, or restore it from a backup",
        )
        raise ExamValidationError(source, [problem]) from err

    exam = exam_from_json(data, folder=folder, source=source)
    exam.folder = folder
    return exam


def save_exam(exam: Exam, folder: Path) -> None:
    """Validate an exam and write its manifest into ``folder`` atomically.

    The image files must already be in the folder. On success ``exam.folder``
    is set to ``folder``. On failure the previous manifest, if any, is left as
    it was.

    Raises:
        ExamValidationError: The exam has invalid or inconsistent fields.
        ExamError: The manifest could not be written.
    """
    source = f"exam {folder}"
    try:
        text = json.dumps(
            exam_to_json(exam), ensure_ascii=False, indent=2, allow_nan=False
        )
        data = json.loads(text)
    except (TypeError, ValueError, RecursionError) as err:
        problem = _problem(
            "anamnesis",
            None,
            f"contains a value that JSON cannot store ({err})",
            "Use only text, numbers, true, false, null, lists and objects",
        )
        raise ExamValidationError(source, [problem]) from err
    exam_from_json(data, folder=folder, source=source)
    try:
        write_file_atomically(folder / MANIFEST_NAME, (text + "\n").encode("utf-8"))
    except OSError as err:
        raise ExamError(
            f"Writing {folder / MANIFEST_NAME} failed: {err}. "
            "Check free disk space and the folder's permissions."
        ) from err
    exam.folder = folder


def write_file_atomically(path: Path, content: bytes) -> None:
    """Replace ``path`` with ``content`` so that readers see the old or new file.

    The content goes to a temporary file in the same folder, which is flushed
    to disk and then renamed over ``path``.
    """
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as temp:
            temp.write(content)
            temp.flush()
            os.fsync(temp.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    fsync_folder(path.parent)


def fsync_folder(folder: Path) -> None:
    """Flush a folder's entries to disk, where the platform allows it."""
    if os.name != "posix":
        return
    handle = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def exam_from_json(
    data: object, *, folder: Path | None = None, source: str = "exam"
) -> Exam:
    """Build an exam from a parsed manifest, validating every field.

    When ``folder`` is given, the image files must exist inside it.

    Raises:
        ExamValidationError: Every problem found, with its field path.
    """
    reader = _ManifestReader(folder)
    exam = reader.read(data)
    if reader.problems:
        raise ExamValidationError(source, reader.problems)
    if reader.unknown_keys:
        logger.warning(
            "Exam %s: ignoring unknown manifest keys: %s",
            exam.exam_id,
            ", ".join(reader.unknown_keys),
        )
    return exam


def patient_from_json(
    data: object, field: str = "patient", *, today: dt.date | None = None
) -> Patient:
    """Build a patient from its manifest object, validating every field.

    When ``today`` is given, a birth date after it is a problem too.

    Raises:
        ExamValidationError: Every problem found, with its field path.
    """
    reader = _ManifestReader(None)
    patient = reader.patient(data, field)
    birth_date = patient.birth_date
    if today is not None and birth_date is not None and birth_date > today:
        reader.add(
            f"{field}.birth_date",
            birth_date.isoformat(),
            "is in the future",
            "Correct the birth date",
        )
    if reader.problems:
        raise ExamValidationError("patient data", reader.problems)
    return patient


def exam_to_json(exam: Exam) -> dict[str, Any]:
    """Return the manifest object of an exam, ready for ``json.dumps``."""
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "exam_id": exam.exam_id,
        "sequence_number": exam.sequence_number,
        "exam_type": str(exam.exam_type),
        "captured_at": exam.captured_at.isoformat(),
        "patient": patient_to_json(exam.patient),
        "anamnesis": exam.anamnesis,
        "diopters": {"R": exam.diopters.right, "L": exam.diopters.left},
        "pupil_dilated": exam.pupil_dilated,
        "device": {
            "serial_number": exam.device.serial_number,
            "software_version": exam.device.software_version,
            "clinic_name": exam.device.clinic_name,
        },
        "worklist": _worklist_to_json(exam.worklist),
        "uids": {name: getattr(exam.uids, name) for name in _UID_FIELDS},
        "images": [_image_to_json(image) for image in exam.images],
        "stereo_pairs": [
            {"left_image_id": pair.left_image_id, "right_image_id": pair.right_image_id}
            for pair in exam.stereo_pairs
        ],
    }


def patient_to_json(patient: Patient) -> dict[str, Any]:
    """Return the manifest object of a patient."""
    return {
        "name": {
            "family": patient.name.family,
            "given": patient.name.given,
            "middle": patient.name.middle,
        },
        "document": {
            "type": patient.document.type,
            "number": patient.document.number,
        },
        "sex": None if patient.sex is None else str(patient.sex),
        "birth_date": None
        if patient.birth_date is None
        else patient.birth_date.isoformat(),
    }


def _worklist_to_json(worklist: WorklistLink | None) -> dict[str, str] | None:
    if worklist is None:
        return None
    names = [*_WORKLIST_FIELDS, "study_instance_uid"]
    return {name: getattr(worklist, name) for name in names}


def _image_to_json(image: ExamImage) -> dict[str, Any]:
    data: dict[str, Any] = {
        "image_id": image.image_id,
        "file": image.file,
        "laterality": str(image.laterality),
        "role": str(image.role),
        "sop_instance_uid": image.sop_instance_uid,
    }
    if image.role is ImageRole.MONTAGE:
        data["sources"] = list(image.sources)
    return data


def _nesting_depth(value: object) -> int:
    """Return how many objects and lists deep a JSON value nests, 0 for a scalar.

    It walks the value with a stack of its own, so no depth raises RecursionError.
    """
    deepest = 0
    pending: list[tuple[object, int]] = [(value, 1)]
    while pending:
        item, level = pending.pop()
        if isinstance(item, dict):
            children: Iterable[object] = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        pending.extend((child, level + 1) for child in children)
    return deepest


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _problem(field: str, value: object, problem: str, fix: str) -> ValidationError:
    return ValidationError(field, _shorten(value), problem, fix)


def _shorten(value: object) -> object:
    """Return the value as shown in a message, cut to a readable length."""
    if isinstance(value, dict | list):
        value = json.dumps(value, ensure_ascii=False)
    if isinstance(value, str) and len(value) > _SHOWN_MAX:
        return value[: _SHOWN_MAX - 1] + "…"
    return value


def _has_control_character(text: str) -> bool:
    return any(unicodedata.category(char) == "Cc" for char in text)


class _Missing:
    """Marker of a key that is absent from its object."""


_MISSING = _Missing()

_Choice = TypeVar("_Choice", ExamType, Laterality, Sex, ImageRole)


class _ManifestReader:
    """Reads one manifest, recording every problem instead of stopping at the first.

    Each reading method returns a stand-in value (empty text, None, a fresh id)
    where the field is invalid, so that reading can go on. The caller raises
    when ``problems`` is not empty, and the stand-ins are never used.
    """

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        # The real path of the folder, with a trailing separator, computed once:
        # resolving paths is the slowest step of listing a large library.
        self.real_folder = (
            None if folder is None else os.path.join(os.path.realpath(folder), "")
        )
        self.problems: list[ValidationError] = []
        self.unknown_keys: list[str] = []

    def add(self, field: str, value: object, problem: str, fix: str) -> None:
        self.problems.append(_problem(field, value, problem, fix))

    # Top level

    def read(self, data: object) -> Exam:
        if not isinstance(data, dict):
            self.json_object(data, "manifest")
            return _placeholder_exam()
        top: dict[str, Any] = data
        self.note_unknown(top, _TOP_KEYS, "")
        if not self.format_is_supported(top):
            return _placeholder_exam()

        exam_id = self.uuid_text(top.get("exam_id", _MISSING), "exam_id")
        exam_type = self.enum(top.get("exam_type", _MISSING), "exam_type", ExamType)
        captured_at = self.timestamp(top.get("captured_at", _MISSING), "captured_at")
        self.check_capture_time(captured_at)
        patient = self.patient(top.get("patient", _MISSING), "patient")
        self.check_birth_date(patient, captured_at)

        images = self.images(top.get("images", _MISSING), exam_id, exam_type)
        stereo_pairs = self.stereo_pairs(top.get("stereo_pairs", []), images, exam_type)
        return Exam(
            exam_id=exam_id,
            exam_type=exam_type or ExamType.COLOR,
            captured_at=captured_at or dt.datetime.now(dt.UTC),
            patient=patient,
            images=images,
            uids=self.uids(top.get("uids", {}), exam_id, images),
            sequence_number=self.sequence_number(top.get("sequence_number", 1)),
            anamnesis=self.anamnesis(top.get("anamnesis", {})),
            diopters=self.diopters(top.get("diopters", {})),
            pupil_dilated=self.optional_bool(top.get("pupil_dilated"), "pupil_dilated"),
            device=self.device(top.get("device", {})),
            stereo_pairs=stereo_pairs,
            worklist=self.worklist(top.get("worklist")),
        )

    def anamnesis(self, value: object) -> dict[str, Any]:
        anamnesis = self.json_object(value, "anamnesis")
        if _nesting_depth(anamnesis) > ANAMNESIS_DEPTH_MAX:
            self.add(
                "anamnesis",
                None,
                f"nests objects or lists more than {ANAMNESIS_DEPTH_MAX} levels deep",
                'Write the answers as one flat object, e.g. {"diabetes": "yes"}',
            )
            return {}
        return anamnesis

    def format_is_supported(self, top: dict[str, Any]) -> bool:
        name = top.get("format", _MISSING)
        if name != FORMAT_NAME:
            self.add(
                "format",
                self.shown(name),
                "is not an Eyer exam manifest",
                f'An exam manifest starts with "format": "{FORMAT_NAME}"',
            )
            return False

        version = top.get("format_version", _MISSING)
        if isinstance(version, int) and not isinstance(version, bool):
            if version == FORMAT_VERSION:
                return True
            if version > FORMAT_VERSION:
                self.add(
                    "format_version",
                    version,
                    "was written by a newer Eyer Desktop",
                    "Update Eyer Desktop to read this exam",
                )
                return False
        self.add(
            "format_version",
            self.shown(version),
            "is not a supported format version",
            f"Set format_version to {FORMAT_VERSION}",
        )
        return False

    def note_unknown(
        self, data: dict[str, Any], known: frozenset[str], path: str
    ) -> None:
        prefix = f"{path}." if path else ""
        self.unknown_keys.extend(f"{prefix}{key}" for key in data if key not in known)

    # Patient

    def patient(self, data: object, path: str) -> Patient:
        if not isinstance(data, dict):
            self.json_object(data, path, required=True)
            return Patient(PatientName(""), ClinicDocument("", ""))
        patient: dict[str, Any] = data
        self.note_unknown(
            patient, frozenset({"name", "document", "sex", "birth_date"}), path
        )
        return Patient(
            name=self.patient_name(patient.get("name", _MISSING), f"{path}.name"),
            document=self.document(
                patient.get("document", _MISSING), f"{path}.document"
            ),
            sex=self.enum(patient.get("sex"), f"{path}.sex", Sex, optional=True),
            birth_date=self.birth_date(patient.get("birth_date"), f"{path}.birth_date"),
        )

    def patient_name(self, data: object, path: str) -> PatientName:
        if not isinstance(data, dict):
            self.json_object(data, path, required=True)
            return PatientName("")
        name: dict[str, Any] = data
        self.note_unknown(name, frozenset({"family", "given", "middle"}), path)
        parts = {
            part: self.name_part(name.get(part, ""), f"{path}.{part}")
            for part in ("family", "given", "middle")
        }
        if not any(parts.values()):
            self.add(
                path,
                None,
                "is empty",
                "Enter at least the patient's family name or given name",
            )
        joined = "^".join((parts["family"], parts["given"], parts["middle"]))
        if len(joined) > _PN_MAX:
            self.add(
                path,
                " ".join(filter(None, parts.values())),
                f"is longer than {_PN_MAX - 2} characters in all",
                "Shorten the name, for example by dropping middle names",
            )
        return PatientName(**parts)

    def name_part(self, value: object, path: str) -> str:
        text = self.text(value, path, max_length=_PN_MAX)
        for delimiter in "^=":
            if delimiter in text:
                self.add(
                    path,
                    text,
                    f'contains "{delimiter}", which DICOM reserves in names',
                    f'Remove the "{delimiter}" from the name',
                )
        return text.strip()

    def document(self, data: object, path: str) -> ClinicDocument:
        if not isinstance(data, dict):
            self.json_object(data, path, required=True)
            return ClinicDocument("", "")
        document: dict[str, Any] = data
        self.note_unknown(document, frozenset({"type", "number"}), path)
        number = self.text(
            document.get("number", _MISSING), f"{path}.number", required=True
        )
        if isinstance(document.get("number"), str) and not number.strip():
            self.add(
                f"{path}.number",
                number,
                "is empty",
                "Enter the number of the patient's clinic document",
            )
        return ClinicDocument(
            type=self.text(document.get("type", ""), f"{path}.type").strip(),
            number=number.strip(),
        )

    def birth_date(self, value: object, path: str) -> dt.date | None:
        if value is None:
            return None
        if isinstance(value, str) and _DATE_PATTERN.fullmatch(value):
            try:
                parsed = dt.date.fromisoformat(value)
            except ValueError:
                parsed = None
            if parsed is not None and parsed < EARLIEST_BIRTH_DATE:
                self.add(
                    path,
                    value,
                    f"is before {EARLIEST_BIRTH_DATE.isoformat()}",
                    "Correct the birth date, or leave it out when unknown",
                )
                return None
            if parsed is not None:
                return parsed
        self.add(
            path,
            self.shown(value),
            "is not a valid date",
            "Write it as YYYY-MM-DD, for example 1961-07-14, or null when unknown",
        )
        return None

    def check_birth_date(
        self, patient: Patient, captured_at: dt.datetime | None
    ) -> None:
        if patient.birth_date is None or captured_at is None:
            return
        if patient.birth_date > captured_at.date():
            self.add(
                "patient.birth_date",
                patient.birth_date.isoformat(),
                f"is after the capture date {captured_at.date().isoformat()}",
                "Correct the birth date or the capture date",
            )

    def check_capture_time(self, captured_at: dt.datetime | None) -> None:
        if captured_at is None:
            return
        if captured_at.date() < EARLIEST_CAPTURE_DATE:
            self.add(
                "captured_at",
                captured_at.isoformat(),
                f"is before {EARLIEST_CAPTURE_DATE.isoformat()}",
                "Correct the capture date and time",
            )
        latest = dt.datetime.now(dt.UTC) + CAPTURE_CLOCK_TOLERANCE
        if captured_at > latest:
            self.add(
                "captured_at",
                captured_at.isoformat(),
                "is more than one day in the future",
                "Correct the capture date and time, or the computer's clock",
            )

    # Exam values

    def timestamp(self, value: object, path: str) -> dt.datetime | None:
        fix = (
            "Write it as ISO 8601 with the UTC offset, "
            "for example 2025-03-14T09:26:53-03:00"
        )
        if value is _MISSING:
            self.add(path, None, "is missing", fix)
            return None
        try:
            parsed = (
                dt.datetime.fromisoformat(value) if isinstance(value, str) else None
            )
        except ValueError:
            parsed = None
        if parsed is None:
            self.add(path, self.shown(value), "is not a valid date and time", fix)
            return None
        if parsed.tzinfo is None:
            self.add(path, value, "has no UTC offset", fix)
            return None
        return parsed

    def sequence_number(self, value: object) -> int:
        if (
            isinstance(value, int)
            and not isinstance(value, bool)
            and 1 <= value <= _SEQUENCE_MAX
        ):
            return value
        self.add(
            "sequence_number",
            self.shown(value),
            "is not a whole number from 1 to 2147483647",
            "Set it to the exam's sequential number on the device",
        )
        return 1

    def diopters(self, data: object) -> Diopters:
        diopters = self.json_object(data, "diopters")
        self.note_unknown(diopters, frozenset({"R", "L"}), "diopters")
        return Diopters(
            right=self.diopter(diopters.get("R"), "diopters.R"),
            left=self.diopter(diopters.get("L"), "diopters.L"),
        )

    def diopter(self, value: object, path: str) -> float | None:
        number = self.optional_number(value, path)
        if number is not None and not -DIOPTER_MAX <= number <= DIOPTER_MAX:
            self.add(
                path,
                value,
                f"is not between -{DIOPTER_MAX:g} and {DIOPTER_MAX:g}",
                "Correct the diopter value",
            )
            return None
        return number

    def device(self, data: object) -> DeviceInfo:
        device = self.json_object(data, "device")
        names = ("serial_number", "software_version", "clinic_name")
        self.note_unknown(device, frozenset(names), "device")
        values = {
            name: self.text(device.get(name, ""), f"device.{name}").strip()
            for name in names
        }
        return DeviceInfo(**values)

    def worklist(self, data: object) -> WorklistLink | None:
        if data is None:
            return None
        worklist = self.json_object(data, "worklist")
        known = frozenset({*_WORKLIST_FIELDS, "study_instance_uid"})
        self.note_unknown(worklist, known, "worklist")
        values = {
            name: self.text(
                worklist.get(name, ""), f"worklist.{name}", max_length=max_length
            ).strip()
            for name, max_length in _WORKLIST_FIELDS.items()
        }
        study_uid = self.text(
            worklist.get("study_instance_uid", ""), "worklist.study_instance_uid"
        )
        if study_uid:
            self.uid(study_uid, "worklist.study_instance_uid")
        return WorklistLink(study_instance_uid=study_uid, **values)

    def uids(self, data: object, exam_id: str, images: list[ExamImage]) -> ExamUids:
        given = self.json_object(data, "uids")
        self.note_unknown(given, frozenset(_UID_FIELDS), "uids")
        derived = ExamUids.derive(exam_id)
        for name in _UID_FIELDS:
            if name in given:
                uid = self.uid(given[name], f"uids.{name}")
                setattr(derived, name, uid or getattr(derived, name))

        seen: dict[str, str] = {}
        exam_uids = [(f"uids.{name}", getattr(derived, name)) for name in _UID_FIELDS]
        image_uids = [
            (f"images[{index}].sop_instance_uid", image.sop_instance_uid)
            for index, image in enumerate(images)
        ]
        for path, uid in exam_uids + image_uids:
            if uid in seen:
                self.add(
                    path,
                    uid,
                    f"is the same UID as {seen[uid]}",
                    "Give every study, series and instance its own UID, or remove "
                    "the UIDs to derive them from the exam id",
                )
            seen.setdefault(uid, path)
        return derived

    # Images

    def images(
        self, data: object, exam_id: str, exam_type: ExamType | None
    ) -> list[ExamImage]:
        fix = "List the exam's images, at least one"
        if data is _MISSING:
            self.add("images", None, "is missing", fix)
            return []
        if not isinstance(data, list):
            self.add("images", data, "is not a list", fix)
            return []
        if not data:
            self.add("images", None, "is empty", fix)
            return []

        images = [
            self.image(item, f"images[{index}]", exam_id)
            for index, item in enumerate(data)
        ]
        self.check_unique(images, "image_id", "Give every image its own UUID")
        self.check_unique(images, "file", "Point every image at its own file")
        for index, image in enumerate(images):
            self.check_montage(image, f"images[{index}]", images, exam_type)
        return images

    def check_unique(self, images: list[ExamImage], attribute: str, fix: str) -> None:
        first_index: dict[str, int] = {}
        for index, image in enumerate(images):
            value = getattr(image, attribute)
            if not value:
                continue
            if value in first_index:
                self.add(
                    f"images[{index}].{attribute}",
                    value,
                    f"is the same as in images[{first_index[value]}]",
                    fix,
                )
            first_index.setdefault(value, index)

    def image(self, data: object, path: str, exam_id: str) -> ExamImage:
        image = self.json_object(data, path, required=True)
        known = {"image_id", "file", "laterality", "role", "sop_instance_uid"}
        self.note_unknown(image, frozenset({*known, "sources"}), path)
        image_id = self.uuid_text(image.get("image_id", _MISSING), f"{path}.image_id")
        role = self.enum(image.get("role", "capture"), f"{path}.role", ImageRole)
        sop_uid = image.get("sop_instance_uid", _MISSING)
        if sop_uid is _MISSING:
            sop_uid = image_sop_instance_uid(exam_id, image_id)
        sources: tuple[str, ...] = ()
        if "sources" in image:
            sources = self.id_list(image["sources"], f"{path}.sources")
        return ExamImage(
            image_id=image_id,
            file=self.image_file(image.get("file", _MISSING), f"{path}.file"),
            laterality=self.enum(
                image.get("laterality", _MISSING), f"{path}.laterality", Laterality
            )
            or Laterality.RIGHT,
            sop_instance_uid=self.uid(sop_uid, f"{path}.sop_instance_uid"),
            role=role or ImageRole.CAPTURE,
            sources=sources,
        )

    def image_file(self, value: object, path: str) -> str:
        file = self.text(value, path, required=True, max_length=None, dicom=False)
        fix = "Give the file's path inside the exam folder, such as images/od-1.jpg"
        if not file:
            if value is not _MISSING:
                self.add(path, file, "is empty", fix)
            return file
        if "\\" in file:
            self.add(path, file, "contains a backslash", "Separate folders with /")
            return file
        if PurePosixPath(file).is_absolute() or PureWindowsPath(file).drive:
            self.add(path, file, "is an absolute path", fix)
            return file
        if ".." in PurePosixPath(file).parts:
            self.add(path, file, 'leads out of the exam folder through ".."', fix)
            return file
        if self.folder is not None:
            self.check_file_exists(file, path)
        return file

    def check_file_exists(self, file: str, path: str) -> None:
        assert self.folder is not None and self.real_folder is not None
        target = os.path.join(self.folder, file)
        if not os.path.realpath(target).startswith(self.real_folder):
            self.add(
                path,
                file,
                "is a symbolic link that leads out of the exam folder",
                "Copy the image into the exam folder",
            )
        elif not os.path.isfile(target):
            self.add(
                path,
                file,
                "was not found in the exam folder",
                "Restore the image file, or remove the image from the manifest",
            )

    def check_montage(
        self,
        image: ExamImage,
        path: str,
        images: list[ExamImage],
        exam_type: ExamType | None,
    ) -> None:
        if image.role is not ImageRole.MONTAGE:
            if image.sources:
                self.add(
                    f"{path}.sources",
                    list(image.sources),
                    "is set on a captured image",
                    'Remove "sources", or set "role" to "montage"',
                )
            return

        if exam_type is not None and exam_type is not ExamType.PANORAMIC:
            self.add(
                f"{path}.role",
                "montage",
                f"is not allowed in a {exam_type} exam",
                'Set exam_type to "panoramic", or set the role to "capture"',
            )
        if len(image.sources) < 2:
            self.add(
                f"{path}.sources",
                list(image.sources),
                "lists fewer than two source images",
                "List the image ids of the fields the montage was stitched from",
            )
        by_id = {other.image_id: other for other in images}
        for source_id in image.sources:
            self.check_montage_source(source_id, image, by_id, path)

    def check_montage_source(
        self,
        source_id: str,
        montage: ExamImage,
        by_id: Mapping[str, ExamImage],
        path: str,
    ) -> None:
        source = by_id.get(source_id)
        if source is None:
            self.add(
                f"{path}.sources",
                source_id,
                "is not the id of an image of this exam",
                "List only image ids that appear in images",
            )
        elif source.role is not ImageRole.CAPTURE:
            self.add(
                f"{path}.sources",
                source_id,
                "is not a captured image",
                "List the captured fields, not other montages",
            )
        elif source.laterality is not montage.laterality:
            self.add(
                f"{path}.sources",
                source_id,
                f"is an image of the other eye ({source.laterality})",
                "List only fields of the montage's eye",
            )

    def stereo_pairs(
        self, data: object, images: list[ExamImage], exam_type: ExamType | None
    ) -> list[StereoPair]:
        if not isinstance(data, list):
            self.add(
                "stereo_pairs",
                self.shown(data),
                "is not a list",
                "List the stereo pairs, or write []",
            )
            return []
        if data and exam_type is not None and exam_type is not ExamType.STEREO:
            self.add(
                "stereo_pairs",
                self.shown(data),
                f"is not allowed in a {exam_type} exam",
                'Set exam_type to "stereo", or remove the stereo pairs',
            )

        by_id = {image.image_id: image for image in images}
        pairs = []
        for index, item in enumerate(data):
            pairs.append(self.stereo_pair(item, f"stereo_pairs[{index}]", by_id))
        return pairs

    def stereo_pair(
        self, data: object, path: str, by_id: Mapping[str, ExamImage]
    ) -> StereoPair:
        pair = self.json_object(data, path, required=True)
        sides = ("left_image_id", "right_image_id")
        self.note_unknown(pair, frozenset(sides), path)
        members: list[ExamImage] = []
        for side in sides:
            image_id = self.text(
                pair.get(side, _MISSING), f"{path}.{side}", required=True, dicom=False
            )
            image = by_id.get(image_id)
            if image is None:
                if image_id:
                    self.add(
                        f"{path}.{side}",
                        image_id,
                        "is not the id of an image of this exam",
                        "Use an image id that appears in images",
                    )
            elif image.role is not ImageRole.CAPTURE:
                self.add(
                    f"{path}.{side}",
                    image_id,
                    "is a montage",
                    "Pair two captured images",
                )
            else:
                members.append(image)
        self.check_pair_members(members, path)
        return StereoPair(
            left_image_id=str(pair.get("left_image_id", "")),
            right_image_id=str(pair.get("right_image_id", "")),
        )

    def check_pair_members(self, members: list[ExamImage], path: str) -> None:
        if len(members) != 2:
            return
        left, right = members
        if left.image_id == right.image_id:
            self.add(
                path,
                left.image_id,
                "pairs an image with itself",
                "Pair two different images of the same eye",
            )
        elif left.laterality is not right.laterality:
            self.add(
                path,
                f"{left.laterality}/{right.laterality}",
                "pairs images of different eyes",
                "Pair two images of the same eye",
            )

    # Value types

    def json_object(
        self, value: object, path: str, *, required: bool = False
    ) -> dict[str, Any]:
        if isinstance(value, dict):
            return value
        if value is _MISSING:
            if required:
                self.add(path, None, "is missing", f"Add {path} to the manifest")
        else:
            self.add(
                path,
                self.shown(value),
                "is not a JSON object",
                "Write it as an object in braces, {...}",
            )
        return {}

    def text(
        self,
        value: object,
        path: str,
        *,
        required: bool = False,
        max_length: int | None = _LO_MAX,
        dicom: bool = True,
    ) -> str:
        """Return a text field. A ``dicom`` text must not contain a backslash."""
        if value is _MISSING:
            if required:
                self.add(path, None, "is missing", f"Add {path} to the manifest")
            return ""
        if not isinstance(value, str):
            self.add(path, self.shown(value), "is not a string", "Write it in quotes")
            return ""
        if _has_control_character(value):
            self.add(
                path,
                value,
                "contains a control character such as a line break or tab",
                "Remove the control character",
            )
        elif max_length is not None and len(value) > max_length:
            self.add(
                path,
                value,
                f"is longer than {max_length} characters",
                "Shorten it",
            )
        if dicom and "\\" in value:
            self.add(
                path,
                value,
                "contains a backslash, which DICOM reserves to separate values",
                "Remove the backslash, or use / instead",
            )
        return value

    def uuid_text(self, value: object, path: str) -> str:
        fix = "Use a UUID in its 36-character lowercase form, such as 3f2b8c1e-..."
        if value is _MISSING:
            self.add(path, None, "is missing", fix)
            return str(uuid.uuid4())
        if isinstance(value, str):
            try:
                if str(uuid.UUID(value)) == value:
                    return value
            except ValueError:
                pass
        self.add(path, self.shown(value), "is not a UUID", fix)
        return str(uuid.uuid4())

    def id_list(self, value: object, path: str) -> tuple[str, ...]:
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return tuple(value)
        self.add(
            path,
            self.shown(value),
            "is not a list of image ids",
            'Write it as ["<image id>", ...]',
        )
        return ()

    def uid(self, value: object, path: str) -> str:
        if isinstance(value, str) and is_valid_uid(value):
            return value
        self.add(
            path,
            self.shown(value),
            "is not a valid DICOM UID",
            "Use at most 64 digits and dots, with no leading zero in a component, "
            "or remove it to derive it from the exam id",
        )
        return ""

    def enum(
        self, value: object, path: str, kind: type[_Choice], *, optional: bool = False
    ) -> _Choice | None:
        """Return the member of ``kind`` named by ``value``, or None.

        A missing value is a problem. A null value is one unless ``optional``.
        """
        if optional and value is None:
            return None
        choices = ", ".join(f'"{member}"' for member in kind)
        if value is _MISSING:
            self.add(path, None, "is missing", f"Set it to one of {choices}")
            return None
        if isinstance(value, str) and value in kind.__members__.values():
            return kind(value)
        fix = f"Use one of {choices}"
        if optional:
            fix += ", or null when unknown"
        self.add(path, value, "is not allowed", fix)
        return None

    def optional_number(self, value: object, path: str) -> float | None:
        if value is None:
            return None
        if (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and math.isfinite(value)
        ):
            return float(value)
        self.add(
            path,
            self.shown(value),
            "is not a number",
            "Write a number such as -1.25, or null when not recorded",
        )
        return None

    def optional_bool(self, value: object, path: str) -> bool | None:
        if value is None or isinstance(value, bool):
            return value
        self.add(
            path,
            self.shown(value),
            "is not true, false or null",
            "Write true, false, or null when not recorded",
        )
        return None

    @staticmethod
    def shown(value: object) -> object:
        return None if value is _MISSING else value


def _placeholder_exam() -> Exam:
    """Return a stand-in exam for a manifest whose format is not supported."""
    exam_id = str(uuid.uuid4())
    return Exam(
        exam_id=exam_id,
        exam_type=ExamType.COLOR,
        captured_at=dt.datetime.now(dt.UTC),
        patient=Patient(PatientName(""), ClinicDocument("", "")),
        images=[],
        uids=ExamUids.derive(exam_id),
    )
