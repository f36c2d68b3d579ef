"""Outbox.exam_counts: delivery state counts per exam and server in one query."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from eyer_desktop.core.outbox import (
    DeliveryState,
    Outbox,
    Outcome,
    Route,
    items_of_exam,
)
from eyer_desktop.core.paths import AppPaths
from tests.helpers.delivery_data import make_exam
from tests.helpers.fake_clock import FakeClock


@pytest.fixture
def outbox(isolated_profile: AppPaths) -> Iterator[Outbox]:
    with Outbox(isolated_profile.outbox_file, clock=FakeClock()) as box:
        yield box


def test_exam_counts_empty_ids(outbox: Outbox) -> None:
    assert outbox.exam_counts([]) == {}


def test_exam_counts_per_exam_and_server(outbox: Outbox) -> None:
    first = make_exam("first", image_count=3)
    second = make_exam("second", image_count=2)
    outbox.enqueue(
        items_of_exam(first), {"EYE001": Route.PRIMARY, "PAC001": Route.MIRROR}
    )
    outbox.enqueue(items_of_exam(second), {"PAC001": Route.MIRROR})
    claimed = outbox.claim_due("EYE001", 2)
    outbox.record_outcomes(
        {
            claimed[0].delivery_id: Outcome.sent(0),
            claimed[1].delivery_id: Outcome.failed("rejected", transient=False),
        }
    )

    counts = outbox.exam_counts([first.exam_id, second.exam_id, "no-such-exam"])

    assert set(counts) == {first.exam_id, second.exam_id}
    assert set(counts[first.exam_id]) == {"EYE001", "PAC001"}
    primary = counts[first.exam_id]["EYE001"]
    assert primary[DeliveryState.SENT] == 1
    assert primary[DeliveryState.FAILED] == 1
    assert primary[DeliveryState.QUEUED] == 1
    assert primary[DeliveryState.SENDING] == 0
    assert counts[first.exam_id]["PAC001"][DeliveryState.QUEUED] == 3
    assert set(counts[second.exam_id]) == {"PAC001"}
    assert counts[second.exam_id]["PAC001"][DeliveryState.QUEUED] == 2


def test_exam_counts_many_ids_one_parameter(outbox: Outbox) -> None:
    exams = [make_exam(f"exam-{number}", image_count=1) for number in range(1200)]
    for exam in exams:
        outbox.enqueue(items_of_exam(exam), {"EYE001": Route.PRIMARY})
    # More ids than SQLite's oldest limit of 999 host parameters per statement.
    ids = [exam.exam_id for exam in exams]

    counts = outbox.exam_counts(ids)

    assert len(counts) == 1200
    assert all(
        per_server["EYE001"][DeliveryState.QUEUED] == 1
        for per_server in counts.values()
    )
