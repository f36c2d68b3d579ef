"""Atomic JSON documents for the configuration files (servers, settings).

A document is a JSON object whose ``schema_version`` member is an integer from
1 up to the newest version the reader understands. Writing goes through a
temporary file in the same folder and ``os.replace``, so a crash or a full disk
leaves either the old file or the new one, never a mix. A file that cannot be
parsed is moved aside to ``<name>.damaged-<YYYYMMDDTHHMMSS>`` before the error
is raised, so the next save cannot overwrite it and the user can still repair it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from eyer_desktop.core.errors import ConfigError

logger = logging.getLogger(__name__)

SCHEMA_VERSION_KEY = "schema_version"
DAMAGED_SUFFIX = ".damaged-"


class DamagedDocumentError(ValueError):
    """The content of a document file is not a valid document (internal)."""


def write_json_atomic(path: Path, data: Mapping[str, Any]) -> None:
    """Replace ``path`` with ``data`` as UTF-8 JSON, atomically.

    The data is serialised before any file is touched, so a value that JSON
    cannot represent raises TypeError or ValueError and leaves the old file as
    it was. The parent folder is created when missing.

    Raises:
        ConfigError: The folder or the file cannot be written.
    """
    text = json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    payload = text.encode("utf-8")
    folder = path.parent

    try:
        folder.mkdir(parents=True, exist_ok=True)
        _replace_with_bytes(path, payload)
    except OSError as err:
        raise ConfigError(
            f"Cannot write {path}: {err.strerror or err}. Check that the folder "
            f"{folder} exists, is writable and that the disk is not full."
        ) from err

    _fsync_folder(folder)
    logger.debug("Wrote %s (%d bytes)", path, len(payload))


def _replace_with_bytes(path: Path, payload: bytes) -> None:
    """Write ``payload`` to a temporary sibling of ``path``, then rename it over."""
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 (closed before the rename)
        mode="wb",
        dir=path.parent,
        prefix=f".{path.name}.",
        suffix=".tmp",
        delete=False,
    )
    temporary = Path(handle.name)
    try:
        with handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _fsync_folder(folder: Path) -> None:
    """Flush the folder entry of a renamed file, where the OS supports it.

    POSIX needs it for the rename to survive a power cut. Windows cannot open a
    folder with ``os.open``, so there this step is skipped.
    """
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError as err:
        logger.debug("Cannot fsync folder %s: %s", folder, err)
    finally:
        os.close(descriptor)


def read_json_document(
    path: Path, kind: str, schema_version: int
) -> dict[str, Any] | None:
    """Read the document in ``path``.

    Args:
        path: The file to read.
        kind: What the file contains, for messages ("server list").
        schema_version: The newest schema version the caller understands.
            Documents of versions 1 to this one are returned as they are, so the
            caller can upgrade an older one.

    Returns:
        The parsed object, or None when the file does not exist.

    Raises:
        ConfigError: The file cannot be read (left in place, because its content
            may be fine), or its content is damaged (moved aside first, and the
            message names both paths).
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as err:
        raise ConfigError(
            f"Cannot read the {kind} file {path}: {err.strerror or err}. Check "
            "that the file is readable by the current user."
        ) from err

    try:
        return parse_json_document(raw, schema_version)
    except DamagedDocumentError as err:
        raise damaged_file_error(path, kind, str(err)) from err


def parse_json_document(raw: bytes, schema_version: int) -> dict[str, Any]:
    """Parse and check the bytes of a document.

    Raises:
        DamagedDocumentError: The bytes are not UTF-8 JSON, an object member is
            repeated, the top level is not an object, or its schema version is
            missing, not an integer, or outside 1 to ``schema_version``.
    """
    try:
        text = raw.decode("utf-8")
        document = json.loads(
            text,
            object_pairs_hook=_object_without_repeats,
            parse_constant=_reject_constant,
        )
    except UnicodeDecodeError as err:
        raise DamagedDocumentError(f"not UTF-8 text ({err.reason})") from err
    except json.JSONDecodeError as err:
        raise DamagedDocumentError(
            f"invalid JSON at line {err.lineno} column {err.colno}: {err.msg}"
        ) from err
    except RecursionError as err:
        raise DamagedDocumentError("arrays or objects are nested too deeply") from err

    if not isinstance(document, dict):
        kind_name = type(document).__name__
        raise DamagedDocumentError(f"the top level is a {kind_name}, not an object")

    _check_schema_version(document.get(SCHEMA_VERSION_KEY), schema_version)
    return document


def _object_without_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, value in pairs:
        if name in result:
            raise DamagedDocumentError(f"the member {name!r} appears twice")
        result[name] = value
    return result


def _reject_constant(name: str) -> Any:
    raise DamagedDocumentError(f"{name} is not a valid JSON number")


def _check_schema_version(found: object, newest: int) -> None:
    if found is None:
        raise DamagedDocumentError(f"the member {SCHEMA_VERSION_KEY!r} is missing")
    if not isinstance(found, int) or isinstance(found, bool):
        raise DamagedDocumentError(f"{SCHEMA_VERSION_KEY} is {found!r}, not an integer")
    if found < 1:
        raise DamagedDocumentError(f"{SCHEMA_VERSION_KEY} {found} is unknown")
    if found > newest:
        raise DamagedDocumentError(
            f"{SCHEMA_VERSION_KEY} {found} is newer than this version of the "
            f"application understands (up to {newest}); it was probably written "
            "by a newer Eyer Desktop"
        )


def damaged_file_error(path: Path, kind: str, problem: str) -> ConfigError:
    """Move a damaged file aside and return the error that reports it.

    Callers that find a problem in the content of a parsed document (an invalid
    AE title, say) use this too, so every file that cannot be loaded is kept
    and never overwritten by the next save.
    """
    try:
        moved = move_aside(path)
    except OSError as err:
        return ConfigError(
            f"The {kind} file {path} is damaged: {problem}. Moving it aside "
            f"failed ({err.strerror or err}); move or repair the file by hand."
        )

    return ConfigError(
        f"The {kind} file {path} is damaged: {problem}. It was moved to "
        f"{moved}. Repair that file and move it back, or set up the {kind} again."
    )


def damaged_copies(path: Path) -> list[Path]:
    """Return the copies of ``path`` that :func:`move_aside` made, oldest first."""
    try:
        return sorted(path.parent.glob(f"{path.name}{DAMAGED_SUFFIX}*"))
    except OSError as err:
        logger.debug("Cannot list damaged copies of %s: %s", path, err)
        return []


def move_aside(path: Path, now: dt.datetime | None = None) -> Path:
    """Rename ``path`` to ``<name>.damaged-<YYYYMMDDTHHMMSS>`` in its folder.

    The time is local time. When that name is taken, ``-1``, ``-2`` ... is
    appended, so an earlier damaged copy is never replaced.

    Returns:
        The new path.

    Raises:
        OSError: The rename failed.
    """
    stamp = (now or dt.datetime.now()).strftime("%Y%m%dT%H%M%S")
    base = path.with_name(f"{path.name}{DAMAGED_SUFFIX}{stamp}")
    target = base
    counter = 0
    while target.exists():
        counter += 1
        target = base.with_name(f"{base.name}-{counter}")

    path.rename(target)
    logger.warning("Moved damaged file %s to %s", path, target)
    return target
