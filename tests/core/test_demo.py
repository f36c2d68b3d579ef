"""The demo profile and its command-line flow."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom import dcmread

from eyer_desktop.core.demo import (
    DemoSetup,
    create_demo,
    run_headless_demo,
)
from eyer_desktop.core.outbox import DeliveryState
from eyer_desktop.core.server_settings import DicomStorageSettings
from eyer_desktop.core.servers import ServerAction


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[DemoSetup]:
    setup = create_demo(tmp_path / "demo", size=64, today=dt.date(2027, 3, 9))
    try:
        yield setup
    finally:
        setup.close(keep=True)


def test_demo_servers_point_at_peer(demo: DemoSetup) -> None:
    servers = demo.workspace.servers
    archive = servers.get(demo.archive_key)
    reading_room = servers.get(demo.reading_room_key)

    assert archive.action is ServerAction.MIRROR
    assert reading_room.action is ServerAction.MANUAL
    assert isinstance(archive.settings, DicomStorageSettings)
    assert archive.settings.host == "127.0.0.1"
    assert archive.settings.port == demo.peer.port
    assert not servers.primary.is_configured


def test_demo_queues_samples_for_archive(demo: DemoSetup) -> None:
    counts = demo.workspace.outbox.counts()

    assert set(counts) == {demo.archive_key}
    assert counts[demo.archive_key][DeliveryState.QUEUED] > len(demo.exams)


@pytest.mark.integration
def test_headless_demo_delivers_and_queries(demo: DemoSetup) -> None:
    lines: list[str] = []

    ok = run_headless_demo(demo, lines.append)

    assert ok, "\n".join(lines)
    queued = sum(demo.workspace.outbox.counts()[demo.archive_key].values())
    received = demo.peer.received_files()
    assert len(received) == queued
    assert dcmread(received[0]).Modality in ("OP", "OT")
    text = "\n".join(lines)
    assert "Conceição" in text
    assert f"{queued} images sent" in text


def test_close_deletes_profile(tmp_path: Path) -> None:
    setup = create_demo(tmp_path / "gone", size=64)

    setup.close()

    assert not (tmp_path / "gone").exists()
    assert setup.peer.port > 0
