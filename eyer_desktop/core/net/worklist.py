"""Modality Worklist query (C-FIND) and the items it returns.

Servers differ in how they match names: dcmtk's wlmscpfs compares bytes, so
a name stored in ISO_IR 100 never matches a query encoded in UTF-8, and it is
case-sensitive. The query therefore requests every name, and the name pattern
is applied to the decoded names here, ignoring case and accents, with the
family and given names in either order.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field

from pydicom.charset import convert_encodings
from pydicom.dataset import Dataset
from pydicom.valuerep import PersonName
from pynetdicom.association import Association
from pynetdicom.presentation import build_context
from pynetdicom.status import (
    MODALITY_WORKLIST_SERVICE_CLASS_STATUS,
    code_to_category,
)

from eyer_desktop.core.dicom.dates import format_date
from eyer_desktop.core.errors import DeliveryError, ValidationError
from eyer_desktop.core.exams import (
    ClinicDocument,
    Patient,
    PatientName,
    Sex,
    WorklistLink,
)
from eyer_desktop.core.net.association import (
    DicomEndpoint,
    no_response_reason,
    open_association,
    validate_ae_title,
)

logger = logging.getLogger(__name__)

MODALITY_WORKLIST_FIND = "1.2.840.10008.5.1.4.31"
MAX_PN_COMPONENT_GROUP_LENGTH = 64
MAX_CS_LENGTH = 16
TEXT_VRS = frozenset({"PN", "LO", "SH", "ST", "LT", "UT", "UC"})
_CS_PATTERN = re.compile(r"[A-Z0-9 _]*")

MAX_WORKLIST_ITEMS = 2000
"""Entries one query may return. More means a query too wide to pick a
patient from (every date), or a server that never ends its responses."""

QUERY_EXTRA_SECONDS = 120.0
"""Seconds a query may take on top of the DIMSE timeout, which the first
response may use up. A server that sends entries slowly, one at a time, is
stopped after that."""


def _today_range() -> tuple[dt.date, dt.date]:
    today = dt.date.today()
    return today, today


@dataclass(frozen=True)
class WorklistQuery:
    """Matching keys of a worklist query; an empty value matches anything.

    Attributes:
        station_ae_title: ScheduledStationAETitle to match, usually this
            application's own AE title.
        modality: Modality of the scheduled step, for example ``OP``.
        dates: First and last scheduled date, inclusive; None matches any
            date. Defaults to today.
        patient_name: PatientName pattern, with ``*`` for any run of
            characters and ``?`` for one character (``SILVA*``).
    """

    station_ae_title: str = ""
    modality: str = ""
    dates: tuple[dt.date, dt.date] | None = field(default_factory=_today_range)
    patient_name: str = ""

    def __post_init__(self) -> None:
        if self.station_ae_title:
            validate_ae_title("Scheduled station AE title", self.station_ae_title)
        if len(self.modality) > MAX_CS_LENGTH or not _CS_PATTERN.fullmatch(
            self.modality
        ):
            raise ValidationError(
                "Modality",
                self.modality,
                "not a DICOM code string",
                "Use capital letters and digits, for example OP.",
            )
        if self.dates is not None and self.dates[0] > self.dates[1]:
            raise ValidationError(
                "Dates",
                f"{self.dates[0]:%Y-%m-%d} to {self.dates[1]:%Y-%m-%d}",
                "the first date is after the last",
                "Swap the two dates.",
            )
        if "\\" in self.patient_name or (
            len(self.patient_name) > MAX_PN_COMPONENT_GROUP_LENGTH
        ):
            raise ValidationError(
                "Patient name",
                None,
                "contains a backslash or is longer than 64 characters",
                "Type part of the name, for example SILVA*.",
            )

    def identifier(self) -> Dataset:
        """Build the C-FIND request identifier: matching and return keys."""
        identifier = Dataset()

        # Patient
        # Universal match: servers compare names case-sensitively, some byte by
        # byte in their own character set, so the name pattern is applied to
        # the decoded replies instead (matches_name), ignoring case.
        identifier.PatientName = ""
        identifier.PatientID = ""
        identifier.IssuerOfPatientID = ""
        identifier.PatientBirthDate = ""
        identifier.PatientSex = ""

        # Imaging Service Request and Requested Procedure
        identifier.AccessionNumber = ""
        identifier.ReferringPhysicianName = ""
        identifier.StudyInstanceUID = ""
        identifier.RequestedProcedureID = ""
        identifier.RequestedProcedureDescription = ""

        # Scheduled Procedure Step
        step = Dataset()
        step.ScheduledStationAETitle = self.station_ae_title
        step.ScheduledProcedureStepStartDate = _date_range(self.dates)
        step.ScheduledProcedureStepStartTime = ""
        step.Modality = self.modality
        step.ScheduledPerformingPhysicianName = ""
        step.ScheduledProcedureStepDescription = ""
        step.ScheduledProcedureStepID = ""
        step.ScheduledStationName = ""
        identifier.ScheduledProcedureStepSequence = [step]
        return identifier

    def matches_name(self, name: str) -> bool:
        """Return whether a decoded PatientName matches ``patient_name``.

        Case and accents are ignored, ``^`` counts as a space, and the name
        is tried as family name first and as given name first. A pattern
        without ``*`` or ``?`` matches any name that contains it.
        """
        pattern = _name_key(self.patient_name)
        if not pattern:
            return True
        if "*" not in pattern and "?" not in pattern:
            pattern = f"*{pattern}*"
        regex = _wildcard_regex(pattern)
        components = [_name_key(part) for part in name.split("^")[:3]]
        components = [part for part in components if part]
        family_first = " ".join(components)
        given_first = " ".join(components[1:] + components[:1])
        return any(regex.fullmatch(form) for form in (family_first, given_first))


def _name_key(text: str) -> str:
    """Return a name folded for matching: no accents, no case, single spaces."""
    decomposed = unicodedata.normalize("NFKD", text.replace("^", " "))
    bare = "".join(char for char in decomposed if not unicodedata.combining(char))
    return " ".join(bare.casefold().split())


def _wildcard_regex(pattern: str) -> re.Pattern[str]:
    parts = []
    for char in pattern:
        if char == "*":
            parts.append(".*")
        elif char == "?":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    return re.compile("".join(parts), re.DOTALL)


def _date_range(dates: tuple[dt.date, dt.date] | None) -> str:
    if dates is None:
        return ""
    first, last = dates
    if first == last:
        return format_date(first)
    return f"{format_date(first)}-{format_date(last)}"


@dataclass(frozen=True)
class WorklistItem:
    """One scheduled procedure step returned by a worklist query.

    Attributes:
        patient_dicom_name: PatientName as DICOM writes it (``FAMILY^GIVEN``).
        referring_physician_name: ReferringPhysicianName in DICOM form.
        scheduled_date: ScheduledProcedureStepStartDate; None when absent or
            invalid.
        scheduled_time: ScheduledProcedureStepStartTime; None when absent or
            invalid.
    """

    patient_name: PatientName
    patient_dicom_name: str
    patient_id: str
    issuer_of_patient_id: str
    birth_date: dt.date | None
    sex: Sex | None
    accession_number: str
    study_instance_uid: str
    requested_procedure_id: str
    requested_procedure_description: str
    scheduled_procedure_step_id: str
    scheduled_procedure_step_description: str
    scheduled_date: dt.date | None
    scheduled_time: dt.time | None
    modality: str
    station_ae_title: str
    referring_physician_name: str

    @classmethod
    def from_identifier(cls, identifier: Dataset) -> WorklistItem:
        """Map a C-FIND response identifier, decoded in its character set."""
        _set_missing_character_set(identifier)
        steps = identifier.get("ScheduledProcedureStepSequence") or [Dataset()]
        step = steps[0]
        dicom_name = _text(identifier, "PatientName")
        person = PersonName(dicom_name)
        return cls(
            patient_name=PatientName(
                family=str(person.family_name),
                given=str(person.given_name),
                middle=str(person.middle_name),
            ),
            patient_dicom_name=dicom_name,
            patient_id=_text(identifier, "PatientID"),
            issuer_of_patient_id=_text(identifier, "IssuerOfPatientID"),
            birth_date=_parse_date(_text(identifier, "PatientBirthDate")),
            sex=_parse_sex(_text(identifier, "PatientSex")),
            accession_number=_text(identifier, "AccessionNumber"),
            study_instance_uid=_text(identifier, "StudyInstanceUID"),
            requested_procedure_id=_text(identifier, "RequestedProcedureID"),
            requested_procedure_description=_text(
                identifier, "RequestedProcedureDescription"
            ),
            scheduled_procedure_step_id=_text(step, "ScheduledProcedureStepID"),
            scheduled_procedure_step_description=_text(
                step, "ScheduledProcedureStepDescription"
            ),
            scheduled_date=_parse_date(_text(step, "ScheduledProcedureStepStartDate")),
            scheduled_time=_parse_time(_text(step, "ScheduledProcedureStepStartTime")),
            modality=_text(step, "Modality"),
            station_ae_title=_text(step, "ScheduledStationAETitle"),
            referring_physician_name=_text(identifier, "ReferringPhysicianName"),
        )

    def to_worklist_link(self) -> WorklistLink:
        """Return the values an exam created from this item takes along."""
        return WorklistLink(
            accession_number=self.accession_number,
            study_instance_uid=self.study_instance_uid,
            requested_procedure_id=self.requested_procedure_id,
            requested_procedure_description=self.requested_procedure_description,
            scheduled_procedure_step_id=self.scheduled_procedure_step_id,
            referring_physician_name=self.referring_physician_name,
            patient_id=self.patient_id,
            issuer_of_patient_id=self.issuer_of_patient_id,
        )

    def to_patient(self, document_type: str = "") -> Patient:
        """Return the exam's patient, identified by the worklist's patient ID.

        Args:
            document_type: Type of the clinic document the patient ID is; the
                issuer of the patient ID when empty.
        """
        return Patient(
            name=PatientName(
                family=self.patient_name.family,
                given=self.patient_name.given,
                middle=self.patient_name.middle,
            ),
            document=ClinicDocument(
                type=document_type or self.issuer_of_patient_id,
                number=self.patient_id,
            ),
            sex=self.sex,
            birth_date=self.birth_date,
        )


def _set_missing_character_set(identifier: Dataset) -> None:
    """Pick a character set for an identifier sent without one.

    Some servers send non-ASCII text with no SpecificCharacterSet. Text that
    is valid UTF-8 is taken as ISO_IR 192, anything else as ISO_IR 100 (the
    Latin-1 set most such servers use).
    """
    if identifier.get("SpecificCharacterSet"):
        return

    # Only top-level values are looked at, still undecoded, through
    # get_item(): iterating the dataset would decode every element before the
    # character set is chosen. Sequence items are decoded later, with the
    # character set chosen here.
    tags = list(identifier.keys())
    elements = [identifier.get_item(tag) for tag in tags]
    encoded = [
        element.value
        for element in elements
        if element is not None
        and element.VR in TEXT_VRS
        and isinstance(element.value, bytes)
    ]
    if all(value.isascii() for value in encoded):
        return
    try:
        for value in encoded:
            value.decode("utf-8")
    except UnicodeDecodeError:
        character_set = "ISO_IR 100"
    else:
        character_set = "ISO_IR 192"

    # pydicom decodes a dataset read from bytes with the character set it was
    # read with, so that is what must change, not only SpecificCharacterSet.
    identifier.SpecificCharacterSet = character_set
    is_implicit_vr, is_little_endian = identifier.original_encoding
    identifier.set_original_encoding(
        is_implicit_vr, is_little_endian, convert_encodings([character_set])
    )


def _text(dataset: Dataset, keyword: str) -> str:
    value = dataset.get(keyword)
    if value is None:
        return ""
    return str(value).strip()


def _parse_date(value: str) -> dt.date | None:
    try:
        return dt.datetime.strptime(value, "%Y%m%d").date()
    except ValueError:
        return None


def _parse_time(value: str) -> dt.time | None:
    digits = value.split(".", maxsplit=1)[0].replace(":", "")
    formats = {2: "%H", 4: "%H%M", 6: "%H%M%S"}
    time_format = formats.get(len(digits))
    if time_format is None:
        return None
    try:
        return dt.datetime.strptime(digits, time_format).time()
    except ValueError:
        return None


def _parse_sex(value: str) -> Sex | None:
    try:
        return Sex(value)
    except ValueError:
        return None


def query_worklist(
    endpoint: DicomEndpoint,
    query: WorklistQuery,
    *,
    max_items: int = MAX_WORKLIST_ITEMS,
    extra_seconds: float = QUERY_EXTRA_SECONDS,
) -> list[WorklistItem]:
    """Query the worklist at ``endpoint`` and return the matching items.

    The query stops, aborting the association, when the server has sent more
    than ``max_items`` entries, or once the endpoint's DIMSE timeout plus
    ``extra_seconds`` have passed. A response already on its way is waited
    for, up to the DIMSE timeout, before the time is checked.

    Raises:
        DeliveryError: The association failed, the server rejected the
            Modality Worklist model, returned a failure status, sent too many
            entries or took too long, or the association ended before the
            last response.
    """
    contexts = [build_context(MODALITY_WORKLIST_FIND)]
    limits = _QueryLimits(
        endpoint,
        max_items,
        extra_seconds,
        time.monotonic() + endpoint.dimse_timeout + extra_seconds,
    )
    with open_association(endpoint, contexts) as assoc:
        identifiers = list(_find(endpoint, assoc, query.identifier(), limits))

    items = [WorklistItem.from_identifier(identifier) for identifier in identifiers]
    matching = [item for item in items if query.matches_name(item.patient_dicom_name)]
    logger.info(
        "Worklist query to %s: %d items returned, %d kept",
        endpoint,
        len(items),
        len(matching),
    )
    return matching


@dataclass(frozen=True)
class _QueryLimits:
    endpoint: DicomEndpoint
    max_items: int
    extra_seconds: float
    ends_at: float
    """time.monotonic() by which the last response must have come."""

    def check(self, received: int) -> None:
        """Raise when ``received`` entries are too many or came too late."""
        if received > self.max_items:
            raise DeliveryError(
                f"The worklist of {self.endpoint} has more than {self.max_items} "
                f"entries for these dates and this modality, so the query was "
                f"stopped. Query one day at a time, or only the steps scheduled "
                f"for this station.",
                transient=False,
            )
        if time.monotonic() > self.ends_at:
            raise DeliveryError(
                f"The worklist query to {self.endpoint} took longer than its "
                f"DIMSE timeout plus {self.extra_seconds:.0f} s and was stopped "
                f"after {received} entries. Query fewer days, or check the "
                f"server.",
                transient=True,
            )


def _find(
    endpoint: DicomEndpoint,
    assoc: Association,
    identifier: Dataset,
    limits: _QueryLimits,
) -> Iterator[Dataset]:
    responses = assoc.send_c_find(identifier, MODALITY_WORKLIST_FIND)
    received = 0
    for status, response_identifier in responses:
        code = status.get("Status") if status is not None else None
        if code is None:
            raise DeliveryError(
                f"Worklist query to {endpoint} ended early because "
                f"{no_response_reason(endpoint, assoc)}.",
                transient=True,
            )

        category = code_to_category(int(code))
        if category == "Pending":
            if response_identifier is not None:
                received += 1
            limits.check(received)
            if response_identifier is not None:
                yield response_identifier
            continue
        if category in ("Success", "Cancel"):
            return
        raise DeliveryError(
            f"{endpoint} failed the worklist query: status 0x{code:04X}, "
            f"{_describe_find_status(int(code))}.",
            transient=False,
            code=int(code),
        )


def _describe_find_status(code: int) -> str:
    known = MODALITY_WORKLIST_SERVICE_CLASS_STATUS.get(code)
    if known is not None and known[1]:
        return str(known[1])
    return code_to_category(code)
