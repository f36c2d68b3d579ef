"""The Orthanc test peer starts as configured and its helpers work."""

from __future__ import annotations

import io
import os
import socket
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage
from pynetdicom import AE
from pynetdicom.sop_class import ModalityWorklistInformationFind, Verification

from tests.helpers.orthanc import (  # noqa: F401
    OrthancServer,
    orthanc_fixture,
    orthanc_server_fixture,
)

pytestmark = pytest.mark.integration

CALLING_AET = "UNKNOWN_SCU"


def make_instance(sop_instance_uid: str) -> Dataset:
    dataset = Dataset()
    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset.SOPClassUID = SecondaryCaptureImageStorage
    dataset.SOPInstanceUID = sop_instance_uid
    dataset.StudyInstanceUID = sop_instance_uid + ".1"
    dataset.SeriesInstanceUID = sop_instance_uid + ".2"
    dataset.PatientID = "PEER-TEST"
    dataset.Modality = "OT"
    dataset.Rows = 2
    dataset.Columns = 2
    dataset.SamplesPerPixel = 1
    dataset.PhotometricInterpretation = "MONOCHROME2"
    dataset.BitsAllocated = 8
    dataset.BitsStored = 8
    dataset.HighBit = 7
    dataset.PixelRepresentation = 0
    dataset.PixelData = bytes([1, 2, 3, 4])
    return dataset


def c_store(orthanc: OrthancServer, dataset: Dataset) -> int:
    ae = AE(ae_title=CALLING_AET)
    ae.add_requested_context(SecondaryCaptureImageStorage, ExplicitVRLittleEndian)
    assoc = ae.associate("127.0.0.1", orthanc.dicom_port, ae_title=orthanc.aet)
    assert assoc.is_established
    try:
        status = assoc.send_c_store(dataset)
    finally:
        assoc.release()
    code: int = status.Status
    return code


def test_rest_requires_credentials(orthanc: OrthancServer) -> None:
    orthanc.password, real = "wrong", orthanc.password
    try:
        status, _ = orthanc.request("GET", "/system")
    finally:
        orthanc.password = real

    assert status == 401
    assert orthanc.get_json("/system")["DicomAet"] == orthanc.aet


def test_both_plugins_loaded(orthanc: OrthancServer) -> None:
    plugins = orthanc.get_json("/plugins")

    assert "dicom-web" in plugins
    assert "worklists" in plugins


def test_dicomweb_root_responds(orthanc: OrthancServer) -> None:
    status, body = orthanc.request("GET", "/dicom-web/studies?limit=1")

    assert status == 200
    assert body.strip() == b"[]"


def test_echo_from_unknown_calling_aet(orthanc: OrthancServer) -> None:
    ae = AE(ae_title=CALLING_AET)
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", orthanc.dicom_port, ae_title=orthanc.aet)
    assert assoc.is_established
    try:
        status = assoc.send_c_echo()
    finally:
        assoc.release()

    assert status.Status == 0x0000


def test_wrong_called_aet_rejected(orthanc: OrthancServer) -> None:
    ae = AE(ae_title=CALLING_AET)
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", orthanc.dicom_port, ae_title="NOT_ORTHANC")

    assert assoc.is_rejected


def test_c_store_seen_by_rest_helpers(orthanc: OrthancServer) -> None:
    dataset = make_instance("2.25.1001")

    assert c_store(orthanc, dataset) == 0x0000

    assert orthanc.count_instances() == 1
    orthanc_id = orthanc.find_instance("2.25.1001")
    assert orthanc_id is not None
    assert orthanc.instance_ids() == [orthanc_id]
    assert orthanc.instance_tags(orthanc_id)["PatientID"] == "PEER-TEST"
    stored = dcmread(io.BytesIO(orthanc.instance_file(orthanc_id)))
    assert stored.PixelData == dataset.PixelData


def test_find_instance_unknown_uid(orthanc: OrthancServer) -> None:
    assert orthanc.find_instance("2.25.424242") is None


def test_reset_empties_storage(orthanc: OrthancServer) -> None:
    c_store(orthanc, make_instance("2.25.1002"))
    orthanc.write_worklist(Dataset(), "leftover")

    orthanc.reset()

    assert orthanc.count_instances() == 0
    assert list(orthanc.worklist_dir.iterdir()) == []


def test_worklist_plugin_returns_match(orthanc: OrthancServer) -> None:
    step = Dataset()
    step.Modality = "OP"
    step.ScheduledStationAETitle = "EYER"
    step.ScheduledProcedureStepStartDate = "20260105"
    item = Dataset()
    item.SpecificCharacterSet = "ISO_IR 100"
    item.PatientName = "Worklist^Test"
    item.PatientID = "WL-1"
    item.ScheduledProcedureStepSequence = [step]
    orthanc.write_worklist(item, "wl-1")

    query_step = Dataset()
    query_step.Modality = "OP"
    query_step.ScheduledProcedureStepStartDate = ""
    query = Dataset()
    query.PatientName = ""
    query.PatientID = ""
    query.ScheduledProcedureStepSequence = [query_step]
    ae = AE(ae_title=CALLING_AET)
    ae.add_requested_context(ModalityWorklistInformationFind)
    assoc = ae.associate("127.0.0.1", orthanc.dicom_port, ae_title=orthanc.aet)
    assert assoc.is_established
    try:
        responses = list(assoc.send_c_find(query, ModalityWorklistInformationFind))
    finally:
        assoc.release()

    matches = [found for status, found in responses if status.Status == 0xFF00]
    assert len(matches) == 1
    assert matches[0].PatientID == "WL-1"
    assert responses[-1][0].Status == 0x0000


def test_stop_ends_process_and_frees_port(tmp_path: Path) -> None:
    server = OrthancServer(tmp_path)
    server.start()
    pid = server.pid
    port = server.http_port

    server.stop()

    assert server.pid is None
    assert pid is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0
