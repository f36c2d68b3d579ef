"""Deleting an exam with unfinished deliveries, through core.removal."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from eyer_desktop.core import removal
from eyer_desktop.core.errors import ExamError
from eyer_desktop.core.exams import Exam
from eyer_desktop.core.outbox import DeliveryState, Route, items_of_exam
from eyer_desktop.core.samples import write_sample_exams
from eyer_desktop.core.workspace import Workspace
from tests.helpers.read_only import read_only_folder

ARCHIVE = "PAC001"


@pytest.fixture
def workspace() -> Iterator[Workspace]:
    """The workspace of the test's own profile."""
    opened = Workspace.open()
    yield opened
    opened.close()


@pytest.fixture
def exam(workspace: Workspace) -> Exam:
    """A sample exam with two deliveries queued for the archive."""
    exam = write_sample_exams(workspace.library, size=64)[0]
    workspace.outbox.enqueue(items_of_exam(exam), {ARCHIVE: Route.MIRROR})
    return exam


def states(workspace: Workspace, exam: Exam) -> list[DeliveryState]:
    return [d.state for d in workspace.outbox.deliveries(exam_id=exam.exam_id)]


def test_forced_delete_cancels_deliveries(workspace: Workspace, exam: Exam) -> None:
    cancelled = removal.delete_exam(
        workspace.library, workspace.outbox, exam.exam_id, force=True
    )

    assert cancelled == 2
    assert states(workspace, exam) == [DeliveryState.CANCELLED] * 2
    assert exam.exam_id not in workspace.library.exam_ids()


def test_unforced_delete_rejected(workspace: Workspace, exam: Exam) -> None:
    with pytest.raises(removal.UnfinishedDeliveriesError) as caught:
        removal.delete_exam(workspace.library, workspace.outbox, exam.exam_id)

    assert len(caught.value.deliveries) == 2
    assert states(workspace, exam) == [DeliveryState.QUEUED] * 2
    assert exam.exam_id in workspace.library.exam_ids()


def test_failed_delete_cancels_nothing(workspace: Workspace, exam: Exam) -> None:
    with (
        read_only_folder(workspace.library.root),
        pytest.raises(ExamError) as caught,
    ):
        removal.delete_exam(
            workspace.library, workspace.outbox, exam.exam_id, force=True
        )

    assert f"Deleting exam {exam.exam_id} failed" in str(caught.value)
    assert states(workspace, exam) == [DeliveryState.QUEUED] * 2
    assert exam.exam_id in workspace.library.exam_ids()
