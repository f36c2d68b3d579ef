"""Exams, images and waits shared by the Exams page tests."""

from __future__ import annotations

from pathlib import Path

from PIL import Image
from pytestqt.qtbot import QtBot

from eyer_desktop.core.exams import Exam
from eyer_desktop.core.samples import write_sample_exams
from eyer_desktop.core.workspace import Workspace
from eyer_desktop.gui.exams.page import ExamsPage

WAIT_MS = 10_000
SAMPLE_SIZE = 256
SAMPLE_COUNT = 5
BROKEN_FOLDER = "0badf01d-broken-exam"


def write_samples(workspace: Workspace, seed: int = 0) -> list[Exam]:
    """Write the five sample exams (one per exam type) into the library."""
    return write_sample_exams(workspace.library, size=SAMPLE_SIZE, seed=seed)


def write_broken_exam(workspace: Workspace) -> Path:
    """Write an exam folder whose manifest is not valid JSON."""
    folder = workspace.library.root / BROKEN_FOLDER
    folder.mkdir(parents=True)
    (folder / "exam.json").write_text("{not json", encoding="utf-8")
    return folder


def write_jpeg(path: Path, color: tuple[int, int, int], size: int = 48) -> Path:
    """Write a small solid-colour JPEG file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (size, size), color).save(path, "JPEG", quality=90)
    return path


def wait_for_rows(qtbot: QtBot, page: ExamsPage, count: int) -> None:
    """Wait until the page lists ``count`` rows and has no read in flight."""
    qtbot.waitUntil(
        lambda: page.model.rowCount() == count and not page.is_refreshing(),
        timeout=WAIT_MS,
    )
