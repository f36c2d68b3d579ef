"""Exam-level values under arbitrary patient text (property-based)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eyer_desktop.core.dicom import CharacterSet, ConversionOptions
from eyer_desktop.core.dicom.context import build_context
from eyer_desktop.core.errors import ConversionError
from eyer_desktop.core.exams import ClinicDocument, ExamType, PatientName
from tests.core.dicom.conftest import CREATED_AT, ExamSpec, make_exam

text = st.text(max_size=90)
anamnesis = st.dictionaries(
    st.text(max_size=20),
    st.one_of(st.text(max_size=200), st.booleans(), st.integers(), st.none()),
    max_size=5,
)


def no_controls(value: str) -> bool:
    return all(not (ord(char) < 0x20 or 0x7F <= ord(char) <= 0x9F) for char in value)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    family=text,
    given_name=text,
    notes=anamnesis,
    document=st.text(max_size=70),
    charset=st.sampled_from(list(CharacterSet)),
)
def test_values_fit_or_raise(
    tmp_path: Path,
    family: str,
    given_name: str,
    notes: dict[str, Any],
    document: str,
    charset: CharacterSet,
) -> None:
    exam = make_exam(tmp_path, ExamSpec(ExamType.COLOR, []))
    exam.patient.name = PatientName(family, given_name)
    exam.patient.document = ClinicDocument("CPF", document)
    exam.anamnesis = notes
    options = ConversionOptions(dicom_prefix="eyer_", specific_character_set=charset)

    try:
        context = build_context(exam, options, CREATED_AT)
    except ConversionError as err:
        message = str(err)
        reasons = ("bytes long", "control character", "cannot encode")
        assert any(reason in message for reason in reasons), message
        return

    codec = charset.codec
    assert len(context.patient_name.encode(codec)) <= 64
    assert "=" not in context.patient_name
    assert "\\" not in context.patient_name
    assert no_controls(context.patient_name)
    assert len(context.patient_id.encode(codec)) <= 64
    assert no_controls(context.patient_id)
    assert len(context.patient_comments.encode(codec)) <= 10240
    assert no_controls(context.patient_comments)
    assert json.loads(context.patient_comments)["diopters"] == {
        "right": -1.25,
        "left": 0.5,
    }
