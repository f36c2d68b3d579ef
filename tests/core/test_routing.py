from __future__ import annotations

from collections.abc import Iterator

import pytest

from eyer_desktop.core.errors import ValidationError
from eyer_desktop.core.outbox import DeliveryState, Outbox, Outcome, PauseReason, Route
from eyer_desktop.core.paths import AppPaths
from eyer_desktop.core.routing import (
    enqueue_contingency,
    enqueue_exam,
    primary_available,
    route_new_exam,
    route_send_now,
    send_now,
    sync_server_actions,
)
from tests.helpers.delivery_data import ServerStub, make_exam
from tests.helpers.fake_clock import FakeClock

CLOUD = ServerStub("EYE001", "primary")
MIRROR = ServerStub("PAC001", "mirror")
BACKUP = ServerStub("BAK001", "contingency")
MANUAL = ServerStub("MAN001", "manual")
OFF = ServerStub("OFF001", "deactivated")
WORKLIST = ServerStub("WKL001", "mirror", is_storage=False)
CLOUD_OFF = ServerStub("EYE001", "deactivated")
CLOUD_UNSET = ServerStub("EYE001", "primary", is_configured=False)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def outbox(isolated_profile: AppPaths, clock: FakeClock) -> Iterator[Outbox]:
    with Outbox(isolated_profile.outbox_file, clock=clock) as box:
        yield box


# Pure routing


@pytest.mark.parametrize(
    ("servers", "expected"),
    [
        pytest.param(
            [CLOUD, MIRROR, BACKUP, MANUAL, OFF, WORKLIST],
            {"EYE001": Route.PRIMARY, "PAC001": Route.MIRROR},
            id="working primary: contingency gets nothing",
        ),
        pytest.param(
            [CLOUD_OFF, MIRROR, BACKUP, MANUAL],
            {"PAC001": Route.MIRROR, "BAK001": Route.CONTINGENCY},
            id="primary deactivated: contingency at once",
        ),
        pytest.param(
            [CLOUD_UNSET, MIRROR, BACKUP],
            {"PAC001": Route.MIRROR, "BAK001": Route.CONTINGENCY},
            id="primary not configured: contingency at once",
        ),
        pytest.param(
            [CLOUD, MANUAL],
            {"EYE001": Route.PRIMARY},
            id="manual only on request",
        ),
        pytest.param(
            [CLOUD, OFF],
            {"EYE001": Route.PRIMARY},
            id="deactivated gets nothing",
        ),
        pytest.param(
            [CLOUD, WORKLIST, ServerStub("WKL002", "contingency", is_storage=False)],
            {"EYE001": Route.PRIMARY},
            id="worklist never",
        ),
        pytest.param(
            [CLOUD_OFF, ServerStub("BAK002", "contingency", is_configured=False)],
            {},
            id="unconfigured contingency gets nothing",
        ),
        pytest.param(
            [CLOUD, MIRROR, ServerStub("PAC002", "mirror")],
            {"EYE001": Route.PRIMARY, "PAC001": Route.MIRROR, "PAC002": Route.MIRROR},
            id="every mirror",
        ),
        pytest.param([], {}, id="no servers"),
    ],
)
def test_route_new_exam(servers: list[ServerStub], expected: dict[str, Route]) -> None:
    assert route_new_exam(servers) == expected


def test_primary_available_needs_active_configured_storage() -> None:
    assert primary_available([CLOUD])
    assert not primary_available([CLOUD_OFF])
    assert not primary_available([CLOUD_UNSET])
    assert not primary_available([MIRROR, BACKUP])


def test_unknown_action_raises_naming_server() -> None:
    with pytest.raises(
        ValueError, match="server ODD001 has invalid action 'sometimes'"
    ):
        route_new_exam([ServerStub("ODD001", "sometimes")])


@pytest.mark.parametrize("server", [CLOUD, MIRROR, BACKUP, MANUAL])
def test_send_now_accepts_active_storage(server: ServerStub) -> None:
    assert route_send_now([server], server.key) == {server.key: Route.MANUAL}


@pytest.mark.parametrize(
    ("servers", "key", "problem"),
    [
        ([CLOUD], "XYZ999", "no server has this key"),
        ([OFF], "OFF001", "is deactivated"),
        ([WORKLIST], "WKL001", "is a worklist server"),
        ([CLOUD_UNSET], "EYE001", "is not configured"),
    ],
)
def test_send_now_rejects(servers: list[ServerStub], key: str, problem: str) -> None:
    with pytest.raises(ValidationError, match=problem) as raised:
        route_send_now(servers, key)

    assert raised.value.value == key
    assert raised.value.fix


# Applied to the outbox


def test_enqueue_exam_queues_every_image(outbox: Outbox) -> None:
    exam = make_exam("a", 3)

    created = enqueue_exam(outbox, [CLOUD, MIRROR, BACKUP, MANUAL], exam)

    assert created == 6
    assert outbox.counts().keys() == {"EYE001", "PAC001"}


def test_enqueue_exam_twice_creates_nothing(outbox: Outbox) -> None:
    exam = make_exam("a", 3)
    enqueue_exam(outbox, [CLOUD, MIRROR], exam)

    assert enqueue_exam(outbox, [CLOUD, MIRROR], exam) == 0
    assert len(outbox.deliveries()) == 6


def test_send_now_resends_sent_images(outbox: Outbox) -> None:
    exam = make_exam("a", 2)
    enqueue_exam(outbox, [CLOUD], exam)
    batch = outbox.claim_due("EYE001", 10)
    outbox.record_outcomes({d.delivery_id: Outcome.sent() for d in batch})

    queued = send_now(outbox, [CLOUD, MANUAL], exam, "EYE001")

    assert queued == 2
    assert outbox.counts()["EYE001"][DeliveryState.QUEUED] == 2


def test_send_now_to_manual_server(outbox: Outbox) -> None:
    exam = make_exam("a", 2)
    enqueue_exam(outbox, [CLOUD, MANUAL], exam)

    queued = send_now(outbox, [CLOUD, MANUAL], exam, "MAN001")

    assert queued == 2
    assert {d.route for d in outbox.deliveries(server_key="MAN001")} == {Route.MANUAL}


def test_send_now_rejected_queues_nothing(outbox: Outbox) -> None:
    with pytest.raises(ValidationError):
        send_now(outbox, [CLOUD, OFF], make_exam("a"), "OFF001")

    assert outbox.deliveries() == []


def test_failing_primary_sends_exam_to_contingency_once(outbox: Outbox) -> None:
    servers = [CLOUD, BACKUP, ServerStub("BAK002", "contingency")]
    exam = make_exam("a", 3)
    enqueue_exam(outbox, servers, exam)

    first = enqueue_contingency(outbox, servers, [exam.exam_id])
    again = enqueue_contingency(outbox, servers, [exam.exam_id, exam.exam_id])

    assert first == 6
    assert again == 0
    for key in ("BAK001", "BAK002"):
        copies = outbox.deliveries(server_key=key)
        assert [d.image_id for d in copies] == [i.image_id for i in exam.images]
        assert {d.route for d in copies} == {Route.CONTINGENCY}


def test_contingency_hook_only_takes_named_exams(outbox: Outbox) -> None:
    servers = [CLOUD, BACKUP]
    failing, working = make_exam("failing", 2), make_exam("working", 2)
    enqueue_exam(outbox, servers, failing)
    enqueue_exam(outbox, servers, working)

    enqueue_contingency(outbox, servers, [failing.exam_id])

    copied = {d.exam_id for d in outbox.deliveries(server_key="BAK001")}
    assert copied == {failing.exam_id}


def test_contingency_hook_without_contingency_server(outbox: Outbox) -> None:
    exam = make_exam("a")
    enqueue_exam(outbox, [CLOUD, MIRROR], exam)

    assert enqueue_contingency(outbox, [CLOUD, MIRROR], [exam.exam_id]) == 0
    assert outbox.counts().keys() == {"EYE001", "PAC001"}


def test_deactivated_server_rows_wait(outbox: Outbox) -> None:
    exam = make_exam("a", 2)
    enqueue_exam(outbox, [CLOUD, MIRROR], exam)
    mirror_off = ServerStub("PAC001", "deactivated")

    sync_server_actions(outbox, [CLOUD, mirror_off])

    assert outbox.counts()["PAC001"][DeliveryState.PAUSED] == 2
    assert outbox.due_server_keys() == ["EYE001"]
    assert enqueue_exam(outbox, [CLOUD, mirror_off], make_exam("b", 2)) == 2
    assert len(outbox.deliveries(server_key="PAC001")) == 2

    sync_server_actions(outbox, [CLOUD, MIRROR])

    assert outbox.counts()["PAC001"][DeliveryState.QUEUED] == 2
    assert outbox.paused_servers() == {}


def test_sync_keeps_user_pause(outbox: Outbox) -> None:
    enqueue_exam(outbox, [CLOUD, MIRROR], make_exam("a", 2))
    outbox.pause("PAC001", PauseReason.USER)

    sync_server_actions(outbox, [CLOUD, ServerStub("PAC001", "deactivated")])
    sync_server_actions(outbox, [CLOUD, MIRROR])

    assert outbox.paused_servers() == {"PAC001": frozenset({PauseReason.USER})}
    assert outbox.counts()["PAC001"][DeliveryState.PAUSED] == 2


def test_sync_pauses_removed_and_unconfigured(outbox: Outbox) -> None:
    enqueue_exam(outbox, [CLOUD, MIRROR], make_exam("a", 1))

    sync_server_actions(outbox, [CLOUD_UNSET])

    assert outbox.paused_servers() == {
        "EYE001": frozenset({PauseReason.INACTIVE}),
        "PAC001": frozenset({PauseReason.INACTIVE}),
    }


def test_deactivated_primary_hands_over_waiting(outbox: Outbox) -> None:
    waiting, done = make_exam("waiting", 2), make_exam("done", 1)
    enqueue_exam(outbox, [CLOUD, BACKUP], done)
    batch = outbox.claim_due("EYE001", 10)
    outbox.record_outcomes({d.delivery_id: Outcome.sent() for d in batch})
    enqueue_exam(outbox, [CLOUD, BACKUP], waiting)

    sync_server_actions(outbox, [CLOUD_OFF, BACKUP])
    sync_server_actions(outbox, [CLOUD_OFF, BACKUP])

    copies = outbox.deliveries(server_key="BAK001")
    assert {d.exam_id for d in copies} == {waiting.exam_id}
    assert len(copies) == 2
    assert outbox.counts()["EYE001"][DeliveryState.PAUSED] == 2


def test_working_primary_sync_adds_no_contingency(outbox: Outbox) -> None:
    enqueue_exam(outbox, [CLOUD, BACKUP], make_exam("a", 2))

    sync_server_actions(outbox, [CLOUD, BACKUP])

    assert outbox.deliveries(server_key="BAK001") == []
