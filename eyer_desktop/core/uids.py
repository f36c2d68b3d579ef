"""Deterministic DICOM UIDs.

Every UID of an exam is derived from the exam's UUID and a label naming the
object (``"study"``, ``"image:<image id>"`` ...), as ``2.25.<integer of a
UUIDv5>`` (PS3.5 B.2). Converting or sending the same exam twice therefore
gives the same UIDs, and an archive updates the instances in place instead of
storing a second copy.
"""

from __future__ import annotations

import uuid

# Namespace of every name-based UUID this application derives. It is itself a
# UUIDv5 of the product's name in the URL namespace, so it never changes.
EYER_UID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:eyer-desktop:dicom-uid")

# UID of this implementation, written as ImplementationClassUID in every file
# and sent in every association request.
IMPLEMENTATION_CLASS_UID = "2.25." + str(
    uuid.uuid5(EYER_UID_NAMESPACE, "implementation-class").int
)
IMPLEMENTATION_VERSION_NAME = "EYERDESKTOP_0_1"


def derive_uid(exam_id: str, label: str) -> str:
    """Return the UID of the object ``label`` of exam ``exam_id``."""
    name = f"{exam_id}/{label}"
    return "2.25." + str(uuid.uuid5(EYER_UID_NAMESPACE, name).int)
