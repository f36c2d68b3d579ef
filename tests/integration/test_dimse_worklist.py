"""Modality Worklist queries against dcmtk wlmscpfs with files made by dump2dcm."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from eyer_desktop.core.errors import DeliveryError
from eyer_desktop.core.exams import Sex
from eyer_desktop.core.net import DicomEndpoint, WorklistQuery, query_worklist
from eyer_desktop.core.net.worklist import WorklistItem
from tests.helpers.dcmtk import (  # noqa: F401
    DcmtkServer,
    WorklistEntry,
    run_storescp,
    run_wlmscpfs,
    wlmscpfs_server_fixture,
    write_worklist_file,
)
from tests.helpers.rejections import rejection_of

pytestmark = pytest.mark.integration

DAY = dt.date(2026, 1, 1)
ANY_DATE = None


def endpoint_for(server: DcmtkServer) -> DicomEndpoint:
    return DicomEndpoint("127.0.0.1", server.port, "EYERDESKTOP", server.ae_title)


@pytest.fixture(name="worklist")
def worklist_fixture(wlmscpfs_server: DcmtkServer) -> DcmtkServer:
    """wlmscpfs with four steps: Latin-1, UTF-8, ASCII and another modality."""
    folder = wlmscpfs_server.folder
    entries = {
        "latin1": WorklistEntry(
            "CONCEIÇÃO^MARIA JOSÉ", character_set="ISO_IR 100", accession_number="A1"
        ),
        "utf8": WorklistEntry(
            "ÇAĞLAR^JOSÉ", character_set="ISO_IR 192", accession_number="A2"
        ),
        "ascii": WorklistEntry(
            "SILVA^JOAO",
            character_set="",
            accession_number="A3",
            scheduled_date="20260102",
            station_ae_title="OTHERCAMERA",
        ),
        "other": WorklistEntry(
            "SOUZA^ANA", accession_number="A4", modality="OT", sex="M"
        ),
    }
    for name, entry in entries.items():
        write_worklist_file(folder, name, entry)
    return wlmscpfs_server


def accessions(items: list[WorklistItem]) -> list[str]:
    return sorted(item.accession_number for item in items)


def test_worklist_matches_modality(worklist: DcmtkServer) -> None:
    items = query_worklist(
        endpoint_for(worklist), WorklistQuery(modality="OP", dates=ANY_DATE)
    )

    assert accessions(items) == ["A1", "A2", "A3"]


def test_worklist_matches_date(worklist: DcmtkServer) -> None:
    one_day = query_worklist(endpoint_for(worklist), WorklistQuery(dates=(DAY, DAY)))
    second_day = DAY + dt.timedelta(days=1)
    two_days = query_worklist(
        endpoint_for(worklist), WorklistQuery(dates=(DAY, second_day))
    )
    later = query_worklist(
        endpoint_for(worklist),
        WorklistQuery(dates=(DAY + dt.timedelta(days=2), DAY + dt.timedelta(days=9))),
    )

    assert accessions(one_day) == ["A1", "A2", "A4"]
    assert accessions(two_days) == ["A1", "A2", "A3", "A4"]
    assert later == []


def test_worklist_matches_station_ae_title(worklist: DcmtkServer) -> None:
    query = WorklistQuery(station_ae_title="OTHERCAMERA", dates=ANY_DATE)

    items = query_worklist(endpoint_for(worklist), query)

    assert accessions(items) == ["A3"]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("CONCEIÇÃO*", ["A1"]),
        ("ÇAĞLAR^JOSÉ", ["A2"]),
        ("*JOSÉ", ["A1", "A2"]),
        ("?AĞ*", ["A2"]),
        ("S*", ["A3", "A4"]),
        ("SILVA^JO?O", ["A3"]),
        ("conceicao*", ["A1"]),
        ("José Çağlar", ["A2"]),
    ],
)
def test_worklist_matches_accented_names(
    worklist: DcmtkServer, pattern: str, expected: list[str]
) -> None:
    query = WorklistQuery(patient_name=pattern, dates=ANY_DATE)

    items = query_worklist(endpoint_for(worklist), query)

    assert accessions(items) == expected


def test_worklist_decodes_both_character_sets(worklist: DcmtkServer) -> None:
    items = query_worklist(endpoint_for(worklist), WorklistQuery(dates=ANY_DATE))
    by_accession = {item.accession_number: item for item in items}

    latin1 = by_accession["A1"]
    assert latin1.patient_name.family == "CONCEIÇÃO"
    assert latin1.patient_name.given == "MARIA JOSÉ"
    utf8 = by_accession["A2"]
    assert utf8.patient_name.family == "ÇAĞLAR"
    assert utf8.patient_dicom_name == "ÇAĞLAR^JOSÉ"


def test_worklist_guesses_missing_character_set(tmp_path: Path) -> None:
    with run_wlmscpfs(tmp_path / "worklists", keep_character_set=False) as server:
        write_worklist_file(
            server.folder,
            "latin1",
            WorklistEntry("JOÃO^ZÉ", character_set="ISO_IR 100", accession_number="L"),
        )
        write_worklist_file(
            server.folder,
            "utf8",
            WorklistEntry(
                "ÇAĞLAR^ZÉ", character_set="ISO_IR 192", accession_number="U"
            ),
        )
        items = query_worklist(endpoint_for(server), WorklistQuery(dates=ANY_DATE))

    names = {item.accession_number: item.patient_dicom_name for item in items}
    assert names == {"L": "JOÃO^ZÉ", "U": "ÇAĞLAR^ZÉ"}


def test_worklist_item_fields(worklist: DcmtkServer) -> None:
    query = WorklistQuery(patient_name="CONCEI*", dates=(DAY, DAY))

    [item] = query_worklist(endpoint_for(worklist), query)

    assert item.patient_id == "PID001"
    assert item.issuer_of_patient_id == "CLINIC"
    assert item.birth_date == dt.date(1958, 3, 2)
    assert item.sex is Sex.FEMALE
    assert item.study_instance_uid == "1.2.826.0.1.3680043.10.1.1"
    assert item.requested_procedure_id == "RP001"
    assert item.requested_procedure_description == "Retinografia"
    assert item.scheduled_procedure_step_id == "SPS001"
    assert item.scheduled_procedure_step_description == "Fundus photography"
    assert item.scheduled_date == DAY
    assert item.scheduled_time == dt.time(9, 30)
    assert item.modality == "OP"
    assert item.station_ae_title == "EYERDESKTOP"
    assert item.referring_physician_name == "HOUSE^GREGORY"
    link = item.to_worklist_link()
    assert link.accession_number == "A1"
    assert link.patient_id == "PID001"
    patient = item.to_patient()
    assert patient.document.number == "PID001"
    assert patient.document.type == "CLINIC"


def test_worklist_failure_status_is_permanent(worklist: DcmtkServer) -> None:
    (worklist.folder / "lockfile").unlink()

    with pytest.raises(DeliveryError) as caught:
        query_worklist(endpoint_for(worklist), WorklistQuery(dates=ANY_DATE))

    assert caught.value.transient is False
    assert caught.value.code == 0xA700
    assert "0xA700" in str(caught.value)


def test_worklist_unknown_called_ae_is_permanent(worklist: DcmtkServer) -> None:
    endpoint = DicomEndpoint("127.0.0.1", worklist.port, "EYERDESKTOP", "NOTHERE")

    error = rejection_of(lambda: query_worklist(endpoint, WorklistQuery()))

    assert error.transient is False
    assert "NOTHERE" in str(error)


def test_worklist_rejected_by_storage_only_server(tmp_path: Path) -> None:
    with run_storescp(tmp_path / "store-only", accept_jpeg=False) as server:
        endpoint = DicomEndpoint("127.0.0.1", server.port, "EYERDESKTOP", "STORESCP")
        with pytest.raises(DeliveryError) as caught:
            query_worklist(endpoint, WorklistQuery())

    assert caught.value.transient is False
    assert "Modality Worklist Information Model - FIND" in str(caught.value)
