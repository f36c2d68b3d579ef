"""The "Test connection" of a server: each step a technician can act on.

Every test starts with a TCP connection to the server's host and port. Then a
DICOM storage server is tested with C-ECHO and asked which transfer syntax it
accepts for Ophthalmic Photography; a worklist server with C-ECHO and a query
of today's worklist; a DICOMweb server with a QIDO-RS request that checks the
credentials. A failed step ends the test, and
its detail is the error message, which names the problem and the fix.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from pydicom.uid import UID, JPEGBaseline8Bit

from eyer_desktop.core.errors import (
    DeliveryError,
    EyerError,
    SecretStoreError,
    ValidationError,
)
from eyer_desktop.core.net.association import echo, host_and_port
from eyer_desktop.core.net.store import probe_storage
from eyer_desktop.core.net.transcode import (
    SECONDARY_CAPTURE_IMAGE_STORAGE,
    VL_PHOTOGRAPHIC_IMAGE_STORAGE,
)
from eyer_desktop.core.net.worklist import WorklistQuery, query_worklist
from eyer_desktop.core.secrets import SecretStore
from eyer_desktop.core.sending import dicom_endpoint, dicomweb_client
from eyer_desktop.core.server_settings import (
    DicomStorageSettings,
    DicomWebSettings,
    DicomWorklistSettings,
    SopClassFallback,
)
from eyer_desktop.core.servers import Server

logger = logging.getLogger(__name__)

_STEP_NAMES: dict[type, tuple[str, ...]] = {
    DicomStorageSettings: (
        "Reachable",
        "Association accepted",
        "Ophthalmic Photography",
    ),
    DicomWorklistSettings: ("Reachable", "Association accepted", "Worklist"),
    DicomWebSettings: ("Reachable", "Credentials accepted"),
}


@dataclass(frozen=True)
class TestStep:
    """One step of a connection test.

    Attributes:
        name: What was checked, e.g. "Association accepted".
        ok: Whether the check passed.
        detail: The result, or the error message when it failed.
    """

    __test__ = False  # not a pytest test class

    name: str
    ok: bool
    detail: str


@dataclass
class ServerTestReport:
    """The steps of one connection test, in order."""

    __test__ = False

    server_key: str
    steps: list[TestStep] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.steps) and all(step.ok for step in self.steps)

    def summary(self) -> str:
        """Return one line: the failed step's detail, or that every step passed."""
        for step in self.steps:
            if not step.ok:
                return f"{step.name}: {step.detail}"
        return "All checks passed"


def test_server(server: Server, secrets: SecretStore | None = None) -> ServerTestReport:
    """Run the connection test of ``server`` and return each step's result.

    Never raises for a network or configuration problem: it becomes a failed
    step of the report.
    """
    report = ServerTestReport(server.key)
    settings = server.settings
    try:
        if isinstance(settings, DicomWebSettings):
            _test_dicomweb(server, settings, secrets or SecretStore(), report)
        elif isinstance(settings, DicomWorklistSettings):
            _test_worklist(server, settings, report)
        else:
            _test_storage(server, settings, report)
    except EyerError as error:
        _record_failure(report, server, error)
    outcome = "passed" if report.ok else "failed"
    logger.info("Connection test of %s %s: %s", server.key, outcome, report.summary())
    return report


test_server.__test__ = False  # type: ignore[attr-defined]


def _record_failure(report: ServerTestReport, server: Server, error: EyerError) -> None:
    """Add the failed step, named after the step that was running."""
    names = _STEP_NAMES[type(server.settings)]
    name = names[min(len(report.steps), len(names) - 1)]
    report.steps.append(TestStep(name, False, str(error)))


def _check_reachable(
    report: ServerTestReport, target: str, address: tuple[str, int], timeout: float
) -> None:
    """Add the "Reachable" step: a plain TCP connection to the address.

    The step passes only when the connection is made, so a later failure
    (TLS, a rejected association) is never mistaken for a reachable server
    when nothing listens.

    Raises:
        DeliveryError: The connection was refused, timed out or failed.
    """
    shown = host_and_port(*address)
    try:
        with socket.create_connection(address, timeout=timeout):
            pass
    except TimeoutError as err:
        raise DeliveryError(
            f"Connection to {target} timed out after {timeout:g} s. Check the "
            "host, the port and that the server is on.",
            transient=True,
        ) from err
    except ConnectionRefusedError as err:
        raise DeliveryError(
            f"Connection to {target} was refused. Check the port and that the "
            "server is running.",
            transient=True,
        ) from err
    except OSError as err:
        raise DeliveryError(
            f"Connection to {target} failed ({err.strerror or err}). Check the "
            "host, the port and the network.",
            transient=True,
        ) from err
    report.steps.append(TestStep("Reachable", True, shown))


def _timed(step: Callable[[], object]) -> tuple[object, float]:
    started = time.monotonic()
    result = step()
    return result, time.monotonic() - started


def _test_echo(server: Server, report: ServerTestReport) -> None:
    endpoint = dicom_endpoint(server)
    address = (endpoint.host, endpoint.port)
    _check_reachable(report, str(endpoint), address, endpoint.connect_timeout)
    _, elapsed = _timed(lambda: echo(endpoint))
    report.steps.append(
        TestStep(
            "Association accepted",
            True,
            f"C-ECHO to {endpoint.called_ae} answered in {elapsed * 1000:.0f} ms",
        )
    )


def _test_storage(
    server: Server, settings: DicomStorageSettings, report: ServerTestReport
) -> None:
    _test_echo(server, report)
    probe = probe_storage(dicom_endpoint(server))
    syntax = probe.transfer_syntax_for_jpeg()
    if syntax == JPEGBaseline8Bit:
        report.steps.append(
            TestStep("Ophthalmic Photography", True, "accepted with JPEG Baseline")
        )
        return
    if syntax:
        report.steps.append(
            TestStep(
                "Ophthalmic Photography",
                True,
                f"accepted only uncompressed: images will be sent as "
                f"{UID(syntax).name}, about 20 times larger",
            )
        )
        return

    fallback_class = {
        SopClassFallback.VL_PHOTOGRAPHIC: VL_PHOTOGRAPHIC_IMAGE_STORAGE,
        SopClassFallback.SECONDARY_CAPTURE: SECONDARY_CAPTURE_IMAGE_STORAGE,
    }.get(settings.sop_class_fallback)
    if fallback_class is not None and probe.transfer_syntax_for_jpeg(fallback_class):
        report.steps.append(
            TestStep(
                "Ophthalmic Photography",
                True,
                f"rejected; images will be sent as {UID(fallback_class).name}",
            )
        )
        return
    report.steps.append(
        TestStep(
            "Ophthalmic Photography",
            False,
            "rejected by the server. Ask the archive's administrator to accept "
            "OP 8 Bit Image Storage, or choose a SOP class fallback for this server",
        )
    )


def _test_worklist(
    server: Server, settings: DicomWorklistSettings, report: ServerTestReport
) -> None:
    _test_echo(server, report)
    query = WorklistQuery(modality=settings.modality)
    items = query_worklist(dicom_endpoint(server), query)
    modality = settings.modality or "any modality"
    report.steps.append(
        TestStep(
            "Worklist",
            True,
            f"{len(items)} scheduled today for {modality}",
        )
    )


def _test_dicomweb(
    server: Server,
    settings: DicomWebSettings,
    secrets: SecretStore,
    report: ServerTestReport,
) -> None:
    if settings.base_url is None:
        dicomweb_client(server, secrets)  # raises the "Base URL is missing" error
        return
    url = urlsplit(settings.base_url)
    default_port = 443 if url.scheme == "https" else 80
    address = (url.hostname or "", url.port or default_port)
    _check_reachable(report, settings.base_url, address, settings.timeout)
    report.steps[-1] = TestStep("Reachable", True, settings.base_url)

    try:
        client = dicomweb_client(server, secrets)
    except (ValidationError, SecretStoreError) as error:
        # With the URL set, only the password or token can be missing or
        # unreadable, which is the credentials step.
        report.steps.append(TestStep("Credentials accepted", False, str(error)))
        return
    client.check()
    report.steps.append(
        TestStep("Credentials accepted", True, "QIDO-RS query answered")
    )
