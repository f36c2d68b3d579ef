"""User-visible names of exam values, translated, shared by the exam widgets."""

from __future__ import annotations

import datetime as dt

from PySide6.QtCore import QCoreApplication
from PySide6.QtGui import QColor

from eyer_desktop.core.exams import ExamType, Laterality, Sex

_CONTEXT = "ExamLabels"

# Colours of the eye badges: blue for the right eye, orange for the left. The
# badges also carry OD or OS, so colour is never the only cue.
EYE_COLORS = {
    Laterality.RIGHT: QColor("#1d5fbf"),
    Laterality.LEFT: QColor("#c2410c"),
}


def _tr(text: str) -> str:
    return QCoreApplication.translate(_CONTEXT, text)


def exam_type_label(exam_type: ExamType) -> str:
    """Return the name of an exam type as the camera shows it."""
    labels = {
        ExamType.COLOR: _tr("Color"),
        ExamType.RED_FREE: _tr("Red-free"),
        ExamType.TEXTURE: _tr("Texture"),
        ExamType.STEREO: _tr("Stereo"),
        ExamType.PANORAMIC: _tr("Panoramic"),
    }
    return labels[exam_type]


def eye_badge(laterality: Laterality) -> str:
    """Return the short clinical name of an eye: OD for right, OS for left."""
    return "OD" if laterality is Laterality.RIGHT else "OS"


def eye_label(laterality: Laterality) -> str:
    """Return the long name of an eye with its clinical abbreviation."""
    if laterality is Laterality.RIGHT:
        return _tr("Right eye (OD)")
    return _tr("Left eye (OS)")


def sex_label(sex: Sex | None) -> str:
    """Return the name of a patient's sex, or a dash when unknown."""
    labels = {Sex.FEMALE: _tr("Female"), Sex.MALE: _tr("Male"), Sex.OTHER: _tr("Other")}
    return labels[sex] if sex is not None else "\u2014"


def capture_time_text(captured_at: dt.datetime) -> str:
    """Return a capture time as the clinic's wall-clock time, to the minute."""
    return captured_at.strftime("%Y-%m-%d %H:%M")


def answer_label(value: object) -> str:
    """Return an anamnesis answer in words: yes, no, unknown or the value."""
    labels = {"yes": _tr("yes"), "no": _tr("no"), "unknown": _tr("unknown")}
    if isinstance(value, bool):
        return labels["yes" if value else "no"]
    text = str(value)
    return labels.get(text.lower(), text)


def plural(count: int, one: str, other: str) -> str:
    """Return ``one`` for a count of 1, else ``other`` with %n replaced.

    Both texts come translated from the caller. Qt picks plural forms only
    through a loaded translation, so without one the English forms are
    chosen here.
    """
    return one if count == 1 else other.replace("%n", str(count))
