"""The Activity refresher: incremental loads, and a full load after a purge."""

from __future__ import annotations

import time

from pytestqt.qtbot import QtBot

from eyer_desktop.core.outbox import DeliveryState
from eyer_desktop.core.routing import enqueue_exam
from eyer_desktop.core.samples import write_sample_exams
from eyer_desktop.core.server_settings import DicomStorageSettings
from eyer_desktop.core.servers import ServerAction
from eyer_desktop.core.workspace import Workspace
from eyer_desktop.gui.activity.loader import LOOKBACK_S
from eyer_desktop.gui.activity.model import ActivityModel
from eyer_desktop.gui.activity.refresher import ActivityRefresher
from eyer_desktop.gui.activity.servers_model import ServerStatusModel


def make_refresher(workspace: Workspace) -> ActivityRefresher:
    refresher = ActivityRefresher(workspace, ActivityModel(), ServerStatusModel())
    refresher.set_active(True)
    return refresher


def add_archive(workspace: Workspace) -> str:
    settings = DicomStorageSettings(called_ae="PACS", host="127.0.0.1", port=11112)
    key = workspace.servers.add("Archive", ServerAction.MIRROR, settings).key
    workspace.save_servers()
    return key


def test_requests_coalesce_into_one_load(qtbot: QtBot, workspace: Workspace) -> None:
    refresher = make_refresher(workspace)
    qtbot.waitUntil(lambda: refresher.loads == 1, timeout=5_000)

    for _ in range(10):
        refresher.request()
    qtbot.waitUntil(lambda: refresher.loads == 2, timeout=5_000)
    qtbot.wait(800)

    assert refresher.loads == 2


def test_inactive_refresher_does_not_load(qtbot: QtBot, workspace: Workspace) -> None:
    refresher = ActivityRefresher(workspace, ActivityModel(), ServerStatusModel())

    refresher.request()
    qtbot.wait(800)

    assert refresher.loads == 0
    refresher.set_active(True)
    qtbot.waitUntil(lambda: refresher.loads == 1, timeout=5_000)


def test_purge_leads_to_full_load(qtbot: QtBot, workspace: Workspace) -> None:
    add_archive(workspace)
    exam = write_sample_exams(workspace.library, size=64)[0]
    outbox = workspace.outbox
    enqueue_exam(outbox, list(workspace.servers), exam)
    first = outbox.deliveries()[0]
    outbox.cancel([first.delivery_id])
    refresher = make_refresher(workspace)
    model = refresher.deliveries
    qtbot.waitUntil(lambda: model.rowCount() == 2, timeout=5_000)

    outbox.purge_finished(before=time.time() + 1)
    time.sleep(LOOKBACK_S + 0.2)
    refresher.request()

    qtbot.waitUntil(lambda: model.rowCount() == 1, timeout=15_000)
    assert model.row_of(first.delivery_id) is None
    counts = model.counts()
    assert sum(counts[key][DeliveryState.QUEUED] for key in counts) == 1
