"""C-STORE of a batch of instances over one association.

For every SOP class in the batch the request proposes three presentation
contexts with one transfer syntax each: the compressed syntax of the files
(JPEG Baseline for the converter's OP images), Explicit VR Little Endian and
Implicit VR Little Endian. A server can then accept one and reject another.
A JPEG image goes out as it is when the server accepts JPEG Baseline, and
decoded to native pixels when it accepts only uncompressed syntaxes. JPEG
bytes never travel under an uncompressed syntax.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import (
    UID,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
)
from pynetdicom.association import Association
from pynetdicom.presentation import PresentationContext, build_context
from pynetdicom.status import STORAGE_SERVICE_CLASS_STATUS, code_to_category

from eyer_desktop.core.errors import ConversionError, DeliveryError
from eyer_desktop.core.net.association import (
    DicomEndpoint,
    no_response_reason,
    open_association,
)
from eyer_desktop.core.net.transcode import (
    OP_8BIT_IMAGE_STORAGE,
    SECONDARY_CAPTURE_IMAGE_STORAGE,
    STEREOMETRIC_RELATIONSHIP_STORAGE,
    VL_PHOTOGRAPHIC_IMAGE_STORAGE,
    StoreFallback,
    decode_jpeg_baseline,
    rewrite_as_fallback,
    transfer_syntax_of,
)

logger = logging.getLogger(__name__)

UNCOMPRESSED_SYNTAXES = (ExplicitVRLittleEndian, ImplicitVRLittleEndian)
MAX_MESSAGE_ID = 0xFFFF

StoreSource = Dataset | Path | str


class StoreStatus(StrEnum):
    """Result of one instance of a batch."""

    SENT = "sent"
    WARNING = "warning"
    """Stored, with a warning status (for example B000, coercion of elements)."""
    FAILED = "failed"
    """Not stored: the server returned a failure, or the instance cannot be sent."""
    NOT_SENT = "not sent"
    """Not stored because the association ended first; retrying may succeed."""


@dataclass(frozen=True)
class StoreOutcome:
    """The result of one instance of a batch.

    Attributes:
        sop_instance_uid: SOP Instance UID; empty when the file could not be read.
        status: Whether the instance was stored.
        code: DICOM status code of the C-STORE response, when one arrived.
        meaning: The code's meaning, or why the instance was not sent.
        source: The file the instance was read from; empty for a dataset.
        sop_class_uid: SOP class the instance was sent as (a fallback class
            when the server rejected the original one).
        transfer_syntax_uid: Transfer syntax the instance was sent with.
        error: For FAILED and NOT_SENT, the error to retry or report, with its
            transient flag.
    """

    sop_instance_uid: str
    status: StoreStatus
    code: int | None = None
    meaning: str = ""
    source: str = ""
    sop_class_uid: str = ""
    transfer_syntax_uid: str = ""
    error: DeliveryError | None = None

    @property
    def stored(self) -> bool:
        """Whether the server stored the instance (with or without a warning)."""
        return self.status in (StoreStatus.SENT, StoreStatus.WARNING)


@dataclass(frozen=True)
class StoreReport:
    """Outcomes of one batch, in the order the instances were given.

    Attributes:
        outcomes: One per instance, up to where sending stopped.
        stopped: Whether sending stopped on request before the last instance;
            the instances after ``outcomes`` were not sent.
    """

    endpoint: str
    outcomes: tuple[StoreOutcome, ...]
    elapsed: float
    stopped: bool = False

    def count(self, status: StoreStatus) -> int:
        """Return how many instances ended with ``status``."""
        return sum(1 for outcome in self.outcomes if outcome.status is status)

    @property
    def all_stored(self) -> bool:
        """Whether every instance was stored."""
        return all(outcome.stored for outcome in self.outcomes)

    def summary(self) -> str:
        """Return a one-line count of each status, for logs and status bars."""
        counts = ", ".join(
            f"{self.count(status)} {status.value}" for status in StoreStatus
        )
        return f"{len(self.outcomes)} instances to {self.endpoint}: {counts}"


@dataclass(frozen=True)
class _Item:
    """One instance of a batch, as read from its header."""

    source: Dataset | Path
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax_uid: str

    @property
    def label(self) -> str:
        return str(self.source) if isinstance(self.source, Path) else ""


class _NotSendableError(Exception):
    """An instance that cannot be sent on this association, with the reason."""


def store(
    endpoint: DicomEndpoint,
    sources: Iterable[StoreSource],
    *,
    fallback: StoreFallback = StoreFallback.NONE,
    on_outcome: Callable[[StoreOutcome], None] | None = None,
    should_continue: Callable[[], bool] | None = None,
) -> StoreReport:
    """Send every instance in ``sources`` over one association.

    ``sources`` contains datasets with file meta information, or paths of DICOM
    files. With a ``fallback`` other than NONE, an OP image whose SOP class the
    server rejects is rewritten and sent as the fallback class.
    ``on_outcome`` is called after each instance, for progress display.
    ``should_continue`` is called before each instance; when it returns
    False, sending stops there and the association is released.
    Encapsulated PixelData of a given dataset is marked as undefined length,
    as the standard requires; nothing else in the given datasets changes.

    Returns:
        One outcome per source, in order, up to where sending stopped. An
        aborted or timed-out association leaves the instances after it
        NOT_SENT with a transient error.

    Raises:
        DeliveryError: The association could not be opened; nothing was sent.
    """
    started = time.monotonic()
    outcomes: list[StoreOutcome | None] = []
    items: list[tuple[int, _Item]] = []
    for source in sources:
        try:
            items.append((len(outcomes), _read_header(source)))
            outcomes.append(None)
        except _NotSendableError as err:
            outcomes.append(_failed_outcome(endpoint, source, str(err)))

    stopped_at: int | None = None
    if items:
        contexts = _requested_contexts([item for _, item in items], fallback)
        with open_association(endpoint, contexts) as assoc:
            sender = _BatchSender(endpoint, assoc, fallback, on_outcome)
            for index, item in items:
                if should_continue is not None and not should_continue():
                    stopped_at = index
                    logger.info("C-STORE batch to %s stopped on request", endpoint)
                    break
                outcomes[index] = sender.send(item)

    processed = outcomes if stopped_at is None else outcomes[:stopped_at]
    report = StoreReport(
        endpoint=str(endpoint),
        outcomes=tuple(outcome for outcome in processed if outcome is not None),
        elapsed=time.monotonic() - started,
        stopped=stopped_at is not None,
    )
    logger.info("C-STORE batch: %s in %.2f s", report.summary(), report.elapsed)
    return report


def _requested_contexts(
    items: Sequence[_Item], fallback: StoreFallback = StoreFallback.NONE
) -> list[PresentationContext]:
    """Return the presentation contexts a batch proposes, one syntax each."""
    syntaxes_by_class: dict[str, list[str]] = {}
    fallback_class = fallback.sop_class_uid
    for item in items:
        classes = [item.sop_class_uid]
        if fallback_class is not None and item.sop_class_uid == OP_8BIT_IMAGE_STORAGE:
            classes.append(fallback_class)
        for sop_class in classes:
            syntaxes = syntaxes_by_class.setdefault(sop_class, [])
            if item.transfer_syntax_uid not in syntaxes:
                syntaxes.append(item.transfer_syntax_uid)

    contexts = []
    for sop_class, syntaxes in syntaxes_by_class.items():
        compressed = [ts for ts in syntaxes if ts not in UNCOMPRESSED_SYNTAXES]
        for transfer_syntax in [*compressed, *UNCOMPRESSED_SYNTAXES]:
            contexts.append(build_context(sop_class, [transfer_syntax]))
    return contexts


def _read_header(source: StoreSource) -> _Item:
    if isinstance(source, Dataset):
        dataset = source
        origin: Dataset | Path = source
    else:
        origin = Path(source)
        dataset = _read_file(origin, stop_before_pixels=True)

    transfer_syntax = transfer_syntax_of(dataset)
    sop_class = dataset.get("SOPClassUID")
    sop_instance = dataset.get("SOPInstanceUID")
    if not transfer_syntax or not sop_class or not sop_instance:
        raise _NotSendableError(
            "The instance lacks a SOP Class UID, a SOP Instance UID or a "
            "Transfer Syntax UID in its file meta information. Convert it again."
        )
    return _Item(origin, str(sop_class), str(sop_instance), transfer_syntax)


def _read_file(path: Path, *, stop_before_pixels: bool = False) -> Dataset:
    try:
        return dcmread(path, stop_before_pixels=stop_before_pixels)
    except (OSError, InvalidDicomError, ValueError, EOFError) as err:
        raise _NotSendableError(
            f"File {path} cannot be read as DICOM ({err}). Convert the exam again."
        ) from err


def _failed_outcome(
    endpoint: DicomEndpoint, source: StoreSource, reason: str
) -> StoreOutcome:
    uid = str(source.get("SOPInstanceUID", "")) if isinstance(source, Dataset) else ""
    label = "" if isinstance(source, Dataset) else str(source)
    return StoreOutcome(
        sop_instance_uid=uid,
        status=StoreStatus.FAILED,
        meaning=reason,
        source=label,
        error=DeliveryError(f"Not sent to {endpoint}: {reason}", transient=False),
    )


class _BatchSender:
    """Sends the instances of one batch on an established association."""

    def __init__(
        self,
        endpoint: DicomEndpoint,
        assoc: Association,
        fallback: StoreFallback,
        on_outcome: Callable[[StoreOutcome], None] | None,
    ) -> None:
        self._endpoint = endpoint
        self._assoc = assoc
        self._fallback = fallback
        self._on_outcome = on_outcome
        self._accepted = accepted_syntaxes(assoc)
        self._proposed = _proposed_syntaxes(assoc)
        self._message_id = 0
        self._ended_reason = ""

    def send(self, item: _Item) -> StoreOutcome:
        """Send one instance and return its outcome."""
        outcome = self._send(item)
        if self._on_outcome is not None:
            self._on_outcome(outcome)
        return outcome

    def _send(self, item: _Item) -> StoreOutcome:
        if self._ended_reason or not self._assoc.is_established:
            return self._not_sent(item, self._ended_reason or "the association ended")

        try:
            dataset = self._prepare(item)
        except _NotSendableError as err:
            return self._failed(item, str(err))

        self._message_id = self._message_id % MAX_MESSAGE_ID + 1
        try:
            status = self._assoc.send_c_store(dataset, msg_id=self._message_id)
        except (ValueError, AttributeError) as err:
            return self._failed(item, f"the instance cannot be encoded ({err})")
        except RuntimeError:
            self._ended_reason = "the association ended"
            return self._not_sent(item, self._ended_reason)

        code = status.get("Status") if status is not None else None
        if code is None:
            self._ended_reason = no_response_reason(self._endpoint, self._assoc)
            logger.warning("C-STORE to %s: %s", self._endpoint, self._ended_reason)
            return self._not_sent(item, self._ended_reason)
        return self._outcome_from_status(item, dataset, int(code))

    def _prepare(self, item: _Item) -> Dataset:
        """Return the dataset to send: read, rewritten or decoded as needed."""
        dataset = (
            item.source if isinstance(item.source, Dataset) else _read_file(item.source)
        )

        sop_class = item.sop_class_uid
        fallback_class = self._fallback.sop_class_uid
        if (
            sop_class not in self._accepted
            and sop_class == OP_8BIT_IMAGE_STORAGE
            and fallback_class in self._accepted
        ):
            dataset = rewrite_as_fallback(dataset, self._fallback)
            sop_class = str(fallback_class)

        accepted = self._accepted.get(sop_class)
        if not accepted:
            raise _NotSendableError(self._rejected_class_message(item.sop_class_uid))

        transfer_syntax = item.transfer_syntax_uid
        if transfer_syntax in accepted:
            if UID(transfer_syntax).is_encapsulated and "PixelData" in dataset:
                # Encapsulated pixel data must have undefined length (PS3.5
                # A.4). pydicom sets it when writing a file but not when
                # pynetdicom encodes a dataset built in memory.
                dataset["PixelData"].is_undefined_length = True
            return dataset
        uncompressed_accepted = any(ts in UNCOMPRESSED_SYNTAXES for ts in accepted)
        if transfer_syntax in UNCOMPRESSED_SYNTAXES and uncompressed_accepted:
            # pynetdicom converts between explicit and implicit VR by itself.
            return dataset
        if transfer_syntax == JPEGBaseline8Bit and uncompressed_accepted:
            try:
                return decode_jpeg_baseline(dataset)
            except ConversionError as err:
                raise _NotSendableError(str(err)) from err

        raise _NotSendableError(
            f"the server accepts {UID(sop_class).name} only with "
            f"{_names(accepted)}, and the instance is encoded as "
            f"{UID(transfer_syntax).name}, which cannot be converted here."
        )

    def _rejected_class_message(self, sop_class: str) -> str:
        proposed = _names(self._proposed.get(sop_class, ()))
        message = (
            f"the server rejected SOP class {UID(sop_class).name} "
            f"({sop_class}), proposed with {proposed}."
        )
        fallback_class = self._fallback.sop_class_uid
        if sop_class != OP_8BIT_IMAGE_STORAGE:
            return message
        if fallback_class is None:
            return (
                f"{message} Choose VL Photographic or Secondary Capture as the "
                "fallback for this server, or ask its administrator to accept OP."
            )
        return (
            f"{message} It also rejected the fallback {UID(fallback_class).name}. "
            "Ask the server's administrator which image classes it accepts."
        )

    def _outcome_from_status(
        self, item: _Item, dataset: Dataset, code: int
    ) -> StoreOutcome:
        category = code_to_category(code)
        meaning = describe_store_status(code)
        outcome = StoreOutcome(
            sop_instance_uid=item.sop_instance_uid,
            status=StoreStatus.SENT,
            code=code,
            meaning=meaning,
            source=item.label,
            sop_class_uid=str(dataset.SOPClassUID),
            transfer_syntax_uid=self._sent_syntax(dataset),
        )
        if category == "Success":
            return outcome

        if category == "Warning":
            logger.warning(
                "C-STORE of %s to %s: warning 0x%04X (%s)",
                item.sop_instance_uid,
                self._endpoint,
                code,
                meaning,
            )
            return replace(outcome, status=StoreStatus.WARNING)

        error = DeliveryError(
            f"{self._endpoint} did not store instance {item.sop_instance_uid}: "
            f"status 0x{code:04X}, {meaning}.",
            transient=False,
            code=code,
        )
        return replace(outcome, status=StoreStatus.FAILED, error=error)

    def _sent_syntax(self, dataset: Dataset) -> str:
        transfer_syntax = transfer_syntax_of(dataset) or ""
        accepted = self._accepted.get(str(dataset.SOPClassUID), ())
        if transfer_syntax in accepted:
            return transfer_syntax
        # An uncompressed dataset went out in the uncompressed syntax accepted.
        return next((ts for ts in accepted if ts in UNCOMPRESSED_SYNTAXES), "")

    def _failed(self, item: _Item, reason: str) -> StoreOutcome:
        logger.warning(
            "C-STORE of %s to %s not sent: %s",
            item.sop_instance_uid,
            self._endpoint,
            reason,
        )
        return StoreOutcome(
            item.sop_instance_uid,
            StoreStatus.FAILED,
            meaning=reason,
            source=item.label,
            error=DeliveryError(
                f"Not sent to {self._endpoint}: {reason}", transient=False
            ),
        )

    def _not_sent(self, item: _Item, reason: str) -> StoreOutcome:
        return StoreOutcome(
            item.sop_instance_uid,
            StoreStatus.NOT_SENT,
            meaning=reason,
            source=item.label,
            error=DeliveryError(
                f"Not sent to {self._endpoint}: {reason}. It will be retried.",
                transient=True,
            ),
        )


def describe_store_status(code: int) -> str:
    """Return the meaning of a C-STORE status code, as PS3.4 Annex B names it."""
    known = STORAGE_SERVICE_CLASS_STATUS.get(code)
    if known is not None and known[1]:
        return str(known[1])
    category = code_to_category(code)
    if category == "Success":
        return "Success"
    return f"{category} (status not defined for the Storage Service)"


def accepted_syntaxes(assoc: Association) -> dict[str, tuple[str, ...]]:
    """Return the transfer syntaxes accepted on ``assoc`` for each SOP class."""
    accepted: dict[str, list[str]] = {}
    for context in assoc.accepted_contexts:
        if context.abstract_syntax is None or not context.as_scu:
            continue
        syntaxes = accepted.setdefault(str(context.abstract_syntax), [])
        syntaxes.extend(str(ts) for ts in context.transfer_syntax)
    return {sop_class: tuple(ts) for sop_class, ts in accepted.items()}


def _proposed_syntaxes(assoc: Association) -> dict[str, tuple[str, ...]]:
    proposed: dict[str, list[str]] = {}
    for context in assoc.requestor.requested_contexts:
        if context.abstract_syntax is None:
            continue
        syntaxes = proposed.setdefault(str(context.abstract_syntax), [])
        syntaxes.extend(str(ts) for ts in context.transfer_syntax)
    return {sop_class: tuple(ts) for sop_class, ts in proposed.items()}


def _names(syntaxes: Iterable[str]) -> str:
    return ", ".join(UID(ts).name for ts in syntaxes) or "no transfer syntax"


@dataclass(frozen=True)
class StorageProbe:
    """Transfer syntaxes a storage server accepted for the image SOP classes.

    Attributes:
        endpoint: The server, as ``AET@host:port``.
        accepted: Transfer syntaxes accepted for each SOP class UID; a class
            the server rejected is absent.
    """

    endpoint: str
    accepted: Mapping[str, tuple[str, ...]]

    def transfer_syntax_for_jpeg(self, sop_class: str = OP_8BIT_IMAGE_STORAGE) -> str:
        """Return the syntax a JPEG image of ``sop_class`` would be sent with.

        This is JPEG Baseline when accepted, because the file goes as it is.
        Otherwise it is an uncompressed syntax, and the image is decoded
        first. It is empty when the server rejected the class.
        """
        accepted = self.accepted.get(sop_class, ())
        for transfer_syntax in (JPEGBaseline8Bit, *UNCOMPRESSED_SYNTAXES):
            if transfer_syntax in accepted:
                return str(transfer_syntax)
        return ""


PROBED_SOP_CLASSES = (
    OP_8BIT_IMAGE_STORAGE,
    STEREOMETRIC_RELATIONSHIP_STORAGE,
    VL_PHOTOGRAPHIC_IMAGE_STORAGE,
    SECONDARY_CAPTURE_IMAGE_STORAGE,
)


def probe_storage(
    endpoint: DicomEndpoint, sop_classes: Sequence[str] = PROBED_SOP_CLASSES
) -> StorageProbe:
    """Ask ``endpoint`` which syntaxes it accepts for ``sop_classes``, then release.

    Each class is proposed with JPEG Baseline, Explicit VR Little Endian and
    Implicit VR Little Endian in separate presentation contexts, as
    :func:`store` proposes them. Nothing is sent.

    Raises:
        DeliveryError: The association failed, or the server accepted none of
            the contexts.
    """
    contexts = [
        build_context(sop_class, [transfer_syntax])
        for sop_class in sop_classes
        for transfer_syntax in (JPEGBaseline8Bit, *UNCOMPRESSED_SYNTAXES)
    ]
    with open_association(endpoint, contexts) as assoc:
        accepted = accepted_syntaxes(assoc)

    probe = StorageProbe(str(endpoint), accepted)
    logger.info(
        "Storage probe of %s: OP JPEG would be sent as %s",
        endpoint,
        probe.transfer_syntax_for_jpeg() or "nothing (OP rejected)",
    )
    return probe
