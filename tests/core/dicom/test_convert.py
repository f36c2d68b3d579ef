"""Exams to OP files: manual tags, pixel data, determinism, errors."""

from __future__ import annotations

import datetime as dt
import io
import json
import struct
from pathlib import Path

import pydicom
import pytest
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.encaps import generate_frames
from pydicom.multival import MultiValue
from pydicom.uid import ExplicitVRLittleEndian, JPEGBaseline8Bit

from eyer_desktop.core.dicom import (
    CharacterSet,
    ConversionOptions,
    ExamConverter,
    NameOrder,
    build_exam_datasets,
    build_image_dataset,
    convert_exam,
    iter_exam_datasets,
)
from eyer_desktop.core.dicom.op import nominal_pixel_spacing
from eyer_desktop.core.dicom.writer import encode_dataset
from eyer_desktop.core.errors import ConversionError, ValidationError
from eyer_desktop.core.exams import (
    ClinicDocument,
    DeviceInfo,
    Exam,
    ExamType,
    Laterality,
    PatientName,
    WorklistLink,
)
from eyer_desktop.core.uids import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from tests.core.dicom.conftest import (
    ANAMNESIS,
    CREATED_AT,
    EXAM_SPECS,
    JPEG_DIR,
    ImageSpec,
    color_spec,
    fundus_jpeg,
    make_exam,
    panoramic_spec,
    red_free_colour_spec,
    red_free_grey_spec,
    single_image_exam,
    stereo_spec,
    texture_spec,
)

OPTIONS = ConversionOptions(dicom_prefix="phelcom_cpf")
OP_CLASS = "1.2.840.10008.5.1.4.1.1.77.1.5.1"
SMR_CLASS = "1.2.840.10008.5.1.4.1.1.77.1.5.3"
SOS = b"\xff\xda"

PATIENT_AND_STUDY_TAGS = [
    "PatientName",
    "PatientID",
    "IssuerOfPatientID",
    "PatientBirthDate",
    "PatientSex",
    "PatientComments",
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
    "StudyDescription",
]


def convert(
    exam: Exam, out_dir: Path, options: ConversionOptions = OPTIONS
) -> list[Dataset]:
    files = convert_exam(exam, options, out_dir, created_at=CREATED_AT)
    return [pydicom.dcmread(file.path) for file in files]


def embedded_jpeg(ds: Dataset) -> bytes:
    (frame,) = generate_frames(ds.PixelData, number_of_frames=1)
    return frame


def values(value: object) -> list[object]:
    """Return the values of a possibly single-valued element as a list."""
    return list(value) if isinstance(value, MultiValue) else [value]


def by_class(datasets: list[Dataset], sop_class: str) -> list[Dataset]:
    return [ds for ds in datasets if ds.SOPClassUID == sop_class]


def code(item: Dataset) -> tuple[str, str, str]:
    return (item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning)


# Manual tags


def test_manual_tags_read_back(color_exam: Exam, out_dir: Path) -> None:
    ds = convert(color_exam, out_dir)[0]

    assert ds.PatientID == "phelcom_cpf12345678900"
    assert json.loads(ds.PatientComments) == {
        "anamnesis": ANAMNESIS,
        "diopters": {"right": -1.25, "left": 0.5},
    }
    assert ds.PatientSex == "F"
    assert ds.PatientBirthDate == "19580302"
    assert ds.PupilDilated == "YES"
    assert ds.ImageLaterality == "R"
    assert ds.Manufacturer == "Phelcom Technologies"
    assert ds.ManufacturerModelName == "Eyer"
    assert ds.DeviceSerialNumber == "EYR-000123"
    assert list(ds.SoftwareVersions) == ["2.4.1", "Eyer Desktop 0.1.0"]
    assert ds.InstitutionName == "Clínica Olhos Saudáveis"
    assert ds.SeriesDescription == "Color"
    assert ds.SeriesDate == "20240517"
    assert ds.SeriesTime == "143012"
    assert ds.SeriesNumber == 7
    assert ds.Modality == "OP"
    assert ds.StudyID == "20240517143012"


def test_dates_times_and_offset(color_exam: Exam, out_dir: Path) -> None:
    ds = convert(color_exam, out_dir)[0]

    assert ds.StudyDate == "20240517"
    assert ds.StudyTime == "143012"
    assert ds.ContentDate == "20240517"
    assert ds.ContentTime == "143012"
    assert ds.AcquisitionDateTime == "20240517143012-0300"
    assert ds.TimezoneOffsetFromUTC == "-0300"
    # Creation time is written in the capture's offset: 09:00 UTC is 06:00.
    assert ds.InstanceCreationDate == "20240518"
    assert ds.InstanceCreationTime == "060000"


def test_patient_name_and_issuer(color_exam: Exam, out_dir: Path) -> None:
    ds = convert(color_exam, out_dir)[0]

    assert str(ds.PatientName) == "Conceição^Maria José^da Silva"
    assert ds.IssuerOfPatientID == "CPF"
    assert ds.SpecificCharacterSet == "ISO_IR 192"


def test_given_family_name_order(color_exam: Exam, out_dir: Path) -> None:
    options = ConversionOptions(name_order=NameOrder.GIVEN_FAMILY)

    ds = convert(color_exam, out_dir, options)[0]

    assert str(ds.PatientName) == "Maria José^Conceição^da Silva"


def test_name_delimiters_are_stripped(exam_folder: Path, out_dir: Path) -> None:
    spec = color_spec()
    spec.patient_name = PatientName("Souza^Lima", "Ana=Maria\\", "\tB\x01")
    exam = make_exam(exam_folder, spec)

    ds = convert(exam, out_dir)[0]

    assert str(ds.PatientName) == "Souza Lima^Ana Maria^B"


def test_pupil_not_dilated_has_no_agent(exam_folder: Path, out_dir: Path) -> None:
    spec = color_spec()
    spec.pupil_dilated = False
    exam = make_exam(exam_folder, spec)

    ds = convert(exam, out_dir)[0]

    assert ds.PupilDilated == "NO"
    assert "MydriaticAgentSequence" not in ds
    assert "DegreeOfDilation" not in ds


def test_pupil_dilated_has_empty_agent(color_exam: Exam, out_dir: Path) -> None:
    ds = convert(color_exam, out_dir)[0]

    assert ds.MydriaticAgentSequence == []
    assert ds["DegreeOfDilation"].is_empty


def test_unknown_values_are_empty(exam_folder: Path, out_dir: Path) -> None:
    spec = color_spec()
    spec.pupil_dilated = None
    spec.sex = None
    spec.birth_date = None
    spec.device = DeviceInfo()
    exam = make_exam(exam_folder, spec)

    ds = convert(exam, out_dir, ConversionOptions())[0]

    assert ds.PupilDilated == ""
    assert ds.PatientSex == ""
    assert ds.PatientBirthDate == ""
    assert "InstitutionName" not in ds
    assert "DeviceSerialNumber" not in ds
    assert list(ds.SoftwareVersions) == ["", "Eyer Desktop 0.1.0"]


def test_institution_name_fallback(exam_folder: Path, out_dir: Path) -> None:
    spec = color_spec()
    spec.device = DeviceInfo("SN1", "1.0", "")
    exam = make_exam(exam_folder, spec)

    ds = convert(exam, out_dir, ConversionOptions(institution_name="Clínica Padrão"))[0]

    assert ds.InstitutionName == "Clínica Padrão"


def test_station_name_and_source_ae_title(color_exam: Exam, out_dir: Path) -> None:
    options = ConversionOptions(station_name="EYER-PC-1", source_ae_title="EYERDESK")

    ds = convert(color_exam, out_dir, options)[0]

    assert ds.StationName == "EYER-PC-1"
    assert ds.file_meta.SourceApplicationEntityTitle == "EYERDESK"


def test_file_meta(color_exam: Exam, out_dir: Path) -> None:
    ds = convert(color_exam, out_dir)[0]
    meta = ds.file_meta

    assert meta.TransferSyntaxUID == JPEGBaseline8Bit
    assert meta.ImplementationClassUID == IMPLEMENTATION_CLASS_UID
    assert meta.ImplementationVersionName == IMPLEMENTATION_VERSION_NAME
    assert meta.MediaStorageSOPClassUID == OP_CLASS
    assert meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert ds.SOPInstanceUID == color_exam.images[0].sop_instance_uid


def test_fixed_op_attributes(color_exam: Exam, out_dir: Path) -> None:
    ds = convert(color_exam, out_dir)[0]

    assert ds.NumberOfFrames == 1
    assert ds.FrameIncrementPointer == 0x00181063
    assert ds.FrameTime == 0
    assert list(ds.PatientOrientation) == ["L", "F"]
    assert ds.SynchronizationTrigger == "NO TRIGGER"
    assert ds.AcquisitionTimeSynchronized == "N"
    assert ds.SynchronizationFrameOfReferenceUID == (
        color_exam.uids.synchronization_frame_of_reference_uid
    )
    assert ds.HorizontalFieldOfView == 45
    assert ds.DetectorType == "CMOS"
    assert ds.BurnedInAnnotation == "NO"
    assert code(ds.AcquisitionDeviceTypeCodeSequence[0]) == (
        "409898007",
        "SCT",
        "Fundus Camera",
    )
    assert code(ds.AnatomicRegionSequence[0]) == ("81745001", "SCT", "Eye")
    assert ds.RefractiveStateSequence == []
    assert ds.IlluminationTypeCodeSequence == []


def test_pixel_spacing_is_nominal(color_exam: Exam, out_dir: Path) -> None:
    ds = convert(color_exam, out_dir)[0]

    expected = 45 * 0.288 / 480
    assert [float(value) for value in ds.PixelSpacing] == pytest.approx(
        [expected, expected], rel=1e-5
    )
    assert nominal_pixel_spacing(480, 640) == nominal_pixel_spacing(480, 480)


# Pixel data


def test_image_pixel_of_colour(color_exam: Exam, out_dir: Path) -> None:
    ds = convert(color_exam, out_dir)[0]

    assert ds.SamplesPerPixel == 3
    assert ds.PhotometricInterpretation == "YBR_FULL_422"
    assert ds.PlanarConfiguration == 0
    assert (ds.Rows, ds.Columns) == (480, 480)
    assert (ds.BitsAllocated, ds.BitsStored, ds.HighBit) == (8, 8, 7)
    assert ds.PixelRepresentation == 0
    assert list(ds.ImageType) == ["ORIGINAL", "PRIMARY", "", "COLOR"]
    assert ds.LossyImageCompression == "01"
    assert values(ds.LossyImageCompressionMethod) == ["ISO_10918_1"]
    assert "PresentationLUTShape" not in ds


def test_embedded_jpeg_equals_source(exam_folder: Path, out_dir: Path) -> None:
    source = (JPEG_DIR / "iptc_422.jpg").read_bytes()
    exam = single_image_exam(exam_folder, source)

    ds = convert(exam, out_dir)[0]
    frame = embedded_jpeg(ds)

    assert source.endswith(frame[frame.index(SOS) :].rstrip(b"\x00"))
    with (
        Image.open(io.BytesIO(frame)) as embedded,
        Image.open(io.BytesIO(source)) as original,
    ):
        assert embedded.tobytes() == original.tobytes()
    assert b"Exif" not in frame
    assert b"Photoshop" not in frame
    assert "DerivationDescription" not in ds


def test_one_fragment_with_offset_table(color_exam: Exam, out_dir: Path) -> None:
    ds = convert(color_exam, out_dir)[0]
    data = ds.PixelData

    tag, bot_length = struct.unpack_from("<II", data, 0)
    assert tag == 0xE000FFFE
    assert bot_length == 4
    _, fragment_length = struct.unpack_from("<II", data, 12)
    assert fragment_length % 2 == 0
    assert len(data) == 20 + fragment_length
    delimiter = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
    assert next(out_dir.iterdir()).read_bytes().endswith(delimiter)


def test_odd_length_stream_is_padded(exam_folder: Path, out_dir: Path) -> None:
    source = next(
        data
        for seed in range(50)
        if len(data := fundus_jpeg(64, 64, seed=seed)) % 2 == 1
    )
    exam = single_image_exam(exam_folder, source)

    ds = convert(exam, out_dir)[0]
    frame = embedded_jpeg(ds)

    assert len(frame) == len(source) + 1
    assert frame == source + b"\x00"


def test_twelve_bit_image_is_described(exam_folder: Path, out_dir: Path) -> None:
    source = (JPEG_DIR / "libjpegturbo_monkey12_12bit.jpg").read_bytes()
    exam = single_image_exam(exam_folder, source)

    ds = convert(exam, out_dir)[0]

    assert ds.DerivationDescription == (
        "Converted to baseline 8-bit JPEG from a 12-bit extended sequential "
        "(SOF1) JPEG by requantizing its DCT coefficients."
    )
    assert len(ds.LossyImageCompressionRatio) == 2


def test_reencoded_image_is_described(exam_folder: Path, out_dir: Path) -> None:
    source = (JPEG_DIR / "icc_profile_big_progressive.jpg").read_bytes()
    exam = single_image_exam(exam_folder, source)

    ds = convert(exam, out_dir)[0]

    assert ds.DerivationDescription == (
        "Re-encoded as baseline JPEG (quality 95) from a progressive (SOF2) JPEG."
    )
    assert ds.LossyImageCompression == "01"
    assert list(ds.LossyImageCompressionMethod) == ["ISO_10918_1", "ISO_10918_1"]
    assert len(ds.LossyImageCompressionRatio) == 2
    assert list(ds.ImageType) == ["ORIGINAL", "PRIMARY", "", "COLOR"]
    assert ds.ICCProfile[:4] == (len(ds.ICCProfile)).to_bytes(4, "big")


def test_rotated_image_has_swapped_dimensions(exam_folder: Path, out_dir: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    source = fundus_jpeg(300, 200, exif=exif.tobytes())
    exam = single_image_exam(exam_folder, source)

    ds = convert(exam, out_dir)[0]

    assert (ds.Rows, ds.Columns) == (300, 200)


def test_icc_profile_of_passthrough(exam_folder: Path, out_dir: Path) -> None:
    source = (JPEG_DIR / "flower2_444_icc_restart.jpg").read_bytes()
    exam = single_image_exam(exam_folder, source)

    ds = convert(exam, out_dir)[0]

    with Image.open(io.BytesIO(source)) as image:
        assert ds.ICCProfile == image.info["icc_profile"]
    assert ds.ColorSpace == "SRGB"


# Exam types


def test_red_free_monochrome(exam_folder: Path, out_dir: Path) -> None:
    ds = convert(make_exam(exam_folder, red_free_grey_spec()), out_dir)[0]

    assert list(ds.ImageType) == ["ORIGINAL", "PRIMARY", "", "REDFREE"]
    assert ds.PhotometricInterpretation == "MONOCHROME2"
    assert ds.SamplesPerPixel == 1
    assert "PlanarConfiguration" not in ds
    assert ds.PresentationLUTShape == "IDENTITY"
    assert code(ds.ChannelDescriptionCodeSequence[0]) == (
        "405739002",
        "SCT",
        "Red free",
    )
    assert ds.SeriesDescription == "Red-free"


def test_red_free_three_components(exam_folder: Path, out_dir: Path) -> None:
    ds = convert(make_exam(exam_folder, red_free_colour_spec()), out_dir)[0]

    assert list(ds.ImageType) == ["ORIGINAL", "PRIMARY", "", "REDFREE"]
    assert ds.PhotometricInterpretation == "YBR_FULL_422"
    assert "ChannelDescriptionCodeSequence" not in ds


def test_texture_is_colour(exam_folder: Path, out_dir: Path) -> None:
    ds = convert(make_exam(exam_folder, texture_spec()), out_dir)[0]

    assert list(ds.ImageType) == ["ORIGINAL", "PRIMARY", "", "COLOR"]
    assert ds.SeriesDescription == "Texture"
    assert ds.ImageLaterality == "L"


def test_monochrome_colour_exam_has_no_colour_term(
    exam_folder: Path, out_dir: Path
) -> None:
    exam = single_image_exam(exam_folder, fundus_jpeg(mode="L"))

    ds = convert(exam, out_dir)[0]

    assert list(ds.ImageType) == ["ORIGINAL", "PRIMARY"]
    assert "ChannelDescriptionCodeSequence" not in ds


def test_stereo_relationship_object(exam_folder: Path, out_dir: Path) -> None:
    exam = make_exam(exam_folder, stereo_spec())
    datasets = convert(exam, out_dir)
    images = {image.image_id: image for image in exam.images}

    smrs = by_class(datasets, SMR_CLASS)
    assert len(smrs) == 2
    for smr, pair, eye in zip(smrs, exam.stereo_pairs, ["R", "L"], strict=True):
        assert smr.Modality == "SMR"
        assert smr.Laterality == eye
        assert smr.SeriesDescription == "Stereo relationship"
        assert smr.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
        item = smr.StereoPairsSequence[0]
        left = images[pair.left_image_id].sop_instance_uid
        right = images[pair.right_image_id].sop_instance_uid
        assert item.LeftImageSequence[0].ReferencedSOPInstanceUID == left
        assert item.RightImageSequence[0].ReferencedSOPInstanceUID == right
        referenced = smr.ReferencedSeriesSequence[0]
        assert referenced.SeriesInstanceUID == exam.uids.series_instance_uid
        assert [
            reference.ReferencedSOPInstanceUID
            for reference in referenced.ReferencedInstanceSequence
        ] == [left, right]
        assert "ContentDate" not in smr
    assert smrs[0].SOPInstanceUID == exam.uids.stereo_relationship_instance_uid
    assert smrs[0].SeriesInstanceUID == exam.uids.stereo_series_instance_uid
    assert smrs[1].SeriesInstanceUID != smrs[0].SeriesInstanceUID


def test_stereo_images_reference_each_other(exam_folder: Path, out_dir: Path) -> None:
    exam = make_exam(exam_folder, stereo_spec())
    ops = by_class(convert(exam, out_dir), OP_CLASS)

    first, second = ops[0], ops[1]
    reference = first.ReferencedImageSequence[0]
    assert reference.ReferencedSOPInstanceUID == second.SOPInstanceUID
    assert reference.ReferencedSOPClassUID == OP_CLASS
    assert code(reference.PurposeOfReferenceCodeSequence[0]) == (
        "121315",
        "DCM",
        "Other image of stereoscopic pair",
    )
    assert second.ReferencedImageSequence[0].ReferencedSOPInstanceUID == (
        first.SOPInstanceUID
    )


def test_patient_and_study_are_byte_identical(exam_folder: Path, out_dir: Path) -> None:
    exam = make_exam(exam_folder, stereo_spec())
    exam.worklist = WorklistLink(requested_procedure_description="Retinografia")
    files = convert_exam(exam, OPTIONS, out_dir, created_at=CREATED_AT)
    raw = [pydicom.dcmread(file.path) for file in files]

    for keyword in PATIENT_AND_STUDY_TAGS:
        values = {ds.get_item(keyword).value for ds in raw}
        assert len(values) == 1, keyword


def test_panoramic_montage(exam_folder: Path, out_dir: Path) -> None:
    exam = make_exam(exam_folder, panoramic_spec())
    datasets = convert(exam, out_dir)
    fields, montage = datasets[:3], datasets[3]

    for field in fields:
        assert list(field.ImageType) == ["ORIGINAL", "PRIMARY", "", "COLOR"]
        assert field.SeriesInstanceUID == exam.uids.series_instance_uid
    assert list(montage.ImageType) == ["DERIVED", "PRIMARY", "MONTAGE", "COLOR"]
    assert montage.SeriesInstanceUID == exam.uids.montage_series_instance_uid
    assert montage.SeriesDescription == "Panoramic montage"
    assert montage.InstanceNumber == 1
    sources = montage.SourceImageSequence
    assert [item.ReferencedSOPInstanceUID for item in sources] == [
        field.SOPInstanceUID for field in fields
    ]
    for item in sources:
        assert item.ReferencedSOPClassUID == OP_CLASS
        assert code(item.PurposeOfReferenceCodeSequence[0]) == (
            "121329",
            "DCM",
            "Source image for montage",
        )
    assert code(montage.DerivationCodeSequence[0]) == (
        "113090",
        "DCM",
        "Image stitching",
    )
    assert list(montage.PixelSpacing) == list(fields[0].PixelSpacing)


# Worklist


def test_worklist_values_take_precedence(color_exam: Exam, out_dir: Path) -> None:
    color_exam.worklist = WorklistLink(
        accession_number="ACC123",
        study_instance_uid="1.2.826.0.1.3680043.2.1125.1",
        requested_procedure_id="RP1",
        requested_procedure_description="Retinografia – ambos os olhos",
        scheduled_procedure_step_id="SPS1",
        referring_physician_name="Souza^João",
        patient_id="PID-99",
        issuer_of_patient_id="HOSP",
    )

    ds = convert(color_exam, out_dir)[0]

    assert ds.AccessionNumber == "ACC123"
    assert ds.StudyInstanceUID == "1.2.826.0.1.3680043.2.1125.1"
    assert str(ds.ReferringPhysicianName) == "Souza^João"
    assert ds.PatientID == "PID-99"
    assert ds.IssuerOfPatientID == "HOSP"
    assert ds.StudyDescription == "Retinografia – ambos os olhos"
    request = ds.RequestAttributesSequence[0]
    assert request.RequestedProcedureID == "RP1"
    assert request.ScheduledProcedureStepID == "SPS1"
    assert request.AccessionNumber == "ACC123"
    assert request.RequestedProcedureDescription == "Retinografia – ambos os olhos"


def test_worklist_without_patient_id_keeps_prefix(
    color_exam: Exam, out_dir: Path
) -> None:
    color_exam.worklist = WorklistLink(accession_number="A1")

    ds = convert(color_exam, out_dir)[0]

    assert ds.PatientID == "phelcom_cpf12345678900"
    assert ds.AccessionNumber == "A1"
    assert ds.StudyInstanceUID == color_exam.uids.study_instance_uid
    assert "RequestAttributesSequence" not in ds


# Character sets


def test_latin1_transliterates_text(color_exam: Exam, out_dir: Path) -> None:
    options = ConversionOptions(specific_character_set=CharacterSet.LATIN1)

    ds = convert(color_exam, out_dir, options)[0]

    raw = ds.get_item("PatientName").value
    assert raw == "Conceição^Maria José^da Silva ".encode("latin-1")
    assert ds.SpecificCharacterSet == "ISO_IR 100"
    assert str(ds.PatientName) == "Conceição^Maria José^da Silva"
    notes = json.loads(ds.PatientComments)["anamnesis"]["notes"]
    assert notes == 'Paciente relata "visão turva" - há 2 anos... sem dor'


def test_latin1_rejects_unencodable_identifier(color_exam: Exam, out_dir: Path) -> None:
    color_exam.patient.document = ClinicDocument("CPF", "123€")
    options = ConversionOptions(specific_character_set=CharacterSet.LATIN1)

    with pytest.raises(ConversionError, match="ISO_IR 192"):
        convert(color_exam, out_dir, options)


# Length limits


def test_long_patient_id_is_rejected(color_exam: Exam, out_dir: Path) -> None:
    options = ConversionOptions(dicom_prefix="p" * 60)

    with pytest.raises(ConversionError) as caught:
        convert(color_exam, out_dir, options)

    message = str(caught.value)
    assert "Patient ID" in message
    assert "71 bytes" in message
    assert "64-byte limit" in message
    assert "Shorten the DICOM prefix" in message
    assert not out_dir.exists() or not any(out_dir.iterdir())


def test_long_patient_comments_are_rejected(exam_folder: Path, out_dir: Path) -> None:
    spec = color_spec()
    spec.anamnesis = {"notes": "ã" * 5200}
    exam = make_exam(exam_folder, spec)

    with pytest.raises(ConversionError, match=r"Patient Comments.*10240-byte"):
        convert(exam, out_dir)


def test_patient_comments_limit_counts_bytes(exam_folder: Path, out_dir: Path) -> None:
    spec = color_spec()
    spec.anamnesis = {"notes": "ã" * 5100}
    exam = make_exam(exam_folder, spec)

    utf8_error = pytest.raises(ConversionError, match="Patient Comments")
    with utf8_error:
        convert(exam, out_dir)
    ds = convert(
        exam, out_dir, ConversionOptions(specific_character_set=CharacterSet.LATIN1)
    )[0]
    assert len(ds.get_item("PatientComments").value) <= 10240


def test_long_patient_name_is_rejected(exam_folder: Path, out_dir: Path) -> None:
    spec = color_spec()
    spec.patient_name = PatientName("Conceição" * 6, "Maria")
    exam = make_exam(exam_folder, spec)

    with pytest.raises(ConversionError, match="Patient's Name is 72 bytes"):
        convert(exam, out_dir)


def test_message_does_not_contain_patient_data(
    exam_folder: Path, out_dir: Path
) -> None:
    spec = color_spec()
    spec.patient_name = PatientName("Sobrenome" * 8, "Nome")
    exam = make_exam(exam_folder, spec)

    with pytest.raises(ConversionError) as caught:
        convert(exam, out_dir)

    assert "Sobrenome" not in str(caught.value)


def test_long_institution_name_is_cut(exam_folder: Path, out_dir: Path) -> None:
    spec = color_spec()
    spec.device = DeviceInfo("SN", "1", "Clínica " + "ã" * 40)
    exam = make_exam(exam_folder, spec)

    ds = convert(exam, out_dir)[0]

    raw = ds.get_item("InstitutionName").value
    assert len(raw.rstrip(b" ")) <= 64
    assert ds.InstitutionName == "Clínica " + "ã" * 27


def test_long_serial_number_is_rejected(exam_folder: Path, out_dir: Path) -> None:
    spec = color_spec()
    spec.device = DeviceInfo("S" * 65, "1", "Clinic")
    exam = make_exam(exam_folder, spec)

    with pytest.raises(ConversionError, match="Device serial number is 65 bytes"):
        convert(exam, out_dir)


def test_long_station_name_is_rejected(color_exam: Exam, out_dir: Path) -> None:
    options = ConversionOptions(station_name="S" * 17)

    with pytest.raises(ConversionError, match="Station name is 17 bytes"):
        convert(color_exam, out_dir, options)


def test_long_accession_number_is_rejected(color_exam: Exam, out_dir: Path) -> None:
    color_exam.worklist = WorklistLink(accession_number="A" * 17)

    with pytest.raises(ConversionError, match="Accession Number is 17 bytes"):
        convert(color_exam, out_dir)


def test_control_character_in_patient_id_is_rejected(
    color_exam: Exam, out_dir: Path
) -> None:
    color_exam.patient.document = ClinicDocument("CPF", "123\n456")

    with pytest.raises(ConversionError, match="control character"):
        convert(color_exam, out_dir)


# Determinism


def test_converting_twice_gives_identical_files(
    color_exam: Exam, tmp_path: Path
) -> None:
    first = convert_exam(color_exam, OPTIONS, tmp_path / "a", created_at=CREATED_AT)
    second = convert_exam(color_exam, OPTIONS, tmp_path / "b", created_at=CREATED_AT)

    assert [file.path.name for file in first] == [file.path.name for file in second]
    for first_file, second_file in zip(first, second, strict=True):
        assert first_file.sop_instance_uid == second_file.sop_instance_uid
        assert first_file.path.read_bytes() == second_file.path.read_bytes()


def test_converting_later_changes_only_creation_time(
    exam_folder: Path, tmp_path: Path
) -> None:
    exam = make_exam(exam_folder, stereo_spec())
    later = CREATED_AT + dt.timedelta(days=3, hours=5)

    first = convert_exam(exam, OPTIONS, tmp_path / "a", created_at=CREATED_AT)
    second = convert_exam(exam, OPTIONS, tmp_path / "b", created_at=later)

    for first_file, second_file in zip(first, second, strict=True):
        old = pydicom.dcmread(first_file.path)
        new = pydicom.dcmread(second_file.path)
        assert old.InstanceCreationDate != new.InstanceCreationDate
        for ds in (old, new):
            del ds.InstanceCreationDate
            del ds.InstanceCreationTime
        assert old == new
        assert old.file_meta == new.file_meta


def test_uids_are_derived_from_exam(color_exam: Exam, out_dir: Path) -> None:
    datasets = convert(color_exam, out_dir)

    assert [ds.SOPInstanceUID for ds in datasets] == [
        image.sop_instance_uid for image in color_exam.images
    ]
    assert {ds.StudyInstanceUID for ds in datasets} == {
        color_exam.uids.study_instance_uid
    }
    assert {ds.SeriesInstanceUID for ds in datasets} == {
        color_exam.uids.series_instance_uid
    }


# Public entry points


@pytest.mark.parametrize("name", sorted(EXAM_SPECS))
def test_files_equal_pydicom_encoding(name: str, tmp_path: Path) -> None:
    exam = make_exam(tmp_path / "exam", EXAM_SPECS[name]())
    files = convert_exam(exam, OPTIONS, tmp_path / "out", created_at=CREATED_AT)
    datasets = build_exam_datasets(exam, OPTIONS, created_at=CREATED_AT)

    assert len(files) == len(datasets)
    for file, dataset in zip(files, datasets, strict=True):
        assert file.path.read_bytes() == encode_dataset(dataset)


@pytest.mark.parametrize("charset", list(CharacterSet))
def test_varied_sources_equal_pydicom_encoding(
    charset: CharacterSet, tmp_path: Path
) -> None:
    # Passthrough with and without an ICC profile, re-encoded sources (two
    # compression ratios, a derivation description) and a grey image.
    spec = color_spec()
    spec.images = [
        ImageSpec(name, (JPEG_DIR / name).read_bytes(), laterality)
        for name, laterality in [
            ("flower2_444_icc_restart.jpg", Laterality.RIGHT),
            ("icc_profile_big_progressive.jpg", Laterality.LEFT),
            ("hopper_exif_orientation_6.jpg", Laterality.RIGHT),
            ("hopper_gray.jpg", Laterality.LEFT),
        ]
    ]
    exam = make_exam(tmp_path / "exam", spec)
    options = ConversionOptions(
        dicom_prefix="phelcom_cpf", specific_character_set=charset
    )
    files = convert_exam(exam, options, tmp_path / "out", created_at=CREATED_AT)
    datasets = build_exam_datasets(exam, options, created_at=CREATED_AT)

    assert len(files) == 4
    assert "ICCProfile" in datasets[0]
    assert datasets[2].DerivationDescription
    for file, dataset in zip(files, datasets, strict=True):
        assert file.path.read_bytes() == encode_dataset(dataset)


def test_iterator_yields_file_names(color_exam: Exam) -> None:
    names = [name for name, _ in iter_exam_datasets(color_exam, OPTIONS)]

    assert names == ["20240517143012_7_OP1_R.dcm", "20240517143012_7_OP2_L.dcm"]


def test_file_names_carry_no_patient_data(exam_folder: Path, out_dir: Path) -> None:
    exam = make_exam(exam_folder, stereo_spec())

    files = convert_exam(exam, OPTIONS, out_dir, created_at=CREATED_AT)

    names = [file.path.name for file in files]
    assert names == [
        "20240517143012_7_OP1_R.dcm",
        "20240517143012_7_OP2_R.dcm",
        "20240517143012_7_OP3_L.dcm",
        "20240517143012_7_OP4_L.dcm",
        "20240517143012_7_SMR1_R.dcm",
        "20240517143012_7_SMR2_L.dcm",
    ]
    assert sorted(path.name for path in out_dir.iterdir()) == sorted(names)


def test_converted_file_records(exam_folder: Path, out_dir: Path) -> None:
    exam = make_exam(exam_folder, panoramic_spec())

    files = convert_exam(exam, OPTIONS, out_dir, created_at=CREATED_AT)

    assert [file.image_id for file in files] == [i.image_id for i in exam.images]
    assert files[3].series_instance_uid == exam.uids.montage_series_instance_uid
    assert all(file.sop_class_uid == OP_CLASS for file in files)
    assert not any(file.reencoded for file in files)


def test_one_image_at_a_time(color_exam: Exam) -> None:
    image = color_exam.images[1]

    ds = build_image_dataset(color_exam, image.image_id, OPTIONS)

    assert ds.SOPInstanceUID == image.sop_instance_uid
    assert ds.InstanceNumber == 2
    assert ds.ImageLaterality == "L"


def test_converter_reuses_exam_values(color_exam: Exam) -> None:
    converter = ExamConverter(color_exam, OPTIONS, created_at=CREATED_AT)

    first = converter.image_instance(color_exam.images[0])
    encoded = converter.encode_image_file(color_exam.images[0])

    assert encoded.data == encode_dataset(first.dataset)
    assert first.filename == encoded.filename


def test_dataset_copies_do_not_share_template(color_exam: Exam) -> None:
    converter = ExamConverter(color_exam, OPTIONS, created_at=CREATED_AT)
    first = converter.image_instance(color_exam.images[0]).dataset
    second = converter.image_instance(color_exam.images[1]).dataset

    first.PatientName = "Changed^Name"
    first.AnatomicRegionSequence[0].CodeMeaning = "Changed"

    assert str(second.PatientName) == "Conceição^Maria José^da Silva"
    assert second.AnatomicRegionSequence[0].CodeMeaning == "Eye"


# Errors and atomic output


def test_bad_image_leaves_no_file(exam_folder: Path, out_dir: Path) -> None:
    truncated = (JPEG_DIR / "pillow_truncated_progressive.jpg").read_bytes()
    spec = color_spec()
    spec.images = [*spec.images, ImageSpec("broken.jpg", truncated, Laterality.LEFT)]
    exam = make_exam(exam_folder, spec)

    with pytest.raises(ConversionError) as caught:
        convert_exam(exam, OPTIONS, out_dir)

    message = str(caught.value)
    assert "images/broken.jpg" in message
    assert "truncated" in message
    assert not out_dir.exists()


def test_failure_removes_folders_it_created(exam_folder: Path, tmp_path: Path) -> None:
    spec = color_spec()
    truncated = (JPEG_DIR / "pillow_truncated_progressive.jpg").read_bytes()
    spec.images = [*spec.images, ImageSpec("broken.jpg", truncated, Laterality.LEFT)]
    exam = make_exam(exam_folder, spec)
    out = tmp_path / "new" / "exam"

    with pytest.raises(ConversionError):
        convert_exam(exam, OPTIONS, out)

    assert not out.exists()
    assert not (tmp_path / "new").exists()
    assert tmp_path.is_dir()


def test_failure_keeps_earlier_files(exam_folder: Path, out_dir: Path) -> None:
    exam = make_exam(exam_folder, color_spec())
    earlier = convert_exam(exam, OPTIONS, out_dir, created_at=CREATED_AT)
    before = {file.path: file.path.read_bytes() for file in earlier}
    (exam_folder / "images" / "os.jpg").write_bytes(b"\xff\xd8\xff\xe0 damaged")

    with pytest.raises(ConversionError, match=r"os\.jpg"):
        convert_exam(exam, OPTIONS, out_dir)

    assert {path: path.read_bytes() for path in out_dir.iterdir()} == before


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("jpegdecoder_max_size_65535x65535.jpg", "megapixels"),
        ("jpegdecoder_corrupt_huffman.jpg", "not a valid JPEG"),
        ("pillow_truncated_progressive.jpg", "truncated"),
    ],
)
def test_unusable_corpus_files_fail_clearly(
    name: str, problem: str, exam_folder: Path, out_dir: Path
) -> None:
    exam = single_image_exam(exam_folder, (JPEG_DIR / name).read_bytes(), name=name)

    with pytest.raises(ConversionError) as caught:
        convert_exam(exam, OPTIONS, out_dir)

    assert name in str(caught.value)
    assert problem in str(caught.value)
    assert not out_dir.exists()


def test_missing_image_file(color_exam: Exam, out_dir: Path) -> None:
    (color_exam.image_path(color_exam.images[0])).unlink()

    with pytest.raises(ConversionError, match="cannot be read"):
        convert_exam(color_exam, OPTIONS, out_dir)


def test_capture_time_without_offset(exam_folder: Path) -> None:
    spec = color_spec()
    spec.captured_at = dt.datetime(2024, 5, 17, 14, 30, 12)
    exam = make_exam(exam_folder, spec)

    with pytest.raises(ConversionError, match="UTC offset"):
        ExamConverter(exam, OPTIONS)


def test_stereo_pair_of_two_eyes_is_rejected(exam_folder: Path) -> None:
    spec = stereo_spec()
    spec.stereo_pairs = [("st_r1.jpg", "st_l1.jpg")]
    exam = make_exam(exam_folder, spec)

    with pytest.raises(ConversionError, match="different eyes"):
        ExamConverter(exam, OPTIONS)


def test_montage_without_sources_is_rejected(exam_folder: Path) -> None:
    spec = panoramic_spec()
    spec.images[3].sources = ()
    exam = make_exam(exam_folder, spec)

    with pytest.raises(ConversionError, match="no source fields"):
        ExamConverter(exam, OPTIONS)


def test_invalid_sop_instance_uid_is_rejected(color_exam: Exam) -> None:
    color_exam.images[0].sop_instance_uid = "1.2.03"

    with pytest.raises(ConversionError, match="not a valid DICOM UID"):
        ExamConverter(color_exam, OPTIONS)


def test_invalid_series_uid_is_rejected(color_exam: Exam) -> None:
    color_exam.uids.series_instance_uid = "2.25.x"

    with pytest.raises(ConversionError, match="series instance uid"):
        ExamConverter(color_exam, OPTIONS)


@pytest.mark.parametrize("number", [-1, 2**31])
def test_series_number_out_of_range(color_exam: Exam, number: int) -> None:
    color_exam.sequence_number = number

    with pytest.raises(ConversionError, match="does not fit the DICOM IS type"):
        ExamConverter(color_exam, OPTIONS)


def test_duplicate_sop_instance_uid_is_rejected(color_exam: Exam) -> None:
    color_exam.images[1].sop_instance_uid = color_exam.images[0].sop_instance_uid

    with pytest.raises(ConversionError, match="share the SOP Instance UID"):
        ExamConverter(color_exam, OPTIONS)


# Options


def test_options_coerce_strings() -> None:
    options = ConversionOptions(
        specific_character_set="ISO_IR 100",  # type: ignore[arg-type]
        name_order="given^family",  # type: ignore[arg-type]
    )

    assert options.specific_character_set.value == "ISO_IR 100"
    assert options.name_order.value == "given^family"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("specific_character_set", "ISO_IR 6"),
        ("name_order", "family given"),
        ("source_ae_title", "A" * 17),
        ("source_ae_title", "AE\\T"),
        ("dicom_prefix", "pre\\fix"),
        ("station_name", "st\x00"),
        ("max_pixels", 0),
    ],
)
def test_invalid_options_are_rejected(field: str, value: object) -> None:
    with pytest.raises(ValidationError):
        ConversionOptions(**{field: value})  # type: ignore[arg-type]


def test_exam_type_series_descriptions(tmp_path: Path) -> None:
    descriptions = {}
    for exam_type, spec in [
        (ExamType.COLOR, color_spec()),
        (ExamType.STEREO, stereo_spec()),
        (ExamType.PANORAMIC, panoramic_spec()),
    ]:
        exam = make_exam(tmp_path / exam_type.value, spec)
        ds = build_image_dataset(exam, exam.images[0], OPTIONS)
        descriptions[exam_type] = ds.SeriesDescription

    assert descriptions == {
        ExamType.COLOR: "Color",
        ExamType.STEREO: "Stereo",
        ExamType.PANORAMIC: "Panoramic",
    }
