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
        shown = "" if value is None else f" {value!r}"
        super().__init__(f"{field}{shown}: {problem}. {fix}")


class ConfigError(EyerError):
    """A settings or server file cannot be read or written."""


class SecretStoreError(EyerError):
    """The operating system keyring is missing or refused the operation."""


class ExamError(EyerError):
    """An exam folder or manifest is missing, damaged or inconsistent."""


class ConversionError(EyerError):
    """An image or exam cannot be turned into a valid DICOM file."""
