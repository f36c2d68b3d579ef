"""Parsing of command-line arguments shared by several commands."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from eyer_desktop.core.errors import ExamError, ValidationError
from eyer_desktop.core.library import MIN_PREFIX_LENGTH

if TYPE_CHECKING:
    from eyer_desktop.core.workspace import Workspace


def non_empty_path(text: str) -> Path:
    """Convert a path option, rejecting the empty text that would mean the cwd.

    Used as an argparse ``type``, so an empty value exits with code 2.
    """
    if not text.strip():
        raise argparse.ArgumentTypeError(
            "the path is empty: give a folder or file name"
        )
    return Path(text)


def selection_option(option: str, text: str | None, fix: str) -> str | None:
    """Return the value of an option that selects exams or servers.

    An empty or blank value, as an unset shell variable gives, is rejected:
    read as "no selection" it would act on every exam or server.

    Args:
        option: The option's name, e.g. ``--exam``.
        text: Its value, or None when the option was not given.
        fix: What to give instead, e.g. "Give a server key".

    Raises:
        ValidationError: The value is empty or blank.
    """
    if text is not None and not text.strip():
        raise ValidationError(
            option, text, "is empty or blank", f"{fix}, or leave out {option}"
        )
    return text


def resolve_exam_argument(context: Workspace, text: str) -> str:
    """Return the id of the exam that an EXAM argument names.

    Raises:
        ValidationError: The argument matches no exam, or more than one.
    """
    try:
        return context.library.resolve_id(text)
    except ExamError as err:
        raise ValidationError(
            "Exam",
            text,
            "does not name exactly one exam of the library",
            f"Give the exam id or a unique prefix of {MIN_PREFIX_LENGTH} or more "
            "characters, as 'exams list' shows them",
        ) from err


def resolve_outbox_exam_argument(context: Workspace, text: str) -> str:
    """Return the exam id an EXAM argument names, deleted exams of the outbox too.

    A deleted exam is found by its full id only, because its history stays in
    the outbox while its folder is gone.

    Raises:
        ValidationError: The argument matches no exam, or more than one.
    """
    try:
        return resolve_exam_argument(context, text)
    except ValidationError:
        exam_id = text.strip().lower()
        if context.outbox.deliveries(exam_id=exam_id, limit=1):
            return exam_id
        raise
