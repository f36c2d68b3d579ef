"""DICOM date and time values (DA, TM, DT) with zero-padded fields.

``strftime("%Y")`` writes years below 1000 with fewer than four digits on
glibc, which makes an invalid DA value, so every field here is formatted as a
number of fixed width.
"""

from __future__ import annotations

import datetime as dt


def format_date(value: dt.date) -> str:
    """Format a date as a DICOM DA value, YYYYMMDD."""
    return f"{value.year:04d}{value.month:02d}{value.day:02d}"


def format_time(value: dt.time | dt.datetime) -> str:
    """Format a time of day as a DICOM TM value, HHMMSS with microseconds if any."""
    text = f"{value.hour:02d}{value.minute:02d}{value.second:02d}"
    if value.microsecond:
        text += f".{value.microsecond:06d}"
    return text


def format_utc_offset(value: dt.datetime) -> str:
    """Format the UTC offset of an aware datetime as +HHMM or -HHMM."""
    offset = value.utcoffset() or dt.timedelta(0)
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    hours, minutes = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}{minutes:02d}"


def format_datetime(value: dt.datetime) -> str:
    """Format an aware datetime as a DICOM DT value with its UTC offset."""
    return format_date(value.date()) + format_time(value) + format_utc_offset(value)


def format_study_id(value: dt.datetime) -> str:
    """Format a capture time as the device's Study ID, YYYYMMDDHHMMSS."""
    clock = f"{value.hour:02d}{value.minute:02d}{value.second:02d}"
    return format_date(value.date()) + clock
