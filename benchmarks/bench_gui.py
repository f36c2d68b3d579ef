"""Time the desktop application: start-up to first paint, and sending from the GUI.

Draws ``--count`` sample fundus photographs with ``write_sample_images``
(``--size`` pixels square, JPEG quality 92) and imports them into a temporary
profile as ``--exams`` colour exams. Then, each in a fresh process on Qt's
offscreen platform:

- start-up: from just before the process is spawned to the first paint event
  of a widget of the main window, on that profile (the Exams page lists the
  exams). Both ends read CLOCK_MONOTONIC, which is shared by all processes on
  Linux. Median of ``--runs`` runs.
- sending: every exam is queued for a Mirror server, a fresh dcmtk storescp
  ``+xa`` on loopback, with the server paused. The main window opens on the
  Activity page, and 1.5 s later the server is resumed from the GUI. The
  sending service converts and sends the images on the GUI's worker lanes
  while a 5 ms QTimer on the GUI thread records the gaps between its ticks.
  The total time runs from the resume until every image is stored and the
  lanes are idle. The longest stall is the longest gap minus the 5 ms
  interval. Median total and maximum stall of ``--runs`` runs.

Usage: ``.venv/bin/python benchmarks/bench_gui.py [--count 200] [--runs 3]``
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

REPOSITORY = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPOSITORY))

from eyer_desktop.core.exams import ExamType  # noqa: E402
from eyer_desktop.core.importer import import_images, make_patient  # noqa: E402
from eyer_desktop.core.paths import AppPaths  # noqa: E402
from eyer_desktop.core.samples import write_sample_images  # noqa: E402
from eyer_desktop.core.server_settings import DicomStorageSettings  # noqa: E402
from eyer_desktop.core.workspace import Workspace  # noqa: E402
from tests.helpers.dcmtk import run_storescp  # noqa: E402

STALL_TICK_MS = 5
SETTLE_MS = 1500
CHILD_TIMEOUT_S = 600
SERVER_NAME = "Benchmark archive"


# Set-up, in the parent process


def prepare_profile(folder: Path, count: int, exam_count: int, size: int) -> str:
    """Import ``count`` sample images as exams and add the server; return its key."""
    images = write_sample_images(folder / "images", count, size=size)
    workspace = Workspace(AppPaths.for_profile(folder / "profile"))
    patient = make_patient(family="Benchmark", given="Paciente", document_number="1")
    per_exam = -(-count // exam_count)
    for start in range(0, count, per_exam):
        import_images(
            workspace.library,
            images[start : start + per_exam],
            patient,
            exam_type=ExamType.COLOR,
        )
    settings = DicomStorageSettings(called_ae="STORESCP", host="127.0.0.1", port=104)
    key = workspace.servers.add(SERVER_NAME, "mirror", settings).key
    workspace.save_servers()
    workspace.close()
    return key


def point_server_at(profile: Path, key: str, port: int) -> None:
    """Set the server's port and empty the outbox, ready for a sending run."""
    workspace = Workspace(AppPaths.for_profile(profile))
    server = workspace.servers.get(key)
    assert isinstance(server.settings, DicomStorageSettings)
    workspace.servers.edit(key, settings=replace(server.settings, port=port))
    workspace.save_servers()
    paths = workspace.paths
    for path in paths.data_dir.glob(paths.outbox_file.name + "*"):
        path.unlink()


def run_child(mode: str, *arguments: str) -> dict[str, Any]:
    """Run this script in ``mode`` in a new offscreen process; return its JSON."""
    environment = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    command = [sys.executable, __file__, mode, *arguments]
    spawned_at = time.monotonic()
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env=environment,
        check=False,
        timeout=CHILD_TIMEOUT_S,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{mode} failed ({result.returncode}): {result.stderr}")
    report: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    report["spawned_at"] = spawned_at
    return report


# The measured processes


def child_startup(profile: Path) -> None:
    """Open the main window and print when its first widget paints."""
    from PySide6.QtCore import QEvent, QObject  # noqa: PLC0415
    from PySide6.QtWidgets import QWidget  # noqa: PLC0415

    from eyer_desktop.gui.app import application  # noqa: PLC0415
    from eyer_desktop.gui.main_window import MainWindow  # noqa: PLC0415
    from eyer_desktop.gui.workers import Pools  # noqa: PLC0415

    class FirstPaint(QObject):
        def __init__(self, window: QWidget) -> None:
            super().__init__()
            self.window = window

        def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
            if (
                event.type() == QEvent.Type.Paint
                and isinstance(watched, QWidget)
                and watched.window() is self.window
            ):
                print(json.dumps({"painted_at": time.monotonic()}), flush=True)
                os._exit(0)
            return False

    app = application()
    workspace = Workspace(AppPaths.for_profile(profile))
    window = MainWindow(workspace, Pools())
    watcher = FirstPaint(window)
    app.installEventFilter(watcher)
    window.show()
    app.exec()
    raise RuntimeError("the event loop ended before the window painted")


def child_send(profile: Path, received: Path, count: int) -> None:
    """Send the queued exams from the main window and print time and stalls."""
    from PySide6.QtCore import Qt, QTimer  # noqa: PLC0415

    from eyer_desktop.core import routing  # noqa: PLC0415
    from eyer_desktop.core.outbox import DeliveryState, EventKind  # noqa: PLC0415
    from eyer_desktop.gui.app import application  # noqa: PLC0415
    from eyer_desktop.gui.main_window import MainWindow  # noqa: PLC0415
    from eyer_desktop.gui.workers import Pools  # noqa: PLC0415

    # The exams wait, paused, until the window has settled, so that the
    # measurement covers sending and not the window's first layout and paint.
    app = application()
    workspace = Workspace(AppPaths.for_profile(profile))
    servers = list(workspace.servers)
    key = next(server.key for server in servers if server.name == SERVER_NAME)
    workspace.outbox.pause(key)
    for exam_id in workspace.library.exam_ids():
        routing.enqueue_exam(workspace.outbox, servers, workspace.library.load(exam_id))

    pools = Pools()
    window = MainWindow(workspace, pools)
    window.show()
    window.show_page(window.pages[-1].title)

    ticks: list[float] = []
    ticker = QTimer()
    ticker.setTimerType(Qt.TimerType.PreciseTimer)
    ticker.setInterval(STALL_TICK_MS)
    ticker.timeout.connect(lambda: ticks.append(time.monotonic()))
    checker = QTimer()
    checker.setInterval(100)
    times: dict[str, float] = {}

    def start() -> None:
        times["started"] = time.monotonic()
        ticks.append(times["started"])
        ticker.start()
        checker.start()
        window.sending.resume(key)

    def check_done() -> None:
        stored = sum(1 for _ in received.iterdir())
        if stored >= count and not window.sending.is_busy():
            times["finished"] = time.monotonic()
            ticker.stop()
            app.quit()

    checker.timeout.connect(check_done)
    QTimer.singleShot(SETTLE_MS, start)
    app.exec()
    window.sending.prepare_to_close()
    pools.shutdown(10_000)

    counts = workspace.outbox.counts()
    sent = sum(per_state[DeliveryState.SENT] for per_state in counts.values())
    retries = sorted(
        {
            event.detail
            for exam_id in workspace.library.exam_ids()
            for event in workspace.outbox.history(exam_id)
            if event.kind in (EventKind.RETRY_SCHEDULED, EventKind.FAILED)
        }
    )
    gaps = [later - earlier for earlier, later in itertools.pairwise(ticks)]
    print(
        json.dumps(
            {
                "total_s": times["finished"] - times["started"],
                "max_stall_ms": max(gaps) * 1000 - STALL_TICK_MS,
                "p99_gap_ms": statistics.quantiles(gaps, n=100)[98] * 1000,
                "ticks": len(ticks),
                "sent": sent,
                "retries": retries,
            }
        ),
        flush=True,
    )


# Reporting


def benchmark(count: int, exam_count: int, size: int, runs: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-gui-"))
    try:
        print(f"Preparing {count} images of {size} px in {exam_count} exams...")
        key = prepare_profile(work, count, exam_count, size)
        profile = work / "profile"

        startups = []
        for _ in range(runs):
            report = run_child("--child-startup", str(profile))
            startups.append(report["painted_at"] - report["spawned_at"])

        sends = []
        for run in range(runs):
            received = work / f"received-{run}"
            with run_storescp(received, accept_jpeg=True) as server:
                point_server_at(profile, key, server.port)
                report = run_child(
                    "--child-send", str(profile), str(received), str(count)
                )
            for retry in report["retries"]:
                print(f"  run {run + 1}: a delivery was retried: {retry}")
            if report["sent"] != count:
                print(f"  run {run + 1}: incomplete, {report['sent']} of {count} sent")
                continue
            sends.append(report)
        print_results(startups, sends, count, runs)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def print_results(
    startups: Sequence[float], sends: Sequence[dict[str, Any]], count: int, runs: int
) -> None:
    print(
        f"\nStart-up to first paint, median of {runs}: "
        f"{statistics.median(startups):.2f} s "
        f"(runs: {', '.join(f'{value:.2f}' for value in startups)})"
    )
    if not sends:
        print("Sending: no complete run")
        return
    totals = [report["total_s"] for report in sends]
    stalls = [report["max_stall_ms"] for report in sends]
    p99 = [report["p99_gap_ms"] for report in sends]
    print(
        f"Sending {count} images from the GUI, median of {len(sends)}: "
        f"{statistics.median(totals):.2f} s "
        f"(runs: {', '.join(f'{value:.2f}' for value in totals)})"
    )
    print(
        f"Longest event-loop stall: {max(stalls):.1f} ms "
        f"(per run: {', '.join(f'{value:.1f}' for value in stalls)}); "
        f"99th percentile tick gap: {max(p99):.1f} ms"
    )


def main(arguments: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if arguments is None else arguments)
    if argv and argv[0] == "--child-startup":
        child_startup(Path(argv[1]))
        return 0
    if argv and argv[0] == "--child-send":
        child_send(Path(argv[1]), Path(argv[2]), int(argv[3]))
        return 0

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=200, help="images to send")
    parser.add_argument("--exams", type=int, default=100, help="exams to split them in")
    parser.add_argument("--size", type=int, default=1600, help="image side in pixels")
    parser.add_argument("--runs", type=int, default=3, help="runs of each measurement")
    args = parser.parse_args(argv)
    benchmark(args.count, args.exams, args.size, args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
