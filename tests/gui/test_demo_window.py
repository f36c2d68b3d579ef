"""The demo in the main window: banner, title, and its receiver receiving."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication, QLabel
from pytestqt.qtbot import QtBot

from eyer_desktop.core.demo import DemoSetup, create_demo
from eyer_desktop.core.outbox import DeliveryState
from eyer_desktop.gui.main_window import MainWindow
from eyer_desktop.gui.workers import Pools


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[DemoSetup]:
    setup = create_demo(tmp_path / "demo", size=64)
    yield setup
    setup.close()


@pytest.fixture
def window(qtbot: QtBot, demo: DemoSetup, pools: Pools) -> Iterator[MainWindow]:
    created = MainWindow(demo.workspace, pools, demo=demo.banner_text())
    qtbot.addWidget(created)
    created.show()
    yield created
    created.sending.prepare_to_close()
    try:
        qtbot.waitUntil(lambda: pools.active_count() == 0, timeout=20_000)
    finally:
        # Closing with active workers would show a modal question and hang.
        if pools.active_count():
            created.deleteLater()
            QApplication.processEvents()


@pytest.mark.integration
def test_demo_window_says_demo_and_sends(
    qtbot: QtBot, window: MainWindow, demo: DemoSetup
) -> None:
    banner = window.findChild(QLabel, "demoBanner")
    queued = sum(demo.workspace.outbox.counts()[demo.archive_key].values())

    assert window.windowTitle() == "Eyer Desktop (demo)"
    assert banner is not None
    assert banner.isVisible()
    assert banner.text().startswith("Demo: a temporary profile with 5 sample exams.")
    assert f"127.0.0.1:{demo.peer.port}" in banner.text()
    qtbot.waitUntil(lambda: demo.peer.received_count == queued, timeout=20_000)
    qtbot.waitUntil(lambda: sent_count(demo) == queued, timeout=10_000)
    assert len(demo.peer.received_files()) == queued


def sent_count(demo: DemoSetup) -> int:
    return demo.workspace.outbox.counts()[demo.archive_key][DeliveryState.SENT]
