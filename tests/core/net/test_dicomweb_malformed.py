"""DICOMweb client: response bodies that are not the DICOM JSON expected.

No real server sends these bodies, so the fake DICOMweb server sends them.
A malformed body of an accepted STOW-RS request is a transient StowError,
because which instances were stored is unknown and a resend is harmless. A
malformed body of the connection test is a permanent DeliveryError.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from eyer_desktop.core.errors import DeliveryError
from eyer_desktop.core.net.dicomweb import (
    MAX_RESPONSE_BYTES,
    DicomWebClient,
    InstanceStatus,
    StowError,
)
from tests.helpers.fake_dicomweb import (  # noqa: F401
    FakeDicomWebServer,
    FakeReply,
    dicom_json_reply,
    fake_dicomweb_fixture,
    malformed_reply,
    nested_json,
    store_response,
)
from tests.helpers.stow_instances import make_instance, write_instance

UIDS = ("2.25.701", "2.25.702")
DEPTH = 100_000
"""Nesting far beyond Python's default recursion limit of 1,000."""


@pytest.fixture
def files(tmp_path: Path) -> list[Path]:
    return [
        write_instance(tmp_path, make_instance(uid, seed=index))
        for index, uid in enumerate(UIDS)
    ]


@pytest.fixture
def client(fake_dicomweb: FakeDicomWebServer) -> DicomWebClient:
    return DicomWebClient(fake_dicomweb.base_url)


def stow_error(client: DicomWebClient, files: list[Path]) -> StowError:
    with pytest.raises(StowError) as caught:
        client.store(files)
    return caught.value


def json_body(document: object) -> bytes:
    return json.dumps(document).encode()


def element(vr: str, *values: object) -> dict[str, Any]:
    return {"vr": vr, "Value": list(values)}


# Accepted STOW-RS requests (HTTP 200 and 202)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (nested_json(DEPTH), "nests arrays or objects too deeply"),
        (b'{"00081199": ', "is not valid JSON"),
        (b"<html><body>Sign in to the network</body></html>", "is not valid JSON"),
        (b"\xff\xfe\xfa not text", "is not valid JSON"),
        (b'"stored"', "is a JSON str, not a DICOM JSON object"),
        (b"[{}, {}]", "is a JSON list, not a DICOM JSON object"),
    ],
    ids=["nested", "cut", "html", "not-utf8", "string", "two-objects"],
)
@pytest.mark.parametrize("status", [200, 202])
def test_store_unreadable_body_transient(
    client: DicomWebClient,
    fake_dicomweb: FakeDicomWebServer,
    files: list[Path],
    status: int,
    body: bytes,
    problem: str,
) -> None:
    fake_dicomweb.queue(malformed_reply(status, body))

    error = stow_error(client, files)

    assert error.transient is True
    assert error.code == status
    assert problem in str(error)
    assert "unknown which instances it stored" in str(error)
    assert "They are sent again later" in str(error)
    assert [o.sop_instance_uid for o in error.outcomes] == list(UIDS)
    assert {o.status for o in error.outcomes} == {InstanceStatus.FAILED}


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        (
            {"00081199": {"vr": "SQ", "Value": "2.25.701"}},
            "ReferencedSOPSequence (00081199) that is not a DICOM JSON sequence",
        ),
        (
            {"00081198": ["2.25.701"]},
            "FailedSOPSequence (00081198) that is not a DICOM JSON sequence",
        ),
        (
            {"00081199": element("SQ", {"00081150": element("UI", "1.2.3")})},
            "item of ReferencedSOPSequence (00081199) without a "
            "ReferencedSOPInstanceUID (00081155)",
        ),
        (
            {"00081198": element("SQ", {"00081155": element("UI", 701)})},
            "item of FailedSOPSequence (00081198) without a "
            "ReferencedSOPInstanceUID (00081155)",
        ),
        (
            {"00081199": element("SQ", {"00081155": "2.25.701"})},
            "ReferencedSOPInstanceUID (00081155) that is not a DICOM JSON element",
        ),
        (
            {
                "00081198": element(
                    "SQ",
                    {
                        "00081155": element("UI", "2.25.701"),
                        "00081197": element("US", "processing failure"),
                    },
                )
            },
            "FailureReason (00081197) that is not a number from 0 to 65535",
        ),
        (
            {
                "00081199": element(
                    "SQ",
                    {
                        "00081155": element("UI", "2.25.701"),
                        "00081196": element("US", 70_000),
                    },
                )
            },
            "WarningReason (00081196) that is not a number from 0 to 65535",
        ),
    ],
    ids=[
        "sequence-value",
        "sequence-element",
        "item-without-uid",
        "uid-not-text",
        "uid-not-element",
        "reason-text",
        "reason-too-large",
    ],
)
def test_store_malformed_response_transient(
    client: DicomWebClient,
    fake_dicomweb: FakeDicomWebServer,
    files: list[Path],
    document: dict[str, Any],
    problem: str,
) -> None:
    fake_dicomweb.queue(malformed_reply(202, json_body(document)))

    error = stow_error(client, files)

    assert error.transient is True
    assert error.code == 202
    assert problem in str(error)


def test_store_body_over_limit_named(
    client: DicomWebClient, fake_dicomweb: FakeDicomWebServer, files: list[Path]
) -> None:
    filler = b'{"00081190": {"vr": "UR", "Value": ["' + b"x" * MAX_RESPONSE_BYTES
    fake_dicomweb.queue(malformed_reply(200, filler + b'"]}}'))

    error = stow_error(client, files)

    assert error.transient is True
    assert "is larger than 16 MiB, the maximum that is read" in str(error)


def test_store_single_object_array_read(
    client: DicomWebClient, fake_dicomweb: FakeDicomWebServer, files: list[Path]
) -> None:
    document = store_response(stored=[(UIDS[0], 0xB000)], failed=[(UIDS[1], 0xA900)])
    fake_dicomweb.queue(malformed_reply(202, json_body([document])))

    result = client.store(files)

    assert [o.status for o in result.outcomes] == [
        InstanceStatus.WARNING,
        InstanceStatus.FAILED,
    ]
    assert result.outcomes[1].reason_code == 0xA900


def test_store_reason_as_decimal_string(
    client: DicomWebClient, fake_dicomweb: FakeDicomWebServer, files: list[Path]
) -> None:
    failed = {
        "00081155": element("UI", UIDS[1]),
        "00081197": element("US", " 43264 "),
    }
    document = {"00081198": element("SQ", failed)}
    fake_dicomweb.queue(malformed_reply(202, json_body(document)))

    result = client.store(files)

    assert result.outcomes[0].status is InstanceStatus.FAILED
    assert result.outcomes[1].reason_code == 0xA900


def test_store_empty_sequence_accepted(
    client: DicomWebClient, fake_dicomweb: FakeDicomWebServer, files: list[Path]
) -> None:
    document = {"00081198": {"vr": "SQ"}}
    fake_dicomweb.queue(dicom_json_reply(200, document))

    result = client.store(files)

    assert [o.status for o in result.outcomes] == [InstanceStatus.STORED] * 2


# Rejected STOW-RS requests: the status explains the failure


def test_store_rejected_unreadable_body_keeps_status(
    client: DicomWebClient, fake_dicomweb: FakeDicomWebServer, files: list[Path]
) -> None:
    fake_dicomweb.queue(malformed_reply(409, nested_json(DEPTH)))

    error = stow_error(client, files)

    assert error.code == 409
    assert error.transient is False
    assert "stored none of the 2 instance(s) (HTTP 409)" in str(error)
    assert "nests arrays or objects too deeply" in str(error)
    assert {o.status for o in error.outcomes} == {InstanceStatus.FAILED}


def test_store_server_error_unreadable_body_transient(
    client: DicomWebClient, fake_dicomweb: FakeDicomWebServer, files: list[Path]
) -> None:
    fake_dicomweb.queue(malformed_reply(503, b"<html>Service Unavailable</html>"))

    error = stow_error(client, files)

    assert error.code == 503
    assert error.transient is True
    assert "the server is unavailable or busy" in str(error)


# Connection test (QIDO-RS)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (nested_json(DEPTH), "nests arrays or objects too deeply"),
        (b"[{]", "is not valid JSON"),
        (b'{"studies": []}', "is a JSON dict, not a list"),
        (b"[1, 2]", "is a JSON list of values that are not objects"),
    ],
    ids=["nested", "invalid", "object", "numbers"],
)
def test_check_malformed_body_permanent(
    client: DicomWebClient,
    fake_dicomweb: FakeDicomWebServer,
    body: bytes,
    problem: str,
) -> None:
    fake_dicomweb.queue(malformed_reply(200, body))

    with pytest.raises(DeliveryError) as caught:
        client.check()

    assert caught.value.transient is False
    assert caught.value.code == 200
    assert "did not return DICOM JSON" in str(caught.value)
    assert problem in str(caught.value)


def test_check_accepts_study_list(
    client: DicomWebClient, fake_dicomweb: FakeDicomWebServer
) -> None:
    study = {"0020000D": element("UI", "2.25.9")}
    fake_dicomweb.queue(FakeReply(status=200, body=json_body([study])))

    client.check()

    assert len(fake_dicomweb.requests) == 1


def test_body_cut_short_is_transient(
    fake_dicomweb: FakeDicomWebServer, client: DicomWebClient, files: list[Path]
) -> None:
    body = json_body(store_response(stored=[(uid, None) for uid in UIDS]))
    fake_dicomweb.queue(
        FakeReply(
            status=200,
            body=body[: len(body) // 2],
            headers={"Content-Type": "application/dicom+json"},
            announced_length=len(body),
        )
    )

    with pytest.raises(DeliveryError) as caught:
        client.store(files)

    assert caught.value.transient
    assert "closed the connection" in str(caught.value)
