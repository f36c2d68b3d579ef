"""Save a PNG of every page and dialog of the application, on a demo profile.

``scripts/screenshots OUTDIR`` runs this file. It starts Xvfb on the first
free display number from 99 up and runs the capture in a child process on
that display. The child uses Qt's xcb platform, so menus and dialogs are real
X11 windows. Xvfb is stopped by its PID at the end. The capture opens the
main window on a demo profile (sample exams, a loopback archive and
worklist), adds an archive that is offline so that the Activity page shows a
retry, walks through the pages and dialogs, and saves each as ``NN-name.png``
in OUTDIR.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPOSITORY))

SCREEN = "1440x900x24"
WINDOW_SIZE = (1280, 800)
FIRST_DISPLAY = 99
XVFB_START_TIMEOUT_S = 10.0
CAPTURE_TIMEOUT_S = 300.0


# Xvfb


def free_display() -> int:
    """Return the first display number from 99 up with no X server or lock."""
    number = FIRST_DISPLAY
    while (
        Path(f"/tmp/.X11-unix/X{number}").exists()
        or Path(f"/tmp/.X{number}-lock").exists()
    ):
        number += 1
    return number


def start_xvfb(number: int) -> subprocess.Popen[bytes]:
    """Start Xvfb on display ``number``, listening on its local socket only."""
    process = subprocess.Popen(
        ["Xvfb", f":{number}", "-screen", "0", SCREEN, "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    socket = Path(f"/tmp/.X11-unix/X{number}")
    deadline = time.monotonic() + XVFB_START_TIMEOUT_S
    while not socket.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            stop(process)
            raise RuntimeError(f"Xvfb did not start on display :{number}")
        time.sleep(0.05)
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a process by its PID, killing it if it does not end in 5 s."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


def run_under_xvfb(outdir: Path) -> int:
    number = free_display()
    xvfb = start_xvfb(number)
    print(f"Xvfb on display :{number} (PID {xvfb.pid})")
    try:
        environment = dict(os.environ, DISPLAY=f":{number}", QT_QPA_PLATFORM="xcb")
        environment.pop("WAYLAND_DISPLAY", None)
        result = subprocess.run(
            [sys.executable, __file__, "--capture", str(outdir)],
            env=environment,
            check=False,
            timeout=CAPTURE_TIMEOUT_S,
        )
        return result.returncode
    finally:
        stop(xvfb)
        print(f"Xvfb stopped (PID {xvfb.pid})")


# The capture, on the X display


def capture(outdir: Path) -> None:
    """Open the demo window and save every page and dialog to ``outdir``."""
    from PySide6.QtCore import QEventLoop, QPoint  # noqa: PLC0415
    from PySide6.QtGui import QGuiApplication  # noqa: PLC0415
    from PySide6.QtWidgets import QApplication, QToolButton, QWidget  # noqa: PLC0415

    from eyer_desktop.core import routing  # noqa: PLC0415
    from eyer_desktop.core.demo import create_demo  # noqa: PLC0415
    from eyer_desktop.core.outbox import DeliveryState  # noqa: PLC0415
    from eyer_desktop.core.samples import write_sample_images  # noqa: PLC0415
    from eyer_desktop.core.server_settings import (  # noqa: PLC0415
        DicomStorageSettings,
        DicomTimeouts,
        ServerKind,
    )
    from eyer_desktop.core.servers import ServerAction  # noqa: PLC0415
    from eyer_desktop.gui.app import application  # noqa: PLC0415
    from eyer_desktop.gui.crash import CrashDialog  # noqa: PLC0415
    from eyer_desktop.gui.main_window import MainWindow  # noqa: PLC0415
    from eyer_desktop.gui.workers import Pools  # noqa: PLC0415
    from tests.helpers.dcmtk import free_port  # noqa: PLC0415

    outdir.mkdir(parents=True, exist_ok=True)
    app = application()
    saved: list[Path] = []

    def pump(seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)
            time.sleep(0.01)

    def wait_until(
        condition: Callable[[], bool], what: str, seconds: float = 30
    ) -> None:
        deadline = time.monotonic() + seconds
        while not condition():
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for {what}")
            pump(0.05)

    def save(name: str, widget: QWidget | None = None) -> None:
        pump(0.4)
        if widget is None:
            screen = QGuiApplication.primaryScreen()
            pixmap = screen.grabWindow(0)
        else:
            pixmap = widget.grab()
        path = outdir / f"{len(saved) + 1:02d}-{name}.png"
        pixmap.save(str(path))
        saved.append(path)
        print(f"saved {path}")

    demo = create_demo(size=800)
    workspace = demo.workspace
    offline = workspace.servers.add(
        "Old PACS (offline)",
        ServerAction.MIRROR,
        DicomStorageSettings(
            called_ae="OLDPACS",
            host="127.0.0.1",
            port=free_port(),
            timeouts=DicomTimeouts(connect=2.0),
        ),
    )
    workspace.save_servers()
    for exam in demo.exams:
        routing.enqueue_exam(workspace.outbox, list(workspace.servers), exam)

    pools = Pools()
    window = MainWindow(workspace, pools, demo=demo.banner_text())
    window.resize(*WINDOW_SIZE)
    window.move(0, 0)
    window.show()
    try:
        exams_page = window.pages[0].widget
        wait_until(lambda: exams_page.model.rowCount() == len(demo.exams), "the exams")
        pump(2.0)
        save("exams", window)

        panoramic = demo.exams[-1]
        exams_page.select_exam(panoramic.exam_id)
        pump(2.0)
        save("exam-detail", window)

        exams_page.select_exam(demo.exams[0].exam_id)
        button = window.findChild(QToolButton, "sendNowButton")
        menu = window.send_now_menu
        menu.popup(button.mapToGlobal(QPoint(0, button.height())))
        save("send-now-menu")
        menu.hide()

        servers_page = window.show_page(window.pages[1].title)
        save("servers", window)
        for kind in ServerKind:
            editor = servers_page.add(kind)
            save(f"server-editor-{kind.value}", editor)
            editor.reject()

        settings = window.open_settings()
        save("settings", settings)
        settings.reject()

        activity = window.show_page(window.pages[2].title)

        def activity_settled() -> bool:
            counts = workspace.outbox.counts()
            archive = counts.get(demo.archive_key, {})
            retrying = workspace.outbox.deliveries(server_key=offline.key)
            return archive.get(DeliveryState.SENT, 0) > 0 and all(
                d.last_error for d in retrying
            )

        wait_until(activity_settled, "the demo sends and the offline retry")
        pump(1.5)
        save("activity", window)
        activity.state_filter.setCurrentIndex(
            activity.state_filter.findText("Not finished")
        )
        save("activity-not-finished", window)

        worklist = window.open_worklist()
        wait_until(lambda: worklist.model.rowCount() > 0, "the worklist")
        worklist.view.selectRow(0)
        save("worklist", worklist)
        worklist.choose_selected()
        importer = exams_page.import_dialog
        images = write_sample_images(demo.root / "to-import", 2, size=800)
        importer.add_images(images)
        pump(2.0)
        save("import-from-worklist", importer)
        importer.reject()

        try:
            raise RuntimeError("Example of an unexpected error, for the screenshot")
        except RuntimeError:
            crash = CrashDialog(
                sys.exc_info(), workspace.paths.log_dir / "x.log", window
            )
        crash.show()
        save("crash-dialog", crash)
        crash.close()
    finally:
        window.sending.prepare_to_close()
        window.hide()
        pools.shutdown(10_000)
        QApplication.processEvents()
        demo.close()
    print(f"{len(saved)} screenshots in {outdir}")


def main(arguments: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if arguments is None else arguments)
    if argv[:1] == ["--capture"]:
        capture(Path(argv[1]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("outdir", type=Path, help="folder for the PNG files")
    args = parser.parse_args(argv)
    return run_under_xvfb(args.outdir.resolve())


if __name__ == "__main__":
    sys.exit(main())
