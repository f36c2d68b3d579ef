"""Exams delivered through the command line to real peers on loopback.

Every test goes the way a user's exam goes: the exam library, the routing
rules, the outbox, the delivery engine and the workspace's sender, started by
``eyer-desktop send`` or ``outbox run``. The peers are dcmtk's storescp (with
and without JPEG), wlmscpfs and Orthanc with its DICOMweb and worklist
plugins. Only the abort in the middle of a batch uses the fake SCP, because
storescp's ``--abort-after`` aborts before the first image is stored.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.encaps import generate_frames
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEGBaseline8Bit

from eyer_desktop.core.conversion import conversion_options
from eyer_desktop.core.dicom.convert import ExamConverter
from eyer_desktop.core.exams import Exam, ExamType, WorklistLink
from eyer_desktop.core.importer import import_images, make_patient
from eyer_desktop.core.net.transcode import (
    OP_8BIT_IMAGE_STORAGE,
    STEREOMETRIC_RELATIONSHIP_STORAGE,
)
from eyer_desktop.core.paths import AppPaths
from eyer_desktop.core.samples import write_sample_images
from eyer_desktop.core.workspace import Workspace
from tests.cli.conftest import RunCli
from tests.helpers.dcmtk import (  # noqa: F401
    DcmtkServer,
    WorklistEntry,
    free_port,
    require_tool,
    storescp_jpeg_fixture,
    storescp_uncompressed_fixture,
    wlmscpfs_server_fixture,
    write_worklist_file,
)
from tests.helpers.delivery_profile import (  # noqa: F401
    PRIMARY_KEY,
    SAMPLE_SIZE,
    add_storage_server,
    add_worklist_server,
    copy_samples,
    instance_uids,
    outbox_rows,
    read_received,
    run_cli_fixture,
    run_engine_later,
    sample_library_fixture,
    set_cloud,
    states_of,
    store_password,
)
from tests.helpers.fake_store_scp import run_fake_store_scp
from tests.helpers.keyrings import MemoryKeyring, installed_keyring
from tests.helpers.orthanc import (  # noqa: F401
    OrthancServer,
    orthanc_fixture,
    orthanc_server_fixture,
)
from tests.helpers.reactor_race import reactor_waits_for_responses
from tests.helpers.storescp_on_port import run_storescp_on_port

pytestmark = pytest.mark.integration

# dcmdjpeg (IJG) and Pillow (libjpeg-turbo) may round a sample differently.
MAX_DECODER_DIFFERENCE = 2
WORKLIST_DAY = "2026-01-01"


@pytest.fixture(name="samples")
def samples_fixture(isolated_profile: AppPaths, sample_library: Path) -> list[Exam]:
    """One sample exam of each type in the test profile's library."""
    return copy_samples(isolated_profile, sample_library)


@pytest.fixture(name="keyring_backend")
def keyring_backend_fixture() -> Iterator[MemoryKeyring]:
    with installed_keyring(MemoryKeyring()) as backend:
        yield backend


def ids_of(exams: list[Exam]) -> list[str]:
    return [exam.exam_id for exam in exams]


def converter_for(paths: AppPaths, exam: Exam, server_key: str) -> ExamConverter:
    """Return a converter with the options the sender uses for this server."""
    workspace = Workspace(paths)
    server = workspace.servers.get(server_key)
    return ExamConverter(exam, conversion_options(workspace.settings, server))


def first_fragment(dataset: Dataset) -> bytes:
    return next(generate_frames(dataset.PixelData, number_of_frames=1))


def decode_with_dcmtk(dataset: Dataset, work: Path) -> bytes:
    """Return the native pixels of a JPEG dataset, decoded by dcmtk's dcmdjpeg."""
    source = work / f"{dataset.SOPInstanceUID}.jpeg.dcm"
    target = work / f"{dataset.SOPInstanceUID}.native.dcm"
    dataset.save_as(source, enforce_file_format=True)
    subprocess.run(
        [require_tool("dcmdjpeg"), str(source), str(target)],
        check=True,
        capture_output=True,
    )
    return bytes(dcmread(target).PixelData)


def max_difference(first: bytes, second: bytes) -> int:
    assert len(first) == len(second)
    return max(abs(a - b) for a, b in zip(first, second, strict=True))


# Storage: dcmtk storescp


def test_send_every_sample_type_to_storescp_jpeg(
    run_cli: RunCli,
    storescp_jpeg: DcmtkServer,
    samples: list[Exam],
    isolated_profile: AppPaths,
) -> None:
    key = add_storage_server(run_cli, "Arquivo", storescp_jpeg.port)

    result = run_cli("send", *ids_of(samples))

    received = read_received(storescp_jpeg.received_files())
    assert result.code == 0, result.err
    assert "24 sent, 0 with warnings, 0 to retry, 0 failed" in result.out
    assert set(received) == instance_uids(samples)
    assert set(states_of(outbox_rows(run_cli), key)) == {"sent"}
    for exam in samples:
        converter = converter_for(isolated_profile, exam, key)
        for image in exam.images:
            copy = received[image.sop_instance_uid]
            embedded = first_fragment(converter.image_instance(image).dataset)
            source = exam.image_path(image).read_bytes()
            assert copy.SOPClassUID == OP_8BIT_IMAGE_STORAGE
            assert copy.file_meta.TransferSyntaxUID == JPEGBaseline8Bit
            assert first_fragment(copy) == embedded
            # Only the padding to an even length is added to the JPEG.
            assert embedded[: len(source)] == source
            assert len(embedded) - len(source) in (0, 1)


def test_stereo_exam_smr_objects_arrive(
    run_cli: RunCli,
    storescp_jpeg: DcmtkServer,
    samples: list[Exam],
    isolated_profile: AppPaths,
) -> None:
    stereo = next(exam for exam in samples if exam.exam_type is ExamType.STEREO)
    key = add_storage_server(run_cli, "Arquivo", storescp_jpeg.port)

    result = run_cli("send", stereo.exam_id)

    received = read_received(storescp_jpeg.received_files())
    relationships = converter_for(isolated_profile, stereo, key).stereo_instances()
    assert result.code == 0, result.err
    assert len(relationships) == 2
    for instance in relationships:
        copy = received[str(instance.dataset.SOPInstanceUID)]
        assert copy.SOPClassUID == STEREOMETRIC_RELATIONSHIP_STORAGE
        assert copy.StudyInstanceUID == stereo.uids.study_instance_uid
        pair = copy.StereoPairsSequence[0]
        for side in (pair.LeftImageSequence[0], pair.RightImageSequence[0]):
            assert side.ReferencedSOPInstanceUID in received


def test_uncompressed_storescp_gets_decoded_pixels(
    run_cli: RunCli,
    storescp_uncompressed: DcmtkServer,
    samples: list[Exam],
    isolated_profile: AppPaths,
    tmp_path: Path,
) -> None:
    key = add_storage_server(run_cli, "Arquivo nativo", storescp_uncompressed.port)

    result = run_cli("send", *ids_of(samples))

    received = read_received(storescp_uncompressed.received_files())
    assert result.code == 0, result.err
    assert set(received) == instance_uids(samples)
    for exam in samples:
        converter = converter_for(isolated_profile, exam, key)
        for image in exam.images:
            copy = received[image.sop_instance_uid]
            jpeg_dataset = converter.image_instance(image).dataset
            reference = decode_with_dcmtk(jpeg_dataset, tmp_path)
            assert copy.file_meta.TransferSyntaxUID in (
                ExplicitVRLittleEndian,
                ImplicitVRLittleEndian,
            )
            assert copy.PhotometricInterpretation in ("RGB", "MONOCHROME2")
            assert copy.LossyImageCompression == "01"
            assert (copy.Rows, copy.Columns) == (
                jpeg_dataset.Rows,
                jpeg_dataset.Columns,
            )
            pixels = bytes(copy.PixelData)[: len(reference)]
            assert max_difference(pixels, reference) <= MAX_DECODER_DIFFERENCE


# Storage: Orthanc over DIMSE and DICOMweb


def test_orthanc_dimse_stores_every_instance(
    run_cli: RunCli, orthanc: OrthancServer, samples: list[Exam]
) -> None:
    add_storage_server(
        run_cli, "Orthanc", orthanc.dicom_port, aet=orthanc.aet, action="mirror"
    )
    exams = samples[:4]

    result = run_cli("send", *ids_of(exams))

    assert result.code == 0, result.err
    assert orthanc.count_instances() == len(instance_uids(exams))
    for uid in instance_uids(exams):
        orthanc_id = orthanc.find_instance(uid)
        assert orthanc_id is not None, uid
        assert orthanc.instance_tags(orthanc_id)["SOPInstanceUID"] == uid


def test_stow_with_basic_auth_from_keyring(
    run_cli: RunCli,
    orthanc: OrthancServer,
    samples: list[Exam],
    keyring_backend: MemoryKeyring,
    isolated_profile: AppPaths,
) -> None:
    set_cloud(run_cli, orthanc.dicomweb_url, username=orthanc.username)
    store_password(PRIMARY_KEY, orthanc.password)
    color = samples[0]

    result = run_cli("send", color.exam_id)

    assert result.code == 0, result.err
    assert states_of(outbox_rows(run_cli), PRIMARY_KEY) == ["sent", "sent"]
    assert orthanc.count_instances() == 2
    converter = converter_for(isolated_profile, color, PRIMARY_KEY)
    for image in color.images:
        orthanc_id = orthanc.find_instance(image.sop_instance_uid)
        assert orthanc_id is not None
        stored = dcmread(io.BytesIO(orthanc.instance_file(orthanc_id)))
        expected = first_fragment(converter.image_instance(image).dataset)
        assert first_fragment(stored) == expected
        tags = orthanc.instance_tags(orthanc_id)
        assert tags["PatientName"] == "Gonçalves^Maria^da Conceição"


def test_stow_wrong_password_fails_permanently(
    run_cli: RunCli,
    orthanc: OrthancServer,
    samples: list[Exam],
    keyring_backend: MemoryKeyring,
    isolated_profile: AppPaths,
) -> None:
    set_cloud(run_cli, orthanc.dicomweb_url, username=orthanc.username)
    store_password(PRIMARY_KEY, "not-the-password")

    sent = run_cli("send", samples[0].exam_id)
    later = run_engine_later(isolated_profile)
    listing = run_cli("outbox", "list")

    rows = outbox_rows(run_cli)
    assert sent.code == 1
    assert "failed: " in sent.out
    assert "user name or password" in sent.out
    assert later.batches == 0
    assert [row["state"] for row in rows] == ["failed", "failed"]
    assert all(row["status_code"] == 401 for row in rows)
    assert all("HTTP 401" in row["last_error"] for row in rows)
    assert "HTTP 401" in listing.out
    assert "not-the-password" not in sent.out + sent.err + listing.out
    assert orthanc.count_instances() == 0

    store_password(PRIMARY_KEY, orthanc.password)
    retried = run_cli("outbox", "retry", "--all-failed")
    ran = run_cli("outbox", "run")

    assert retried.out.strip() == "2 deliveries queued again"
    assert ran.code == 0, ran.err
    assert orthanc.count_instances() == 2


def test_stow_without_password_fails_permanently(
    run_cli: RunCli,
    orthanc: OrthancServer,
    samples: list[Exam],
    keyring_backend: MemoryKeyring,
) -> None:
    set_cloud(run_cli, orthanc.dicomweb_url, username=orthanc.username)

    sent = run_cli("send", samples[0].exam_id)

    rows = outbox_rows(run_cli)
    assert sent.code == 1
    assert [row["state"] for row in rows] == ["failed", "failed"]
    assert all("not in the keyring" in row["last_error"] for row in rows)
    assert "Traceback" not in sent.err
    assert orthanc.count_instances() == 0


@pytest.mark.parametrize(
    ("password", "expected_lines"),
    [
        (
            None,
            [
                "ok    Reachable: {url}",
                "ok    Credentials accepted: QIDO-RS query answered",
            ],
        ),
        ("not-the-password", ["ok    Reachable: {url}"]),
    ],
)
def test_test_server_checks_cloud_credentials(
    run_cli: RunCli,
    orthanc: OrthancServer,
    keyring_backend: MemoryKeyring,
    password: str | None,
    expected_lines: list[str],
) -> None:
    set_cloud(run_cli, orthanc.dicomweb_url, username=orthanc.username)
    store_password(PRIMARY_KEY, password or orthanc.password)

    result = run_cli("test-server", PRIMARY_KEY)

    lines = result.out.splitlines()
    expected = [line.format(url=orthanc.dicomweb_url) for line in expected_lines]
    assert lines[: len(expected)] == expected
    if password is None:
        assert result.code == 0, result.err
        assert len(lines) == 2
    else:
        assert result.code == 1
        assert lines[-1].startswith("FAIL  Credentials accepted: ")
        assert "HTTP 401" in lines[-1]


def test_test_server_names_missing_password(
    run_cli: RunCli, orthanc: OrthancServer, keyring_backend: MemoryKeyring
) -> None:
    set_cloud(run_cli, orthanc.dicomweb_url, username=orthanc.username)

    result = run_cli("test-server", PRIMARY_KEY)

    assert result.code == 1
    assert result.out.splitlines() == [
        f"ok    Reachable: {orthanc.dicomweb_url}",
        "FAIL  Credentials accepted: Password or token of server EYE000: not in "
        "the keyring. Enter it in the server's settings",
    ]


# Worklist


@pytest.fixture(name="worklist_server")
def worklist_server_fixture(wlmscpfs_server: DcmtkServer) -> DcmtkServer:
    """wlmscpfs with accented names, two dates and two modalities."""
    entries = {
        "latin1": WorklistEntry("GONÇALVES^MARIA", accession_number="A1"),
        "ascii": WorklistEntry(
            "GONZAGA^PEDRO", character_set="", accession_number="A2"
        ),
        "utf8-next-day": WorklistEntry(
            "GONÇALVES^ANA JÚLIA",
            character_set="ISO_IR 192",
            accession_number="A3",
            scheduled_date="20260102",
        ),
        "other-modality": WorklistEntry(
            "GONÇALVES^RITA", accession_number="A4", modality="OT"
        ),
    }
    for name, entry in entries.items():
        write_worklist_file(wlmscpfs_server.folder, name, entry)
    return wlmscpfs_server


def worklist_rows(run_cli: RunCli, key: str, *options: str) -> list[dict[str, str]]:
    result = run_cli("worklist", key, "--json", *options)
    assert result.code == 0, result.err
    rows: list[dict[str, str]] = json.loads(result.out)
    return rows


def accessions(rows: list[dict[str, str]]) -> list[str]:
    return sorted(row["accession_number"] for row in rows)


def test_worklist_matches_modality_date_and_name(
    run_cli: RunCli, worklist_server: DcmtkServer
) -> None:
    key = add_worklist_server(
        run_cli, "RIS", worklist_server.port, aet=worklist_server.ae_title
    )

    one_day = worklist_rows(run_cli, key, "--date", WORKLIST_DAY)
    by_name = worklist_rows(run_cli, key, "--date", WORKLIST_DAY, "--name", "GONÇ*")
    two_days = worklist_rows(
        run_cli, key, "--date", "2026-01-01..2026-01-02", "--name", "GONÇALVES*"
    )
    any_day = worklist_rows(run_cli, key, "--date", "any")

    assert accessions(one_day) == ["A1", "A2"]
    assert accessions(by_name) == ["A1"]
    assert by_name[0]["patient_name"] == "GONÇALVES^MARIA"
    assert accessions(two_days) == ["A1", "A3"]
    assert {row["patient_name"] for row in two_days} == {
        "GONÇALVES^MARIA",
        "GONÇALVES^ANA JÚLIA",
    }
    assert accessions(any_day) == ["A1", "A2", "A3"]


def test_worklist_table_shows_accented_name(
    run_cli: RunCli, worklist_server: DcmtkServer
) -> None:
    key = add_worklist_server(
        run_cli, "RIS", worklist_server.port, aet=worklist_server.ae_title
    )

    result = run_cli("worklist", key, "--date", "2026-01-02")

    lines = result.out.splitlines()
    assert result.code == 0, result.err
    assert lines[0].split()[:2] == ["DATE", "PATIENT"]
    assert len(lines) == 2
    assert "GONÇALVES^ANA JÚLIA" in lines[1]
    assert "A3" in lines[1]


def test_worklist_lowercase_name_matches_uppercase_entry(
    run_cli: RunCli, worklist_server: DcmtkServer
) -> None:
    key = add_worklist_server(
        run_cli, "RIS", worklist_server.port, aet=worklist_server.ae_title
    )

    rows = worklist_rows(run_cli, key, "--date", WORKLIST_DAY, "--name", "gonç*")

    assert accessions(rows) == ["A1"]


def orthanc_worklist_item(name: str, accession: str, charset: str) -> Dataset:
    item = Dataset()
    item.SpecificCharacterSet = charset
    item.PatientName = name
    item.PatientID = "PID7"
    item.AccessionNumber = accession
    step = Dataset()
    step.Modality = "OP"
    step.ScheduledStationAETitle = "EYERDESKTOP"
    step.ScheduledProcedureStepStartDate = "20260101"
    step.ScheduledProcedureStepStartTime = "081500"
    step.ScheduledProcedureStepID = "S7"
    item.ScheduledProcedureStepSequence = [step]
    return item


def test_orthanc_worklist_by_accented_name(
    run_cli: RunCli, orthanc: OrthancServer
) -> None:
    orthanc.write_worklist(
        orthanc_worklist_item("CONCEIÇÃO^MARIA", "W1", "ISO_IR 100"), "w1"
    )
    orthanc.write_worklist(orthanc_worklist_item("JOÃO^JOSÉ", "W2", "ISO_IR 192"), "w2")
    orthanc.write_worklist(
        orthanc_worklist_item("CONCEITO^ANA", "W3", "ISO_IR 100"), "w3"
    )
    key = add_worklist_server(
        run_cli, "Orthanc RIS", orthanc.dicom_port, aet=orthanc.aet
    )

    everything = worklist_rows(run_cli, key, "--date", WORKLIST_DAY)
    latin1 = worklist_rows(run_cli, key, "--date", WORKLIST_DAY, "--name", "CONCEIÇ*")
    utf8 = worklist_rows(run_cli, key, "--date", "any", "--name", "joão*")

    assert accessions(everything) == ["W1", "W2", "W3"]
    assert accessions(latin1) == ["W1"]
    assert latin1[0]["patient_name"] == "CONCEIÇÃO^MARIA"
    assert accessions(utf8) == ["W2"]
    assert utf8[0]["patient_name"] == "JOÃO^JOSÉ"


def test_exam_from_worklist_carries_its_values(
    run_cli: RunCli,
    worklist_server: DcmtkServer,
    storescp_jpeg: DcmtkServer,
    isolated_profile: AppPaths,
    tmp_path: Path,
) -> None:
    worklist_key = add_worklist_server(
        run_cli, "RIS", worklist_server.port, aet=worklist_server.ae_title
    )
    add_storage_server(run_cli, "Arquivo", storescp_jpeg.port)
    [row] = worklist_rows(run_cli, worklist_key, "--date", "any", "--name", "*JÚLIA")
    link = WorklistLink(
        **{field.name: row[field.name] for field in dataclasses.fields(WorklistLink)}
    )
    exam = import_worklist_exam(isolated_profile, row, link, tmp_path)

    result = run_cli("send", exam.exam_id)

    assert result.code == 0, result.err
    received = read_received(storescp_jpeg.received_files())
    assert set(received) == {image.sop_instance_uid for image in exam.images}
    for copy in received.values():
        assert copy.AccessionNumber == "A3"
        assert copy.StudyInstanceUID == "1.2.826.0.1.3680043.10.1.1"
        assert copy.PatientID == "PID001"
        assert copy.IssuerOfPatientID == "CLINIC"
        assert copy.PatientName == "GONÇALVES^ANA JÚLIA"
        assert copy.ReferringPhysicianName == "HOUSE^GREGORY"
        request = copy.RequestAttributesSequence[0]
        assert request.RequestedProcedureID == "RP001"
        assert request.ScheduledProcedureStepID == "SPS001"
        assert request.AccessionNumber == "A3"


def import_worklist_exam(
    paths: AppPaths, row: dict[str, str], link: WorklistLink, work: Path
) -> Exam:
    """Import two images as an exam of the worklist entry ``row``."""
    family, _, given = row["patient_name"].partition("^")
    patient = make_patient(
        family=family,
        given=given,
        document_number=row["patient_id"],
        sex=row["sex"],
        birth_date=row["birth_date"],
    )
    files = write_sample_images(work / "images", 2, size=SAMPLE_SIZE)
    workspace = Workspace(paths)
    try:
        return import_images(
            workspace.library,
            files,
            patient,
            captured_at=dt.datetime(2026, 1, 2, 9, 30, tzinfo=dt.UTC),
            worklist=link,
        )
    finally:
        workspace.close()


# Faults


def test_server_down_is_retried_until_it_starts(
    run_cli: RunCli, samples: list[Exam], isolated_profile: AppPaths, tmp_path: Path
) -> None:
    port = free_port()
    key = add_storage_server(run_cli, "Arquivo", port)

    first = run_cli("send", samples[0].exam_id)
    too_early = run_cli("outbox", "run")

    rows = outbox_rows(run_cli)
    assert first.code == 1
    assert "2 to retry" in first.out
    assert "retry at" in first.out
    assert too_early.code == 1
    assert "0 sent" in too_early.out
    assert "2 deliveries still queued" in too_early.err
    assert states_of(rows, key) == ["queued", "queued"]
    assert all("refused" in row["last_error"] for row in rows)
    assert all(row["attempts"] == 1 for row in rows)

    with run_storescp_on_port(port, tmp_path / "received") as storescp:
        summary = run_engine_later(isolated_profile)
        received = read_received(storescp.received_files())

    assert summary.sent == 2
    assert set(received) == instance_uids(samples[:1])
    assert states_of(outbox_rows(run_cli), key) == ["sent", "sent"]


def test_unknown_called_ae_title_fails_permanently(
    run_cli: RunCli,
    orthanc: OrthancServer,
    samples: list[Exam],
    isolated_profile: AppPaths,
) -> None:
    key = add_storage_server(run_cli, "Orthanc", orthanc.dicom_port, aet="NOSUCHAE")

    sent = run_cli("send", samples[0].exam_id)
    later = run_engine_later(isolated_profile)

    rows = outbox_rows(run_cli)
    assert sent.code == 1
    assert "0 sent, 0 with warnings, 0 to retry, 2 failed" in sent.out
    assert states_of(rows, key) == ["failed", "failed"]
    for row in rows:
        assert "'NOSUCHAE'" in row["last_error"]
        assert "correct the AET" in row["last_error"]
    assert later.batches == 0
    assert orthanc.count_instances() == 0


def test_abort_mid_batch_keeps_rest_queued(
    run_cli: RunCli, samples: list[Exam], isolated_profile: AppPaths
) -> None:
    panoramic = next(exam for exam in samples if exam.exam_type is ExamType.PANORAMIC)
    stored_before_abort = 3
    with run_fake_store_scp(abort_after=stored_before_abort) as scp:
        key = add_storage_server(run_cli, "Fake", scp.port, aet=scp.ae_title)

        first = run_cli("send", panoramic.exam_id)
        rows = outbox_rows(run_cli)
        scp.abort_after = None
        summary = run_engine_later(isolated_profile)

    states = states_of(rows, key)
    assert first.code == 1
    assert states.count("sent") == stored_before_abort
    assert states.count("queued") == len(panoramic.images) - stored_before_abort
    waiting = [row for row in rows if row["state"] == "queued"]
    assert all("aborted" in row["last_error"] for row in waiting)
    assert summary.sent == len(panoramic.images) - stored_before_abort
    assert sorted(scp.received) == sorted(instance_uids([panoramic]))
    assert set(states_of(outbox_rows(run_cli), key)) == {"sent"}


def test_store_response_reaches_sender(
    run_cli: RunCli, storescp_jpeg: DcmtkServer, samples: list[Exam]
) -> None:
    panoramic = next(exam for exam in samples if exam.exam_type is ExamType.PANORAMIC)
    key = add_storage_server(
        run_cli, "Arquivo", storescp_jpeg.port, options=("--dimse-timeout", "2")
    )

    with reactor_waits_for_responses():
        result = run_cli("send", panoramic.exam_id)

    assert result.code == 0, result.out
    assert set(states_of(outbox_rows(run_cli), key)) == {"sent"}
