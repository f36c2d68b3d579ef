"""The Stereometric Relationship object of a stereo exam (PS3.3 A.43).

A stereo exam becomes ordinary OP images plus one Stereometric Relationship
instance in its own series with Modality SMR. That instance records which
image of each pair is for the left and which for the right viewing channel.
Laterality is a series attribute there and admits only R or L, so an exam
with pairs of both eyes gets one such instance per eye.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian

from eyer_desktop.core.dicom.context import STEREO_SERIES_DESCRIPTION, ExamContext
from eyer_desktop.core.dicom.modules import (
    SeriesInfo,
    add_general_equipment,
    add_general_series,
    add_general_study,
    add_patient,
    add_sop_common,
    file_meta,
    reference_item,
)
from eyer_desktop.core.dicom.op import OP_8BIT_SOP_CLASS_UID
from eyer_desktop.core.errors import ConversionError
from eyer_desktop.core.exams import Exam, ImageRole, StereoPair
from eyer_desktop.core.uids import derive_uid

STEREOMETRIC_RELATIONSHIP_SOP_CLASS_UID = "1.2.840.10008.5.1.4.1.1.77.1.5.3"


@dataclass(frozen=True)
class StereoGroup:
    """The stereo pairs of one eye and the UIDs of their relationship object."""

    laterality: str
    pairs: tuple[StereoPair, ...]
    series_instance_uid: str
    sop_instance_uid: str


def stereo_partners(exam: Exam) -> dict[str, str]:
    """Map each image id of a stereo pair to the id of the other image.

    Raises:
        ConversionError: A pair names a missing image, two images of
            different eyes, a montage, or an image already in another pair.
    """
    partners: dict[str, str] = {}
    for pair in exam.stereo_pairs:
        _check_pair(exam, pair, partners)
        partners[pair.left_image_id] = pair.right_image_id
        partners[pair.right_image_id] = pair.left_image_id
    return partners


def _check_pair(exam: Exam, pair: StereoPair, partners: dict[str, str]) -> None:
    ids = (pair.left_image_id, pair.right_image_id)
    try:
        left, right = (exam.image(image_id) for image_id in ids)
    except KeyError as err:
        raise ConversionError(
            f"Exam {exam.exam_id}: stereo pair image {err.args[0]} is not an "
            f"image of the exam. Correct the exam's stereo pairs."
        ) from err
    problem = None
    if left.image_id == right.image_id:
        problem = "pairs an image with itself"
    elif left.laterality is not right.laterality:
        problem = "pairs images of different eyes"
    elif ImageRole.MONTAGE in (left.role, right.role):
        problem = "contains a montage"
    elif any(image_id in partners for image_id in ids):
        problem = "reuses an image of another pair"
    if problem is not None:
        raise ConversionError(
            f"Exam {exam.exam_id}: the stereo pair {ids[0]} / {ids[1]} {problem}. "
            f"Correct the exam's stereo pairs."
        )


def stereo_groups(exam: Exam) -> list[StereoGroup]:
    """Group the exam's stereo pairs by eye, in order of first appearance.

    The first eye uses the exam's stereo UIDs; a second eye gets UIDs derived
    from the exam id and the eye.
    """
    stereo_partners(exam)
    by_eye: dict[str, list[StereoPair]] = {}
    for pair in exam.stereo_pairs:
        laterality = exam.image(pair.left_image_id).laterality.value
        by_eye.setdefault(laterality, []).append(pair)

    groups = []
    for index, (laterality, pairs) in enumerate(by_eye.items()):
        if index == 0:
            series_uid = exam.uids.stereo_series_instance_uid
            instance_uid = exam.uids.stereo_relationship_instance_uid
        else:
            series_uid = derive_uid(exam.exam_id, f"series/stereo/{laterality}")
            instance_uid = derive_uid(exam.exam_id, f"stereo/{laterality}")
        groups.append(StereoGroup(laterality, tuple(pairs), series_uid, instance_uid))
    return groups


def build_stereo_dataset(
    context: ExamContext, group: StereoGroup, image_series_uid: str
) -> Dataset:
    """Return the Stereometric Relationship dataset of one eye's pairs."""
    ds = Dataset()
    exam = context.exam
    series = SeriesInfo(
        instance_uid=group.series_instance_uid,
        modality="SMR",
        description=STEREO_SERIES_DESCRIPTION,
        laterality=group.laterality,
    )

    # Patient
    add_patient(ds, context)

    # General Study
    add_general_study(ds, context)

    # General Series, Stereometric Series
    add_general_series(ds, context, series)

    # General Equipment
    add_general_equipment(ds, context)

    # Stereometric Relationship
    ds.StereoPairsSequence = [_pair_item(exam, pair) for pair in group.pairs]

    # Common Instance Reference
    referenced = Dataset()
    referenced.SeriesInstanceUID = image_series_uid
    referenced.ReferencedInstanceSequence = [
        reference_item(OP_8BIT_SOP_CLASS_UID, exam.image(image_id).sop_instance_uid)
        for pair in group.pairs
        for image_id in (pair.left_image_id, pair.right_image_id)
    ]
    ds.ReferencedSeriesSequence = [referenced]

    # SOP Common
    add_sop_common(ds, context, STEREOMETRIC_RELATIONSHIP_SOP_CLASS_UID)
    ds.SOPInstanceUID = group.sop_instance_uid

    ds.file_meta = file_meta(
        context,
        STEREOMETRIC_RELATIONSHIP_SOP_CLASS_UID,
        group.sop_instance_uid,
        ExplicitVRLittleEndian,
    )
    return ds


def _pair_item(exam: Exam, pair: StereoPair) -> Dataset:
    item = Dataset()
    left = exam.image(pair.left_image_id)
    right = exam.image(pair.right_image_id)
    item.LeftImageSequence = [
        reference_item(OP_8BIT_SOP_CLASS_UID, left.sop_instance_uid)
    ]
    item.RightImageSequence = [
        reference_item(OP_8BIT_SOP_CLASS_UID, right.sop_instance_uid)
    ]
    return item
