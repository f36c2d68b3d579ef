"""C-ECHO, C-STORE and worklist C-FIND against a real Orthanc on loopback."""

from __future__ import annotations

import datetime as dt

import pytest
from pydicom.dataset import Dataset

from eyer_desktop.core.errors import DeliveryError
from eyer_desktop.core.net import (
    DicomEndpoint,
    StoreStatus,
    WorklistQuery,
    echo,
    probe_storage,
    query_worklist,
    store,
)
from tests.helpers.op_samples import make_fundus_jpeg, make_op_dataset
from tests.helpers.orthanc import (  # noqa: F401
    OrthancServer,
    orthanc_fixture,
    orthanc_server_fixture,
)

pytestmark = pytest.mark.integration

DAY = dt.date(2026, 1, 1)


def endpoint_for(orthanc: OrthancServer, called_ae: str = "") -> DicomEndpoint:
    return DicomEndpoint(
        "127.0.0.1", orthanc.dicom_port, "EYERDESKTOP", called_ae or orthanc.aet
    )


def worklist_item(name: str, accession: str, charset: str) -> Dataset:
    item = Dataset()
    item.SpecificCharacterSet = charset
    item.PatientName = name
    item.PatientID = "PID9"
    item.AccessionNumber = accession
    step = Dataset()
    step.Modality = "OP"
    step.ScheduledStationAETitle = "EYERDESKTOP"
    step.ScheduledProcedureStepStartDate = f"{DAY:%Y%m%d}"
    step.ScheduledProcedureStepStartTime = "101500"
    step.ScheduledProcedureStepID = "S9"
    item.ScheduledProcedureStepSequence = [step]
    return item


def test_orthanc_echo_and_probe(orthanc: OrthancServer) -> None:
    round_trip = echo(endpoint_for(orthanc))
    probe = probe_storage(endpoint_for(orthanc))

    assert round_trip > 0
    assert probe.transfer_syntax_for_jpeg() == "1.2.840.10008.1.2.4.50"


def test_orthanc_stores_jpeg_op(orthanc: OrthancServer) -> None:
    datasets = [
        make_op_dataset(make_fundus_jpeg(128, 96, seed=seed), instance_number=seed)
        for seed in (1, 2)
    ]

    report = store(endpoint_for(orthanc), datasets)

    assert [o.status for o in report.outcomes] == [StoreStatus.SENT] * 2
    for dataset in datasets:
        orthanc_id = orthanc.find_instance(dataset.SOPInstanceUID)
        assert orthanc_id is not None
        tags = orthanc.instance_tags(orthanc_id)
        assert tags["SOPClassUID"] == "1.2.840.10008.5.1.4.1.1.77.1.5.1"
        assert tags["Modality"] == "OP"


def test_orthanc_resend_keeps_one_copy(orthanc: OrthancServer) -> None:
    dataset = make_op_dataset(make_fundus_jpeg(64, 48))

    store(endpoint_for(orthanc), [dataset])
    store(endpoint_for(orthanc), [dataset])

    assert orthanc.count_instances() == 1


def test_orthanc_unknown_called_ae_is_permanent(orthanc: OrthancServer) -> None:
    dataset = make_op_dataset(make_fundus_jpeg(64, 48))

    with pytest.raises(DeliveryError) as caught:
        store(endpoint_for(orthanc, called_ae="NOTORTHANC"), [dataset])

    assert caught.value.transient is False
    assert "NOTORTHANC" in str(caught.value)
    assert orthanc.count_instances() == 0


def test_orthanc_worklist_accented_names(orthanc: OrthancServer) -> None:
    # Orthanc 1.10 returns worklist items in its default encoding (Latin-1
    # here), whatever the file's, so the UTF-8 file holds only letters Latin-1 has.
    orthanc.write_worklist(worklist_item("CONCEIÇÃO^MARIA", "W1", "ISO_IR 100"), "w1")
    orthanc.write_worklist(worklist_item("JOÃO^ZÉ", "W2", "ISO_IR 192"), "w2")
    endpoint = endpoint_for(orthanc)

    everything = query_worklist(
        endpoint, WorklistQuery(modality="OP", dates=(DAY, DAY))
    )
    latin1 = query_worklist(
        endpoint, WorklistQuery(patient_name="CONCEIÇÃO*", dates=None)
    )
    utf8 = query_worklist(endpoint, WorklistQuery(patient_name="joão*", dates=None))

    names = {item.accession_number: item.patient_dicom_name for item in everything}
    assert names == {"W1": "CONCEIÇÃO^MARIA", "W2": "JOÃO^ZÉ"}
    assert [item.accession_number for item in latin1] == ["W1"]
    assert [item.accession_number for item in utf8] == ["W2"]
    assert everything[0].scheduled_time == dt.time(10, 15)


def test_orthanc_worklist_other_day_is_empty(orthanc: OrthancServer) -> None:
    orthanc.write_worklist(worklist_item("SILVA^ANA", "W3", "ISO_IR 100"), "w3")
    other_day = DAY + dt.timedelta(days=5)

    items = query_worklist(
        endpoint_for(orthanc), WorklistQuery(dates=(other_day, other_day))
    )

    assert items == []
