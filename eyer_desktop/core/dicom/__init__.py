"""Conversion of Eyer exams to DICOM Ophthalmic Photography 8 Bit Image files.

The public entry points live in :mod:`eyer_desktop.core.dicom.convert` and are
re-exported here.
"""

from eyer_desktop.core.dicom.charset import CharacterSet
from eyer_desktop.core.dicom.convert import (
    ConvertedFile,
    ConvertedInstance,
    EncodedFile,
    ExamConverter,
    build_exam_datasets,
    build_image_dataset,
    convert_exam,
    iter_exam_datasets,
)
from eyer_desktop.core.dicom.options import ConversionOptions, NameOrder
from eyer_desktop.core.dicom.writer import write_dataset

__all__ = [
    "CharacterSet",
    "ConversionOptions",
    "ConvertedFile",
    "ConvertedInstance",
    "EncodedFile",
    "ExamConverter",
    "NameOrder",
    "build_exam_datasets",
    "build_image_dataset",
    "convert_exam",
    "iter_exam_datasets",
    "write_dataset",
]
