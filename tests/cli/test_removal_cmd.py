"""Deleting exams and removing servers that still have deliveries to make.

The deliveries wait for a server on a free port where nothing listens, so
they stay queued.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from eyer_desktop.core.caches import (
    DRAG_CACHE_FOLDER,
    THUMBNAIL_CACHE_FOLDER,
    DiskThumbnailCache,
)
from eyer_desktop.core.dicom import ConversionOptions
from eyer_desktop.core.exams import Exam
from eyer_desktop.core.export import prepare_drag_files
from eyer_desktop.core.paths import AppPaths
from eyer_desktop.core.sending import WorkspaceSender
from eyer_desktop.core.workspace import Workspace
from tests.cli.conftest import CliResult, RunCli
from tests.helpers.dcmtk import free_port
from tests.helpers.delivery_profile import (  # noqa: F401
    add_storage_server,
    copy_samples,
    outbox_rows,
    sample_library_fixture,
)
from tests.helpers.read_only import read_only_folder


@pytest.fixture(name="color_exam")
def color_exam_fixture(isolated_profile: AppPaths, sample_library: Path) -> Exam:
    """The color sample exam, two images, in the test profile's library."""
    return copy_samples(isolated_profile, sample_library)[0]


@pytest.fixture(name="down_key")
def down_key_fixture(run_cli: RunCli, color_exam: Exam) -> str:
    """A mirror server that is down, with the color exam queued for it."""
    key = add_storage_server(run_cli, "Desligado", free_port())
    result = run_cli("send", color_exam.exam_id)
    assert result.code == 1, result.err
    return key


def assert_one_line_error(result: CliResult, *fragments: str) -> None:
    assert result.err.startswith("error: ")
    assert result.err.count("\n") == 1, result.err
    for fragment in fragments:
        assert fragment in result.err


def states(run_cli: RunCli, *filters: str) -> list[str]:
    return [row["state"] for row in outbox_rows(run_cli, *filters)]


# exams delete


def test_delete_rejected_while_queued(
    run_cli: RunCli, color_exam: Exam, down_key: str
) -> None:
    result = run_cli("exams", "delete", color_exam.exam_id[:8])

    assert result.code == 2
    assert_one_line_error(result, color_exam.exam_id, "2 unfinished deliveries")
    assert "--force" in result.err
    assert "outbox cancel" in result.err
    assert run_cli("exams", "show", color_exam.exam_id).code == 0
    assert states(run_cli) == ["queued", "queued"]


def test_delete_forced_cancels_deliveries(
    run_cli: RunCli, color_exam: Exam, down_key: str
) -> None:
    result = run_cli("exams", "delete", "--force", color_exam.exam_id[:8])

    assert result.code == 0, result.err
    assert "2 deliveries cancelled" in result.out
    assert run_cli("exams", "show", color_exam.exam_id).code == 2
    assert states(run_cli) == ["cancelled", "cancelled"]


def test_delete_after_cancel_allowed(
    run_cli: RunCli, color_exam: Exam, down_key: str
) -> None:
    ids = [str(row["id"]) for row in outbox_rows(run_cli)]
    assert run_cli("outbox", "cancel", *ids).code == 0

    result = run_cli("exams", "delete", color_exam.exam_id[:8])

    assert result.code == 0, result.err
    assert result.out.strip() == f"{color_exam.exam_id}: deleted"


def fill_caches(paths: AppPaths, exam: Exam) -> list[Path]:
    """Convert an exam for dragging and cache a placeholder thumbnail per image."""
    drag_root = paths.cache_dir / DRAG_CACHE_FOLDER
    files = prepare_drag_files(exam, ConversionOptions(), drag_root)
    disk = DiskThumbnailCache(paths.cache_dir / THUMBNAIL_CACHE_FOLDER)
    for image in exam.images:
        thumbnail = disk.path_for(exam.image_path(image), 64, exam.exam_id)
        disk.write(thumbnail, b"placeholder JPEG")
        files.append(thumbnail)
    return files


def cache_paths_naming(paths: AppPaths, exam_id: str) -> list[Path]:
    return [
        path
        for path in paths.cache_dir.rglob("*")
        if exam_id in path.relative_to(paths.cache_dir).as_posix()
    ]


def test_delete_removes_cached_copies(
    run_cli: RunCli, isolated_profile: AppPaths, sample_library: Path
) -> None:
    deleted, kept = copy_samples(isolated_profile, sample_library)[:2]
    deleted_files = fill_caches(isolated_profile, deleted)
    kept_files = fill_caches(isolated_profile, kept)
    assert cache_paths_naming(isolated_profile, deleted.exam_id)

    result = run_cli("exams", "delete", deleted.exam_id[:8])

    assert result.code == 0, result.err
    assert result.err == ""
    assert cache_paths_naming(isolated_profile, deleted.exam_id) == []
    assert [path for path in deleted_files if path.exists()] == []
    assert [path for path in kept_files if not path.exists()] == []


def test_delete_warns_of_cached_copy_left(
    run_cli: RunCli, isolated_profile: AppPaths, color_exam: Exam
) -> None:
    fill_caches(isolated_profile, color_exam)
    thumbnails = DiskThumbnailCache(isolated_profile.cache_dir / THUMBNAIL_CACHE_FOLDER)
    locked = thumbnails.exam_folder(color_exam.exam_id)

    with read_only_folder(locked):
        result = run_cli("exams", "delete", color_exam.exam_id)

    assert result.code == 0, result.err
    assert result.out.strip() == f"{color_exam.exam_id}: deleted"
    warnings = result.err.splitlines()
    assert warnings[-1] == (
        f"warning: 3 cached files or folders of exam {color_exam.exam_id} could "
        f"not be removed from {isolated_profile.cache_dir}. Delete them by hand."
    )
    assert all(str(locked) in line for line in warnings[:-1])
    assert len(warnings) == 4
    assert run_cli("exams", "show", color_exam.exam_id).code == 2


def test_deleted_exam_delivery_message(
    run_cli: RunCli, color_exam: Exam, down_key: str, isolated_profile: AppPaths
) -> None:
    assert color_exam.folder is not None
    shutil.rmtree(isolated_profile.library_dir / color_exam.exam_id)
    workspace = Workspace(isolated_profile)
    try:
        queued = workspace.outbox.deliveries()
        outcomes = WorkspaceSender(workspace).send(down_key, queued)
    finally:
        workspace.close()

    assert len(outcomes) == 2
    for outcome in outcomes.values():
        assert outcome.message is not None
        assert f"Exam {color_exam.exam_id[:8]}… was deleted" in outcome.message
        assert "Cancel this delivery" in outcome.message


# outbox history and list of what is gone


def test_history_of_deleted_exam(
    run_cli: RunCli, color_exam: Exam, down_key: str
) -> None:
    run_cli("exams", "delete", "--force", color_exam.exam_id)

    result = run_cli("outbox", "history", color_exam.exam_id)
    by_prefix = run_cli("outbox", "history", color_exam.exam_id[:8])

    assert result.code == 0, result.err
    assert "cancelled" in result.out
    assert down_key in result.out
    assert by_prefix.code == 2


def test_list_of_removed_server(
    run_cli: RunCli, color_exam: Exam, down_key: str
) -> None:
    run_cli("servers", "remove", "--force", down_key)

    rows = outbox_rows(run_cli, "--server", down_key)

    assert [row["state"] for row in rows] == ["cancelled", "cancelled"]


# servers remove and outbox run


def test_remove_rejected_while_queued(run_cli: RunCli, down_key: str) -> None:
    result = run_cli("servers", "remove", down_key)

    assert result.code == 2
    assert_one_line_error(result, down_key, "2 unfinished deliveries", "--force")
    assert down_key in run_cli("servers", "list").out
    assert states(run_cli) == ["queued", "queued"]


def test_remove_forced_cancels_deliveries(run_cli: RunCli, down_key: str) -> None:
    result = run_cli("servers", "remove", "--force", down_key)

    assert result.code == 0, result.err
    assert result.out.strip() == f"{down_key}: removed, 2 deliveries cancelled"
    assert down_key not in run_cli("servers", "list").out
    assert states(run_cli) == ["cancelled", "cancelled"]


def test_run_reports_orphaned_deliveries(
    run_cli: RunCli, down_key: str, isolated_profile: AppPaths
) -> None:
    workspace = Workspace(isolated_profile)
    workspace.servers.remove(down_key)
    workspace.save_servers()

    result = run_cli("outbox", "run")

    assert result.code == 1
    assert f"2 deliveries wait for server {down_key}" in result.err
    assert "no longer in the server list" in result.err


# outbox retry and cancel of ids that cannot change


def test_cancel_names_each_bad_id(run_cli: RunCli, down_key: str) -> None:
    first, second = (row["id"] for row in outbox_rows(run_cli))
    assert run_cli("outbox", "cancel", str(first)).code == 0

    result = run_cli("outbox", "cancel", "999", str(first), str(second))

    assert result.code == 2
    assert result.err.splitlines() == [
        "error: delivery 999: not found. List the deliveries with 'outbox list'",
        f"error: delivery {first}: is cancelled and cannot be cancelled",
    ]
    assert states(run_cli) == ["cancelled", "queued"]


def test_retry_names_each_bad_id(run_cli: RunCli, down_key: str) -> None:
    first, _ = (row["id"] for row in outbox_rows(run_cli))

    result = run_cli("outbox", "retry", str(first), "999")

    assert result.code == 2
    assert result.err.splitlines() == [
        f"error: delivery {first}: is queued and cannot be queued again",
        "error: delivery 999: not found. List the deliveries with 'outbox list'",
    ]


def test_send_note_has_no_stray_period(
    run_cli: RunCli, color_exam: Exam, down_key: str
) -> None:
    result = run_cli("send", color_exam.exam_id)

    assert "; retry at" in result.out
    assert ".;" not in result.out
