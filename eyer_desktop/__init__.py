"""Eyer Desktop: replicates the Eyer retinal camera's server settings on a PC,
converts its exams to DICOM Ophthalmic Photography and delivers them."""

__version__ = "0.1.0"
