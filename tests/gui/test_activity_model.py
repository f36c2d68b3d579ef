"""The Activity models and proxy: labels, merging, qtmodeltester after each change."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytestqt.modeltest import ModelTester
from pytestqt.qtbot import QtBot

from eyer_desktop.core.delivery import RunSummary, ServerPhase, ServerProgress
from eyer_desktop.core.exams import Exam, PatientName
from eyer_desktop.core.manifest import save_exam
from eyer_desktop.core.outbox import (
    DeliveryState,
    Jitter,
    Outbox,
    Outcome,
    RetryPolicy,
)
from eyer_desktop.core.routing import enqueue_exam, send_now
from eyer_desktop.core.samples import write_sample_exams
from eyer_desktop.core.server_settings import DicomStorageSettings
from eyer_desktop.core.servers import ServerAction
from eyer_desktop.core.workspace import Workspace
from eyer_desktop.gui.activity.loader import ActivityLoader
from eyer_desktop.gui.activity.model import ActivityModel, Column, Role
from eyer_desktop.gui.activity.proxy import ActivityFilterProxy, StateFilter
from eyer_desktop.gui.activity.servers_model import (
    Column as ServerColumn,
)
from eyer_desktop.gui.activity.servers_model import (
    Role as ServerRole,
)
from eyer_desktop.gui.activity.servers_model import (
    ServerStatusModel,
    StatusKind,
)
from tests.helpers.fake_clock import FakeClock

SAMPLES: list[Exam] = []


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def profile(tmp_path: Path) -> Iterator[Workspace]:
    workspace = Workspace.open(tmp_path / "profile")
    storage = DicomStorageSettings(called_ae="PACS", host="127.0.0.1", port=11112)
    workspace.servers.add("Clínica PACS", ServerAction.MIRROR, storage)
    workspace.servers.add("Reading room", ServerAction.MANUAL, storage)
    workspace.save_servers()
    yield workspace
    workspace.close()


@pytest.fixture
def outbox(profile: Workspace, clock: FakeClock) -> Iterator[Outbox]:
    """The profile's outbox on a fake clock."""
    policy = RetryPolicy(jitter=Jitter.NONE)
    path = profile.paths.outbox_file
    with Outbox(path, clock=clock, retry_policy=policy) as opened:
        yield opened


@pytest.fixture
def exams(profile: Workspace) -> list[Exam]:
    return write_sample_exams(profile.library, size=64)


@pytest.fixture
def loader(profile: Workspace, outbox: Outbox) -> ActivityLoader:
    return ActivityLoader(outbox, profile.library)


@pytest.fixture
def model(qtmodeltester: ModelTester, clock: FakeClock) -> ActivityModel:
    created = ActivityModel(lambda key: f"name of {key}", clock=clock)
    qtmodeltester.check(created)
    return created


def test_full_load_fills_rows(
    profile: Workspace,
    outbox: Outbox,
    exams: list[Exam],
    loader: ActivityLoader,
    model: ActivityModel,
    qtmodeltester: ModelTester,
) -> None:
    created = enqueue_exam(outbox, list(profile.servers), exams[0])

    model.apply(loader.load())

    qtmodeltester.check(model)
    assert model.rowCount() == created
    first = model.index(0, Column.EXAM)
    assert first.data().startswith("Maria da Conceição Gonçalves, 2025-03-10")
    assert model.index(0, Column.IMAGE).data() == "OD image 1"
    assert model.index(1, Column.IMAGE).data() == "OS image 1"
    assert model.index(0, Column.SERVER).data() == "name of CLI000"
    assert model.index(0, Column.STATE).data() == "Queued"
    assert model.index(0, Column.STATE).data(Role.STATE) == DeliveryState.QUEUED
    assert model.index(0, Column.NEXT_ATTEMPT).data() == "now"


def test_deleted_exam_loses_patient_label(
    qtbot: QtBot,
    profile: Workspace,
    outbox: Outbox,
    exams: list[Exam],
    loader: ActivityLoader,
    model: ActivityModel,
) -> None:
    exam = exams[0]
    enqueue_exam(outbox, list(profile.servers), exam)
    model.apply(loader.load())
    assert model.index(0, Column.EXAM).data().startswith("Maria da Conceição")

    profile.library.delete(exam.exam_id)
    with qtbot.waitSignal(model.dataChanged):
        model.apply(loader.load())

    label = f"Exam {exam.exam_id[:8]} (not in the library)"
    for row in range(model.rowCount()):
        assert model.index(row, Column.EXAM).data() == label
        assert "Maria" not in model.index(row, Column.EXAM).data(Role.SEARCH_TEXT)


def test_exam_deleted_elsewhere_loses_label(
    profile: Workspace,
    outbox: Outbox,
    exams: list[Exam],
    loader: ActivityLoader,
    model: ActivityModel,
    clock: FakeClock,
) -> None:
    deleted, other = exams[0], exams[1]
    enqueue_exam(outbox, list(profile.servers), deleted)
    enqueue_exam(outbox, list(profile.servers), other)
    snapshot = loader.load()
    model.apply(snapshot)
    clock.advance(60)
    outbox.cancel([outbox.deliveries(exam_id=other.exam_id)[0].delivery_id])
    snapshot = loader.load(snapshot.newest_update)
    model.apply(snapshot)

    # Another process deletes the exam; none of its deliveries changes.
    profile.library.delete(deleted.exam_id)
    changes = loader.load(snapshot.newest_update)
    model.apply(changes)

    assert {d.exam_id for d in changes.deliveries} == {other.exam_id}
    labels = {
        model.index(row, Column.EXAM).data()
        for row in range(model.rowCount())
        if model.index(row, Column.EXAM).data(Role.EXAM_ID) == deleted.exam_id
    }
    assert labels == {f"Exam {deleted.exam_id[:8]} (not in the library)"}


def test_edited_exam_relabelled_on_its_change(
    profile: Workspace,
    outbox: Outbox,
    exams: list[Exam],
    loader: ActivityLoader,
    model: ActivityModel,
    clock: FakeClock,
) -> None:
    exam = exams[0]
    enqueue_exam(outbox, list(profile.servers), exam)
    snapshot = loader.load()
    model.apply(snapshot)
    renamed = dataclasses.replace(
        exam,
        patient=dataclasses.replace(exam.patient, name=PatientName("Souza", "Ana", "")),
    )
    save_exam(renamed, exam.folder)
    clock.advance(60)
    outbox.cancel([outbox.deliveries()[0].delivery_id])

    model.apply(loader.load(snapshot.newest_update))

    for row in range(model.rowCount()):
        assert model.index(row, Column.EXAM).data().startswith("Ana Souza")


def test_incremental_load_updates_in_place(
    profile: Workspace,
    outbox: Outbox,
    exams: list[Exam],
    loader: ActivityLoader,
    model: ActivityModel,
    clock: FakeClock,
    qtmodeltester: ModelTester,
) -> None:
    enqueue_exam(outbox, list(profile.servers), exams[4])
    clock.advance(60)
    outbox.cancel([outbox.deliveries()[0].delivery_id])
    snapshot = loader.load()
    model.apply(snapshot)
    clock.advance(60)
    claimed = outbox.claim_due("CLI000", 1)
    outbox.record_outcomes(
        {claimed[0].delivery_id: Outcome.failed("association rejected", transient=True)}
    )

    changes = loader.load(snapshot.newest_update)
    model.apply(changes)

    qtmodeltester.check(model)
    assert not changes.full
    changed_ids = {delivery.delivery_id for delivery in changes.deliveries}
    assert claimed[0].delivery_id in changed_ids
    assert len(changed_ids) == 2
    assert model.rowCount() == len(outbox.deliveries())
    row = model.row_of(claimed[0].delivery_id)
    assert row is not None
    assert model.index(row, Column.STATE).data() == "Waiting to retry"
    assert model.index(row, Column.ATTEMPTS).data() == "1"
    assert model.index(row, Column.LAST_ERROR).data() == "association rejected"
    assert model.index(row, Column.NEXT_ATTEMPT).data() not in ("", "now")


def test_incremental_load_inserts_new_rows(
    profile: Workspace,
    outbox: Outbox,
    exams: list[Exam],
    loader: ActivityLoader,
    model: ActivityModel,
    clock: FakeClock,
    qtmodeltester: ModelTester,
) -> None:
    enqueue_exam(outbox, list(profile.servers), exams[0])
    snapshot = loader.load()
    model.apply(snapshot)
    before = model.rowCount()
    clock.advance(60)
    added = send_now(outbox, list(profile.servers), exams[3], "REA000")

    model.apply(loader.load(snapshot.newest_update))

    qtmodeltester.check(model)
    assert model.rowCount() == before + added
    labels = {model.index(row, Column.IMAGE).data() for row in range(model.rowCount())}
    assert "OD stereo relationship" in labels


def test_full_load_removes_purged_rows(
    profile: Workspace,
    outbox: Outbox,
    exams: list[Exam],
    loader: ActivityLoader,
    model: ActivityModel,
    clock: FakeClock,
    qtmodeltester: ModelTester,
) -> None:
    enqueue_exam(outbox, list(profile.servers), exams[0])
    model.apply(loader.load())
    cancelled = outbox.deliveries()[0]
    outbox.cancel([cancelled.delivery_id])
    clock.advance(60)
    outbox.purge_finished(before=clock())

    model.apply(loader.load())

    qtmodeltester.check(model)
    assert model.row_of(cancelled.delivery_id) is None
    assert model.rowCount() == len(outbox.deliveries())


def test_missing_exam_label(
    profile: Workspace, outbox: Outbox, loader: ActivityLoader, model: ActivityModel
) -> None:
    from tests.helpers.delivery_data import make_exam  # noqa: PLC0415

    enqueue_exam(outbox, list(profile.servers), make_exam("gone", 1))

    model.apply(loader.load())

    text = model.index(0, Column.EXAM).data()
    assert "not in the library" in text


def test_proxy_filters_server_state_and_text(
    profile: Workspace,
    outbox: Outbox,
    exams: list[Exam],
    loader: ActivityLoader,
    model: ActivityModel,
    qtmodeltester: ModelTester,
) -> None:
    enqueue_exam(outbox, list(profile.servers), exams[0])
    send_now(outbox, list(profile.servers), exams[1], "REA000")
    first = outbox.deliveries()[0]
    outbox.cancel([first.delivery_id])
    model.apply(loader.load())
    proxy = ActivityFilterProxy()
    proxy.setSourceModel(model)
    qtmodeltester.check(proxy)

    proxy.set_server("rea000")
    assert proxy.rowCount() == 2
    proxy.set_server(None)
    proxy.set_states(StateFilter.CANCELLED.states)
    assert proxy.rowCount() == 1
    proxy.set_states(StateFilter.UNFINISHED.states)
    assert proxy.rowCount() == 3
    proxy.set_states(None)
    proxy.set_search_text("joao PEREIRA")
    assert proxy.rowCount() == 2
    proxy.set_search_text("nobody")
    assert proxy.rowCount() == 0


@pytest.fixture
def servers_model(
    profile: Workspace, qtmodeltester: ModelTester, clock: FakeClock
) -> ServerStatusModel:
    created = ServerStatusModel(clock=clock)
    created.set_servers(profile.servers)
    qtmodeltester.check(created)
    return created


def status_of(model: ServerStatusModel, key: str) -> tuple[str, StatusKind]:
    row = model.row_of(key)
    assert row is not None
    index = model.index(row, ServerColumn.STATUS)
    return index.data(), StatusKind(index.data(ServerRole.KIND))


def test_servers_model_lists_storage_servers(
    servers_model: ServerStatusModel,
) -> None:
    assert servers_model.keys() == ["EYE000", "CLI000", "REA000"]
    assert status_of(servers_model, "EYE000") == (
        "Not configured: enter its address to use it",
        StatusKind.INACTIVE,
    )
    text, kind = status_of(servers_model, "REA000")
    assert kind is StatusKind.IDLE
    assert "Send now" in text


def test_servers_model_follows_outbox(
    profile: Workspace,
    outbox: Outbox,
    exams: list[Exam],
    loader: ActivityLoader,
    servers_model: ServerStatusModel,
    clock: FakeClock,
    qtmodeltester: ModelTester,
) -> None:
    enqueue_exam(outbox, list(profile.servers), exams[0])
    servers_model.set_summaries(loader.load().servers)
    qtmodeltester.check(servers_model)
    assert status_of(servers_model, "CLI000") == ("2 queued", StatusKind.QUEUED)

    claimed = outbox.claim_due("CLI000", 2)
    outbox.record_outcomes(
        {
            claimed[0].delivery_id: Outcome.failed(
                "connection refused", transient=True
            ),
            claimed[1].delivery_id: Outcome.sent(0),
        }
    )
    servers_model.set_summaries(loader.load().servers)
    text, kind = status_of(servers_model, "CLI000")
    assert kind is StatusKind.WAITING
    assert text.startswith("Retry at ")
    assert text.endswith(": connection refused")
    row = servers_model.row_of("CLI000")
    assert servers_model.index(row, ServerColumn.SENT).data() == "1"
    assert servers_model.index(row, ServerColumn.WAITING).data() == "1"

    outbox.pause("CLI000")
    servers_model.set_summaries(loader.load().servers)
    qtmodeltester.check(servers_model)
    text, kind = status_of(servers_model, "CLI000")
    assert kind is StatusKind.PAUSED
    assert servers_model.index(row, 0).data(ServerRole.USER_PAUSED) is True


def test_servers_model_shows_failure(
    profile: Workspace,
    outbox: Outbox,
    exams: list[Exam],
    loader: ActivityLoader,
    servers_model: ServerStatusModel,
) -> None:
    send_now(outbox, list(profile.servers), exams[0], "REA000")
    claimed = outbox.claim_due("REA000", 1)
    outbox.record_outcomes(
        {claimed[0].delivery_id: Outcome.failed("SOP class rejected", transient=False)}
    )

    servers_model.set_summaries(loader.load().servers)

    assert status_of(servers_model, "REA000") == (
        "1 failed: SOP class rejected",
        StatusKind.FAILED,
    )


def test_servers_model_live_progress(
    servers_model: ServerStatusModel, qtmodeltester: ModelTester
) -> None:
    progress = ServerProgress("CLI000", ServerPhase.SENDING, 3, 10, RunSummary())

    servers_model.set_progress(progress)

    qtmodeltester.check(servers_model)
    assert status_of(servers_model, "CLI000") == ("Sending 3 of 10", StatusKind.SENDING)
    servers_model.set_progress(
        ServerProgress("CLI000", ServerPhase.FINISHED, 10, 10, RunSummary(sent=10))
    )
    _text, kind = status_of(servers_model, "CLI000")
    assert kind is StatusKind.IDLE


def test_servers_model_keeps_removed_server(
    profile: Workspace,
    outbox: Outbox,
    exams: list[Exam],
    loader: ActivityLoader,
    servers_model: ServerStatusModel,
    qtmodeltester: ModelTester,
) -> None:
    enqueue_exam(outbox, list(profile.servers), exams[0])
    profile.servers.remove("CLI000")

    servers_model.set_servers(profile.servers)
    servers_model.set_summaries(loader.load().servers)

    qtmodeltester.check(servers_model)
    assert servers_model.keys() == ["EYE000", "REA000", "CLI000"]
    text, kind = status_of(servers_model, "CLI000")
    assert kind is StatusKind.INACTIVE
    assert "Removed from the server list" in text
