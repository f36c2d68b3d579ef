"""The ``eyer-desktop`` command line.

Exit codes, for scripts:

- 0: the command did what it was asked.
- 1: the command ran but its work failed (a conversion, a delivery, a query).
- 2: the command line or a value on it is invalid.
- 3: a configuration file is damaged or cannot be written.

Errors are printed as one line on standard error, ``error: <message>``, never
as a traceback; ``--debug`` shows the traceback as well.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import traceback
from collections.abc import Sequence

from eyer_desktop import __version__
from eyer_desktop.cli.arguments import non_empty_path
from eyer_desktop.cli.commands import register_all
from eyer_desktop.core.errors import ConfigError, EyerError, ValidationError
from eyer_desktop.core.logs import configure_logging
from eyer_desktop.core.workspace import Workspace

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_CONFIG = 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="eyer-desktop",
        description=(
            "Eyer Desktop: convert Eyer retinal exams to DICOM Ophthalmic "
            "Photography and deliver them to the clinic's servers."
        ),
    )
    parser.add_argument("--version", action="version", version=__version__)
    parser.add_argument(
        "--profile",
        metavar="DIR",
        type=non_empty_path,
        help=(
            "keep configuration, exams, cache and logs under DIR instead of the "
            "user's folders (also EYER_DESKTOP_PROFILE)"
        ),
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log progress to standard error"
    )
    parser.add_argument(
        "--debug", action="store_true", help="show tracebacks and debug logging"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    register_all(subparsers)
    return parser


class _TerminatedError(BaseException):
    """SIGTERM arrived. It unwinds the stack as Ctrl-C does, so that the code
    that removes temporary files and releases the outbox runs."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise _TerminatedError


# Commands that run Qt's event loop keep the default SIGTERM action. In them
# an exception raised by the handler would surface inside a Qt slot, where
# PySide only prints it.
_QT_COMMANDS = frozenset({"gui", "demo"})


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    context = Workspace.open(args.profile)
    configure_logging(context.paths.log_dir, console_level=_console_level(args))
    _warn_about_damaged_files(context)
    handles_sigterm = (
        args.command not in _QT_COMMANDS
        and threading.current_thread() is threading.main_thread()
    )
    if handles_sigterm:
        previous_handler = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        result: int = args.handler(context, args)
    except ValidationError as error:
        return _report(error, EXIT_USAGE, args.debug)
    except ConfigError as error:
        return _report(error, EXIT_CONFIG, args.debug)
    except EyerError as error:
        return _report(error, EXIT_FAILED, args.debug)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except _TerminatedError:
        print("terminated", file=sys.stderr)
        return 128 + signal.SIGTERM
    except BrokenPipeError:
        # The reader of the output went away, as `head` does once it has its
        # lines. Output still buffered goes nowhere, so that Python's final
        # flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    finally:
        if handles_sigterm:
            signal.signal(signal.SIGTERM, previous_handler)
        context.close()
    return result


def _warn_about_damaged_files(context: Workspace) -> None:
    for copy, original in context.damaged_config_files():
        print(
            f"warning: {copy} is a damaged copy of {original.name}, and the "
            f"application runs without it. Repair it and move it back to "
            f"{original}, or delete it.",
            file=sys.stderr,
        )


def _report(error: Exception, code: int, debug: bool) -> int:
    if debug:
        traceback.print_exc()
    print(f"error: {error}", file=sys.stderr)
    return code


def _console_level(args: argparse.Namespace) -> int:
    if args.debug:
        return logging.DEBUG
    if args.verbose:
        return logging.INFO
    return logging.WARNING
