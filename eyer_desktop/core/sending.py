"""Delivery of queued exams to the configured servers.

This module joins the pieces: it turns a server of the server list into a DICOM
endpoint or a DICOMweb client, converts the queued images with the settings of
the application and of the server, sends them with the sender of the server's
kind, and reports each delivery's outcome to the outbox. The delivery engine
calls :class:`WorkspaceSender` for one batch of one server at a time.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from pydicom.dataset import Dataset
from pydicom.filewriter import dcmwrite

from eyer_desktop.core.conversion import conversion_options
from eyer_desktop.core.delivery import DeliveryEngine, ProgressCallback, ServerPhase
from eyer_desktop.core.dicom.convert import ExamConverter
from eyer_desktop.core.dicom.options import ConversionOptions
from eyer_desktop.core.errors import (
    ConversionError,
    DeliveryError,
    ExamError,
    SecretStoreError,
    ValidationError,
)
from eyer_desktop.core.exams import Exam
from eyer_desktop.core.net.association import DicomEndpoint
from eyer_desktop.core.net.dicomweb import (
    BasicAuth,
    BearerAuth,
    DicomWebClient,
    InstanceStatus,
    StowResult,
)
from eyer_desktop.core.net.store import StoreOutcome, StoreReport, StoreStatus, store
from eyer_desktop.core.net.tls import TlsSettings as NetTlsSettings
from eyer_desktop.core.net.transcode import StoreFallback
from eyer_desktop.core.outbox import STEREO_ITEM_PREFIX, Delivery, Outcome
from eyer_desktop.core.secrets import SecretStore
from eyer_desktop.core.server_settings import (
    DicomSettings,
    DicomWebSettings,
    SopClassFallback,
    WebAuth,
)
from eyer_desktop.core.servers import Server
from eyer_desktop.core.workspace import Workspace

logger = logging.getLogger(__name__)

_FALLBACKS = {
    SopClassFallback.NONE: StoreFallback.NONE,
    SopClassFallback.VL_PHOTOGRAPHIC: StoreFallback.VL_PHOTOGRAPHIC,
    SopClassFallback.SECONDARY_CAPTURE: StoreFallback.SECONDARY_CAPTURE,
}


def dicom_endpoint(server: Server) -> DicomEndpoint:
    """Return what an association with a DICOM storage or worklist server needs.

    Raises:
        ValidationError: The server is a DICOMweb server.
    """
    settings = server.settings
    if not isinstance(settings, DicomSettings):
        raise ValidationError(
            "Server",
            server.key,
            "is a DICOMweb server, not a DICOM one",
            "Choose a DICOM storage or worklist server",
        )
    tls = None
    if settings.tls.enabled:
        tls = NetTlsSettings(
            ca_file=settings.tls.ca_file,
            cert_file=settings.tls.cert_file,
            key_file=settings.tls.key_file,
            verify=settings.tls.verify,
        )
    timeouts = settings.timeouts
    return DicomEndpoint(
        host=settings.host,
        port=settings.port,
        calling_ae=settings.calling_ae,
        called_ae=settings.called_ae,
        connect_timeout=timeouts.connect,
        acse_timeout=timeouts.acse,
        dimse_timeout=timeouts.dimse,
        network_timeout=timeouts.network,
        tls=tls,
    )


def dicomweb_client(server: Server, secrets: SecretStore) -> DicomWebClient:
    """Return a client of a DICOMweb server, with its secret from the keyring.

    Raises:
        ValidationError: The server is not a configured DICOMweb server, or its
            password or token is missing from the keyring.
        SecretStoreError: The keyring cannot be used.
    """
    settings = server.settings
    if not isinstance(settings, DicomWebSettings) or settings.base_url is None:
        raise ValidationError(
            "Server",
            server.key,
            "is not a configured DICOMweb server",
            "Set its base URL, or choose another server",
        )
    auth: BasicAuth | BearerAuth | None = None
    if settings.auth is not WebAuth.NONE:
        secret = secrets.get(server.key)
        if secret is None:
            raise ValidationError(
                f"Password or token of server {server.key}",
                None,
                "not in the keyring",
                "Enter it in the server's settings",
            )
        if settings.auth is WebAuth.BASIC:
            auth = BasicAuth(settings.username, secret)
        else:
            auth = BearerAuth(secret)
    return DicomWebClient(
        settings.base_url,
        auth,
        verify_tls=settings.verify_tls,
        ca_file=settings.ca_file,
        timeout=settings.timeout,
    )


@dataclass
class _Prepared:
    """The datasets of a batch, and the outcomes of deliveries that failed early."""

    datasets: dict[int, Dataset]
    outcomes: dict[int, Outcome]


BatchProgress = Callable[[str, ServerPhase, int], None]
"""Called as ``(server_key, phase, images_done)`` while a sender works on a
batch; :meth:`DeliveryEngine.report_batch_progress` is one."""

ConfirmedCallback = Callable[[str, int, Outcome], None]
"""Called as ``(server_key, delivery_id, outcome)`` when a server has stored
one image of a batch that is still being sent."""


class WorkspaceSender:
    """Sends batches of queued deliveries to the servers of a workspace.

    Implements the delivery engine's Sender protocol. Images are converted
    when they are sent, from the exam library, so what reaches a server always
    reflects the current settings; the UIDs come from the exam and stay the
    same on every resend.

    Args:
        workspace: The profile whose servers, settings and exams are used.
        secrets: The keyring of DICOMweb passwords and tokens.
        progress: Called before each image of a batch is converted and after
            a DICOM server acknowledges each one, on the sending thread.
        confirmed: Called on the sending thread with each delivery a DICOM
            server stored, before the rest of the batch is sent;
            :meth:`DeliveryEngine.record_confirmed` is one.
        should_continue: Called before each image is sent to a DICOM server;
            when it returns False the batch ends there, and the deliveries
            not sent get no outcome.
    """

    def __init__(
        self,
        workspace: Workspace,
        secrets: SecretStore | None = None,
        progress: BatchProgress | None = None,
        confirmed: ConfirmedCallback | None = None,
        should_continue: Callable[[], bool] | None = None,
    ):
        self.workspace = workspace
        self.secrets = secrets or SecretStore()
        self.progress = progress
        self.confirmed = confirmed
        self.should_continue = should_continue

    def send(self, server_key: str, batch: Sequence[Delivery]) -> Mapping[int, Outcome]:
        server = self.workspace.servers.get(server_key)
        prepared = self._prepare(server, batch)
        if not prepared.datasets:
            return prepared.outcomes

        if isinstance(server.settings, DicomWebSettings):
            sent = self._send_dicomweb(server, prepared.datasets)
        else:
            sent = self._send_dimse(server, prepared.datasets)
        return prepared.outcomes | sent

    def _report(self, server_key: str, phase: ServerPhase, done: int) -> None:
        if self.progress is not None:
            self.progress(server_key, phase, done)

    def _prepare(self, server: Server, batch: Sequence[Delivery]) -> _Prepared:
        options = conversion_options(self.workspace.settings, server)
        prepared = _Prepared({}, {})
        converters: dict[str, ExamConverter | ExamError | ConversionError] = {}
        for converted, delivery in enumerate(batch):
            self._report(server.key, ServerPhase.CONVERTING, converted)
            converter = converters.get(delivery.exam_id)
            if converter is None:
                converter = self._converter(delivery.exam_id, options)
                converters[delivery.exam_id] = converter
            if isinstance(converter, Exception):
                prepared.outcomes[delivery.delivery_id] = _conversion_failure(converter)
                continue
            try:
                dataset = _dataset_of(converter, delivery)
            except (ConversionError, KeyError) as err:
                prepared.outcomes[delivery.delivery_id] = _conversion_failure(err)
                continue
            prepared.datasets[delivery.delivery_id] = dataset
        return prepared

    def _converter(
        self, exam_id: str, options: ConversionOptions
    ) -> ExamConverter | ExamError | ConversionError:
        library = self.workspace.library
        if not (library.root / exam_id).is_dir():
            logger.warning("Exam %s is not in the library any more", exam_id)
            return ExamError(
                f"Exam {exam_id[:8]}… was deleted from the library {library.root}, "
                "so its images cannot be sent. Cancel this delivery, or import "
                "the exam again and send the new copy."
            )
        try:
            exam: Exam = library.load(exam_id)
            return ExamConverter(exam, options)
        except (ExamError, ConversionError) as err:
            logger.warning(
                "Exam %s cannot be converted: %s", exam_id, type(err).__name__
            )
            return err

    def _send_dimse(
        self, server: Server, datasets: Mapping[int, Dataset]
    ) -> dict[int, Outcome]:
        assert isinstance(server.settings, DicomSettings)
        fallback = StoreFallback.NONE
        if hasattr(server.settings, "sop_class_fallback"):
            fallback = _FALLBACKS[server.settings.sop_class_fallback]
        delivery_ids = list(datasets)
        by_uid = {
            str(dataset.SOPInstanceUID): delivery_id
            for delivery_id, dataset in datasets.items()
        }
        acknowledged = 0

        def count_outcome(outcome: StoreOutcome) -> None:
            nonlocal acknowledged
            acknowledged += 1
            self._report(server.key, ServerPhase.SENDING, acknowledged)
            delivery_id = by_uid.get(outcome.sop_instance_uid)
            stored = outcome.status in (StoreStatus.SENT, StoreStatus.WARNING)
            if self.confirmed is not None and delivery_id is not None and stored:
                self.confirmed(server.key, delivery_id, _store_outcome(outcome))

        self._report(server.key, ServerPhase.SENDING, 0)
        report: StoreReport = store(
            dicom_endpoint(server),
            list(datasets.values()),
            fallback=fallback,
            on_outcome=count_outcome,
            should_continue=self.should_continue,
        )
        # A stopped batch has outcomes for the first deliveries only.
        return {
            delivery_id: _store_outcome(outcome)
            for delivery_id, outcome in zip(delivery_ids, report.outcomes, strict=False)
        }

    def _send_dicomweb(
        self, server: Server, datasets: Mapping[int, Dataset]
    ) -> dict[int, Outcome]:
        client = _client_for_batch(server, self.secrets)
        uids = {
            delivery_id: str(dataset.SOPInstanceUID)
            for delivery_id, dataset in datasets.items()
        }
        self._report(server.key, ServerPhase.SENDING, 0)
        result: StowResult = client.store([_encode(ds) for ds in datasets.values()])
        by_uid = {outcome.sop_instance_uid: outcome for outcome in result.outcomes}

        outcomes: dict[int, Outcome] = {}
        for delivery_id, uid in uids.items():
            outcome = by_uid.get(uid)
            if outcome is None:
                outcomes[delivery_id] = Outcome.failed(
                    f"HTTP {result.http_status}: the server did not report this "
                    "instance",
                    transient=True,
                )
            elif outcome.status is InstanceStatus.STORED:
                outcomes[delivery_id] = Outcome.sent(result.http_status)
            elif outcome.status is InstanceStatus.WARNING:
                outcomes[delivery_id] = Outcome.warning(
                    outcome.reason_code, outcome.describe()
                )
            else:
                outcomes[delivery_id] = Outcome.failed(
                    outcome.describe(), transient=False, code=outcome.reason_code
                )
        return outcomes


def _store_outcome(outcome: StoreOutcome) -> Outcome:
    """Return the delivery outcome of one instance's C-STORE outcome."""
    if outcome.status is StoreStatus.SENT:
        return Outcome.sent(outcome.code)
    if outcome.status is StoreStatus.WARNING:
        return Outcome.warning(outcome.code, outcome.meaning)
    if outcome.error is not None:
        return Outcome.from_error(outcome.error)
    transient = outcome.status is StoreStatus.NOT_SENT
    return Outcome.failed(outcome.meaning, transient=transient, code=outcome.code)


def create_engine(
    workspace: Workspace,
    secrets: SecretStore | None = None,
    *,
    progress: ProgressCallback | None = None,
    batch_size: int = 100,
) -> DeliveryEngine:
    """Return a delivery engine over the workspace's outbox and servers.

    With ``progress``, the engine reports each server's progress to it, down
    to single images converted and sent.
    """
    sender = WorkspaceSender(workspace, secrets)
    engine = DeliveryEngine(
        workspace.outbox,
        sender,
        servers=lambda: list(workspace.servers),
        batch_size=batch_size,
        progress=progress,
    )
    if progress is not None:
        sender.progress = engine.report_batch_progress
    sender.confirmed = engine.record_confirmed
    sender.should_continue = engine.is_running
    return engine


def _client_for_batch(server: Server, secrets: SecretStore) -> DicomWebClient:
    """Return the server's DICOMweb client, or fail the whole batch.

    Raises:
        DeliveryError: A permanent one when the settings or the keyring entry
            are incomplete, so the batch waits until the user corrects them
            and retries it. A transient one when the keyring cannot be read.
    """
    try:
        return dicomweb_client(server, secrets)
    except ValidationError as err:
        raise DeliveryError(str(err), transient=False) from err
    except SecretStoreError as err:
        raise DeliveryError(str(err), transient=True) from err


def _dataset_of(converter: ExamConverter, delivery: Delivery) -> Dataset:
    if delivery.image_id.startswith(STEREO_ITEM_PREFIX):
        for instance in converter.stereo_instances():
            if instance.dataset.SOPInstanceUID == delivery.sop_instance_uid:
                return instance.dataset
        raise KeyError(delivery.image_id)
    instance = converter.image_instance(delivery.image_id)
    if instance.dataset.SOPInstanceUID != delivery.sop_instance_uid:
        raise ConversionError(
            f"Image {delivery.image_id} now has SOP Instance UID "
            f"{instance.dataset.SOPInstanceUID}, not the queued "
            f"{delivery.sop_instance_uid}. Queue the exam again."
        )
    return instance.dataset


def _conversion_failure(error: Exception) -> Outcome:
    if isinstance(error, KeyError):
        message = f"The exam no longer has image {error.args[0]}"
    else:
        message = str(error)
    return Outcome.failed(message, transient=False)


def _encode(dataset: Dataset) -> bytes:
    buffer = io.BytesIO()
    dcmwrite(buffer, dataset, enforce_file_format=True)
    return buffer.getvalue()
