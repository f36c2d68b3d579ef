"""SIGTERM during a command: the clean-up of Ctrl-C runs, and the exit code is 143."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from PIL import Image

from eyer_desktop.core.importer import import_images, make_patient
from eyer_desktop.core.library import ExamLibrary
from eyer_desktop.core.paths import AppPaths

IMAGES = 400
WAIT_S = 60.0


def large_exam(library: ExamLibrary, folder: Path) -> str:
    """Import an exam of many noisy images, which takes a while to convert."""
    folder.mkdir()
    paths = []
    for index in range(IMAGES):
        path = folder / f"{index:03d}.jpg"
        Image.effect_noise((400, 400), 60 + index % 40).convert("RGB").save(path)
        paths.append(path)
    patient = make_patient(family="Silva", given="Ana", document_number="1")
    return import_images(library, paths, patient).exam_id


def test_sigterm_during_convert_leaves_nothing(
    isolated_profile: AppPaths, tmp_path: Path
) -> None:
    exam_id = large_exam(ExamLibrary(isolated_profile.library_dir), tmp_path / "src")
    out = tmp_path / "out"
    process = subprocess.Popen(
        [sys.executable, "-m", "eyer_desktop", "convert", exam_id, "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + WAIT_S
        while not any(out.rglob("*.part")):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the conversion wrote nothing"
            time.sleep(0.01)
        os.kill(process.pid, signal.SIGTERM)
        _, err = process.communicate(timeout=WAIT_S)
    finally:
        if process.poll() is None:
            process.kill()

    assert process.returncode == 128 + signal.SIGTERM, err
    assert err.strip().splitlines()[-1] == "terminated"
    assert not out.exists() or list(out.rglob("*")) == []
