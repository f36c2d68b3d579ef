"""C-STORE batches against dcmtk storescp, wlmscpfs and a fake SCP on loopback."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image
from pydicom import dcmread
from pydicom.encaps import generate_frames
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEGBaseline8Bit

from eyer_desktop.core.errors import DeliveryError
from eyer_desktop.core.net import (
    DicomEndpoint,
    StoreFallback,
    StoreStatus,
    probe_storage,
    store,
)
from tests.helpers.dcmtk import (  # noqa: F401
    DcmtkServer,
    run_storescp,
    run_wlmscpfs,
    storescp_jpeg_fixture,
    storescp_uncompressed_fixture,
    write_storescp_profile,
)
from tests.helpers.fake_store_scp import run_fake_store_scp
from tests.helpers.op_samples import (
    OP_8BIT_IMAGE_STORAGE,
    make_fundus_jpeg,
    make_op_dataset,
    write_op_files,
)
from tests.helpers.rejections import rejection_of

pytestmark = pytest.mark.integration

VL_PHOTOGRAPHIC = "1.2.840.10008.5.1.4.1.1.77.1.4"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
MAX_DECODER_DIFFERENCE = 2


def endpoint_for(server: DcmtkServer | int, **options: float) -> DicomEndpoint:
    port = server if isinstance(server, int) else server.port
    called = "STORESCP" if isinstance(server, int) else server.ae_title
    return DicomEndpoint("127.0.0.1", port, "EYERDESKTOP", called, **options)


def max_difference(first: bytes, second: bytes) -> int:
    assert len(first) == len(second)
    return max(abs(a - b) for a, b in zip(first, second, strict=True))


def decoded_pixels(jpeg: bytes) -> bytes:
    with Image.open(io.BytesIO(jpeg)) as image:
        return image.tobytes()


def test_store_jpeg_passes_fragment_unchanged(
    storescp_jpeg: DcmtkServer, tmp_path: Path
) -> None:
    sources = write_op_files(tmp_path / "sources", 3)

    report = store(endpoint_for(storescp_jpeg), sources)

    assert report.all_stored
    assert [o.status for o in report.outcomes] == [StoreStatus.SENT] * 3
    assert {o.transfer_syntax_uid for o in report.outcomes} == {JPEGBaseline8Bit}
    received = {dcmread(p).SOPInstanceUID: p for p in storescp_jpeg.received_files()}
    for source in sources:
        original = dcmread(source)
        copy = dcmread(received[original.SOPInstanceUID])
        assert copy.file_meta.TransferSyntaxUID == JPEGBaseline8Bit
        sent_frame = next(generate_frames(copy.PixelData, number_of_frames=1))
        source_frame = next(generate_frames(original.PixelData, number_of_frames=1))
        assert sent_frame == source_frame


def test_store_decodes_for_uncompressed_server(
    storescp_uncompressed: DcmtkServer, tmp_path: Path
) -> None:
    jpeg = make_fundus_jpeg(321, 203, seed=7)
    dataset = make_op_dataset(jpeg)

    report = store(endpoint_for(storescp_uncompressed), [dataset])

    outcome = report.outcomes[0]
    assert outcome.status is StoreStatus.SENT
    assert outcome.transfer_syntax_uid == ExplicitVRLittleEndian
    [received_path] = storescp_uncompressed.received_files()
    received = dcmread(received_path)
    assert not received.file_meta.TransferSyntaxUID.is_compressed
    assert received.PhotometricInterpretation == "RGB"
    assert received.PlanarConfiguration == 0
    assert received.SamplesPerPixel == 3
    assert received.LossyImageCompression == "01"
    assert received.LossyImageCompressionMethod == "ISO_10918_1"
    assert received.SOPInstanceUID == dataset.SOPInstanceUID
    pixel_bytes = 321 * 203 * 3
    assert len(received.PixelData) == pixel_bytes + 1  # padded to even length
    pixels = bytes(received.PixelData[:pixel_bytes])
    assert max_difference(pixels, decoded_pixels(jpeg)) <= MAX_DECODER_DIFFERENCE


def test_store_decoded_matches_dcmtk_decoder(
    storescp_uncompressed: DcmtkServer, tmp_path: Path
) -> None:
    dcmj2pnm = shutil.which("dcmj2pnm")
    if dcmj2pnm is None:
        pytest.skip("dcmj2pnm is not installed")
    [source] = write_op_files(tmp_path / "sources", 1, width=256, height=192)

    store(endpoint_for(storescp_uncompressed), [source])

    reference = tmp_path / "dcmtk.ppm"
    subprocess.run([dcmj2pnm, str(source), str(reference)], check=True)
    with Image.open(reference) as image:
        dcmtk_pixels = image.convert("RGB").tobytes()
    [received_path] = storescp_uncompressed.received_files()
    received = dcmread(received_path)
    assert max_difference(bytes(received.PixelData), dcmtk_pixels) <= (
        MAX_DECODER_DIFFERENCE
    )


def test_store_grey_jpeg_decodes_to_monochrome2(
    storescp_uncompressed: DcmtkServer,
) -> None:
    jpeg = make_fundus_jpeg(64, 48, seed=3, grey=True)

    report = store(endpoint_for(storescp_uncompressed), [make_op_dataset(jpeg)])

    assert report.outcomes[0].status is StoreStatus.SENT
    received = dcmread(storescp_uncompressed.received_files()[0])
    assert received.PhotometricInterpretation == "MONOCHROME2"
    assert received.SamplesPerPixel == 1
    assert "PlanarConfiguration" not in received
    assert max_difference(bytes(received.PixelData), decoded_pixels(jpeg)) <= (
        MAX_DECODER_DIFFERENCE
    )


def test_store_uses_implicit_when_only_implicit_accepted(tmp_path: Path) -> None:
    dataset = make_op_dataset(make_fundus_jpeg(64, 48))
    with run_storescp(
        tmp_path / "implicit", accept_jpeg=False, extra_arguments=["+xi"]
    ) as server:
        report = store(endpoint_for(server), [dataset])
        received = dcmread(server.received_files()[0])

    assert report.outcomes[0].status is StoreStatus.SENT
    assert report.outcomes[0].transfer_syntax_uid == ImplicitVRLittleEndian
    assert received.PhotometricInterpretation == "RGB"


def test_probe_reports_jpeg_or_uncompressed(
    storescp_jpeg: DcmtkServer, storescp_uncompressed: DcmtkServer
) -> None:
    jpeg_probe = probe_storage(endpoint_for(storescp_jpeg))
    native_probe = probe_storage(endpoint_for(storescp_uncompressed))

    assert jpeg_probe.transfer_syntax_for_jpeg() == JPEGBaseline8Bit
    assert native_probe.transfer_syntax_for_jpeg() == ExplicitVRLittleEndian
    assert JPEGBaseline8Bit not in native_probe.accepted[OP_8BIT_IMAGE_STORAGE]


@pytest.fixture(name="storescp_without_op")
def storescp_without_op_fixture(tmp_path: Path) -> DcmtkServer:
    """storescp whose negotiation profile lacks the OP SOP classes."""
    syntaxes = ["JPEGBaseline", "LocalEndianExplicit", "LittleEndianImplicit"]
    arguments = write_storescp_profile(
        tmp_path / "restricted.cfg",
        {
            "VerificationSOPClass": ["LittleEndianImplicit"],
            "VLPhotographicImageStorage": syntaxes,
            "SecondaryCaptureImageStorage": syntaxes,
        },
    )
    with run_storescp(
        tmp_path / "without-op", accept_jpeg=False, extra_arguments=arguments
    ) as server:
        yield server


def test_store_rejected_class_alone_raises(storescp_without_op: DcmtkServer) -> None:
    dataset = make_op_dataset(make_fundus_jpeg(64, 48))

    with pytest.raises(DeliveryError) as caught:
        store(endpoint_for(storescp_without_op), [dataset])

    assert caught.value.transient is False
    message = str(caught.value)
    assert "Ophthalmic Photography 8 Bit Image Storage with JPEG Baseline" in message
    assert "Explicit VR Little Endian" in message
    assert "Implicit VR Little Endian" in message
    assert storescp_without_op.received_files() == []


def test_store_rejected_class_fails_its_instances(
    storescp_without_op: DcmtkServer,
) -> None:
    op_image = make_op_dataset(make_fundus_jpeg(64, 48, seed=1))
    vl_image = make_op_dataset(make_fundus_jpeg(64, 48, seed=2))
    vl_image.SOPClassUID = VL_PHOTOGRAPHIC
    vl_image.file_meta.MediaStorageSOPClassUID = VL_PHOTOGRAPHIC

    report = store(endpoint_for(storescp_without_op), [op_image, vl_image])

    failed, sent = report.outcomes
    assert failed.status is StoreStatus.FAILED
    assert sent.status is StoreStatus.SENT
    assert failed.error is not None
    assert failed.error.transient is False
    message = str(failed.error)
    assert "rejected SOP class Ophthalmic Photography 8 Bit Image Storage" in message
    assert "JPEG Baseline (Process 1), Explicit VR Little Endian, Implicit" in message
    assert "fallback" in message
    assert len(storescp_without_op.received_files()) == 1


@pytest.mark.parametrize(
    ("fallback", "sop_class", "modality"),
    [
        (StoreFallback.VL_PHOTOGRAPHIC, VL_PHOTOGRAPHIC, "XC"),
        (StoreFallback.SECONDARY_CAPTURE, SECONDARY_CAPTURE, "OP"),
    ],
)
def test_store_fallback_keeps_instance_uid(
    storescp_without_op: DcmtkServer,
    fallback: StoreFallback,
    sop_class: str,
    modality: str,
) -> None:
    jpeg = make_fundus_jpeg(64, 48)
    dataset = make_op_dataset(jpeg)

    report = store(endpoint_for(storescp_without_op), [dataset], fallback=fallback)

    outcome = report.outcomes[0]
    assert outcome.status is StoreStatus.SENT
    assert outcome.sop_class_uid == sop_class
    received = dcmread(storescp_without_op.received_files()[0])
    assert received.SOPClassUID == sop_class
    assert received.file_meta.MediaStorageSOPClassUID == sop_class
    assert received.SOPInstanceUID == dataset.SOPInstanceUID
    assert received.Modality == modality
    assert received.file_meta.TransferSyntaxUID == JPEGBaseline8Bit
    if fallback is StoreFallback.SECONDARY_CAPTURE:
        assert received.ConversionType == "DI"
    else:
        assert received.AcquisitionContextSequence == []
    assert dataset.SOPClassUID == OP_8BIT_IMAGE_STORAGE  # the input is unchanged


def test_store_abort_at_first_request_is_transient(tmp_path: Path) -> None:
    sources = write_op_files(tmp_path / "sources", 3)
    with run_storescp(
        tmp_path / "aborting", accept_jpeg=True, extra_arguments=["--abort-after"]
    ) as server:
        report = store(endpoint_for(server), sources)

    assert [o.status for o in report.outcomes] == [StoreStatus.NOT_SENT] * 3
    for outcome in report.outcomes:
        assert outcome.error is not None
        assert outcome.error.transient is True


def test_store_response_timeout_is_transient(tmp_path: Path) -> None:
    sources = write_op_files(tmp_path / "sources", 2)
    with run_storescp(
        tmp_path / "slow", accept_jpeg=True, extra_arguments=["--sleep-during", "3"]
    ) as server:
        report = store(endpoint_for(server, dimse_timeout=1), sources)

    assert [o.status for o in report.outcomes] == [StoreStatus.NOT_SENT] * 2
    assert report.outcomes[0].error is not None
    assert "did not respond within 1 s" in report.outcomes[0].error.args[0]
    assert report.outcomes[0].error.transient is True


def test_store_abort_after_two_marks_rest_not_sent(tmp_path: Path) -> None:
    sources = write_op_files(tmp_path / "sources", 5)
    with run_fake_store_scp(abort_after=2) as scp:
        endpoint = DicomEndpoint("127.0.0.1", scp.port, "EYERDESKTOP", scp.ae_title)
        report = store(endpoint, sources)
        received = list(scp.received)

    statuses = [o.status for o in report.outcomes]
    assert statuses == [StoreStatus.SENT] * 2 + [StoreStatus.NOT_SENT] * 3
    assert received == [o.sop_instance_uid for o in report.outcomes[:2]]
    assert all(o.error is not None and o.error.transient for o in report.outcomes[2:])


def test_store_warning_statuses_are_stored(tmp_path: Path) -> None:
    sources = write_op_files(tmp_path / "sources", 3)
    with run_fake_store_scp([0xB000, 0xB006, 0xB007]) as scp:
        endpoint = DicomEndpoint("127.0.0.1", scp.port, "EYERDESKTOP", scp.ae_title)
        report = store(endpoint, sources)

    assert [o.status for o in report.outcomes] == [StoreStatus.WARNING] * 3
    assert [o.code for o in report.outcomes] == [0xB000, 0xB006, 0xB007]
    assert report.outcomes[0].meaning == "Coercion of Data Elements"
    assert report.outcomes[1].meaning == "Element Discarded"
    assert report.outcomes[2].meaning == "Data Set Does Not Match SOP Class"
    assert report.all_stored
    assert all(o.error is None for o in report.outcomes)


def test_store_failure_statuses_are_permanent(tmp_path: Path) -> None:
    sources = write_op_files(tmp_path / "sources", 4)
    with run_fake_store_scp([0xA701, 0xA900, 0xC001]) as scp:
        endpoint = DicomEndpoint("127.0.0.1", scp.port, "EYERDESKTOP", scp.ae_title)
        report = store(endpoint, sources)

    statuses = [o.status for o in report.outcomes]
    assert statuses == [StoreStatus.FAILED] * 3 + [StoreStatus.SENT]
    assert [o.code for o in report.outcomes] == [0xA701, 0xA900, 0xC001, 0x0000]
    meanings = [o.meaning for o in report.outcomes[:3]]
    assert meanings == [
        "Refused: Out of Resources",
        "Data Set Does Not Match SOP Class",
        "Cannot Understand",
    ]
    for outcome in report.outcomes[:3]:
        assert outcome.error is not None
        assert outcome.error.transient is False
        assert outcome.error.code == outcome.code
        assert f"0x{outcome.code:04X}" in str(outcome.error)


def test_store_unreadable_file_fails_alone(
    storescp_jpeg: DcmtkServer, tmp_path: Path
) -> None:
    [good] = write_op_files(tmp_path / "sources", 1)
    broken = tmp_path / "broken.dcm"
    broken.write_bytes(b"not a dicom file")

    report = store(endpoint_for(storescp_jpeg), [broken, good])

    assert [o.status for o in report.outcomes] == [
        StoreStatus.FAILED,
        StoreStatus.SENT,
    ]
    assert report.outcomes[0].source == str(broken)
    assert str(broken) in report.outcomes[0].meaning
    assert len(storescp_jpeg.received_files()) == 1


def test_store_unknown_called_ae_is_permanent(tmp_path: Path) -> None:
    dataset = make_op_dataset(make_fundus_jpeg(64, 48))
    with run_wlmscpfs(tmp_path / "worklists", ae_title="WLMSCP") as server:
        endpoint = DicomEndpoint("127.0.0.1", server.port, "EYERDESKTOP", "NOSUCHAE")
        error = rejection_of(lambda: store(endpoint, [dataset]))

    assert error.transient is False
    assert "NOSUCHAE" in str(error)
    assert "Called AE title not recognised" in str(error)


def test_store_server_down_is_transient(tmp_path: Path) -> None:
    dataset = make_op_dataset(make_fundus_jpeg(64, 48))
    with run_storescp(tmp_path / "gone", accept_jpeg=True) as server:
        port = server.port

    with pytest.raises(DeliveryError) as caught:
        store(endpoint_for(port, connect_timeout=2), [dataset])

    assert caught.value.transient is True
    assert "refused" in str(caught.value)
