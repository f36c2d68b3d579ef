"""A real Orthanc server on loopback, started and stopped by the test run.

The server is Debian's ``/usr/sbin/Orthanc`` (1.10.1) with the DICOMweb plugin
at ``/dicom-web/`` and the ModalityWorklists plugin reading a folder of
worklist files. It runs as the current user, with its storage, index,
configuration and log in one temporary folder. HTTP requires basic
authentication, and the DICOM server checks the called AE title but accepts
any calling AE title for C-ECHO, C-STORE and C-FIND.

Use it from a test module by importing both fixtures (pytest registers a
fixture under its ``name``, so the imported functions are never called
directly)::

    from tests.helpers.orthanc import (  # noqa: F401
        OrthancServer,
        orthanc_fixture,
        orthanc_server_fixture,
    )

    def test_something(orthanc: OrthancServer) -> None: ...

``orthanc_server`` starts one server per test module. Orthanc 1.10.1 starts in
a fraction of a second but takes a few seconds to stop, so tests share it:
``orthanc`` returns that server after deleting every stored instance and
worklist file, so each test starts empty without a restart.

NOTE: Orthanc 1.10.1 has no bind-address option, so it listens on every
interface. ``RemoteAccessAllowed`` false makes its HTTP server reject every
client that is not on loopback, but the DICOM port relies only on the AE title
checks.

NOTE: Debian's Orthanc 1.10.1 crashes with SIGSEGV on its first HTTPS request
when ``SslEnabled`` is true, so the server here speaks plain HTTP and HTTPS
tests use ``tests.helpers.fake_dicomweb``.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian

ORTHANC_BINARY = Path("/usr/sbin/Orthanc")
PLUGIN_FOLDER = Path("/usr/share/orthanc/plugins")
DICOMWEB_PLUGIN = PLUGIN_FOLDER / "libOrthancDicomWeb.so"
WORKLISTS_PLUGIN = PLUGIN_FOLDER / "libModalityWorklists.so"

# Modality Worklist Information Model - FIND, written as the SOP class of the
# worklist files so that they are well-formed Part 10 files.
WORKLIST_FIND_SOP_CLASS = UID("1.2.840.10008.5.1.4.31")

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
START_ATTEMPTS = 3
LOG_TAIL_LINES = 40


def free_loopback_port() -> int:
    """Return a TCP port that is free on 127.0.0.1 at the time of the call."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class OrthancStartError(RuntimeError):
    """Orthanc exited, or its REST API did not respond in time."""


class OrthancRestError(RuntimeError):
    """A REST request to the test Orthanc returned an unexpected status."""


class OrthancServer:
    """One Orthanc process with its own configuration in ``workdir``.

    Attributes:
        workdir: Folder holding the configuration, storage, index and log.
        aet: Orthanc's own AE title, which callers must use as called AE.
        username: User registered for HTTP basic authentication.
        password: Password of ``username``.
        worklist_dir: Folder the ModalityWorklists plugin reads ``*.wl`` from.
        log_path: Orthanc's log file.
        http_port: HTTP port, set by ``start``.
        dicom_port: DICOM port, set by ``start``.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        aet: str = "ORTHANC_TEST",
        username: str = "eyer-test",
        password: str = "stow-secret-7f3a",
    ) -> None:
        self.workdir = workdir
        self.aet = aet
        self.username = username
        self.password = password
        self.worklist_dir = workdir / "worklists"
        self.log_path = workdir / "orthanc.log"
        self.http_port = 0
        self.dicom_port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def http_url(self) -> str:
        """Base URL of the REST API, without a trailing slash."""
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dicomweb_url(self) -> str:
        """Base URL of the DICOMweb API (QIDO-RS, STOW-RS, WADO-RS)."""
        return f"{self.http_url}/dicom-web"

    @property
    def pid(self) -> int | None:
        """Process id of the running server, or None when stopped."""
        return None if self._process is None else self._process.pid

    def __enter__(self) -> OrthancServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # Lifecycle

    def start(self) -> None:
        """Start Orthanc and wait until its REST API responds.

        Ports are picked free just before the start, so another process can
        take one in between. A start that fails is retried with new ports.

        Raises:
            OrthancStartError: Every attempt failed. The message ends with the
                tail of the log.
        """
        for attempt in range(1, START_ATTEMPTS + 1):
            self._launch()
            try:
                self._wait_until_ready()
            except OrthancStartError:
                self.stop()
                if attempt == START_ATTEMPTS:
                    raise
            else:
                return

    def stop(self) -> None:
        """Stop Orthanc by its PID: SIGTERM, then SIGKILL after a timeout."""
        process = self._process
        if process is None:
            return
        self._process = None
        if process.poll() is not None:
            return

        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT_S)

    def _launch(self) -> None:
        self.worklist_dir.mkdir(parents=True, exist_ok=True)
        self.http_port = free_loopback_port()
        self.dicom_port = free_loopback_port()
        config_path = self.workdir / "orthanc.json"
        config_path.write_text(json.dumps(self._config(), indent=2), encoding="utf-8")

        console = (self.workdir / "orthanc-console.log").open("ab")
        with console:
            self._process = subprocess.Popen(
                [str(ORTHANC_BINARY), f"--logfile={self.log_path}", str(config_path)],
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
            )

    def _config(self) -> dict[str, Any]:
        storage = self.workdir / "storage"
        return {
            "Name": "eyer-desktop-test",
            "StorageDirectory": str(storage),
            "IndexDirectory": str(storage),
            "HttpPort": self.http_port,
            "DicomPort": self.dicom_port,
            "DicomAet": self.aet,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": True,
            "RegisteredUsers": {self.username: self.password},
            "DicomCheckCalledAet": True,
            "DicomCheckModalityHost": False,
            "DicomAlwaysAllowEcho": True,
            "DicomAlwaysAllowStore": True,
            "DicomAlwaysAllowFind": True,
            "DicomAlwaysAllowFindWorklist": True,
            # A resend replaces the stored instance, as the product expects
            # from an archive that receives the same UIDs again.
            "OverwriteInstances": True,
            "SaveJobs": False,
            "Plugins": [str(DICOMWEB_PLUGIN), str(WORKLISTS_PLUGIN)],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
            "Worklists": {"Enable": True, "Database": str(self.worklist_dir)},
        }

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process is None:
                raise OrthancStartError("Orthanc was stopped while starting")
            if self._process.poll() is not None:
                self._fail_start(f"exited with status {self._process.returncode}")
            try:
                status, _ = self.request("GET", "/system")
            except OSError:
                time.sleep(0.1)
                continue
            if status != 200:
                self._fail_start(f"returned HTTP {status}")
            return
        self._fail_start(f"did not respond within {START_TIMEOUT_S:.0f} s")

    def _fail_start(self, problem: str) -> NoReturn:
        tail = self.log_tail()
        print(f"Orthanc log tail ({self.log_path}):\n{tail}", file=sys.stderr)
        raise OrthancStartError(
            f"Orthanc on HTTP port {self.http_port} {problem}. Log tail:\n{tail}"
        )

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """Return the last ``lines`` lines of Orthanc's log and console."""
        text = ""
        for path in (self.log_path, self.workdir / "orthanc-console.log"):
            if path.exists():
                text += path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    # REST helpers

    def request(
        self, method: str, path: str, body: bytes | None = None
    ) -> tuple[int, bytes]:
        """Send an authenticated REST request and return status and body."""
        request = urllib.request.Request(self.http_url + path, data=body, method=method)
        token = base64.b64encode(f"{self.username}:{self.password}".encode())
        request.add_header("Authorization", "Basic " + token.decode("ascii"))
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as err:
            with err:
                return err.code, err.read()

    def get_json(self, path: str) -> Any:
        """Return the decoded JSON of ``GET path``, which must return HTTP 200."""
        status, body = self.request("GET", path)
        if status != 200:
            raise OrthancRestError(f"GET {path} returned HTTP {status}")
        return json.loads(body)

    def instance_ids(self) -> list[str]:
        """Return the Orthanc ids of every stored instance."""
        ids: list[str] = self.get_json("/instances")
        return ids

    def count_instances(self) -> int:
        """Return how many instances Orthanc stores."""
        count: int = self.get_json("/statistics")["CountInstances"]
        return count

    def find_instance(self, sop_instance_uid: str) -> str | None:
        """Return the Orthanc id of the instance with this SOP Instance UID."""
        status, body = self.request("POST", "/tools/lookup", sop_instance_uid.encode())
        if status != 200:
            raise OrthancRestError(f"UID lookup returned HTTP {status}")
        for match in json.loads(body):
            if match["Type"] == "Instance":
                found: str = match["ID"]
                return found
        return None

    def instance_tags(self, orthanc_id: str) -> dict[str, Any]:
        """Return the instance's tags keyed by DICOM keyword."""
        tags: dict[str, Any] = self.get_json(f"/instances/{orthanc_id}/simplified-tags")
        return tags

    def instance_file(self, orthanc_id: str) -> bytes:
        """Return the stored Part 10 file of the instance."""
        status, body = self.request("GET", f"/instances/{orthanc_id}/file")
        if status != 200:
            raise OrthancRestError(f"file download returned HTTP {status}")
        return body

    def delete_all(self) -> None:
        """Delete every stored patient, and with them every instance."""
        for patient_id in self.get_json("/patients"):
            status, _ = self.request("DELETE", f"/patients/{patient_id}")
            if status != 200:
                raise OrthancRestError(f"patient deletion returned HTTP {status}")

    # Worklist helpers

    def write_worklist(self, item: Dataset, name: str) -> Path:
        """Write ``item`` as the worklist file ``name.wl`` and return its path."""
        item = Dataset(item)
        item.file_meta = FileMetaDataset()
        item.file_meta.MediaStorageSOPClassUID = WORKLIST_FIND_SOP_CLASS
        name_uuid = uuid.uuid5(uuid.NAMESPACE_URL, f"orthanc-test-worklist:{name}")
        item.file_meta.MediaStorageSOPInstanceUID = UID(f"2.25.{name_uuid.int}")
        item.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        path = self.worklist_dir / f"{name}.wl"
        item.save_as(path, enforce_file_format=True)
        return path

    def clear_worklists(self) -> None:
        """Delete every file in the worklist folder."""
        for path in self.worklist_dir.iterdir():
            path.unlink()

    def reset(self) -> None:
        """Empty the storage and the worklist folder."""
        self.delete_all()
        self.clear_worklists()


@pytest.fixture(scope="module", name="orthanc_server")
def orthanc_server_fixture(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OrthancServer]:
    """Start one Orthanc for the test module."""
    if not os.access(ORTHANC_BINARY, os.X_OK):
        pytest.fail(f"{ORTHANC_BINARY} is missing; install the orthanc package")
    server = OrthancServer(tmp_path_factory.mktemp("orthanc"))
    with server:
        yield server


@pytest.fixture(name="orthanc")
def orthanc_fixture(orthanc_server: OrthancServer) -> OrthancServer:
    """Return the module's Orthanc, emptied of instances and worklists."""
    orthanc_server.reset()
    return orthanc_server
