"""``eyer-desktop servers``: list, add, edit, remove servers and set their action."""

from __future__ import annotations

import argparse
import getpass
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from eyer_desktop.cli.output import print_json, print_table
from eyer_desktop.core import removal
from eyer_desktop.core.errors import SecretStoreError, ValidationError
from eyer_desktop.core.server_settings import (
    SETTINGS_CLASSES,
    DicomSettings,
    DicomWebSettings,
    PatientNameOrder,
    ServerKind,
    SopClassFallback,
    WebAuth,
    check_settings_files,
)
from eyer_desktop.core.servers import Server, ServerAction

if TYPE_CHECKING:
    from eyer_desktop.core.workspace import Workspace

# Command line option -> (path of the member in the settings JSON, converter).
# Options left out keep the server's current value on edit, or the default on add.
_SETTING_OPTIONS: dict[str, tuple[tuple[str, ...], Any]] = {
    "ae_title": (("calling_ae",), str),
    "aet": (("called_ae",), str),
    "host": (("host",), str),
    "port": (("port",), int),
    "modality": (("modality",), str),
    "name_order": (("patient_name_order",), str),
    "sop_fallback": (("sop_class_fallback",), str),
    "connect_timeout": (("timeouts", "connect"), float),
    "acse_timeout": (("timeouts", "acse"), float),
    "dimse_timeout": (("timeouts", "dimse"), float),
    "network_timeout": (("timeouts", "network"), float),
    "tls": (("tls", "enabled"), bool),
    "tls_ca_file": (("tls", "ca_file"), str),
    "tls_cert_file": (("tls", "cert_file"), str),
    "tls_key_file": (("tls", "key_file"), str),
    "tls_verify": (("tls", "verify"), bool),
    "url": (("base_url",), str),
    "auth": (("auth",), str),
    "username": (("username",), str),
    "https_verify": (("verify_tls",), bool),
    "ca_file": (("ca_file",), str),
    "timeout": (("timeout",), float),
}

# The last member of each option's settings path, for "has no 'host' member".
_MEMBER_OPTIONS = {
    path[-1]: "--" + option.replace("_", "-")
    for option, (path, _) in _SETTING_OPTIONS.items()
}
_MISSING_MEMBER = re.compile(r"has no '([a-z_]+)' member")

# Field names of the settings' validation errors and the options that set them.
_FIELD_OPTIONS = {
    "Name": "--name",
    "Action": "--action",
    "AE Title": "--ae-title",
    "AET": "--aet",
    "Host": "--host",
    "Port": "--port",
    "Modality": "--modality",
    "Connection timeout": "--connect-timeout",
    "ACSE timeout": "--acse-timeout",
    "DIMSE timeout": "--dimse-timeout",
    "Network timeout": "--network-timeout",
    "CA file": "--tls-ca-file",
    "Client certificate": "--tls-cert-file",
    "Client key": "--tls-key-file",
    "Base URL": "--url",
    "Authentication": "--auth",
    "Username": "--username",
    "Timeout": "--timeout",
}

_DICOM_ONLY = {
    "ae_title", "aet", "host", "port", "name_order", "connect_timeout",
    "acse_timeout", "dimse_timeout", "network_timeout", "tls", "tls_ca_file",
    "tls_cert_file", "tls_key_file", "tls_verify",
}  # fmt: skip
_KIND_ONLY = {
    "modality": {ServerKind.DICOM_WORKLIST},
    "sop_fallback": {ServerKind.DICOM_STORAGE},
    "url": {ServerKind.DICOMWEB},
    "auth": {ServerKind.DICOMWEB},
    "username": {ServerKind.DICOMWEB},
    "https_verify": {ServerKind.DICOMWEB},
    "ca_file": {ServerKind.DICOMWEB},
    "timeout": {ServerKind.DICOMWEB},
}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("servers", help="show and change the server list")
    commands = parser.add_subparsers(dest="servers_command", metavar="ACTION")
    commands.required = True

    list_parser = commands.add_parser("list", help="list the servers, primary first")
    list_parser.add_argument("--json", action="store_true", help="print JSON")
    list_parser.set_defaults(handler=list_servers)

    show = commands.add_parser("show", help="show every setting of one server")
    show.add_argument("key")
    show.set_defaults(handler=show_server)

    add = commands.add_parser("add", help="add a server; its key is generated")
    add.add_argument("--name", required=True, help="free text, need not be unique")
    add.add_argument(
        "--kind",
        required=True,
        choices=[kind.value for kind in ServerKind],
        help="what the server is",
    )
    add.add_argument(
        "--action",
        default=ServerAction.MIRROR.value,
        choices=[a.value for a in ServerAction if a is not ServerAction.PRIMARY],
        help="what the server receives (default: mirror)",
    )
    _add_setting_options(add)
    add.set_defaults(handler=add_server)

    edit = commands.add_parser("edit", help="change a server's name or settings")
    edit.add_argument("key")
    edit.add_argument("--name", help="new name; the key stays the same")
    _add_setting_options(edit)
    edit.set_defaults(handler=edit_server)

    remove = commands.add_parser("remove", help="remove a server and its secret")
    remove.add_argument("key")
    remove.add_argument(
        "--force",
        action="store_true",
        help="remove even if deliveries are unfinished, and cancel them",
    )
    remove.set_defaults(handler=remove_server)

    set_action = commands.add_parser("set-action", help="change what a server receives")
    set_action.add_argument("key")
    set_action.add_argument("action", choices=[action.value for action in ServerAction])
    set_action.set_defaults(handler=set_server_action)


def _add_setting_options(parser: argparse.ArgumentParser) -> None:
    dicom = parser.add_argument_group("DICOM storage and worklist servers")
    dicom.add_argument("--ae-title", help="this application's AE title (calling AE)")
    dicom.add_argument("--aet", help="the server's AE title (called AE)")
    dicom.add_argument("--host", help="IP address or host name")
    dicom.add_argument("--port", help="TCP port, 1-65535")
    dicom.add_argument("--modality", help="worklist servers: modality filter, e.g. OP")
    dicom.add_argument(
        "--name-order",
        choices=[order.value for order in PatientNameOrder],
        help="order of the patient's name parts the server expects",
    )
    dicom.add_argument(
        "--sop-fallback",
        choices=[fallback.value for fallback in SopClassFallback],
        help="storage servers: SOP class to send as when OP is rejected",
    )
    for name in ("connect", "acse", "dimse", "network"):
        dicom.add_argument(f"--{name}-timeout", metavar="SECONDS")
    dicom.add_argument(
        "--tls", action=argparse.BooleanOptionalAction, help="use DICOM TLS"
    )
    dicom.add_argument("--tls-ca-file", metavar="PEM")
    dicom.add_argument("--tls-cert-file", metavar="PEM")
    dicom.add_argument("--tls-key-file", metavar="PEM")
    dicom.add_argument(
        "--tls-verify",
        action=argparse.BooleanOptionalAction,
        help="check the server's certificate (default: on)",
    )

    web = parser.add_argument_group("DICOMweb servers")
    web.add_argument(
        "--url", help="service root, e.g. https://pacs.example.com/dicom-web"
    )
    web.add_argument("--auth", choices=[auth.value for auth in WebAuth])
    web.add_argument("--username", help="user name of basic authentication")
    web.add_argument(
        "--https-verify",
        action=argparse.BooleanOptionalAction,
        help="check the server's HTTPS certificate (default: on)",
    )
    web.add_argument(
        "--ca-file", metavar="PEM", help="certificate authorities to trust"
    )
    web.add_argument("--timeout", metavar="SECONDS")
    web.add_argument(
        "--secret-stdin",
        action="store_true",
        help="read the password or token from standard input into the keyring",
    )
    web.add_argument(
        "--ask-secret",
        action="store_true",
        help="prompt for the password or token and keep it in the keyring",
    )


def list_servers(context: Workspace, args: argparse.Namespace) -> int:
    servers = list(context.servers)
    if args.json:
        print_json([server.to_json() for server in servers])
        return 0
    rows = [
        (
            server.key,
            server.action.value,
            server.kind.value,
            server.name,
            _address(server),
        )
        for server in servers
    ]
    print_table(("KEY", "ACTION", "KIND", "NAME", "ADDRESS"), rows)
    return 0


def show_server(context: Workspace, args: argparse.Namespace) -> int:
    print_json(context.servers.get(args.key).to_json())
    return 0


def add_server(context: Workspace, args: argparse.Namespace) -> int:
    kind = ServerKind(args.kind)
    members: dict[str, Any] = {}
    if issubclass(SETTINGS_CLASSES[kind], DicomSettings):
        members["calling_ae"] = context.settings.default_ae_title
    with _errors_named_by_option(kind):
        _overlay(members, kind, args)
        settings = SETTINGS_CLASSES[kind].from_json(members)
        check_settings_files(settings)
        server = context.servers.add(args.name, args.action, settings)

    _store_secret(server, args)
    context.save_servers()
    print(server.key)
    return 0


def edit_server(context: Workspace, args: argparse.Namespace) -> int:
    servers = context.servers
    server = servers.get(args.key)
    members = server.settings.to_json()
    with _errors_named_by_option(server.kind):
        _overlay(members, server.kind, args)
        settings = SETTINGS_CLASSES[server.kind].from_json(members)
        check_settings_files(settings)
        server = servers.edit(server.key, name=args.name, settings=settings)
    _store_secret(server, args)
    context.save_servers()
    print(f"{server.key}: saved")
    return 0


def remove_server(context: Workspace, args: argparse.Namespace) -> int:
    try:
        server, cancelled = removal.remove_server(
            context.servers, context.outbox, args.key, force=args.force
        )
    except removal.UnfinishedDeliveriesError as error:
        raise ValidationError(
            error.field,
            error.value,
            error.problem,
            f"Let them go out ('outbox run'), cancel them ('outbox list --server "
            f"{error.value}', then 'outbox cancel ID...'), or add --force, "
            "which cancels them",
        ) from error
    context.save_servers()
    note = f", {cancelled} deliveries cancelled" if cancelled else ""
    print(f"{server.key}: removed{note}")
    if isinstance(server.settings, DicomWebSettings):
        _delete_secret(server)
    return 0


def _delete_secret(server: Server) -> None:
    """Delete a removed DICOMweb server's secret; a failure only warns, since
    the server is already gone.
    """
    from eyer_desktop.core.secrets import SecretStore  # Loads keyring.

    try:
        SecretStore().delete(server.key)
    except SecretStoreError as error:
        settings = server.settings
        if isinstance(settings, DicomWebSettings) and settings.auth is WebAuth.NONE:
            # Without authentication there is no secret to delete.
            return
        print(
            f"warning: {server.key} was removed, but its password or token "
            f"could not be deleted from the keyring: {error}",
            file=sys.stderr,
        )


def set_server_action(context: Workspace, args: argparse.Namespace) -> int:
    server = context.servers.set_action(args.key, args.action)
    context.save_servers()
    print(f"{server.key}: {server.action.value}")
    return 0


@contextmanager
def _errors_named_by_option(kind: ServerKind) -> Iterator[None]:
    """Re-raise settings errors with the option the user typed as the field."""
    try:
        yield
    except ValidationError as error:
        renamed = _option_error(error, kind)
        if renamed is None:
            raise
        raise renamed from error


def _option_error(error: ValidationError, kind: ServerKind) -> ValidationError | None:
    missing = _MISSING_MEMBER.fullmatch(error.problem)
    if missing is not None:
        flag = _MEMBER_OPTIONS.get(missing.group(1))
        problem = f"is required for {kind.value} servers"
        if flag is None:
            return None
        return ValidationError(flag, None, problem, f"Add {flag}")
    if kind is ServerKind.DICOMWEB and error.field == "CA file":
        flag = "--ca-file"
    else:
        flag = _FIELD_OPTIONS.get(error.field, "")
    if not flag:
        return None
    problem = error.problem
    if problem.startswith("is missing for "):
        problem = f"is required for {kind.value} servers"
    return ValidationError(flag, error.value, problem, error.fix)


def _overlay(
    members: dict[str, Any], kind: ServerKind, args: argparse.Namespace
) -> None:
    """Write the options given on the command line into settings JSON members."""
    for option, (path, convert) in _SETTING_OPTIONS.items():
        value = getattr(args, option, None)
        if value is None:
            continue
        allowed = _KIND_ONLY.get(option)
        is_dicom = kind is not ServerKind.DICOMWEB
        if (allowed is not None and kind not in allowed) or (
            option in _DICOM_ONLY and not is_dicom
        ):
            flag = "--" + option.replace("_", "-")
            raise ValidationError(
                flag, None, f"does not apply to {kind.value} servers", "Leave it out"
            )
        target = members
        for part in path[:-1]:
            target = target.setdefault(part, {})
        target[path[-1]] = _convert(option, value, convert)


def _convert(option: str, value: Any, convert: Any) -> Any:
    if convert is bool or isinstance(value, bool):
        return value
    try:
        return convert(value)
    except ValueError as err:
        flag = "--" + option.replace("_", "-")
        raise ValidationError(flag, value, "is not a number", "Give a number") from err


def _store_secret(server: Server, args: argparse.Namespace) -> None:
    if not (args.secret_stdin or args.ask_secret):
        return
    if not isinstance(server.settings, DicomWebSettings):
        raise ValidationError(
            "--secret-stdin", None, "applies only to DICOMweb servers", "Leave it out"
        )
    if args.secret_stdin:
        secret = sys.stdin.readline().rstrip("\r\n")
    else:
        secret = getpass.getpass(f"Password or token for {server.key}: ")
    if not secret:
        raise ValidationError(
            "Secret", None, "is empty", "Type the password or token, or leave it out"
        )
    from eyer_desktop.core.secrets import SecretStore  # Loads keyring.

    SecretStore().set(server.key, secret)


def _address(server: Server) -> str:
    settings = server.settings
    if isinstance(settings, DicomWebSettings):
        return settings.base_url or "(not configured)"
    return f"{settings.called_ae}@{settings.host}:{settings.port}"
