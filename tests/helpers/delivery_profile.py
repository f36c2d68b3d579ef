"""A test profile set up through the command line, for end-to-end delivery tests.

Servers are added and changed with ``eyer-desktop servers ...`` as a user
would, and the outbox is read back with ``outbox list --json``. Sample exams
are written into the profile's library with small images, so that a test
converts and sends them in a fraction of a second.

``run_engine_later`` runs the profile's delivery engine as the command line
builds it, but on a clock moved past the longest retry delay, so a delivery
that failed transiently is due again without the test waiting.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset

from eyer_desktop.cli import main
from eyer_desktop.core.delivery import DeliveryEngine, RunSummary
from eyer_desktop.core.exams import Exam, ExamType
from eyer_desktop.core.library import ExamLibrary
from eyer_desktop.core.outbox import Outbox, RetryPolicy, items_of_exam
from eyer_desktop.core.paths import AppPaths
from eyer_desktop.core.samples import write_sample_exams
from eyer_desktop.core.secrets import SecretStore
from eyer_desktop.core.sending import WorkspaceSender
from eyer_desktop.core.workspace import Workspace
from tests.cli.conftest import CliResult, RunCli

SAMPLE_SIZE = 256
"""Side of the sample images in pixels: small, so conversion takes milliseconds."""

PRIMARY_KEY = "EYE000"
"""Key of the primary cloud, which every server list has."""

LATER_S = RetryPolicy().max_delay + 1.0
"""How far ahead run_engine_later's clock is: past every default retry delay."""


@pytest.fixture(name="run_cli")
def run_cli_fixture(capsys: pytest.CaptureFixture[str]) -> RunCli:
    """Return a function that runs ``eyer-desktop ARGS`` in-process.

    The same runner as the ``run_cli`` fixture of the command line tests, for
    test modules outside ``tests/cli``. The profile is the test's own, through
    ``EYER_DESKTOP_PROFILE``.
    """

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        try:
            code = main(list(args))
        except SystemExit as exit_:
            code = int(exit_.code or 0)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


def add_storage_server(
    run_cli: RunCli,
    name: str,
    port: int,
    *,
    aet: str = "STORESCP",
    action: str = "mirror",
    options: Sequence[str] = (),
) -> str:
    """Add a DICOM storage server on 127.0.0.1 and return its key."""
    result = run_cli(
        "servers", "add", "--name", name, "--kind", "dicom-storage",
        "--action", action, "--aet", aet, "--host", "127.0.0.1",
        "--port", str(port), *options,
    )  # fmt: skip
    assert result.code == 0, result.err
    return result.out.strip()


def add_worklist_server(
    run_cli: RunCli, name: str, port: int, *, aet: str, modality: str = "OP"
) -> str:
    """Add a DICOM worklist server on 127.0.0.1 and return its key."""
    result = run_cli(
        "servers", "add", "--name", name, "--kind", "dicom-worklist",
        "--aet", aet, "--host", "127.0.0.1", "--port", str(port),
        "--modality", modality,
    )  # fmt: skip
    assert result.code == 0, result.err
    return result.out.strip()


def set_cloud(run_cli: RunCli, url: str, *, username: str | None = None) -> None:
    """Point the primary cloud at a DICOMweb URL, with basic auth if a user is given.

    The password goes into the keyring separately, with :func:`store_password`.
    """
    auth = ["--auth", "none"]
    if username is not None:
        auth = ["--auth", "basic", "--username", username]
    result = run_cli("servers", "edit", PRIMARY_KEY, "--url", url, *auth)
    assert result.code == 0, result.err


def store_password(server_key: str, password: str) -> None:
    """Put a server's password into the keyring backend installed by the test."""
    SecretStore().set(server_key, password)


def set_action(run_cli: RunCli, server_key: str, action: str) -> None:
    """Change a server's action with ``servers set-action``."""
    result = run_cli("servers", "set-action", server_key, action)
    assert result.code == 0, result.err


def outbox_rows(run_cli: RunCli, *filters: str) -> list[dict[str, Any]]:
    """Return ``outbox list --json`` with the given filter options."""
    result = run_cli("outbox", "list", "--json", *filters)
    assert result.code == 0, result.err
    rows: list[dict[str, Any]] = json.loads(result.out)
    return rows


def states_of(rows: Sequence[dict[str, Any]], server_key: str) -> list[str]:
    """Return the states of one server's rows of ``outbox list --json``."""
    return [row["state"] for row in rows if row["server"] == server_key]


@pytest.fixture(scope="session", name="sample_library")
def sample_library_fixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a library folder with one sample exam of each type.

    Drawing the samples takes about half a second, so they are drawn once and
    each test copies them with :func:`copy_samples`.
    """
    folder = tmp_path_factory.mktemp("sample-library") / "exams"
    write_sample_exams(ExamLibrary(folder), size=SAMPLE_SIZE)
    return folder


def copy_samples(paths: AppPaths, sample_library: Path) -> list[Exam]:
    """Copy the sample exams into the profile's library and load them from there.

    Returns the exams in the order color, red-free, texture, stereo, panoramic.
    """
    shutil.copytree(sample_library, paths.library_dir, dirs_exist_ok=True)
    library = ExamLibrary(paths.library_dir)
    exams = [library.load(exam_id) for exam_id in library.exam_ids()]
    order = list(ExamType)
    return sorted(exams, key=lambda exam: order.index(exam.exam_type))


def run_engine_later(paths: AppPaths, seconds: float = LATER_S) -> RunSummary:
    """Run the profile's delivery engine once, on a clock ``seconds`` ahead.

    The engine has the same outbox, sender and server list as the one the
    command line creates; only the outbox's clock differs.
    """
    workspace = Workspace(paths)
    with Outbox(paths.outbox_file, clock=lambda: time.time() + seconds) as outbox:
        engine = DeliveryEngine(
            outbox,
            WorkspaceSender(workspace),
            servers=lambda: list(workspace.servers),
        )
        return engine.run_once()


def read_received(files: Sequence[Path]) -> dict[str, Dataset]:
    """Read received DICOM files, keyed by SOP Instance UID."""
    datasets = {}
    for path in files:
        dataset = dcmread(path)
        datasets[str(dataset.SOPInstanceUID)] = dataset
    return datasets


def instance_uids(exams: Sequence[Exam]) -> set[str]:
    """Return the SOP Instance UIDs of every instance the exams convert to."""
    return {item.sop_instance_uid for exam in exams for item in items_of_exam(exam)}
