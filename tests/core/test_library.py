"""Tests of the exam library: listing, lookup, atomic creation and deletion."""

from __future__ import annotations

import datetime as dt
import json
import os
import time
import uuid
from pathlib import Path

import pytest

from eyer_desktop.core.errors import ExamError
from eyer_desktop.core.exams import Exam, ExamType, PatientName, StereoPair
from eyer_desktop.core.library import ExamLibrary, patient_display_name
from eyer_desktop.core.manifest import ExamValidationError, load_exam
from eyer_desktop.core.paths import AppPaths
from tests.helpers.exam_data import (
    EXAM_ID,
    LEFT_ID,
    RIGHT_ID,
    manifest_data,
    write_exam_folder,
)


def add_exam(
    library: ExamLibrary, exam_id: str | None = None, captured_at: str | None = None
) -> str:
    """Write a valid exam folder straight into the library; return its id."""
    exam_id = exam_id or str(uuid.uuid4())
    data = manifest_data(exam_id=exam_id)
    if captured_at is not None:
        data["captured_at"] = captured_at
    write_exam_folder(library.root / exam_id, data)
    return exam_id


def loaded_exam(tmp_path: Path) -> Exam:
    return load_exam(write_exam_folder(tmp_path / "source"))


def visible_entries(library: ExamLibrary) -> list[str]:
    return sorted(os.listdir(library.root))


def test_default_root_is_profile_library(isolated_profile: AppPaths) -> None:
    assert ExamLibrary().root == isolated_profile.library_dir


def test_missing_root_lists_nothing(tmp_path: Path) -> None:
    listing = ExamLibrary(tmp_path / "none").list_exams()

    assert listing.exams == []
    assert listing.broken == []


def test_list_summarizes_exams(tmp_path: Path) -> None:
    library = ExamLibrary(tmp_path)
    add_exam(library, EXAM_ID)

    [summary] = library.list_exams().exams

    assert summary.exam_id == EXAM_ID
    assert summary.folder == tmp_path / EXAM_ID
    assert summary.patient_name == "Maria da Conceição Gonçalves"
    assert summary.exam_type is ExamType.COLOR
    assert summary.image_count == 2
    assert summary.sequence_number == 7


def test_broken_exam_listed_with_problems(tmp_path: Path) -> None:
    library = ExamLibrary(tmp_path)
    good = [add_exam(library) for _ in range(3)]
    broken_id = str(uuid.uuid4())
    data = manifest_data(exam_id=broken_id, exam_type="fluor")
    data["patient"]["birth_date"] = "02/11/1958"
    write_exam_folder(tmp_path / broken_id, data)
    (tmp_path / "Nova pasta").mkdir()

    listing = library.list_exams()

    assert sorted(summary.exam_id for summary in listing.exams) == sorted(good)
    broken = {item.folder.name: item for item in listing.broken}
    assert sorted(broken) == sorted([broken_id, "Nova pasta"])
    fields = [problem.field for problem in broken[broken_id].problems]
    assert fields == ["exam_type", "patient.birth_date"]
    assert broken[broken_id].problems[1].value == "02/11/1958"
    assert "YYYY-MM-DD" in broken[broken_id].problems[1].fix
    assert broken["Nova pasta"].problems[0].field == "exam.json"


def test_folder_name_must_match_exam_id(tmp_path: Path) -> None:
    library = ExamLibrary(tmp_path)
    other = str(uuid.uuid4())
    write_exam_folder(tmp_path / other, manifest_data())

    [broken] = library.list_exams().broken

    assert broken.problems[0].field == "exam_id"
    assert "differs from the name of the exam's folder" in str(broken.error)


def test_list_sorted_by_capture_time(tmp_path: Path) -> None:
    library = ExamLibrary(tmp_path)
    latest = add_exam(library, captured_at="2025-03-14T09:00:00-03:00")
    middle = add_exam(library, captured_at="2025-03-14T10:30:00+00:00")
    earliest = add_exam(library, captured_at="2025-03-14T11:00:00+03:00")

    newest_first = [item.exam_id for item in library.list_exams().exams]
    oldest_first = [
        item.exam_id for item in library.list_exams(newest_first=False).exams
    ]

    assert newest_first == [latest, middle, earliest]
    assert oldest_first == [earliest, middle, latest]


def test_thousands_of_exams_listed_quickly(tmp_path: Path) -> None:
    library = ExamLibrary(tmp_path)
    template = manifest_data()
    for number in range(2000):
        exam_id = str(uuid.UUID(int=number, version=4))
        folder = tmp_path / exam_id
        (folder / "images").mkdir(parents=True)
        (folder / "images" / "R-01.jpg").write_bytes(b"jpeg")
        (folder / "images" / "L-02.jpg").write_bytes(b"jpeg")
        template["exam_id"] = exam_id
        (folder / "exam.json").write_text(json.dumps(template), encoding="utf-8")

    started = time.perf_counter()
    listing = library.list_exams()
    elapsed = time.perf_counter() - started

    assert len(listing.exams) == 2000
    assert listing.broken == []
    # Measured about 0.5 s on a 2-core development machine. The bound leaves
    # room for slow disks.
    assert elapsed < 5.0, f"listing 2000 exams took {elapsed:.2f} s"


def test_resolve_full_id_and_prefix(tmp_path: Path) -> None:
    library = ExamLibrary(tmp_path)
    first = add_exam(library, "abcd1234-0000-4000-8000-000000000001")
    add_exam(library, "abcd5678-0000-4000-8000-000000000002")

    assert library.resolve_id(first) == first
    assert library.resolve_id("ABCD12") == first
    assert library.load("abcd1").exam_id == first
    assert library.folder_of("abcd1") == tmp_path / first


@pytest.mark.parametrize(
    ("prefix", "message"),
    [
        ("abcd", "matches 2 exams (abcd1234-"),
        ("abc", "is too short. Give at least 4 characters"),
        ("ffff", "No exam id starts with 'ffff'"),
    ],
)
def test_resolve_rejects_bad_prefix(tmp_path: Path, prefix: str, message: str) -> None:
    library = ExamLibrary(tmp_path)
    add_exam(library, "abcd1234-0000-4000-8000-000000000001")
    add_exam(library, "abcd5678-0000-4000-8000-000000000002")

    with pytest.raises(ExamError, match=message.replace("(", r"\(")):
        library.resolve_id(prefix)


def test_create_exam_writes_folder(tmp_path: Path) -> None:
    library = ExamLibrary(tmp_path / "library")
    exam = loaded_exam(tmp_path)

    created = library.create_exam(exam, {RIGHT_ID: b"right", LEFT_ID: b"left"})

    folder = tmp_path / "library" / EXAM_ID
    assert created.folder == folder
    assert visible_entries(library) == [EXAM_ID]
    assert (folder / "images" / "R-01.jpg").read_bytes() == b"right"
    assert (folder / "images" / "L-02.jpg").read_bytes() == b"left"
    assert load_exam(folder) == created


def test_create_invalid_exam_writes_nothing(tmp_path: Path) -> None:
    library = ExamLibrary(tmp_path / "library")
    exam = loaded_exam(tmp_path)
    exam.stereo_pairs = [StereoPair(RIGHT_ID, LEFT_ID)]

    with pytest.raises(ExamValidationError, match="stereo_pairs"):
        library.create_exam(exam, {RIGHT_ID: b"right", LEFT_ID: b"left"})

    assert not library.root.exists() or visible_entries(library) == []


def test_create_with_missing_source_cleans_up(tmp_path: Path) -> None:
    library = ExamLibrary(tmp_path / "library")
    exam = loaded_exam(tmp_path)
    sources: dict[str, Path | bytes] = {
        RIGHT_ID: b"right",
        LEFT_ID: tmp_path / "gone.jpg",
    }

    with pytest.raises(ExamError, match=r"gone\.jpg"):
        library.create_exam(exam, sources)

    assert visible_entries(library) == []
    assert exam.folder == tmp_path / "source"


def test_create_rejects_sources_not_matching(tmp_path: Path) -> None:
    library = ExamLibrary(tmp_path / "library")
    exam = loaded_exam(tmp_path)

    with pytest.raises(ExamError, match="missing for"):
        library.create_exam(exam, {RIGHT_ID: b"right"})


def test_create_rejects_existing_exam(tmp_path: Path) -> None:
    library = ExamLibrary(tmp_path / "library")
    sources: dict[str, Path | bytes] = {RIGHT_ID: b"r", LEFT_ID: b"l"}
    library.create_exam(loaded_exam(tmp_path), sources)

    with pytest.raises(ExamError, match="is already in the library"):
        library.create_exam(loaded_exam(tmp_path), sources)


def test_add_folder_copies_exam(tmp_path: Path) -> None:
    source = write_exam_folder(tmp_path / "usb" / "exam", image_bytes=b"original")
    (source / "notes.txt").write_text("not an image", encoding="utf-8")
    before = {path: path.read_bytes() for path in source.rglob("*") if path.is_file()}
    library = ExamLibrary(tmp_path / "library")

    exam = library.add_folder(source)

    assert exam.folder == library.root / EXAM_ID
    assert (exam.folder / "images" / "R-01.jpg").read_bytes() == b"original"
    assert not (exam.folder / "notes.txt").exists()
    after = {path: path.read_bytes() for path in source.rglob("*") if path.is_file()}
    assert after == before


def test_delete_by_prefix(tmp_path: Path) -> None:
    library = ExamLibrary(tmp_path)
    kept = add_exam(library)
    deleted = add_exam(library, "feed0000-0000-4000-8000-000000000001")

    assert library.delete("feed0") == deleted

    assert visible_entries(library) == [kept]


def test_delete_unknown_exam_raises(tmp_path: Path) -> None:
    library = ExamLibrary(tmp_path)
    add_exam(library)

    with pytest.raises(ExamError, match="No exam id starts with"):
        library.delete("ffffffff")


def test_delete_broken_exam(tmp_path: Path) -> None:
    library = ExamLibrary(tmp_path)
    exam_id = str(uuid.uuid4())
    (tmp_path / exam_id).mkdir()

    library.delete(exam_id)

    assert visible_entries(library) == []


def test_stale_temp_folders_removed(tmp_path: Path) -> None:
    library = ExamLibrary(tmp_path)
    exam_id = add_exam(library)
    stale = tmp_path / ".new-stale"
    fresh = tmp_path / ".new-fresh"
    stale.mkdir()
    fresh.mkdir()
    old = time.time() - 7200
    os.utime(stale, (old, old))

    removed = library.remove_stale_temp_folders(dt.timedelta(hours=1))

    assert removed == 1
    assert visible_entries(library) == [".new-fresh", exam_id]


def test_next_sequence_number(tmp_path: Path) -> None:
    library = ExamLibrary(tmp_path)
    assert library.next_sequence_number() == 1

    add_exam(library)

    assert library.next_sequence_number() == 8


def test_folder_names_carry_no_patient_data(tmp_path: Path) -> None:
    library = ExamLibrary(tmp_path / "library")
    library.create_exam(loaded_exam(tmp_path), {RIGHT_ID: b"r", LEFT_ID: b"l"})

    names = [path.name for path in library.root.rglob("*")]

    assert not any("Gon" in name or "Maria" in name for name in names)
    assert not any("529" in name for name in names)


def test_display_name_in_reading_order() -> None:
    exam_patient = manifest_data()["patient"]["name"]

    assert patient_display_name(PatientName(**exam_patient)) == (
        "Maria da Conceição Gonçalves"
    )
    assert patient_display_name(PatientName("Silva")) == "Silva"
