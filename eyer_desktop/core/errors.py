"""Exceptions raised by the core.

Every message is meant for a clinic technician or their IT person: it names the
value at fault and what to do about it. The command line and the GUI show
``str(error)`` as it is.
"""

from __future__ import annotations


class EyerError(Exception):
    """Base class of every error the core raises on purpose."""


class ValidationError(EyerError, ValueError):
    """A value given by the user or read from a file is invalid.

    Attributes:
        field: Name of the field at fault, as the user sees it (``"AE Title"``).
        value: The rejected value, or None when the value must not be shown
            (secrets, patient data going to a log).
        fix: What the user should do instead.
    """

    def __init__(self, field: str, value: object, problem: str, fix: str) -> None:
        self.field = field
        self.value = value
        self.problem = problem
        self.fix = fix
        shown = "" if value is None else f" {_shorten(value)!r}"
        super().__init__(f"{field}{shown}: {problem}. {fix}")


# Longer text values are cut in messages, so one line stays readable. The
# limit keeps typical file paths whole.
SHOWN_TEXT_MAX = 100


def _shorten(value: object) -> object:
    if isinstance(value, str) and len(value) > SHOWN_TEXT_MAX:
        return value[:SHOWN_TEXT_MAX] + "…"
    return value


class ConfigError(EyerError):
    """A settings or server file cannot be read or written."""


class SecretStoreError(EyerError):
    """The operating system keyring is missing or refused the operation."""


class ExamError(EyerError):
    """An exam folder or manifest is missing, damaged or inconsistent."""


class ConversionError(EyerError):
    """An image or exam cannot be turned into a valid DICOM file."""


class DeliveryError(EyerError):
    """Sending to, or querying, a server failed.

    Attributes:
        transient: True when retrying later may succeed (connection refused,
            timeout, aborted association, HTTP 5xx); False when the server
            rejected the request and a retry without a change would fail again
            (rejected association, failure status, HTTP 4xx).
        code: The DICOM status or HTTP status code, when the server sent one.
    """

    def __init__(self, message: str, *, transient: bool, code: int | None = None):
        self.transient = transient
        self.code = code
        super().__init__(message)
