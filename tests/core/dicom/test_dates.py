"""DA, TM and DT values keep four-digit years and two-digit fields."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from eyer_desktop.core.dicom import ConversionOptions
from eyer_desktop.core.dicom.context import build_context
from eyer_desktop.core.dicom.dates import (
    format_date,
    format_datetime,
    format_study_id,
    format_time,
)
from eyer_desktop.core.exams import ExamType
from tests.core.dicom.conftest import CREATED_AT, ExamSpec, make_exam

MINUS_3 = dt.timezone(dt.timedelta(hours=-3))


def test_date_pads_years_below_1000() -> None:
    assert format_date(dt.date(1, 1, 1)) == "00010101"
    assert format_date(dt.date(999, 3, 10)) == "09990310"
    assert format_date(dt.date(2024, 12, 31)) == "20241231"


def test_time_pads_fields() -> None:
    assert format_time(dt.time(1, 2, 3)) == "010203"
    assert format_time(dt.time(1, 2, 3, 5)) == "010203.000005"


def test_datetime_pads_year_and_offset() -> None:
    value = dt.datetime(999, 3, 10, 10, 0, 0, tzinfo=MINUS_3)

    assert format_datetime(value) == "09990310100000-0300"
    assert format_study_id(value) == "09990310100000"


def test_context_dates_of_early_years(tmp_path: Path) -> None:
    exam = make_exam(tmp_path, ExamSpec(ExamType.COLOR, []))
    exam.patient.birth_date = dt.date(900, 1, 1)
    exam.captured_at = dt.datetime(999, 3, 10, 10, 0, 0, tzinfo=MINUS_3)

    context = build_context(exam, ConversionOptions(), CREATED_AT)

    assert context.patient_birth_date == "09000101"
    assert context.capture_date == "09990310"
    assert context.acquisition_datetime == "09990310100000-0300"
    assert context.study_id == "09990310100000"
