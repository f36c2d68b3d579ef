"""Commands that talk to servers: echo, test-server, send, worklist, outbox.

The networking modules (pynetdicom, the senders) are imported by the
commands that use them, not when the command line starts: every other
command then starts about a tenth of a second sooner.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from eyer_desktop.cli.arguments import (
    resolve_exam_argument,
    resolve_outbox_exam_argument,
    selection_option,
)
from eyer_desktop.cli.output import print_json, print_table
from eyer_desktop.core import removal, routing
from eyer_desktop.core.errors import ValidationError
from eyer_desktop.core.exams import Exam
from eyer_desktop.core.outbox import UNFINISHED_STATES, Delivery, DeliveryState
from eyer_desktop.core.server_settings import DicomWorklistSettings

if TYPE_CHECKING:
    from eyer_desktop.core.net.worklist import WorklistItem
    from eyer_desktop.core.workspace import Workspace

_DELIVERED = {DeliveryState.SENT, DeliveryState.WARNING}
# The only states that Outbox.retry and Outbox.cancel change.
_RETRYABLE = frozenset({DeliveryState.FAILED, DeliveryState.CANCELLED})
_CANCELLABLE = UNFINISHED_STATES

_EXAM_FIX = "Give an exam id or prefix"
_SERVER_FIX = "Give a server key"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    echo_parser = subparsers.add_parser("echo", help="send a C-ECHO to a DICOM server")
    echo_parser.add_argument("key", help="server key")
    echo_parser.set_defaults(handler=echo_server)

    test = subparsers.add_parser(
        "test-server", help="run a server's connection test, step by step"
    )
    test.add_argument("key", help="server key")
    test.set_defaults(handler=test_server_command)

    send = subparsers.add_parser(
        "send",
        help="deliver exams now, by the routing rules or to one server",
        description=(
            "Queue exams and deliver them. Without --to, the primary and mirror "
            "servers get them (and the contingency servers when the primary "
            "cannot). With --to, only that server gets them, sent images "
            "included. The exams' deliveries to those servers that wait to "
            "retry, or failed, are tried again now. Deliveries that fail for a "
            "passing reason stay queued and are retried by 'outbox run'."
        ),
    )
    send.add_argument("exams", nargs="+", metavar="EXAM", help="exam id or prefix")
    send.add_argument("--to", metavar="KEY", help="send to this server only")
    send.set_defaults(handler=send_exams)

    worklist = subparsers.add_parser("worklist", help="query a worklist server")
    worklist.add_argument("key", help="worklist server key")
    worklist.add_argument(
        "--date",
        default="today",
        help="YYYY-MM-DD, a range YYYY-MM-DD..YYYY-MM-DD, 'today' or 'any'",
    )
    worklist.add_argument(
        "--name",
        default="",
        help=(
            "part of the patient's name, family or given name first; case and "
            "accents ignored; * and ? allowed"
        ),
    )
    worklist.add_argument(
        "--station",
        action="store_true",
        help="only steps scheduled for this application's AE title",
    )
    worklist.add_argument("--json", action="store_true", help="print JSON")
    worklist.set_defaults(handler=query_worklist_command)

    _register_outbox(subparsers)


def _register_outbox(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    outbox = subparsers.add_parser("outbox", help="show and act on queued deliveries")
    commands = outbox.add_subparsers(dest="outbox_command", metavar="ACTION")
    commands.required = True

    list_parser = commands.add_parser("list", help="list deliveries, oldest first")
    list_parser.add_argument("--server", metavar="KEY")
    list_parser.add_argument("--exam", metavar="EXAM", help="exam id or prefix")
    list_parser.add_argument(
        "--state", action="append", choices=[state.value for state in DeliveryState]
    )
    list_parser.add_argument("--json", action="store_true", help="print JSON")
    list_parser.set_defaults(handler=list_outbox)

    retry = commands.add_parser("retry", help="queue failed deliveries again")
    retry.add_argument("ids", nargs="*", type=int, metavar="ID")
    retry.add_argument("--all-failed", action="store_true", help="every failed one")
    retry.add_argument("--server", metavar="KEY", help="with --all-failed: one server")
    retry.set_defaults(handler=retry_outbox)

    retry_now = commands.add_parser(
        "retry-now",
        help="make failed deliveries, and those waiting to retry, due now",
        description=(
            "Queue failed deliveries again and make those waiting out a retry "
            "delay due now, as Retry Now on the Activity page does. 'outbox "
            "run' then sends them, or the desktop application when it is open. "
            "Deliveries to a paused server stay paused."
        ),
    )
    retry_now.add_argument("--server", metavar="KEY", help="only to this server")
    retry_now.add_argument(
        "--exam", metavar="EXAM", help="only of this exam (id or prefix)"
    )
    retry_now.set_defaults(handler=retry_outbox_now)

    cancel = commands.add_parser(
        "cancel", help="cancel unfinished deliveries, those being sent included"
    )
    cancel.add_argument("ids", nargs="+", type=int, metavar="ID")
    cancel.set_defaults(handler=cancel_outbox)

    for name, handler, text in (
        ("pause", pause_server, "hold a server's deliveries"),
        ("resume", resume_server, "release a server's held deliveries"),
    ):
        parser = commands.add_parser(name, help=text)
        parser.add_argument("key", help="server key")
        parser.set_defaults(handler=handler)

    run = commands.add_parser("run", help="deliver what is due")
    run.add_argument(
        "--wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="keep retrying for up to SECONDS while deliveries are queued",
    )
    run.set_defaults(handler=run_outbox)

    history = commands.add_parser("history", help="what went where for one exam")
    history.add_argument("exam", help="exam id or prefix")
    history.set_defaults(handler=show_history)


def echo_server(context: Workspace, args: argparse.Namespace) -> int:
    from eyer_desktop.core.net.association import echo
    from eyer_desktop.core.sending import dicom_endpoint

    server = context.servers.get(args.key)
    endpoint = dicom_endpoint(server)
    round_trip = echo(endpoint)
    print(f"{server.key}: C-ECHO to {endpoint} answered in {round_trip * 1000:.0f} ms")
    return 0


def test_server_command(context: Workspace, args: argparse.Namespace) -> int:
    from eyer_desktop.core.server_test import test_server

    report = test_server(context.servers.get(args.key))
    for step in report.steps:
        mark = "ok  " if step.ok else "FAIL"
        print(f"{mark}  {step.name}: {step.detail}")
    return 0 if report.ok else 1


def send_exams(context: Workspace, args: argparse.Namespace) -> int:
    from eyer_desktop.core.sending import create_engine

    to = selection_option("--to", args.to, _SERVER_FIX)
    to_key = None if to is None else context.servers.get(to).key
    exams = [
        context.library.load(resolve_exam_argument(context, text))
        for text in args.exams
    ]
    servers = list(context.servers)
    outbox = context.outbox
    for exam in exams:
        if to_key is not None:
            routing.send_now(outbox, servers, exam, to_key)
        else:
            routing.enqueue_exam(outbox, servers, exam)

    # An explicit send is a request to try now, so the exams' deliveries that
    # wait out a retry delay, or failed, go out in this run too.
    keys = [to_key] if to_key is not None else _routed_server_keys(servers)
    due_now = sum(
        outbox.retry_now(server_key=key, exam_id=exam.exam_id)
        for exam in exams
        for key in keys
    )
    if due_now:
        print(f"{due_now} deliveries that waited to retry or had failed are due now")

    summary = create_engine(context).run_once()
    print(
        f"{summary.sent} sent, {summary.warnings} with warnings, "
        f"{summary.retries} to retry, {summary.failed} failed"
    )
    return _report_exams(context, exams)


def _routed_server_keys(servers: Sequence[routing.ServerView]) -> list[str]:
    """Return the servers that the routing rules send exams to.

    Those are the primary, the mirrors and the contingency servers that can
    receive, whether or not the primary can take exams now.
    """
    targets = routing.route_new_exam(servers) | routing.contingency_targets(servers)
    return sorted(targets)


def _report_exams(context: Workspace, exams: Sequence[Exam]) -> int:
    """Print each exam's state per server; return 0 only if all was delivered."""
    all_delivered = True
    rows = []
    for exam in exams:
        deliveries = context.outbox.deliveries(exam_id=exam.exam_id)
        for key in sorted({d.server_key for d in deliveries}):
            mine = [d for d in deliveries if d.server_key == key]
            delivered = sum(d.state in _DELIVERED for d in mine)
            all_delivered &= delivered == len(mine)
            rows.append(
                (exam.exam_id[:8], key, f"{delivered}/{len(mine)}", _state_note(mine))
            )
    if rows:
        print_table(("EXAM", "SERVER", "DELIVERED", "NOTE"), rows)
    else:
        print("No server receives these exams: check the server actions.")
        all_delivered = False
    return 0 if all_delivered else 1


def _state_note(deliveries: Sequence[Delivery]) -> str:
    cancelled = sum(d.state is DeliveryState.CANCELLED for d in deliveries)
    note = _unfinished_note(deliveries)
    if not cancelled:
        return note
    return f"{cancelled} cancelled; {note}" if note else f"{cancelled} cancelled"


def _unfinished_note(deliveries: Sequence[Delivery]) -> str:
    for delivery in deliveries:
        if delivery.state is DeliveryState.FAILED:
            return f"failed: {delivery.last_error}"
    for delivery in deliveries:
        if delivery.state is DeliveryState.PAUSED:
            return "paused (server deactivated or paused)"
    retry_times = [
        d.next_attempt_at
        for d in deliveries
        if d.state is DeliveryState.QUEUED and d.next_attempt_at
    ]
    if retry_times:
        errors = [d.last_error for d in deliveries if d.last_error]
        when = dt.datetime.fromtimestamp(min(retry_times)).strftime("%H:%M:%S")
        reason = f"{errors[0].rstrip('.')}; " if errors else ""
        return f"{reason}retry at {when}"
    warnings = [d.last_error for d in deliveries if d.state is DeliveryState.WARNING]
    return f"warning: {warnings[0]}" if warnings else ""


def query_worklist_command(context: Workspace, args: argparse.Namespace) -> int:
    from eyer_desktop.core.net.worklist import WorklistQuery, query_worklist
    from eyer_desktop.core.sending import dicom_endpoint

    server = context.servers.get(args.key)
    if not isinstance(server.settings, DicomWorklistSettings):
        raise ValidationError(
            "Server", server.key, "is not a worklist server", "Give a worklist key"
        )
    query = WorklistQuery(
        station_ae_title=server.settings.calling_ae if args.station else "",
        modality=server.settings.modality,
        dates=_parse_dates(args.date),
        patient_name=args.name,
    )
    items = query_worklist(dicom_endpoint(server), query)
    if args.json:
        print_json([_worklist_json(item) for item in items])
        return 0
    rows = [
        (
            item.scheduled_date.isoformat() if item.scheduled_date else "",
            item.patient_dicom_name,
            item.patient_id,
            item.accession_number,
            item.requested_procedure_description,
        )
        for item in items
    ]
    print_table(("DATE", "PATIENT", "PATIENT ID", "ACCESSION", "PROCEDURE"), rows)
    return 0


def _worklist_json(item: WorklistItem) -> dict[str, object]:
    """Return every value of a worklist item, with dates and times in ISO 8601."""
    return {
        "patient_name": item.patient_dicom_name,
        "patient_id": item.patient_id,
        "issuer_of_patient_id": item.issuer_of_patient_id,
        "birth_date": _iso(item.birth_date),
        "sex": item.sex.value if item.sex else None,
        "accession_number": item.accession_number,
        "study_instance_uid": item.study_instance_uid,
        "referring_physician_name": item.referring_physician_name,
        "requested_procedure_id": item.requested_procedure_id,
        "requested_procedure_description": item.requested_procedure_description,
        "scheduled_procedure_step_id": item.scheduled_procedure_step_id,
        "scheduled_procedure_step_description": (
            item.scheduled_procedure_step_description
        ),
        "scheduled_date": _iso(item.scheduled_date),
        "scheduled_time": _iso(item.scheduled_time),
        "modality": item.modality,
        "station_ae_title": item.station_ae_title,
    }


def _iso(value: dt.date | dt.time | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse_dates(text: str) -> tuple[dt.date, dt.date] | None:
    if text == "any":
        return None
    if text == "today":
        today = dt.date.today()
        return today, today
    first, _, last = text.partition("..")
    try:
        start = dt.date.fromisoformat(first)
        end = dt.date.fromisoformat(last) if last else start
    except ValueError as err:
        raise ValidationError(
            "--date",
            text,
            "is not a date or date range",
            "Use YYYY-MM-DD, YYYY-MM-DD..YYYY-MM-DD, today or any",
        ) from err
    return start, end


def list_outbox(context: Workspace, args: argparse.Namespace) -> int:
    exam_id = _outbox_exam_option(context, args.exam)
    server_key = _outbox_server_option(context, args.server)
    deliveries = context.outbox.deliveries(
        server_key=server_key, exam_id=exam_id, states=args.state
    )
    if args.json:
        print_json([_delivery_json(d) for d in deliveries])
        return 0
    rows = [
        (
            d.delivery_id,
            d.exam_id[:8],
            d.image_id[:8],
            d.server_key,
            d.state.value,
            d.attempts,
            d.last_error or "",
        )
        for d in deliveries
    ]
    print_table(("ID", "EXAM", "IMAGE", "SERVER", "STATE", "TRIES", "LAST ERROR"), rows)
    return 0


def _outbox_exam_option(context: Workspace, text: str | None) -> str | None:
    """Return the exam id that ``--exam`` names, or None when it is absent.

    Raises:
        ValidationError: The value is blank or names no exam, or more than one.
    """
    text = selection_option("--exam", text, _EXAM_FIX)
    return None if text is None else resolve_outbox_exam_argument(context, text)


def _outbox_server_option(context: Workspace, text: str | None) -> str | None:
    """Return the server key that ``--server`` names, or None when it is absent.

    The key may be that of a removed server whose deliveries the outbox still
    has.

    Raises:
        ValidationError: The value is blank or names no server.
    """
    text = selection_option("--server", text, _SERVER_FIX)
    if text is None:
        return None
    if text not in context.servers and text in context.outbox.server_keys():
        return text
    return context.servers.get(text).key


def _delivery_json(delivery: Delivery) -> dict[str, object]:
    return {
        "id": delivery.delivery_id,
        "exam_id": delivery.exam_id,
        "image_id": delivery.image_id,
        "sop_instance_uid": delivery.sop_instance_uid,
        "server": delivery.server_key,
        "route": delivery.route.value,
        "state": delivery.state.value,
        "attempts": delivery.attempts,
        "next_attempt_at": delivery.next_attempt_at,
        "last_error": delivery.last_error,
        "status_code": delivery.status_code,
    }


def retry_outbox(context: Workspace, args: argparse.Namespace) -> int:
    server = selection_option("--server", args.server, _SERVER_FIX)
    if args.all_failed:
        key = None if server is None else context.servers.get(server).key
        count = context.outbox.retry_failed(key)
    elif args.ids:
        if not _check_ids(context, args.ids, _RETRYABLE, "queued again"):
            return 2
        count = context.outbox.retry(args.ids)
    else:
        raise ValidationError(
            "outbox retry", None, "needs delivery ids", "Give ids or --all-failed"
        )
    print(f"{count} deliveries queued again")
    return 0


def retry_outbox_now(context: Workspace, args: argparse.Namespace) -> int:
    exam_id = _outbox_exam_option(context, args.exam)
    server_key = _outbox_server_option(context, args.server)
    count = context.outbox.retry_now(server_key=server_key, exam_id=exam_id)
    print(f"{count} deliveries due now")
    return 0


def cancel_outbox(context: Workspace, args: argparse.Namespace) -> int:
    if not _check_ids(context, args.ids, _CANCELLABLE, "cancelled"):
        return 2
    requested = set(args.ids)
    sending = sum(
        delivery.delivery_id in requested
        for delivery in context.outbox.deliveries(states=[DeliveryState.SENDING])
    )
    count = context.outbox.cancel(args.ids)
    print(f"{count} deliveries cancelled")
    if sending:
        print(
            f"{sending} of them were being sent; the server may still store "
            "those images, which stay cancelled here"
        )
    return 0


def _check_ids(
    context: Workspace,
    delivery_ids: Sequence[int],
    allowed: frozenset[DeliveryState],
    action: str,
) -> bool:
    """Print an error for each id that is unknown or in the wrong state.

    Returns:
        True when every id can take the action, so nothing is changed otherwise.
    """
    ok = True
    for delivery_id in delivery_ids:
        try:
            state = context.outbox.get(delivery_id).state
        except KeyError:
            problem = "not found. List the deliveries with 'outbox list'"
        else:
            if state in allowed:
                continue
            problem = f"is {state.value} and cannot be {action}"
        print(f"error: delivery {delivery_id}: {problem}", file=sys.stderr)
        ok = False
    return ok


def pause_server(context: Workspace, args: argparse.Namespace) -> int:
    key = context.servers.get(args.key).key
    count = context.outbox.pause(key)
    print(f"{key}: paused, {count} deliveries held")
    return 0


def resume_server(context: Workspace, args: argparse.Namespace) -> int:
    key = context.servers.get(args.key).key
    count = context.outbox.resume(key)
    print(f"{key}: resumed, {count} deliveries released")
    return 0


def run_outbox(context: Workspace, args: argparse.Namespace) -> int:
    from eyer_desktop.core.sending import create_engine

    if args.wait < 0:
        raise ValidationError("--wait", args.wait, "is negative", "Give 0 or more")
    engine = create_engine(context)
    summary = engine.run_until_idle(deadline=time.time() + args.wait)
    print(
        f"{summary.sent} sent, {summary.warnings} with warnings, "
        f"{summary.retries} to retry, {summary.failed} failed"
    )
    queued = context.outbox.deliveries(states=[DeliveryState.QUEUED])
    if queued:
        print(f"{len(queued)} deliveries still queued", file=sys.stderr)
    orphaned = removal.orphaned_deliveries(context.outbox, context.servers)
    for key in sorted({delivery.server_key for delivery in orphaned}):
        count = sum(delivery.server_key == key for delivery in orphaned)
        print(
            f"warning: {count} deliveries wait for server {key}, which is no "
            f"longer in the server list. Cancel them: 'outbox list --server {key}', "
            "then 'outbox cancel ID...'.",
            file=sys.stderr,
        )
    return 0 if summary.failed == 0 and not queued and not orphaned else 1


def show_history(context: Workspace, args: argparse.Namespace) -> int:
    exam_id = resolve_outbox_exam_argument(context, args.exam)
    rows = [
        (
            dt.datetime.fromtimestamp(event.at).strftime("%Y-%m-%d %H:%M:%S"),
            event.server_key,
            event.image_id[:8],
            event.kind.value,
            event.status_code if event.status_code is not None else "",
            event.detail,
        )
        for event in context.outbox.history(exam_id)
    ]
    print_table(("TIME", "SERVER", "IMAGE", "EVENT", "CODE", "DETAIL"), rows)
    return 0
