"""The outbox: a persistent queue of deliveries, one per image and server.

Deliveries live in an SQLite database (``AppPaths.outbox_file``) in WAL mode with
``synchronous=FULL``, so every committed change survives a crash, a kill or a power
cut. A delivery moves through these states::

    queued --claim_due--> sending --record_outcomes--> sent | warning
                                  --transient failure--> queued, after a backoff
                                  --permanent failure--> failed
    queued <--pause/resume of its server--> paused
    failed, cancelled --retry--> queued
    queued, paused, failed, sending --cancel--> cancelled
    sending --next open after a crash--> queued, due at once

A delivery is marked ``sent`` or ``warning`` only from an outcome the sender reported
after the server confirmed the image. A delivery cancelled while it was being sent stays
cancelled, whatever outcome its sender reports afterwards.

Enqueueing is idempotent: (exam id, image id, server key) is unique, and enqueueing an
image that already has a delivery to that server leaves the delivery as it is. A resend
is an explicit request (``enqueue(..., resend=True)``). It puts a sent, warning, failed
or cancelled delivery back in the queue, keeps its SOP Instance UID, so the archive
updates the instance it already stores, and keeps the route it was first queued by.

Each change of a delivery also writes an event to a history table. Events and
deliveries contain exam ids, image ids, SOP Instance UIDs, server keys and the
server's error text, never patient data.
"""

from __future__ import annotations

import json
import logging
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from eyer_desktop.core.dicom.stereo import stereo_groups
from eyer_desktop.core.errors import DeliveryError, EyerError
from eyer_desktop.core.exams import Exam
from eyer_desktop.core.filelock import FileLock

logger = logging.getLogger(__name__)

Clock = Callable[[], float]
"""A function returning the current time as Unix time in seconds."""


class OutboxError(EyerError):
    """The outbox database cannot be opened, read or written."""


class OutboxBusyError(OutboxError):
    """Another process holds the sender lock of the outbox."""


class DeliveryState(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    WARNING = "warning"
    """Delivered, and the server reported a warning status (for example coercion)."""
    FAILED = "failed"
    """Rejected permanently. Waits until the user retries it."""
    PAUSED = "paused"
    CANCELLED = "cancelled"


UNFINISHED_STATES = frozenset(
    {
        DeliveryState.QUEUED,
        DeliveryState.SENDING,
        DeliveryState.PAUSED,
        DeliveryState.FAILED,
    }
)
FINISHED_STATES = frozenset(DeliveryState) - UNFINISHED_STATES
RESENDABLE_STATES = FINISHED_STATES | {DeliveryState.FAILED}


class ErrorClass(StrEnum):
    TRANSIENT = "transient"
    PERMANENT = "permanent"


class Route(StrEnum):
    """The server action that made a server receive a delivery."""

    PRIMARY = "primary"
    MIRROR = "mirror"
    CONTINGENCY = "contingency"
    MANUAL = "manual"


class PauseReason(StrEnum):
    """Reason for pausing a server. A server stays paused while any reason applies."""

    USER = "user"
    INACTIVE = "inactive"
    """The server is deactivated, not configured, or no longer in the server list."""


class OutcomeKind(StrEnum):
    SENT = "sent"
    WARNING = "warning"
    FAILED = "failed"


class EventKind(StrEnum):
    """The kinds of events in the per-exam history."""

    QUEUED = "queued"
    RESEND = "resend"
    SENDING = "sending"
    SENT = "sent"
    WARNING = "warning"
    RETRY_SCHEDULED = "retry-scheduled"
    FAILED = "failed"
    RETRY_REQUESTED = "retry-requested"
    CANCELLED = "cancelled"
    RECOVERED = "recovered"
    """A delivery found in ``sending`` when the outbox was opened, after a crash."""


@dataclass(frozen=True)
class DeliveryItem:
    """One image to deliver, identified by ids only."""

    exam_id: str
    image_id: str
    sop_instance_uid: str


STEREO_ITEM_PREFIX = "stereo/"
"""Start of the image id of a Stereometric Relationship delivery, followed by
the eye (``stereo/R``): such an instance belongs to no single image."""


def items_of_exam(exam: Exam) -> list[DeliveryItem]:
    """Return one delivery item per DICOM instance of the exam, in the exam's order.

    That is one per image, then one per eye with stereo pairs for its
    Stereometric Relationship instance.
    """
    items = [
        DeliveryItem(exam.exam_id, image.image_id, image.sop_instance_uid)
        for image in exam.images
    ]
    for group in stereo_groups(exam):
        image_id = STEREO_ITEM_PREFIX + group.laterality
        items.append(DeliveryItem(exam.exam_id, image_id, group.sop_instance_uid))
    return items


@dataclass(frozen=True)
class Delivery:
    """One image's delivery to one server, as stored in the outbox.

    Time stamps are Unix time in seconds.

    Attributes:
        attempts: Sends started since the delivery was queued, retried or resent.
            A send that a crash interrupted counts.
        next_attempt_at: When a queued or paused delivery becomes due; None in
            the other states.
        last_error: The error or warning text of the last outcome, if any.
        error_class: Whether the last failure was transient or permanent.
        status_code: The DICOM or HTTP status code of the last outcome, when the
            server sent one.
    """

    delivery_id: int
    exam_id: str
    image_id: str
    sop_instance_uid: str
    server_key: str
    route: Route
    state: DeliveryState
    attempts: int
    next_attempt_at: float | None
    last_error: str | None
    error_class: ErrorClass | None
    status_code: int | None
    created_at: float
    updated_at: float
    sent_at: float | None

    @property
    def item(self) -> DeliveryItem:
        return DeliveryItem(self.exam_id, self.image_id, self.sop_instance_uid)


@dataclass(frozen=True)
class Outcome:
    """The result of sending one delivery, as a sender reports it."""

    kind: OutcomeKind
    code: int | None = None
    message: str = ""
    transient: bool = False

    @classmethod
    def sent(cls, code: int | None = None) -> Outcome:
        return cls(OutcomeKind.SENT, code)

    @classmethod
    def warning(cls, code: int | None, message: str) -> Outcome:
        return cls(OutcomeKind.WARNING, code, message)

    @classmethod
    def failed(
        cls, message: str, *, transient: bool, code: int | None = None
    ) -> Outcome:
        return cls(OutcomeKind.FAILED, code, message, transient)

    @classmethod
    def from_error(cls, error: DeliveryError) -> Outcome:
        return cls.failed(str(error), transient=error.transient, code=error.code)


@dataclass(frozen=True)
class HistoryEvent:
    """One entry of an exam's delivery history.

    Attributes:
        at: Unix time in seconds.
        attempt: The delivery's attempt count when the event happened.
        detail: Error or warning text, or a short note on the event.
    """

    event_id: int
    at: float
    exam_id: str
    image_id: str
    server_key: str
    kind: EventKind
    attempt: int
    status_code: int | None
    detail: str


class Jitter(StrEnum):
    """Randomisation of retry delays, so that many clients do not retry in step."""

    NONE = "none"
    FULL = "full"
    """Uniform between 0 and the backoff delay."""
    EQUAL = "equal"
    """Half the backoff delay plus a uniform part up to the other half."""


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff for transient failures.

    The backoff delay before attempt n + 1 is ``initial_delay * multiplier ** (n - 1)``
    seconds, capped at ``max_delay``, and jitter then draws the actual delay from it.
    There is no limit on the number of attempts.
    """

    initial_delay: float = 30.0
    multiplier: float = 2.0
    max_delay: float = 3600.0
    jitter: Jitter = Jitter.EQUAL

    def __post_init__(self) -> None:
        if not self.initial_delay > 0:
            raise ValueError(
                f"initial_delay must be more than 0 seconds, not {self.initial_delay}"
            )
        if not self.multiplier >= 1:
            raise ValueError(f"multiplier must be 1 or more, not {self.multiplier}")
        if not self.max_delay >= self.initial_delay:
            raise ValueError(
                f"max_delay ({self.max_delay}) must be at least "
                f"initial_delay ({self.initial_delay})"
            )
        object.__setattr__(self, "jitter", Jitter(self.jitter))

    def backoff(self, attempts: int) -> float:
        """Return the delay in seconds after ``attempts`` failed attempts, no jitter."""
        if attempts < 1:
            raise ValueError(f"attempts must be 1 or more, not {attempts}")
        try:
            delay = self.initial_delay * self.multiplier ** (attempts - 1)
        except OverflowError:
            return self.max_delay
        return min(delay, self.max_delay)

    def delay(self, attempts: int, rng: random.Random) -> float:
        """Return the jittered delay in seconds after ``attempts`` failed attempts."""
        backoff = self.backoff(attempts)
        if self.jitter is Jitter.FULL:
            return rng.uniform(0.0, backoff)
        if self.jitter is Jitter.EQUAL:
            return backoff / 2 + rng.uniform(0.0, backoff / 2)
        return backoff


# Schema migrations: MIGRATIONS[n] upgrades a database from user_version n to n + 1.
MIGRATIONS: list[list[str]] = [
    [
        """
        CREATE TABLE deliveries (
            id INTEGER PRIMARY KEY,
            exam_id TEXT NOT NULL,
            image_id TEXT NOT NULL,
            sop_instance_uid TEXT NOT NULL,
            server_key TEXT NOT NULL,
            route TEXT NOT NULL,
            state TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL,
            last_error TEXT,
            error_class TEXT,
            status_code INTEGER,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            sent_at REAL,
            UNIQUE (exam_id, image_id, server_key)
        )
        """,
        # The UNIQUE constraint's index also serves look-ups by exam id.
        "CREATE INDEX deliveries_server "
        "ON deliveries (server_key, state, next_attempt_at)",
        "CREATE INDEX deliveries_due ON deliveries (state, next_attempt_at)",
        "CREATE INDEX deliveries_route ON deliveries (route, state)",
        """
        CREATE TABLE history (
            id INTEGER PRIMARY KEY,
            at REAL NOT NULL,
            exam_id TEXT NOT NULL,
            image_id TEXT NOT NULL,
            server_key TEXT NOT NULL,
            kind TEXT NOT NULL,
            attempt INTEGER NOT NULL,
            status_code INTEGER,
            detail TEXT NOT NULL
        )
        """,
        "CREATE INDEX history_exam ON history (exam_id, id)",
        """
        CREATE TABLE paused_servers (
            server_key TEXT NOT NULL,
            reason TEXT NOT NULL,
            paused_at REAL NOT NULL,
            PRIMARY KEY (server_key, reason)
        )
        """,
    ],
]
SCHEMA_VERSION = len(MIGRATIONS)

_DELIVERY_COLUMNS = (
    "id, exam_id, image_id, sop_instance_uid, server_key, route, state, attempts, "
    "next_attempt_at, last_error, error_class, status_code, created_at, updated_at, "
    "sent_at"
)


_CANCELLED_WHILE_SENDING = (
    "cancelled while being sent, so the server may still store the image"
)


def _log_ignored_outcome(
    delivery_id: int, delivery: Delivery | None, outcome: Outcome
) -> None:
    if delivery is not None and delivery.state is DeliveryState.CANCELLED:
        logger.info(
            "Delivery %d to %s was cancelled while being sent, so its %s outcome "
            "is not recorded",
            delivery_id,
            delivery.server_key,
            outcome.kind,
        )
        return
    logger.warning(
        "Ignored the %s outcome of delivery %d: it is not being sent",
        outcome.kind,
        delivery_id,
    )


def _placeholders(count: int) -> str:
    return ", ".join("?" * count)


def _delivery_from_row(row: sqlite3.Row) -> Delivery:
    error_class = row["error_class"]
    return Delivery(
        delivery_id=row["id"],
        exam_id=row["exam_id"],
        image_id=row["image_id"],
        sop_instance_uid=row["sop_instance_uid"],
        server_key=row["server_key"],
        route=Route(row["route"]),
        state=DeliveryState(row["state"]),
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        last_error=row["last_error"],
        error_class=None if error_class is None else ErrorClass(error_class),
        status_code=row["status_code"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        sent_at=row["sent_at"],
    )


class Outbox:
    """The persistent delivery queue of one profile.

    All methods may be called from any thread. They share one SQLite connection
    behind a lock and each runs one short transaction, so no lock is held while a
    sender talks to a server. Other processes opening the same file wait up to
    ``busy_timeout`` seconds for a write lock.

    One process at a time delivers from an outbox file: the first to claim a
    delivery takes the sender lock, a file lock beside the database that it holds
    until it closes the outbox or ends. Deliveries left ``sending`` are put back
    in the queue only by whoever holds, or can take, that lock, so a process that
    only reads (an ``outbox list`` during a send) never touches them.

    Args:
        path: The database file. It and its folder are created when missing.
        clock: Source of every time stamp and due time.
        retry_policy: Backoff of transient failures.
        rng: Random source of the retry jitter. Pass a seeded one for repeatable
            delays.
        busy_timeout: Maximum time in seconds to wait for another process's lock.

    Attributes:
        recovered_on_open: Number of interrupted deliveries that opening queued
            again.
    """

    def __init__(
        self,
        path: Path,
        *,
        clock: Clock = time.time,
        retry_policy: RetryPolicy | None = None,
        rng: random.Random | None = None,
        busy_timeout: float = 10.0,
    ) -> None:
        self.path = path
        self.clock = clock
        self.retry_policy = retry_policy or RetryPolicy()
        self._rng = rng or random.Random()
        self._lock = threading.RLock()
        self._sender_lock = FileLock(path.with_name(path.name + ".sender-lock"))
        self._connection = self._connect(busy_timeout)
        try:
            self._migrate()
            self.recovered_on_open = self._recover_if_no_sender()
        except BaseException:
            self._connection.close()
            raise

    def close(self) -> None:
        with self._lock:
            self._connection.close()
            self._sender_lock.release()

    def become_sender(self) -> None:
        """Take the sender lock, so that this outbox may claim deliveries.

        On first success, deliveries that a dead sender left ``sending`` are
        queued again. Calling it again while holding the lock does nothing.

        Raises:
            OutboxBusyError: Another process is delivering from this outbox.
        """
        with self._lock:
            if self._sender_lock.held:
                return
            if not self._take_sender_lock():
                owner = self._sender_lock.owner_pid()
                process = f" (process {owner})" if owner else ""
                raise OutboxBusyError(
                    f"Another Eyer Desktop{process} is delivering from the outbox "
                    f"{self.path}. The exams stay queued and that program sends "
                    "them; close it to send from here."
                )
            self._recover_interrupted()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # Opening

    def _connect(self, busy_timeout: float) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(
                self.path,
                timeout=busy_timeout,
                isolation_level=None,
                check_same_thread=False,
            )
        except (OSError, sqlite3.Error) as err:
            raise OutboxError(
                f"Cannot open the outbox {self.path}: {err}. Check that its folder "
                "exists and is writable."
            ) from err

        connection.row_factory = sqlite3.Row
        try:
            mode = connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            connection.execute("PRAGMA synchronous=FULL")
        except sqlite3.Error as err:
            connection.close()
            raise OutboxError(
                f"Cannot open the outbox {self.path}: {err}. The file may be damaged. "
                "Move it aside to start with an empty outbox."
            ) from err

        if mode != "wal":
            logger.warning(
                "Outbox %s uses journal mode %s because WAL is not available there",
                self.path,
                mode,
            )
        return connection

    def _migrate(self) -> None:
        with self._transaction() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise OutboxError(
                    f"The outbox {self.path} has schema version {version}, newer than "
                    f"version {SCHEMA_VERSION} of this application. Update Eyer "
                    "Desktop, or use another profile."
                )
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[target - 1]:
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {target}")
                logger.info("Outbox %s migrated to schema %d", self.path, target)

    def _take_sender_lock(self) -> bool:
        try:
            return self._sender_lock.acquire()
        except OSError as err:
            raise OutboxError(
                f"Cannot create the sender lock {self._sender_lock.path}: {err}. "
                "Check that the outbox folder is writable."
            ) from err

    def release(self, delivery_ids: Iterable[int]) -> int:
        """Put claimed deliveries that were not sent back in the queue, due now.

        For a batch that stopped on request before these deliveries: they
        were never offered to the server. Deliveries no longer ``sending``
        are left as they are.

        Returns:
            The number of deliveries queued again.
        """
        now = self.clock()
        released = 0
        with self._transaction() as db:
            for delivery_id in delivery_ids:
                delivery = self._fetch(db, delivery_id)
                if delivery is None or delivery.state is not DeliveryState.SENDING:
                    continue
                state = self._waiting_state(db, delivery.server_key)
                self._set_due(db, delivery_id, state, now)
                # Claiming counted an attempt that never reached the server.
                db.execute(
                    "UPDATE deliveries SET attempts = MAX(attempts - 1, 0) "
                    "WHERE id = ?",
                    (delivery_id,),
                )
                self._log_event(
                    db,
                    delivery,
                    EventKind.RECOVERED,
                    now,
                    detail="sending stopped before this image, so it was queued again",
                )
                released += 1
        return released

    def _recover_if_no_sender(self) -> int:
        """Queue again the deliveries left ``sending``, unless a sender is alive."""
        if not self._take_sender_lock():
            return 0
        try:
            return self._recover_interrupted()
        finally:
            self._sender_lock.release()

    def _recover_interrupted(self) -> int:
        """Put back in the queue, due now, every delivery a crash left ``sending``."""
        now = self.clock()
        with self._transaction() as db:
            rows = db.execute(
                f"SELECT {_DELIVERY_COLUMNS} FROM deliveries WHERE state = ?",
                (DeliveryState.SENDING,),
            ).fetchall()
            for row in rows:
                delivery = _delivery_from_row(row)
                state = self._waiting_state(db, delivery.server_key)
                self._set_due(db, delivery.delivery_id, state, now)
                self._log_event(
                    db,
                    delivery,
                    EventKind.RECOVERED,
                    now,
                    detail="the send was interrupted, so the delivery was queued again",
                )

        if rows:
            logger.info(
                "Outbox %s: %d interrupted deliveries queued again",
                self.path,
                len(rows),
            )
        return len(rows)

    # Transactions and helpers

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """Run the block in one write transaction; SQLite errors become OutboxError."""
        with self._lock:
            db = self._connection
            try:
                db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as err:
                raise self._error(err) from err
            try:
                yield db
            except BaseException as err:
                db.execute("ROLLBACK")
                if isinstance(err, sqlite3.Error):
                    raise self._error(err) from err
                raise
            try:
                db.execute("COMMIT")
            except sqlite3.Error as err:
                db.execute("ROLLBACK")
                raise self._error(err) from err

    def _query(self, sql: str, parameters: Iterable[object] = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return self._connection.execute(sql, tuple(parameters)).fetchall()
            except sqlite3.Error as err:
                raise self._error(err) from err

    def _error(self, err: sqlite3.Error) -> OutboxError:
        return OutboxError(
            f"The outbox {self.path} cannot be read or written: {err}. Check the free "
            "disk space and that no other program locks the file."
        )

    @staticmethod
    def _is_paused(db: sqlite3.Connection, server_key: str) -> bool:
        row = db.execute(
            "SELECT 1 FROM paused_servers WHERE server_key = ? LIMIT 1", (server_key,)
        ).fetchone()
        return row is not None

    def _waiting_state(self, db: sqlite3.Connection, server_key: str) -> DeliveryState:
        """Return the state of a delivery that waits for its next attempt."""
        if self._is_paused(db, server_key):
            return DeliveryState.PAUSED
        return DeliveryState.QUEUED

    @staticmethod
    def _set_due(
        db: sqlite3.Connection, delivery_id: int, state: DeliveryState, due: float
    ) -> None:
        db.execute(
            "UPDATE deliveries SET state = ?, next_attempt_at = ?, updated_at = ? "
            "WHERE id = ?",
            (state, due, due, delivery_id),
        )

    @staticmethod
    def _log_event(
        db: sqlite3.Connection,
        delivery: Delivery,
        kind: EventKind,
        at: float,
        *,
        attempt: int | None = None,
        status_code: int | None = None,
        detail: str = "",
    ) -> None:
        db.execute(
            "INSERT INTO history (at, exam_id, image_id, server_key, kind, attempt, "
            "status_code, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                at,
                delivery.exam_id,
                delivery.image_id,
                delivery.server_key,
                kind,
                delivery.attempts if attempt is None else attempt,
                status_code,
                detail,
            ),
        )

    @staticmethod
    def _fetch(db: sqlite3.Connection, delivery_id: int) -> Delivery | None:
        row = db.execute(
            f"SELECT {_DELIVERY_COLUMNS} FROM deliveries WHERE id = ?", (delivery_id,)
        ).fetchone()
        return None if row is None else _delivery_from_row(row)

    @staticmethod
    def _fetch_item(
        db: sqlite3.Connection, item: DeliveryItem, server_key: str
    ) -> Delivery | None:
        row = db.execute(
            f"SELECT {_DELIVERY_COLUMNS} FROM deliveries "
            "WHERE exam_id = ? AND image_id = ? AND server_key = ?",
            (item.exam_id, item.image_id, server_key),
        ).fetchone()
        return None if row is None else _delivery_from_row(row)

    # Enqueueing

    def enqueue(
        self,
        items: Iterable[DeliveryItem],
        targets: Mapping[str, Route],
        *,
        resend: bool = False,
    ) -> int:
        """Queue every item for every target server, in one transaction.

        ``targets`` maps server keys to the route that sends them the items. An item
        that already has a delivery to a server keeps it unchanged, unless ``resend``
        is true and the delivery is sent, warning, failed or cancelled: then it is
        queued again, due now, with its attempts reset to 0.

        Returns:
            The number of deliveries created or queued again.

        Raises:
            ValueError: An item's SOP Instance UID differs from the one stored for
                the same exam and image.
        """
        items = list(items)
        now = self.clock()
        changed = 0
        with self._transaction() as db:
            for server_key, route in targets.items():
                for item in items:
                    changed += self._enqueue_one(
                        db,
                        item,
                        server_key=server_key,
                        route=Route(route),
                        resend=resend,
                        now=now,
                    )
        return changed

    def _enqueue_one(
        self,
        db: sqlite3.Connection,
        item: DeliveryItem,
        *,
        server_key: str,
        route: Route,
        resend: bool,
        now: float,
    ) -> int:
        existing = self._fetch_item(db, item, server_key)
        state = self._waiting_state(db, server_key)
        if existing is None:
            self._insert(
                db, item, server_key=server_key, route=route, state=state, now=now
            )
            return 1

        if existing.sop_instance_uid != item.sop_instance_uid:
            raise ValueError(
                f"image {item.image_id} of exam {item.exam_id} is queued for "
                f"{server_key} with SOP Instance UID {existing.sop_instance_uid}, "
                f"not {item.sop_instance_uid}"
            )
        if not resend or existing.state not in RESENDABLE_STATES:
            return 0

        db.execute(
            "UPDATE deliveries SET state = ?, attempts = 0, next_attempt_at = ?, "
            "last_error = NULL, error_class = NULL, status_code = NULL, "
            "updated_at = ? WHERE id = ?",
            (state, now, now, existing.delivery_id),
        )
        self._log_event(db, existing, EventKind.RESEND, now, attempt=0)
        return 1

    def _insert(
        self,
        db: sqlite3.Connection,
        item: DeliveryItem,
        *,
        server_key: str,
        route: Route,
        state: DeliveryState,
        now: float,
    ) -> None:
        cursor = db.execute(
            "INSERT INTO deliveries (exam_id, image_id, sop_instance_uid, server_key, "
            "route, state, attempts, next_attempt_at, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?)",
            (
                item.exam_id,
                item.image_id,
                item.sop_instance_uid,
                server_key,
                route,
                state,
                now,
                now,
                now,
            ),
        )
        delivery = self._fetch(db, cursor.lastrowid or 0)
        assert delivery is not None
        self._log_event(db, delivery, EventKind.QUEUED, now, detail=f"route {route}")

    def enqueue_exams_from(
        self,
        source: Route,
        targets: Mapping[str, Route],
        exam_ids: Iterable[str] | None = None,
    ) -> int:
        """Queue for the target servers the images that route ``source`` queued.

        With ``exam_ids``, copies those exams' images. Without, copies the images of
        every exam that still has an unfinished delivery on route ``source``. Images
        that already have a delivery to a target server are skipped, whatever its
        state, so a copy happens once.

        Returns:
            The number of deliveries created.
        """
        now = self.clock()
        created = 0
        with self._transaction() as db:
            for server_key, route in targets.items():
                state = self._waiting_state(db, server_key)
                for item in self._route_items(db, source, server_key, exam_ids):
                    self._insert(
                        db,
                        item,
                        server_key=server_key,
                        route=Route(route),
                        state=state,
                        now=now,
                    )
                    created += 1
        return created

    @staticmethod
    def _route_items(
        db: sqlite3.Connection,
        source: Route,
        missing_on: str,
        exam_ids: Iterable[str] | None,
    ) -> list[DeliveryItem]:
        """Return the items of route ``source`` that have no delivery to a server."""
        sql = (
            "SELECT DISTINCT exam_id, image_id, sop_instance_uid FROM deliveries AS d "
            "WHERE route = ? AND NOT EXISTS (SELECT 1 FROM deliveries AS t "
            "WHERE t.exam_id = d.exam_id AND t.image_id = d.image_id "
            "AND t.server_key = ?)"
        )
        if exam_ids is None:
            states = sorted(UNFINISHED_STATES)
            sql += (
                " AND exam_id IN (SELECT exam_id FROM deliveries WHERE route = ? "
                f"AND state IN ({_placeholders(len(states))}))"
            )
            selections: list[tuple[object, ...]] = [
                (source, missing_on, source, *states)
            ]
        else:
            sql += " AND exam_id = ?"
            selections = [(source, missing_on, exam_id) for exam_id in set(exam_ids)]

        items = []
        for parameters in selections:
            for row in db.execute(sql + " ORDER BY id", parameters):
                items.append(DeliveryItem(*row))
        return items

    # Sending

    def due_server_keys(self) -> list[str]:
        """Return the keys of servers with queued deliveries that are due now."""
        rows = self._query(
            "SELECT DISTINCT server_key FROM deliveries "
            "WHERE state = ? AND next_attempt_at <= ? ORDER BY server_key",
            (DeliveryState.QUEUED, self.clock()),
        )
        return [row[0] for row in rows]

    def next_due_at(self) -> float | None:
        """Return when the earliest queued delivery becomes due, None when none is
        queued."""
        rows = self._query(
            "SELECT MIN(next_attempt_at) FROM deliveries WHERE state = ?",
            (DeliveryState.QUEUED,),
        )
        value: float | None = rows[0][0]
        return value

    def claim_due(self, server_key: str, limit: int) -> list[Delivery]:
        """Mark up to ``limit`` due deliveries to a server ``sending`` and return them.

        The earliest due come first. Each claimed delivery's attempt count goes up
        by one.
        """
        if limit < 1:
            raise ValueError(f"limit must be 1 or more, not {limit}")
        self.become_sender()
        now = self.clock()
        with self._transaction() as db:
            ids = [
                row[0]
                for row in db.execute(
                    "SELECT id FROM deliveries WHERE server_key = ? AND state = ? "
                    "AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?",
                    (server_key, DeliveryState.QUEUED, now, limit),
                )
            ]
            claimed = []
            for delivery_id in ids:
                db.execute(
                    "UPDATE deliveries SET state = ?, attempts = attempts + 1, "
                    "next_attempt_at = NULL, updated_at = ? WHERE id = ?",
                    (DeliveryState.SENDING, now, delivery_id),
                )
                delivery = self._fetch(db, delivery_id)
                assert delivery is not None
                self._log_event(db, delivery, EventKind.SENDING, now)
                claimed.append(delivery)
        return claimed

    def postpone_due(self, server_key: str, until: float) -> int:
        """Move the queued deliveries to a server that are due before ``until`` to
        ``until``.

        The delivery engine calls this when a whole batch failed to reach the server,
        so that the deliveries not yet tried wait with the batch instead of each
        costing a connection timeout. Attempt counts do not change.

        Returns:
            The number of deliveries postponed.
        """
        now = self.clock()
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE deliveries SET next_attempt_at = ?, updated_at = ? "
                "WHERE server_key = ? AND state = ? AND next_attempt_at < ?",
                (until, now, server_key, DeliveryState.QUEUED, until),
            )
            return cursor.rowcount

    def record_outcomes(self, outcomes: Mapping[int, Outcome]) -> list[Delivery]:
        """Store the outcomes of claimed deliveries, keyed by delivery id.

        Sent and warning outcomes finish the delivery. A transient failure queues it
        again after the retry policy's delay, or pauses it when its server is paused.
        A permanent failure marks it failed. Outcomes for deliveries that are no
        longer ``sending``, such as those cancelled while being sent, are ignored
        and logged.

        Returns:
            The updated deliveries, in the order of ``outcomes``.
        """
        now = self.clock()
        updated = []
        with self._transaction() as db:
            for delivery_id, outcome in outcomes.items():
                delivery = self._fetch(db, delivery_id)
                if delivery is None or delivery.state is not DeliveryState.SENDING:
                    _log_ignored_outcome(delivery_id, delivery, outcome)
                    continue
                self._apply_outcome(db, delivery, outcome, now)
                result = self._fetch(db, delivery_id)
                assert result is not None
                updated.append(result)
        return updated

    def _apply_outcome(
        self, db: sqlite3.Connection, delivery: Delivery, outcome: Outcome, now: float
    ) -> None:
        if outcome.kind is OutcomeKind.FAILED:
            self._apply_failure(db, delivery, outcome, now)
            return

        state = DeliveryState(outcome.kind)
        message = outcome.message or None
        db.execute(
            "UPDATE deliveries SET state = ?, next_attempt_at = NULL, last_error = ?, "
            "error_class = NULL, status_code = ?, updated_at = ?, sent_at = ? "
            "WHERE id = ?",
            (state, message, outcome.code, now, now, delivery.delivery_id),
        )
        kind = EventKind.SENT if state is DeliveryState.SENT else EventKind.WARNING
        self._log_event(
            db, delivery, kind, now, status_code=outcome.code, detail=outcome.message
        )

    def _apply_failure(
        self, db: sqlite3.Connection, delivery: Delivery, outcome: Outcome, now: float
    ) -> None:
        if outcome.transient:
            state = self._waiting_state(db, delivery.server_key)
            delay = self.retry_policy.delay(max(delivery.attempts, 1), self._rng)
            due: float | None = now + delay
            error_class = ErrorClass.TRANSIENT
            kind = EventKind.RETRY_SCHEDULED
            detail = f"{outcome.message} (next attempt in {delay:.0f} s)"
        else:
            state = DeliveryState.FAILED
            due = None
            error_class = ErrorClass.PERMANENT
            kind = EventKind.FAILED
            detail = outcome.message

        db.execute(
            "UPDATE deliveries SET state = ?, next_attempt_at = ?, last_error = ?, "
            "error_class = ?, status_code = ?, updated_at = ? WHERE id = ?",
            (
                state,
                due,
                outcome.message,
                error_class,
                outcome.code,
                now,
                delivery.delivery_id,
            ),
        )
        self._log_event(
            db, delivery, kind, now, status_code=outcome.code, detail=detail
        )

    # Pausing

    def pause(self, server_key: str, reason: PauseReason = PauseReason.USER) -> int:
        """Pause a server for a reason: its queued deliveries wait until resumed.

        Deliveries being sent finish their attempt. A transient failure then pauses
        them too.

        Returns:
            The number of deliveries paused.
        """
        now = self.clock()
        with self._transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO paused_servers (server_key, reason, paused_at) "
                "VALUES (?, ?, ?)",
                (server_key, PauseReason(reason), now),
            )
            cursor = db.execute(
                "UPDATE deliveries SET state = ?, updated_at = ? "
                "WHERE server_key = ? AND state = ?",
                (DeliveryState.PAUSED, now, server_key, DeliveryState.QUEUED),
            )
            paused = cursor.rowcount

        if paused:
            logger.info("Paused %d deliveries to %s (%s)", paused, server_key, reason)
        return paused

    def resume(self, server_key: str, reason: PauseReason = PauseReason.USER) -> int:
        """Withdraw one pause reason of a server.

        When no reason is left, its paused deliveries are queued again, due now.

        Returns:
            The number of deliveries queued again.
        """
        now = self.clock()
        with self._transaction() as db:
            db.execute(
                "DELETE FROM paused_servers WHERE server_key = ? AND reason = ?",
                (server_key, PauseReason(reason)),
            )
            if self._is_paused(db, server_key):
                return 0
            cursor = db.execute(
                "UPDATE deliveries SET state = ?, next_attempt_at = ?, updated_at = ? "
                "WHERE server_key = ? AND state = ?",
                (DeliveryState.QUEUED, now, now, server_key, DeliveryState.PAUSED),
            )
            resumed = cursor.rowcount

        if resumed:
            logger.info("Resumed %d deliveries to %s", resumed, server_key)
        return resumed

    def paused_servers(self) -> dict[str, frozenset[PauseReason]]:
        """Return the paused servers' keys with the reasons they are paused for."""
        reasons: dict[str, set[PauseReason]] = {}
        for row in self._query("SELECT server_key, reason FROM paused_servers"):
            reasons.setdefault(row[0], set()).add(PauseReason(row[1]))
        return {key: frozenset(value) for key, value in reasons.items()}

    def server_keys(self) -> list[str]:
        """Return the keys of every server that has deliveries or a pause."""
        rows = self._query(
            "SELECT server_key FROM deliveries UNION SELECT server_key FROM "
            "paused_servers ORDER BY server_key"
        )
        return [row[0] for row in rows]

    # User actions

    def retry(self, delivery_ids: Iterable[int]) -> int:
        """Queue failed or cancelled deliveries again, due now, attempts reset to 0.

        Deliveries in other states are left as they are.

        Returns:
            The number of deliveries queued again.
        """
        now = self.clock()
        retried = 0
        with self._transaction() as db:
            for delivery_id in delivery_ids:
                delivery = self._fetch(db, delivery_id)
                if delivery is None or delivery.state not in (
                    DeliveryState.FAILED,
                    DeliveryState.CANCELLED,
                ):
                    continue
                self._queue_again(db, delivery, now)
                retried += 1
        return retried

    def _queue_again(
        self, db: sqlite3.Connection, delivery: Delivery, now: float
    ) -> None:
        """Queue a failed or cancelled delivery again, due now, attempts reset to 0."""
        db.execute(
            "UPDATE deliveries SET state = ?, attempts = 0, "
            "next_attempt_at = ?, last_error = NULL, error_class = NULL, "
            "status_code = NULL, updated_at = ? WHERE id = ?",
            (
                self._waiting_state(db, delivery.server_key),
                now,
                now,
                delivery.delivery_id,
            ),
        )
        self._log_event(db, delivery, EventKind.RETRY_REQUESTED, now, attempt=0)

    def retry_failed(self, server_key: str | None = None) -> int:
        """Queue again every failed delivery, or every failed one to one server."""
        failed = self.deliveries(server_key=server_key, states=[DeliveryState.FAILED])
        return self.retry(delivery.delivery_id for delivery in failed)

    def retry_now(
        self, *, server_key: str | None = None, exam_id: str | None = None
    ) -> int:
        """Make failed deliveries, and queued ones waiting out a backoff, due now.

        Failed deliveries are queued again with their attempts reset to 0, as
        :meth:`retry` does. Queued deliveries due later keep their attempt
        count, so a new failure continues their backoff. A paused server's
        deliveries stay paused, and its failed ones become paused. Without
        ``server_key`` or ``exam_id``, deliveries of every server or exam change.

        Returns:
            The number of deliveries changed.
        """
        now = self.clock()
        conditions = ["(state = ? OR (state = ? AND next_attempt_at > ?))"]
        parameters: list[object] = [DeliveryState.FAILED, DeliveryState.QUEUED, now]
        for column, value in (("server_key", server_key), ("exam_id", exam_id)):
            if value is not None:
                conditions.append(f"{column} = ?")
                parameters.append(value)

        changed = 0
        with self._transaction() as db:
            rows = db.execute(
                f"SELECT {_DELIVERY_COLUMNS} FROM deliveries "
                f"WHERE {' AND '.join(conditions)} ORDER BY id",
                parameters,
            ).fetchall()
            for row in rows:
                self._retry_one_now(db, _delivery_from_row(row), now)
                changed += 1

        if changed:
            logger.info(
                "Made %d deliveries due now on request (server %s, exam %s)",
                changed,
                server_key or "any",
                exam_id or "any",
            )
        return changed

    def _retry_one_now(
        self, db: sqlite3.Connection, delivery: Delivery, now: float
    ) -> None:
        if delivery.state is DeliveryState.FAILED:
            self._queue_again(db, delivery, now)
            return

        self._set_due(db, delivery.delivery_id, DeliveryState.QUEUED, now)
        self._log_event(
            db,
            delivery,
            EventKind.RETRY_REQUESTED,
            now,
            detail="made due now instead of at the end of its backoff",
        )

    def cancel(self, delivery_ids: Iterable[int]) -> int:
        """Cancel queued, paused, failed and sending deliveries.

        A delivery being sent is cancelled at once. Its sender may still finish
        the attempt, and the server may store the image, but the outcome is
        ignored (see :meth:`record_outcomes`), so the delivery stays cancelled
        and is not queued again. Finished deliveries are left as they are.

        Returns:
            The number of deliveries cancelled.
        """
        now = self.clock()
        cancelled = 0
        with self._transaction() as db:
            for delivery_id in delivery_ids:
                delivery = self._fetch(db, delivery_id)
                if delivery is None or delivery.state not in UNFINISHED_STATES:
                    continue
                db.execute(
                    "UPDATE deliveries SET state = ?, next_attempt_at = NULL, "
                    "updated_at = ? WHERE id = ?",
                    (DeliveryState.CANCELLED, now, delivery_id),
                )
                detail = ""
                if delivery.state is DeliveryState.SENDING:
                    detail = _CANCELLED_WHILE_SENDING
                self._log_event(db, delivery, EventKind.CANCELLED, now, detail=detail)
                cancelled += 1
        return cancelled

    # Reading

    def get(self, delivery_id: int) -> Delivery:
        """Return one delivery, or raise KeyError when no delivery has this id."""
        rows = self._query(
            f"SELECT {_DELIVERY_COLUMNS} FROM deliveries WHERE id = ?", (delivery_id,)
        )
        if not rows:
            raise KeyError(delivery_id)
        return _delivery_from_row(rows[0])

    def deliveries(
        self,
        *,
        server_key: str | None = None,
        exam_id: str | None = None,
        states: Collection[DeliveryState] | None = None,
        route: Route | None = None,
        updated_since: float | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Delivery]:
        """Return the deliveries that match every filter given, oldest first.

        ``updated_since`` keeps the deliveries whose ``updated_at`` is at or
        after that Unix time. A change is stamped before its transaction waits
        for the lock, so a reader that polls for changes should go back a few
        seconds before the newest ``updated_at`` it has seen.
        """
        conditions = []
        parameters: list[object] = []
        if updated_since is not None:
            conditions.append("updated_at >= ?")
            parameters.append(updated_since)
        for column, value in (
            ("server_key", server_key),
            ("exam_id", exam_id),
            ("route", route),
        ):
            if value is not None:
                conditions.append(f"{column} = ?")
                parameters.append(value)
        if states is not None:
            conditions.append(f"state IN ({_placeholders(len(states))})")
            parameters.extend(DeliveryState(state) for state in states)

        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        sql = f"SELECT {_DELIVERY_COLUMNS} FROM deliveries {where} ORDER BY id"
        sql += " LIMIT ? OFFSET ?"
        parameters.extend((-1 if limit is None else limit, offset))
        return [_delivery_from_row(row) for row in self._query(sql, parameters)]

    def counts(self) -> dict[str, dict[DeliveryState, int]]:
        """Return the number of deliveries in each state, per server key.

        Every state appears for every server that has deliveries, zero included.
        """
        counts: dict[str, dict[DeliveryState, int]] = {}
        rows = self._query(
            "SELECT server_key, state, COUNT(*) FROM deliveries "
            "GROUP BY server_key, state ORDER BY server_key"
        )
        for server_key, state, count in rows:
            per_state = counts.setdefault(server_key, dict.fromkeys(DeliveryState, 0))
            per_state[DeliveryState(state)] = count
        return counts

    def exam_counts(
        self, exam_ids: Collection[str]
    ) -> dict[str, dict[str, dict[DeliveryState, int]]]:
        """Return the number of deliveries in each state, per exam and server key.

        One query serves any number of exam ids, because the ids travel as one
        JSON array parameter. Exams without deliveries are left out. Every state
        appears for every server an exam has deliveries to, zero included.
        """
        counts: dict[str, dict[str, dict[DeliveryState, int]]] = {}
        if not exam_ids:
            return counts
        rows = self._query(
            "SELECT exam_id, server_key, state, COUNT(*) FROM deliveries "
            "WHERE exam_id IN (SELECT value FROM json_each(?)) "
            "GROUP BY exam_id, server_key, state",
            (json.dumps(list(exam_ids)),),
        )
        for exam_id, server_key, state, count in rows:
            per_server = counts.setdefault(exam_id, {})
            per_state = per_server.setdefault(
                server_key, dict.fromkeys(DeliveryState, 0)
            )
            per_state[DeliveryState(state)] = count
        return counts

    def history(self, exam_id: str) -> list[HistoryEvent]:
        """Return the delivery events of one exam, oldest first."""
        rows = self._query(
            "SELECT id, at, exam_id, image_id, server_key, kind, attempt, status_code, "
            "detail FROM history WHERE exam_id = ? ORDER BY id",
            (exam_id,),
        )
        return [
            HistoryEvent(
                event_id=row[0],
                at=row[1],
                exam_id=row[2],
                image_id=row[3],
                server_key=row[4],
                kind=EventKind(row[5]),
                attempt=row[6],
                status_code=row[7],
                detail=row[8],
            )
            for row in rows
        ]

    def purge_finished(self, before: float) -> int:
        """Delete finished deliveries last changed before a time, and old history.

        Sent, warning and cancelled deliveries last updated before ``before`` are
        deleted. So are history events before ``before`` of exams that have no
        delivery left. After a purge, enqueueing a purged image sends it again.

        Returns:
            The number of deliveries deleted.
        """
        states = sorted(FINISHED_STATES)
        with self._transaction() as db:
            cursor = db.execute(
                "DELETE FROM deliveries WHERE updated_at < ? "
                f"AND state IN ({_placeholders(len(states))})",
                (before, *states),
            )
            db.execute(
                "DELETE FROM history WHERE at < ? AND exam_id NOT IN "
                "(SELECT exam_id FROM deliveries)",
                (before,),
            )
            return cursor.rowcount
