"""DICOMweb client: requests it sends, responses and failures it reports.

Orthanc is the real peer of ``tests/integration/test_orthanc_stow.py``. These
tests use the fake server for the statuses, reasons and faults Orthanc cannot
produce, and for HTTPS, which Debian's Orthanc 1.10.1 cannot serve.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from eyer_desktop.core.errors import DeliveryError, ValidationError
from eyer_desktop.core.net.dicomweb import (
    BasicAuth,
    BearerAuth,
    DicomWebClient,
    InstanceStatus,
    StowError,
    describe_reason,
)
from tests.helpers.fake_dicomweb import (  # noqa: F401
    FakeDicomWebServer,
    FakeReply,
    dicom_json_reply,
    fake_dicomweb_fixture,
    server_ssl_context,
    store_response,
    write_self_signed_certificate,
)
from tests.helpers.orthanc import free_loopback_port
from tests.helpers.stow_instances import instance_bytes, make_instance, write_instance

PASSWORD = "pw-never-shown-4711"
TOKEN = "token-never-shown-0815"
UIDS = ("2.25.501", "2.25.502", "2.25.503")


@pytest.fixture
def files(tmp_path: Path) -> list[Path]:
    return [
        write_instance(tmp_path, make_instance(uid, seed=index))
        for index, uid in enumerate(UIDS)
    ]


@pytest.fixture
def client(fake_dicomweb: FakeDicomWebServer) -> DicomWebClient:
    return DicomWebClient(fake_dicomweb.base_url, BasicAuth("clinic", PASSWORD))


def store_error(client: DicomWebClient, files: list[Path]) -> DeliveryError:
    with pytest.raises(DeliveryError) as caught:
        client.store(files)
    return caught.value


# Request


def test_store_request_line_and_headers(
    client: DicomWebClient, fake_dicomweb: FakeDicomWebServer, files: list[Path]
) -> None:
    client.store(files)

    request = fake_dicomweb.requests[0]
    content_type = request.headers["Content-Type"]
    assert request.method == "POST"
    assert request.path == "/dicom-web/studies"
    assert content_type.startswith("multipart/related;")
    assert 'type="application/dicom"' in content_type
    assert "boundary=" in content_type
    assert request.headers["Accept"] == "application/dicom+json"
    assert int(request.headers["Content-Length"]) == len(request.body)


def test_store_body_one_part_per_file(
    client: DicomWebClient, fake_dicomweb: FakeDicomWebServer, files: list[Path]
) -> None:
    client.store(files)

    request = fake_dicomweb.requests[0]
    head = f"Content-Type: {request.headers['Content-Type']}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        head + request.body
    )
    parts = list(message.iter_parts())
    assert len(parts) == len(files)
    for part, path in zip(parts, files, strict=True):
        assert part.get_content_type() == "application/dicom"
        assert part.get_payload(decode=True) == path.read_bytes()


def test_store_basic_auth_header(
    client: DicomWebClient, fake_dicomweb: FakeDicomWebServer, files: list[Path]
) -> None:
    client.store(files)

    scheme, _, token = fake_dicomweb.requests[0].headers["Authorization"].partition(" ")
    assert scheme == "Basic"
    assert base64.b64decode(token).decode() == f"clinic:{PASSWORD}"


def test_store_bearer_auth_header(
    fake_dicomweb: FakeDicomWebServer, files: list[Path]
) -> None:
    DicomWebClient(fake_dicomweb.base_url, BearerAuth(TOKEN)).store(files)

    assert fake_dicomweb.requests[0].headers["Authorization"] == f"Bearer {TOKEN}"


def test_store_without_auth_header(
    fake_dicomweb: FakeDicomWebServer, files: list[Path]
) -> None:
    DicomWebClient(fake_dicomweb.base_url).store(files)

    assert "Authorization" not in fake_dicomweb.requests[0].headers


def test_store_bytes_sent_as_is(
    client: DicomWebClient, fake_dicomweb: FakeDicomWebServer
) -> None:
    data = instance_bytes(make_instance("2.25.600"))

    result = client.store([data])

    assert data in fake_dicomweb.requests[0].body
    assert result.outcomes[0].sop_instance_uid == "2.25.600"


def test_base_url_trailing_slash_dropped(fake_dicomweb: FakeDicomWebServer) -> None:
    client = DicomWebClient(fake_dicomweb.base_url + "/")

    client.check()

    assert client.base_url == fake_dicomweb.base_url
    assert fake_dicomweb.requests[0].path == "/dicom-web/studies?limit=1"


# Accepted responses


def test_store_200_empty_body_all_stored(
    client: DicomWebClient, fake_dicomweb: FakeDicomWebServer, files: list[Path]
) -> None:
    fake_dicomweb.queue(FakeReply(status=200))

    result = client.store(files)

    assert result.http_status == 200
    assert [o.sop_instance_uid for o in result.stored] == list(UIDS)
    assert result.failed == ()


def test_store_202_warning_and_failure(
    client: DicomWebClient, fake_dicomweb: FakeDicomWebServer, files: list[Path]
) -> None:
    document = store_response(
        stored=[(UIDS[0], None), (UIDS[1], 0xB000)], failed=[(UIDS[2], 0xA900)]
    )
    fake_dicomweb.queue(dicom_json_reply(202, document))

    result = client.store(files)

    first, second, third = result.outcomes
    assert result.http_status == 202
    assert first.status is InstanceStatus.STORED
    assert second.status is InstanceStatus.WARNING
    assert second.reason_code == 0xB000
    assert second.reason == "coercion of data elements"
    assert third.status is InstanceStatus.FAILED
    assert third.reason_code == 0xA900
    assert third.reason == "data set does not match its SOP class"
    assert result.stored == (first, second)
    assert result.warnings == (second,)
    assert result.failed == (third,)


def test_store_202_unlisted_instance_failed(
    client: DicomWebClient, fake_dicomweb: FakeDicomWebServer, files: list[Path]
) -> None:
    document = store_response(stored=[(UIDS[0], None), (UIDS[1], None)])
    fake_dicomweb.queue(dicom_json_reply(202, document))

    result = client.store(files)

    assert [o.sop_instance_uid for o in result.failed] == [UIDS[2]]
    assert result.failed[0].reason_code is None
    assert result.failed[0].reason == "not reported as stored"


def test_store_failure_without_reason(
    client: DicomWebClient, fake_dicomweb: FakeDicomWebServer, files: list[Path]
) -> None:
    document = store_response(
        stored=[(UIDS[0], None), (UIDS[1], None)], failed=[(UIDS[2], None)]
    )
    fake_dicomweb.queue(dicom_json_reply(202, document))

    result = client.store(files)

    assert result.failed[0].reason == "no failure reason given"


# Rejected requests


def test_store_409_all_failed_permanent(
    client: DicomWebClient, fake_dicomweb: FakeDicomWebServer, files: list[Path]
) -> None:
    document = store_response(failed=[(uid, 0xA900) for uid in UIDS])
    fake_dicomweb.queue(dicom_json_reply(409, document))

    error = store_error(client, files)

    assert isinstance(error, StowError)
    assert error.code == 409
    assert error.transient is False
    assert "data set does not match its SOP class" in str(error)
    assert [o.reason_code for o in error.outcomes] == [0xA900] * 3


def test_store_409_out_of_resources_transient(
    client: DicomWebClient, fake_dicomweb: FakeDicomWebServer, files: list[Path]
) -> None:
    document = store_response(failed=[(uid, 0xA702) for uid in UIDS])
    fake_dicomweb.queue(dicom_json_reply(409, document))

    error = store_error(client, files)

    assert error.code == 409
    assert error.transient is True
    assert "out of resources" in str(error)


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408, 429])
def test_store_server_busy_transient(
    client: DicomWebClient,
    fake_dicomweb: FakeDicomWebServer,
    files: list[Path],
    status: int,
) -> None:
    fake_dicomweb.queue(FakeReply(status=status))

    error = store_error(client, files)

    assert error.code == status
    assert error.transient is True
    assert "Try again later" in str(error)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, "rejected the request as invalid"),
        (403, "user 'clinic' may not store instances"),
        (404, "no DICOMweb service at this URL"),
        (405, "unexpected status"),
        (413, "too large for the server"),
        (415, "does not accept application/dicom"),
    ],
)
def test_store_client_error_permanent(
    client: DicomWebClient,
    fake_dicomweb: FakeDicomWebServer,
    files: list[Path],
    status: int,
    expected: str,
) -> None:
    fake_dicomweb.queue(FakeReply(status=status))

    error = store_error(client, files)

    assert error.code == status
    assert error.transient is False
    assert expected in str(error)
    assert fake_dicomweb.base_url in str(error)


def test_store_413_names_request_size(
    client: DicomWebClient, fake_dicomweb: FakeDicomWebServer, files: list[Path]
) -> None:
    fake_dicomweb.queue(FakeReply(status=413))

    error = store_error(client, files)

    sent = len(fake_dicomweb.requests[0].body)
    assert f"{sent} bytes" in str(error)


def test_store_redirect_not_followed(
    client: DicomWebClient, fake_dicomweb: FakeDicomWebServer, files: list[Path]
) -> None:
    moved_to = "https://new.example.com/dicom-web/studies"
    fake_dicomweb.queue(FakeReply(status=301, headers={"Location": moved_to}))

    error = store_error(client, files)

    assert error.code == 301
    assert error.transient is False
    assert moved_to in str(error)
    assert len(fake_dicomweb.requests) == 1


def test_store_401_basic_names_user_not_password(
    client: DicomWebClient,
    fake_dicomweb: FakeDicomWebServer,
    files: list[Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    fake_dicomweb.queue(FakeReply(status=401))

    error = store_error(client, files)

    assert error.code == 401
    assert error.transient is False
    assert "user 'clinic'" in str(error)
    assert PASSWORD not in str(error)
    assert PASSWORD not in caplog.text


def test_store_401_bearer_hides_token(
    fake_dicomweb: FakeDicomWebServer,
    files: list[Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    fake_dicomweb.queue(FakeReply(status=401))
    client = DicomWebClient(fake_dicomweb.base_url, BearerAuth(TOKEN))

    error = store_error(client, files)

    assert "rejected the access token" in str(error)
    assert TOKEN not in str(error)
    assert TOKEN not in caplog.text


def test_store_401_without_auth(
    fake_dicomweb: FakeDicomWebServer, files: list[Path]
) -> None:
    fake_dicomweb.queue(FakeReply(status=401))

    error = store_error(DicomWebClient(fake_dicomweb.base_url), files)

    assert "requires authentication" in str(error)


def test_store_early_401_before_body_read(
    client: DicomWebClient, fake_dicomweb: FakeDicomWebServer, tmp_path: Path
) -> None:
    # Over 4 MB, more than the socket buffers take, so the client is still
    # sending when the fake replies and closes the connection.
    big = write_instance(tmp_path, make_instance("2.25.700", width=3000, height=2000))
    fake_dicomweb.queue(FakeReply(status=401, read_body=False))

    error = store_error(client, [big])

    assert error.code == 401
    assert error.transient is False


# Connection faults


def test_store_timeout_transient(
    fake_dicomweb: FakeDicomWebServer, files: list[Path]
) -> None:
    fake_dicomweb.queue(FakeReply(delay_s=2.0))
    client = DicomWebClient(fake_dicomweb.base_url, timeout=0.3)

    error = store_error(client, files)

    assert error.transient is True
    assert error.code is None
    assert "no response within 0.3 s" in str(error)


def test_store_dropped_connection_transient(
    client: DicomWebClient, fake_dicomweb: FakeDicomWebServer, files: list[Path]
) -> None:
    fake_dicomweb.queue(FakeReply(drop_connection=True))

    error = store_error(client, files)

    assert error.transient is True
    assert error.code is None


def test_store_refused_transient(files: list[Path]) -> None:
    url = f"http://127.0.0.1:{free_loopback_port()}/dicom-web"

    error = store_error(DicomWebClient(url), files)

    assert error.transient is True
    assert "connection was refused" in str(error)


# Connection test


def test_check_accepts_empty_list(
    client: DicomWebClient, fake_dicomweb: FakeDicomWebServer
) -> None:
    client.check()

    request = fake_dicomweb.requests[0]
    assert request.method == "GET"
    assert request.path == "/dicom-web/studies?limit=1"
    assert request.headers["Accept"] == "application/dicom+json"


def test_check_accepts_204(
    client: DicomWebClient, fake_dicomweb: FakeDicomWebServer
) -> None:
    fake_dicomweb.queue(FakeReply(status=204))

    client.check()


def test_check_rejects_html_page(
    client: DicomWebClient, fake_dicomweb: FakeDicomWebServer
) -> None:
    fake_dicomweb.queue(FakeReply(status=200, body=b"<html>Welcome</html>"))

    with pytest.raises(DeliveryError) as caught:
        client.check()

    assert caught.value.transient is False
    assert "did not return DICOM JSON" in str(caught.value)


def test_check_403_names_query(
    client: DicomWebClient, fake_dicomweb: FakeDicomWebServer
) -> None:
    fake_dicomweb.queue(FakeReply(status=403))

    with pytest.raises(DeliveryError) as caught:
        client.check()

    assert "may not query studies" in str(caught.value)


def test_check_503_transient(
    client: DicomWebClient, fake_dicomweb: FakeDicomWebServer
) -> None:
    fake_dicomweb.queue(FakeReply(status=503))

    with pytest.raises(DeliveryError) as caught:
        client.check()

    assert caught.value.transient is True
    assert caught.value.code == 503


# HTTPS


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return write_self_signed_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def fake_https(certificate: tuple[Path, Path]) -> Iterator[FakeDicomWebServer]:
    with FakeDicomWebServer(server_ssl_context(*certificate)) as server:
        yield server


def test_https_self_signed_rejected(fake_https: FakeDicomWebServer) -> None:
    client = DicomWebClient(fake_https.base_url)

    with pytest.raises(DeliveryError) as caught:
        client.check()

    assert fake_https.base_url.startswith("https://")
    assert caught.value.transient is False
    assert "not trusted" in str(caught.value)
    assert fake_https.requests == []


def test_https_ca_file_trusted(
    fake_https: FakeDicomWebServer,
    certificate: tuple[Path, Path],
    files: list[Path],
) -> None:
    ca_file, _ = certificate
    client = DicomWebClient(
        fake_https.base_url, BasicAuth("clinic", PASSWORD), ca_file=ca_file
    )

    client.check()
    result = client.store(files)

    assert result.failed == ()
    assert [r.method for r in fake_https.requests] == ["GET", "POST"]


def test_https_wrong_host_name_rejected(
    fake_https: FakeDicomWebServer, certificate: tuple[Path, Path]
) -> None:
    ca_file, _ = certificate
    url = fake_https.base_url.replace("127.0.0.1", "localhost")
    client = DicomWebClient(url, ca_file=ca_file)

    with pytest.raises(DeliveryError) as caught:
        client.check()

    assert caught.value.transient is False
    assert "not trusted" in str(caught.value)


def test_https_verification_off(fake_https: FakeDicomWebServer) -> None:
    DicomWebClient(fake_https.base_url, verify_tls=False).check()

    assert len(fake_https.requests) == 1


def test_https_ca_file_missing(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as caught:
        DicomWebClient("https://127.0.0.1:1/dicom-web", ca_file=tmp_path / "none.pem")

    assert caught.value.field == "CA file"


def test_https_ca_file_not_pem(tmp_path: Path) -> None:
    not_pem = tmp_path / "ca.pem"
    not_pem.write_text("hello")

    with pytest.raises(ValidationError) as caught:
        DicomWebClient("https://127.0.0.1:1/dicom-web", ca_file=not_pem)

    assert caught.value.field == "CA file"


# Settings and input validation


@pytest.mark.parametrize(
    "url",
    [
        "",
        "ftp://cloud.example.com/dicom-web",
        "cloud.example.com/dicom-web",
        "https:///dicom-web",
        "https://cloud.example.com/dicom-web?x=1",
        "https://cloud.example.com/dicom-web#top",
        "https://cloud.example.com:99999/dicom-web",
    ],
)
def test_base_url_invalid(url: str) -> None:
    with pytest.raises(ValidationError) as caught:
        DicomWebClient(url)

    assert caught.value.field == "Base URL"


def test_base_url_with_credentials_hidden() -> None:
    with pytest.raises(ValidationError) as caught:
        DicomWebClient(f"https://clinic:{PASSWORD}@cloud.example.com/dicom-web")

    assert PASSWORD not in str(caught.value)


@pytest.mark.parametrize("timeout", [0, -1.0, float("nan")])
def test_timeout_invalid(timeout: float) -> None:
    with pytest.raises(ValidationError):
        DicomWebClient("https://cloud.example.com/dicom-web", timeout=timeout)


@pytest.mark.parametrize("username", ["", "a:b"])
def test_basic_auth_username_invalid(username: str) -> None:
    with pytest.raises(ValidationError):
        BasicAuth(username, PASSWORD)


@pytest.mark.parametrize("token", ["", "two words", "line\nbreak"])
def test_bearer_token_invalid(token: str) -> None:
    with pytest.raises(ValidationError) as caught:
        BearerAuth(token)

    assert token == "" or token not in str(caught.value)


def test_auth_repr_hides_secrets() -> None:
    assert PASSWORD not in repr(BasicAuth("clinic", PASSWORD))
    assert TOKEN not in repr(BearerAuth(TOKEN))


def test_store_no_instances(client: DicomWebClient) -> None:
    with pytest.raises(ValidationError):
        client.store([])


def test_store_not_dicom_file(
    client: DicomWebClient, fake_dicomweb: FakeDicomWebServer, tmp_path: Path
) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not an image")

    with pytest.raises(ValidationError) as caught:
        client.store([text])

    assert caught.value.value == str(text)
    assert fake_dicomweb.requests == []


def test_store_missing_file(client: DicomWebClient, tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as caught:
        client.store([tmp_path / "gone.dcm"])

    assert "cannot be read" in str(caught.value)


def test_store_not_dicom_bytes(client: DicomWebClient) -> None:
    with pytest.raises(ValidationError) as caught:
        client.store([b"\x00" * 200])

    assert caught.value.value == "instance 1"


# Reason codes


@pytest.mark.parametrize(
    ("code", "meaning"),
    [
        (0xA700, "out of resources"),
        (0xA7FF, "out of resources"),
        (0xA900, "data set does not match its SOP class"),
        (0xC000, "cannot understand the data set"),
        (0xC122, "transfer syntax not supported"),
        (0x0110, "processing failure"),
        (0x0122, "SOP class not supported"),
        (0xB006, "elements discarded"),
        (0xB007, "data set does not match its SOP class"),
        (0x1234, "unknown reason"),
    ],
)
def test_describe_reason(code: int, meaning: str) -> None:
    assert describe_reason(code) == meaning
