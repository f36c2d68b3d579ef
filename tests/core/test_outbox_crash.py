"""Crash recovery: a delivery process is killed with SIGKILL, and a new Outbox
resumes every unfinished delivery without marking anything sent that the server
did not confirm."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from eyer_desktop.cli import main as cli_main
from eyer_desktop.core.delivery import DeliveryEngine
from eyer_desktop.core.outbox import DeliveryState, Outbox, Route
from eyer_desktop.core.paths import AppPaths
from tests.helpers.delivery_data import ServerStub, make_items
from tests.helpers.fake_sender import FakeSender

REPO_ROOT = Path(__file__).resolve().parents[2]
PRIMARY = {"EYE001": Route.PRIMARY}

pytestmark = pytest.mark.skipif(
    not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL"
)


def start_worker(
    mode: str, outbox_path: Path, confirmations: Path
) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.helpers.outbox_crash_worker",
            mode,
            str(outbox_path),
            str(confirmations),
        ],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_line(process: subprocess.Popen[str], expected: str) -> None:
    """Wait up to 30 s for the worker to print ``expected``."""
    stdout = process.stdout
    assert stdout is not None
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(stdout.readline()))
    reader.start()
    reader.join(timeout=30)
    if not lines or lines[0].strip() != expected:
        process.kill()
        _, errors = process.communicate()
        pytest.fail(f"worker printed {lines!r}, not {expected!r}; stderr:\n{errors}")


def kill(process: subprocess.Popen[str]) -> None:
    os.kill(process.pid, signal.SIGKILL)
    process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL


def confirmed_uids(confirmations: Path) -> set[str]:
    if not confirmations.exists():
        return set()
    return set(confirmations.read_text(encoding="ascii").split())


def finish_in_process(outbox: Outbox) -> FakeSender:
    sender = FakeSender()
    engine = DeliveryEngine(
        outbox, sender, servers=lambda: [ServerStub("EYE001", "primary")]
    )
    summary = engine.run_until_idle(deadline=time.time() + 60)
    assert summary.idle
    return sender


def test_kill_mid_batch_resumes_unconfirmed(
    isolated_profile: AppPaths, tmp_path: Path
) -> None:
    outbox_path = isolated_profile.outbox_file
    confirmations = tmp_path / "confirmed.txt"
    with Outbox(outbox_path) as outbox:
        outbox.enqueue(make_items("crash", 9), PRIMARY)

    with start_worker("hang", outbox_path, confirmations) as worker:
        wait_for_line(worker, "mid-batch")
        kill(worker)

    with Outbox(outbox_path) as outbox:
        assert outbox.recovered_on_open == 3
        rows = outbox.deliveries()
        sent = [row for row in rows if row.state is DeliveryState.SENT]
        queued = [row for row in rows if row.state is DeliveryState.QUEUED]
        assert {row.sop_instance_uid for row in sent} == confirmed_uids(confirmations)
        assert len(sent) == 3
        assert len(queued) == 6
        assert [row.attempts for row in queued] == [1, 1, 1, 0, 0, 0]
        assert outbox.counts()["EYE001"][DeliveryState.SENDING] == 0

        sender = finish_in_process(outbox)

        assert len(sender.image_ids_sent_to("EYE001")) == 6
        assert outbox.counts()["EYE001"][DeliveryState.SENT] == 9


def test_cancel_command_warns_of_delivery_being_sent(
    isolated_profile: AppPaths, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outbox_path = isolated_profile.outbox_file
    with Outbox(outbox_path) as outbox:
        outbox.enqueue(make_items("cancel", 9), PRIMARY)

    with start_worker("hang", outbox_path, tmp_path / "confirmed.txt") as worker:
        wait_for_line(worker, "mid-batch")
        with Outbox(outbox_path) as outbox:
            sending = outbox.deliveries(states=[DeliveryState.SENDING])
            queued = outbox.deliveries(states=[DeliveryState.QUEUED])
        ids = [str(sending[0].delivery_id), str(queued[0].delivery_id)]
        try:
            code = cli_main(["outbox", "cancel", *ids])
        finally:
            kill(worker)

    out = capsys.readouterr().out
    assert code == 0
    assert out.splitlines() == [
        "2 deliveries cancelled",
        "1 of them were being sent; the server may still store those images, "
        "which stay cancelled here",
    ]


def test_kills_at_random_moments_lose_nothing(
    isolated_profile: AppPaths, tmp_path: Path
) -> None:
    outbox_path = isolated_profile.outbox_file
    confirmations = tmp_path / "confirmed.txt"
    items = make_items("churn", 1500)
    with Outbox(outbox_path) as outbox:
        outbox.enqueue(items, PRIMARY)
    rng = random.Random(20270115)

    # Each worker sends several hundred images a second, so every kill lands while
    # deliveries are still queued.
    for _ in range(6):
        with start_worker("churn", outbox_path, confirmations) as worker:
            wait_for_line(worker, "running")
            time.sleep(rng.uniform(0.02, 0.2))
            kill(worker)

        with Outbox(outbox_path) as outbox:
            rows = outbox.deliveries()
            assert len(rows) == len(items)
            assert not [row for row in rows if row.state is DeliveryState.SENDING]
            sent = {
                row.sop_instance_uid for row in rows if row.state is DeliveryState.SENT
            }
            assert sent <= confirmed_uids(confirmations)
            unfinished = {row.state for row in rows} - {DeliveryState.SENT}
            assert unfinished <= {DeliveryState.QUEUED}

    with Outbox(outbox_path) as outbox:
        assert outbox.counts()["EYE001"][DeliveryState.QUEUED] > 0
        finish_in_process(outbox)
        assert outbox.counts()["EYE001"][DeliveryState.SENT] == len(items)
