"""Tests of the exam manifest: round trips and every validation rule."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest

from eyer_desktop.core.exams import (
    ExamType,
    ExamUids,
    ImageRole,
    Laterality,
    Sex,
    StereoPair,
    image_sop_instance_uid,
)
from eyer_desktop.core.manifest import (
    ANAMNESIS_DEPTH_MAX,
    ExamValidationError,
    exam_from_json,
    is_valid_uid,
    load_exam,
    save_exam,
)
from tests.helpers.exam_data import (
    EXAM_ID,
    LEFT_ID,
    RIGHT_ID,
    manifest_data,
    write_exam_folder,
)

DELETE = object()
THIRD_ID = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"


def changed(data: dict[str, Any], path: str, value: object) -> dict[str, Any]:
    """Set (or with DELETE remove) the value at a dotted path such as images.0.file."""
    *parents, last = path.split(".")
    target: Any = data
    for key in parents:
        target = target[int(key)] if isinstance(target, list) else target[key]
    key: Any = int(last) if isinstance(target, list) else last
    if value is DELETE:
        del target[key]
    else:
        target[key] = value
    return data


def problems_of(folder: Path) -> list[str]:
    with pytest.raises(ExamValidationError) as caught:
        load_exam(folder)
    return [str(problem) for problem in caught.value.problems]


def third_image(**fields: Any) -> dict[str, Any]:
    image = {
        "image_id": THIRD_ID,
        "file": "images/R-03.jpg",
        "laterality": "R",
        "role": "capture",
    }
    image.update(fields)
    return image


# Round trips


def test_load_valid_manifest(tmp_path: Path) -> None:
    exam = load_exam(write_exam_folder(tmp_path / "exam"))

    assert exam.exam_id == EXAM_ID
    assert exam.exam_type is ExamType.COLOR
    assert exam.captured_at == dt.datetime(
        2025, 3, 14, 9, 26, 53, tzinfo=dt.timezone(dt.timedelta(hours=-3))
    )
    assert exam.patient.name.middle == "da Conceição"
    assert exam.patient.sex is Sex.FEMALE
    assert exam.patient.birth_date == dt.date(1958, 11, 2)
    assert exam.diopters.right == -1.25
    assert exam.pupil_dilated is False
    assert exam.device.clinic_name == "Clínica São Lucas"
    assert [image.laterality for image in exam.images] == [
        Laterality.RIGHT,
        Laterality.LEFT,
    ]
    assert exam.folder == tmp_path / "exam"


def test_missing_uids_derived_from_ids(tmp_path: Path) -> None:
    exam = load_exam(write_exam_folder(tmp_path / "exam"))

    assert exam.uids == ExamUids.derive(EXAM_ID)
    assert exam.images[0].sop_instance_uid == image_sop_instance_uid(EXAM_ID, RIGHT_ID)


def test_save_then_load_round_trip(tmp_path: Path) -> None:
    exam = load_exam(write_exam_folder(tmp_path / "exam"))
    exam.worklist = None
    exam.anamnesis = {"diabetes": "sim", "anos": 12, "notas": ["visão turva"]}

    save_exam(exam, exam.folder or tmp_path)
    again = load_exam(tmp_path / "exam")

    assert again == exam
    text = (tmp_path / "exam" / "exam.json").read_text(encoding="utf-8")
    assert "Conceição" in text
    assert json.loads(text)["format_version"] == 1
    assert (
        json.loads(text)["uids"]["study_instance_uid"] == exam.uids.study_instance_uid
    )


def test_save_keeps_given_uids(tmp_path: Path) -> None:
    exam = load_exam(write_exam_folder(tmp_path / "exam"))
    exam.uids = dataclasses.replace(exam.uids, study_instance_uid="1.2.3.4")
    exam.images[0].sop_instance_uid = "1.2.3.5"

    save_exam(exam, tmp_path / "exam")
    again = load_exam(tmp_path / "exam")

    assert again.uids.study_instance_uid == "1.2.3.4"
    assert again.images[0].sop_instance_uid == "1.2.3.5"


def test_stereo_and_montage_round_trip(tmp_path: Path) -> None:
    folder = tmp_path / "exam"
    data = manifest_data(exam_type="stereo")
    data["images"].append(third_image())
    data["stereo_pairs"] = [{"left_image_id": RIGHT_ID, "right_image_id": THIRD_ID}]
    exam = load_exam(write_exam_folder(folder, data))
    assert exam.stereo_pairs == [StereoPair(RIGHT_ID, THIRD_ID)]

    data = manifest_data(exam_type="panoramic")
    data["images"].append(third_image())
    data["images"].append(
        third_image(
            image_id="1d2c3b4a-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
            file="images/R-montage.jpg",
            role="montage",
            sources=[RIGHT_ID, THIRD_ID],
        )
    )
    exam = load_exam(write_exam_folder(folder, data))
    save_exam(exam, folder)
    montage = load_exam(folder).images[3]
    assert montage.role is ImageRole.MONTAGE
    assert montage.sources == (RIGHT_ID, THIRD_ID)


def test_save_invalid_exam_keeps_old_manifest(tmp_path: Path) -> None:
    folder = write_exam_folder(tmp_path / "exam")
    before = (folder / "exam.json").read_bytes()
    exam = load_exam(folder)
    exam.stereo_pairs = [StereoPair(RIGHT_ID, LEFT_ID)]

    with pytest.raises(ExamValidationError, match="stereo_pairs"):
        save_exam(exam, folder)

    assert (folder / "exam.json").read_bytes() == before
    assert sorted(os.listdir(folder)) == ["exam.json", "images"]


def test_save_rejects_non_json_anamnesis(tmp_path: Path) -> None:
    folder = write_exam_folder(tmp_path / "exam")
    exam = load_exam(folder)
    exam.anamnesis = {"since": dt.date(2020, 1, 1)}

    with pytest.raises(ExamValidationError) as caught:
        save_exam(exam, folder)

    assert caught.value.problems[0].field == "anamnesis"


def test_anamnesis_depth_limit(tmp_path: Path) -> None:
    deep: object = "turva"
    for _ in range(ANAMNESIS_DEPTH_MAX - 1):
        deep = [deep]
    folder = write_exam_folder(tmp_path / "exam", manifest_data(anamnesis={"n": deep}))
    exam = load_exam(folder)
    exam.anamnesis = {"n": [deep]}

    with pytest.raises(ExamValidationError) as caught:
        save_exam(exam, folder)

    assert caught.value.problems[0].field == "anamnesis"
    assert load_exam(folder).anamnesis == {"n": deep}


def test_anamnesis_far_too_deep_reported(tmp_path: Path) -> None:
    deep: object = "turva"
    for _ in range(900):
        deep = [deep]
    folder = write_exam_folder(tmp_path / "exam", manifest_data(anamnesis={"n": deep}))

    problems = problems_of(folder)

    assert problems == [
        "anamnesis: nests objects or lists more than 16 levels deep. Write the "
        'answers as one flat object, e.g. {"diabetes": "yes"}'
    ]


def test_save_leaves_no_temporary_file(tmp_path: Path) -> None:
    folder = write_exam_folder(tmp_path / "exam")
    exam = load_exam(folder)

    save_exam(exam, folder)

    assert sorted(os.listdir(folder)) == ["exam.json", "images"]


def test_unknown_keys_kept_out_with_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = manifest_data(viewer_notes="x")
    data["patient"]["nickname"] = "Cica"

    with caplog.at_level(logging.WARNING, logger="eyer_desktop.core.manifest"):
        exam = load_exam(write_exam_folder(tmp_path / "exam", data))

    assert exam.exam_id == EXAM_ID
    assert "viewer_notes" in caplog.text
    assert "patient.nickname" in caplog.text
    assert "Cica" not in caplog.text


# Validation rules

LONG_UID = "1." + "2" * 63

INVALID_CASES = [
    ("format", "zip", "format 'zip': is not an Eyer exam manifest"),
    ("format_version", 2, "was written by a newer Eyer Desktop"),
    ("format_version", "1", "is not a supported format version"),
    ("exam_id", "1234", "exam_id '1234': is not a UUID"),
    ("exam_id", EXAM_ID.upper(), "is not a UUID"),
    ("exam_id", DELETE, "exam_id: is missing"),
    ("exam_type", "fluor", "exam_type 'fluor': is not allowed. Use one of \"color\""),
    ("captured_at", "2025-03-14T09:26:53", "captured_at '2025-03-14T09:26:53': has no"),
    ("captured_at", "yesterday", "is not a valid date and time"),
    ("captured_at", DELETE, "captured_at: is missing"),
    ("patient", DELETE, "patient: is missing"),
    ("patient", "Maria", "patient 'Maria': is not a JSON object"),
    ("patient.name", {"family": "", "given": " "}, "patient.name: is empty"),
    ("patient.name.family", "Gon^çalves", 'contains "^"'),
    ("patient.name.given", "a" * 65, "is longer than 64 characters"),
    ("patient.name.middle", "b" * 50, "is longer than 62 characters in all"),
    ("patient.document.number", "", "patient.document.number '': is empty"),
    ("patient.document.number", "12\\34", "contains a backslash"),
    ("patient.document.number", "12\n34", "contains a control character"),
    ("patient.document.number", 1234, "is not a string"),
    ("patient.document", DELETE, "patient.document: is missing"),
    ("patient.sex", "X", "patient.sex 'X': is not allowed"),
    ("patient.birth_date", "19581102", "patient.birth_date '19581102': is not a valid"),
    ("patient.birth_date", "1958-02-30", "is not a valid date"),
    ("patient.birth_date", "2025-03-15", "is after the capture date 2025-03-14"),
    ("patient.birth_date", "0001-01-01", "'0001-01-01': is before 1870-01-01"),
    ("patient.birth_date", "1869-12-31", "is before 1870-01-01"),
    ("captured_at", "0999-03-10T10:00:00-03:00", "is before 1990-01-01"),
    ("captured_at", "1989-12-31T23:59:59+00:00", "is before 1990-01-01"),
    ("captured_at", "2999-03-10T10:00:00-03:00", "more than one day in the future"),
    ("diopters.R", "-1", "diopters.R '-1': is not a number"),
    ("diopters.L", True, "diopters.L True: is not a number"),
    ("diopters.R", 30.25, "diopters.R 30.25: is not between -30 and 30"),
    ("diopters.L", -1e300, "is not between -30 and 30"),
    ("pupil_dilated", "yes", "pupil_dilated 'yes': is not true, false or null"),
    ("sequence_number", 0, "sequence_number 0: is not a whole number"),
    ("sequence_number", True, "is not a whole number"),
    ("anamnesis", ["diabetes"], "anamnesis '[\"diabetes\"]': is not a JSON object"),
    (
        "anamnesis",
        {"notes": [[[[[[[[[[[[[[[["turva"]]]]]]]]]]]]]]]]},
        "anamnesis: nests objects or lists more than 16 levels deep",
    ),
    ("device.clinic_name", "c" * 65, "device.clinic_name"),
    ("device.serial_number", "A\\B", "contains a backslash"),
    ("worklist", {"accession_number": "A" * 17}, "worklist.accession_number"),
    ("worklist", {"study_instance_uid": "1.2.x"}, "worklist.study_instance_uid"),
    ("uids", {"study_instance_uid": "1.02.3"}, "uids.study_instance_uid '1.02.3'"),
    ("uids", {"series_instance_uid": LONG_UID}, "is not a valid DICOM UID"),
    ("images", [], "images: is empty"),
    ("images", DELETE, "images: is missing"),
    ("images.0.file", "../R-01.jpg", 'leads out of the exam folder through ".."'),
    ("images.0.file", "/etc/hostname", "is an absolute path"),
    ("images.0.file", "C:/images/R-01.jpg", "is an absolute path"),
    ("images.0.file", "images\\R-01.jpg", "contains a backslash"),
    ("images.0.file", "images/none.jpg", "was not found in the exam folder"),
    ("images.0.file", "", "images[0].file '': is empty"),
    ("images.0.laterality", "OD", "images[0].laterality 'OD': is not allowed"),
    ("images.0.role", "mosaic", "images[0].role 'mosaic'"),
    ("images.0.image_id", "img-1", "images[0].image_id 'img-1': is not a UUID"),
    ("images.0.sop_instance_uid", "1.2.03", "images[0].sop_instance_uid"),
    ("images.0.sop_instance_uid", "1.2.abc", "is not a valid DICOM UID"),
    ("images.1.image_id", RIGHT_ID, "images[1].image_id"),
    ("images.1.file", "images/R-01.jpg", "is the same as in images[0]"),
    ("images.0.sources", [LEFT_ID], "is set on a captured image"),
    (
        "stereo_pairs",
        [{"left_image_id": RIGHT_ID, "right_image_id": LEFT_ID}],
        "is not allowed in a color exam",
    ),
    ("stereo_pairs", "none", "stereo_pairs 'none': is not a list"),
]


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    INVALID_CASES,
    ids=[f"{case[0]}-{index}" for index, case in enumerate(INVALID_CASES)],
)
def test_invalid_field_reported(
    tmp_path: Path, path: str, value: object, expected: str
) -> None:
    folder = tmp_path / "exam"
    write_exam_folder(folder)
    data = changed(manifest_data(), path, value)
    (folder / "exam.json").write_text(json.dumps(data), encoding="utf-8")

    problems = problems_of(folder)

    assert any(expected in problem for problem in problems), problems


def test_duplicate_sop_instance_uids(tmp_path: Path) -> None:
    data = manifest_data()
    data["images"][0]["sop_instance_uid"] = "1.2.3"
    data["images"][1]["sop_instance_uid"] = "1.2.3"

    problems = problems_of(write_exam_folder(tmp_path / "exam", data))

    assert problems == [
        "images[1].sop_instance_uid '1.2.3': is the same UID as "
        "images[0].sop_instance_uid. Give every study, series and instance its own "
        "UID, or remove the UIDs to derive them from the exam id"
    ]


STEREO_CASES = [
    (
        {"left_image_id": RIGHT_ID, "right_image_id": LEFT_ID},
        "pairs images of different eyes",
    ),
    (
        {"left_image_id": RIGHT_ID, "right_image_id": RIGHT_ID},
        "pairs an image with itself",
    ),
    (
        {"left_image_id": RIGHT_ID, "right_image_id": THIRD_ID[:-1] + "0"},
        "is not the id of an image",
    ),
    ({"left_image_id": RIGHT_ID}, "stereo_pairs[0].right_image_id: is missing"),
]


@pytest.mark.parametrize(("pair", "expected"), STEREO_CASES)
def test_invalid_stereo_pair(
    tmp_path: Path, pair: dict[str, str], expected: str
) -> None:
    data = manifest_data(exam_type="stereo", stereo_pairs=[pair])
    data["images"].append(third_image())

    problems = problems_of(write_exam_folder(tmp_path / "exam", data))

    assert any(expected in problem for problem in problems), problems


MONTAGE_ID = "1d2c3b4a-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
MONTAGE_CASES = [
    ("panoramic", [RIGHT_ID], "lists fewer than two source images"),
    ("panoramic", [RIGHT_ID, LEFT_ID], "is an image of the other eye (L)"),
    ("panoramic", [RIGHT_ID, THIRD_ID[:-1] + "0"], "is not the id of an image"),
    ("panoramic", [RIGHT_ID, MONTAGE_ID], "is not a captured image"),
    ("color", [RIGHT_ID, THIRD_ID], "is not allowed in a color exam"),
]


@pytest.mark.parametrize(("exam_type", "sources", "expected"), MONTAGE_CASES)
def test_invalid_montage(
    tmp_path: Path, exam_type: str, sources: list[str], expected: str
) -> None:
    data = manifest_data(exam_type=exam_type)
    data["images"].append(third_image())
    data["images"].append(
        third_image(
            image_id=MONTAGE_ID,
            file="images/R-montage.jpg",
            role="montage",
            sources=sources,
        )
    )

    problems = problems_of(write_exam_folder(tmp_path / "exam", data))

    assert any(expected in problem for problem in problems), problems


def test_symlink_out_of_folder_rejected(tmp_path: Path) -> None:
    outside = tmp_path / "outside.jpg"
    outside.write_bytes(b"jpeg")
    folder = write_exam_folder(tmp_path / "exam")
    (folder / "images" / "R-01.jpg").unlink()
    (folder / "images" / "R-01.jpg").symlink_to(outside)

    problems = problems_of(folder)

    assert problems == [
        "images[0].file 'images/R-01.jpg': is a symbolic link that leads out of the "
        "exam folder. Copy the image into the exam folder"
    ]


def test_every_problem_reported_at_once(tmp_path: Path) -> None:
    data = manifest_data(exam_type="fluor", sequence_number=-1)
    data["patient"]["sex"] = "x"
    data["images"][1]["laterality"] = "both"
    folder = write_exam_folder(tmp_path / "exam", data)

    with pytest.raises(ExamValidationError) as caught:
        load_exam(folder)

    fields = [problem.field for problem in caught.value.problems]
    assert sorted(fields) == sorted(
        ["exam_type", "sequence_number", "patient.sex", "images[1].laterality"]
    )
    assert str(caught.value).startswith(f"exam {folder} has 4 problems:\n- ")


def test_missing_manifest_reported(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()

    assert problems_of(tmp_path / "empty") == [
        "exam.json: not found. Choose a folder that contains exam.json"
    ]


def test_broken_json_reported(tmp_path: Path) -> None:
    folder = write_exam_folder(tmp_path / "exam")
    (folder / "exam.json").write_text('{"format": "eyer-exam",', encoding="utf-8")

    problems = problems_of(folder)

    assert len(problems) == 1
    assert problems[0].startswith("exam.json: is not valid JSON (")


def test_nan_in_json_rejected(tmp_path: Path) -> None:
    folder = write_exam_folder(tmp_path / "exam")
    text = json.dumps(manifest_data()).replace('"R": -1.25', '"R": NaN')
    (folder / "exam.json").write_text(text, encoding="utf-8")

    problems = problems_of(folder)

    assert "NaN is not a JSON number" in problems[0]


def test_manifest_not_an_object(tmp_path: Path) -> None:
    folder = write_exam_folder(tmp_path / "exam")
    (folder / "exam.json").write_text("[1, 2]", encoding="utf-8")

    assert problems_of(folder) == [
        "manifest '[1, 2]': is not a JSON object. "
        "Write it as an object in braces, {...}"
    ]


def test_long_values_shortened_in_messages() -> None:
    data = manifest_data(exam_type="x" * 500)

    with pytest.raises(ExamValidationError) as caught:
        exam_from_json(data)

    assert len(str(caught.value)) < 200


@pytest.mark.parametrize(
    ("uid", "valid"),
    [
        ("1.2.840.10008.5.1.4.1.1.77.1.5.1", True),
        ("2.25.0", True),
        ("0", True),
        ("1.2." + "3" * 60, True),
        ("1.2." + "3" * 61, False),
        ("1.02", False),
        ("1..2", False),
        ("1.2.", False),
        ("", False),
        ("1.2.3a", False),
        (" 1.2", False),
    ],
)
def test_uid_syntax(uid: str, valid: bool) -> None:
    assert is_valid_uid(uid) is valid


def test_documented_example_is_valid() -> None:
    doc = Path(__file__).parents[2] / "docs" / "exam-format.md"
    blocks = doc.read_text(encoding="utf-8").split("```json\n")[1:]
    example, montage = (json.loads(block.split("```")[0]) for block in blocks)

    exam = exam_from_json(example)

    assert exam.exam_type is ExamType.STEREO
    assert exam.uids == ExamUids.derive(exam.exam_id)
    for image in exam.images:
        assert image.sop_instance_uid == image_sop_instance_uid(
            exam.exam_id, image.image_id
        )
    assert montage["sop_instance_uid"] == image_sop_instance_uid(
        exam.exam_id, montage["image_id"]
    )
