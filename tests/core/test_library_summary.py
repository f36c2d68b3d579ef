"""ExamSummary carries what the exams page shows and searches."""

from __future__ import annotations

from pathlib import Path

from eyer_desktop.core.exams import Laterality
from eyer_desktop.core.library import ExamLibrary
from tests.helpers.exam_data import EXAM_ID, LEFT_ID, RIGHT_ID, write_exam_folder


def test_summary_has_document_and_images(tmp_path: Path) -> None:
    library = ExamLibrary(tmp_path / "library")
    write_exam_folder(library.root / EXAM_ID)

    listing = library.list_exams()

    assert listing.broken == []
    summary = listing.exams[0]
    assert summary.document_type == "CPF"
    assert summary.document_number == "529.982.247-25"
    assert [image.image_id for image in summary.images] == [RIGHT_ID, LEFT_ID]
    assert [image.laterality for image in summary.images] == [
        Laterality.RIGHT,
        Laterality.LEFT,
    ]
    assert summary.images[0].file == "images/R-01.jpg"
    assert summary.image_count == len(summary.images)
