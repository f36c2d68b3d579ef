"""The demo's DICOM peer, driven by dcmtk's storescu and findscu."""

from __future__ import annotations

import datetime as dt
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset

from eyer_desktop.core.demo_peer import (
    DEMO_WORKLIST,
    DemoPeer,
    worklist_dataset,
    worklist_matches,
)
from eyer_desktop.core.net.association import DicomEndpoint
from eyer_desktop.core.net.worklist import WorklistQuery, query_worklist
from tests.helpers.dcmtk import require_tool
from tests.helpers.op_samples import write_op_files

DAY = dt.date(2027, 3, 9)


@pytest.fixture
def peer(tmp_path: Path) -> Iterator[DemoPeer]:
    with DemoPeer.with_demo_worklist(tmp_path / "received", DAY) as running:
        yield running


def endpoint(peer: DemoPeer, called_ae: str = "EYERDEMO") -> DicomEndpoint:
    return DicomEndpoint(
        host="127.0.0.1", port=peer.port, calling_ae="TESTSCU", called_ae=called_ae
    )


def query_identifier(**step_values: str) -> Dataset:
    identifier = Dataset()
    identifier.PatientName = step_values.pop("PatientName", "")
    step = Dataset()
    for keyword, value in step_values.items():
        setattr(step, keyword, value)
    identifier.ScheduledProcedureStepSequence = [step]
    return identifier


@pytest.mark.integration
def test_peer_stores_what_storescu_sends(tmp_path: Path, peer: DemoPeer) -> None:
    storescu = require_tool("storescu")
    files = write_op_files(tmp_path / "out", 3)

    result = subprocess.run(
        [storescu, "-xy", "-aec", "ANYTHING", "127.0.0.1", str(peer.port), *files],
        capture_output=True,
        check=False,
        timeout=30,
    )

    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert peer.received_count == 3
    received = peer.received_files()
    assert len(received) == 3
    sent_uids = sorted(str(dcmread(path).SOPInstanceUID) for path in files)
    assert sorted(path.stem for path in received) == sent_uids
    assert dcmread(received[0]).file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.50"


@pytest.mark.integration
def test_worklist_returns_core_query(peer: DemoPeer) -> None:
    items = query_worklist(endpoint(peer), WorklistQuery(dates=(DAY, DAY)))

    assert len(items) == len(DEMO_WORKLIST)
    families = {item.patient_name.family for item in items}
    assert "Conceição" in families
    assert "Gonçalves" in families
    assert all(item.scheduled_date == DAY for item in items)


@pytest.mark.integration
def test_worklist_filters_by_accented_name(peer: DemoPeer) -> None:
    query = WorklistQuery(dates=(DAY, DAY), patient_name="gonç*")

    items = query_worklist(endpoint(peer), query)

    assert [item.patient_name.family for item in items] == ["Gonçalves"]


@pytest.mark.integration
def test_worklist_other_day_is_empty(peer: DemoPeer) -> None:
    other_day = DAY + dt.timedelta(days=1)

    items = query_worklist(endpoint(peer), WorklistQuery(dates=(other_day, other_day)))

    assert items == []


@pytest.mark.integration
def test_findscu_reads_worklist(tmp_path: Path, peer: DemoPeer) -> None:
    findscu = require_tool("findscu")

    result = subprocess.run(
        [
            findscu,
            "-W",
            "-k",
            "PatientName",
            "-k",
            f"ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate="
            f"{DAY:%Y%m%d}",
            "-k",
            "ScheduledProcedureStepSequence[0].Modality=OP",
            "127.0.0.1",
            str(peer.port),
        ],
        capture_output=True,
        check=False,
        timeout=30,
    )

    output = result.stdout.decode(errors="replace") + result.stderr.decode(
        errors="replace"
    )
    assert result.returncode == 0, output
    assert output.count("Find Response:") == len(DEMO_WORKLIST)


def test_match_date_range() -> None:
    item = worklist_dataset(DEMO_WORKLIST[0], DAY)

    assert worklist_matches(
        query_identifier(ScheduledProcedureStepStartDate="20270301-20270331"), item
    )
    assert not worklist_matches(
        query_identifier(ScheduledProcedureStepStartDate="20270310-"), item
    )
    assert worklist_matches(
        query_identifier(ScheduledProcedureStepStartDate="-20270309"), item
    )


def test_match_modality_and_station() -> None:
    item = worklist_dataset(DEMO_WORKLIST[0], DAY, station_ae_title="EYER")

    assert worklist_matches(query_identifier(Modality="OP"), item)
    assert not worklist_matches(query_identifier(Modality="CT"), item)
    assert worklist_matches(query_identifier(ScheduledStationAETitle="EYER"), item)
    assert not worklist_matches(query_identifier(ScheduledStationAETitle="OTHER"), item)


def test_start_twice_raises(peer: DemoPeer) -> None:
    with pytest.raises(RuntimeError, match="already running"):
        peer.start()
