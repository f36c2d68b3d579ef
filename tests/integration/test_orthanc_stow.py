"""STOW-RS and the connection test against a real Orthanc with DICOMweb."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from eyer_desktop.core.errors import DeliveryError
from eyer_desktop.core.net.dicomweb import (
    BasicAuth,
    DicomWebClient,
    InstanceStatus,
)
from tests.helpers.orthanc import (  # noqa: F401
    OrthancServer,
    free_loopback_port,
    orthanc_fixture,
    orthanc_server_fixture,
)
from tests.helpers.stow_instances import (
    instance_bytes,
    make_instance,
    pixel_data_of,
    write_instance,
)

pytestmark = pytest.mark.integration


def client_for(orthanc: OrthancServer, **options: object) -> DicomWebClient:
    auth = BasicAuth(orthanc.username, orthanc.password)
    return DicomWebClient(orthanc.dicomweb_url, auth, **options)  # type: ignore[arg-type]


def test_store_files_arrive_unchanged(orthanc: OrthancServer, tmp_path: Path) -> None:
    datasets = [make_instance(f"2.25.{8000 + i}", seed=i) for i in range(3)]
    paths = [write_instance(tmp_path, dataset) for dataset in datasets]

    result = client_for(orthanc).store(paths)

    assert result.http_status == 200
    assert [o.sop_instance_uid for o in result.outcomes] == [
        "2.25.8000",
        "2.25.8001",
        "2.25.8002",
    ]
    assert all(o.status is InstanceStatus.STORED for o in result.outcomes)
    assert orthanc.count_instances() == 3
    for path, dataset in zip(paths, datasets, strict=True):
        orthanc_id = orthanc.find_instance(dataset.SOPInstanceUID)
        assert orthanc_id is not None, dataset.SOPInstanceUID
        tags = orthanc.instance_tags(orthanc_id)
        assert tags["SOPInstanceUID"] == dataset.SOPInstanceUID
        stored_pixels = pixel_data_of(orthanc.instance_file(orthanc_id))
        assert stored_pixels == pixel_data_of(path.read_bytes())


def test_store_bytes_instance(orthanc: OrthancServer) -> None:
    dataset = make_instance("2.25.8100")

    result = client_for(orthanc).store([instance_bytes(dataset)])

    assert result.failed == ()
    assert orthanc.find_instance("2.25.8100") is not None


def test_store_same_instance_twice_keeps_one(
    orthanc: OrthancServer, tmp_path: Path
) -> None:
    path = write_instance(tmp_path, make_instance("2.25.8200"))
    client = client_for(orthanc)

    first = client.store([path])
    second = client.store([path])

    assert first.failed == ()
    assert second.failed == ()
    assert orthanc.count_instances() == 1


def test_store_wrong_password_is_permanent(
    orthanc: OrthancServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    path = write_instance(tmp_path, make_instance("2.25.8300"))
    client = DicomWebClient(
        orthanc.dicomweb_url, BasicAuth(orthanc.username, "not-the-password-91")
    )

    with pytest.raises(DeliveryError) as caught:
        client.store([path])

    error = caught.value
    assert error.transient is False
    assert error.code == 401
    assert repr(orthanc.username) in str(error)
    assert orthanc.dicomweb_url in str(error)
    assert "not-the-password-91" not in str(error)
    assert "not-the-password-91" not in caplog.text
    assert orthanc.count_instances() == 0


def test_store_large_body_wrong_password(
    orthanc: OrthancServer, tmp_path: Path
) -> None:
    # Over 4 MB of JPEG noise, more than the socket buffers take, so the
    # server may respond before it has read the whole body.
    dataset = make_instance("2.25.8400", width=3000, height=2000)
    path = write_instance(tmp_path, dataset)
    client = DicomWebClient(orthanc.dicomweb_url, BasicAuth(orthanc.username, "bad"))

    with pytest.raises(DeliveryError) as caught:
        client.store([path])

    assert path.stat().st_size > 4_000_000
    assert caught.value.code == 401
    assert caught.value.transient is False


def test_store_server_down_is_transient(tmp_path: Path) -> None:
    path = write_instance(tmp_path, make_instance("2.25.8500"))
    url = f"http://127.0.0.1:{free_loopback_port()}/dicom-web"
    client = DicomWebClient(url, BasicAuth("eyer", "secret-5"), timeout=5)

    with pytest.raises(DeliveryError) as caught:
        client.store([path])

    assert caught.value.transient is True
    assert caught.value.code is None
    assert "refused" in str(caught.value)


def test_check_passes(orthanc: OrthancServer) -> None:
    client_for(orthanc).check()


def test_check_wrong_password(orthanc: OrthancServer) -> None:
    client = DicomWebClient(orthanc.dicomweb_url, BasicAuth(orthanc.username, "bad"))

    with pytest.raises(DeliveryError) as caught:
        client.check()

    assert caught.value.code == 401
    assert caught.value.transient is False


def test_check_without_credentials(orthanc: OrthancServer) -> None:
    with pytest.raises(DeliveryError) as caught:
        DicomWebClient(orthanc.dicomweb_url).check()

    assert caught.value.code == 401
    assert "requires authentication" in str(caught.value)


def test_check_wrong_base_url(orthanc: OrthancServer) -> None:
    client = DicomWebClient(
        orthanc.http_url + "/not-dicomweb",
        BasicAuth(orthanc.username, orthanc.password),
    )

    with pytest.raises(DeliveryError) as caught:
        client.check()

    assert caught.value.code == 404
    assert caught.value.transient is False
    assert "base URL" in str(caught.value)


def test_https_to_plain_http_port(orthanc: OrthancServer) -> None:
    url = orthanc.dicomweb_url.replace("http://", "https://")
    client = DicomWebClient(url, BasicAuth(orthanc.username, orthanc.password))

    with pytest.raises(DeliveryError) as caught:
        client.check()

    assert caught.value.transient is False
    assert "TLS handshake failed" in str(caught.value)
