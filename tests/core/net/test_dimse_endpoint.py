"""DicomEndpoint validation and the pynetdicom logging switches."""

from __future__ import annotations

import pytest
from pynetdicom import _config as pynetdicom_config

from eyer_desktop.core.errors import ValidationError
from eyer_desktop.core.net import DicomEndpoint


def test_endpoint_str_names_ae_and_address() -> None:
    endpoint = DicomEndpoint("10.0.0.5", 104, "EYERDESKTOP", "PACS")

    assert str(endpoint) == "PACS@10.0.0.5:104"


def test_ipv6_endpoint_in_brackets() -> None:
    endpoint = DicomEndpoint("::1", 104, "EYERDESKTOP", "PACS")

    assert str(endpoint) == "PACS@[::1]:104"


@pytest.mark.parametrize(
    ("field", "changes"),
    [
        ("IP", {"host": ""}),
        ("IP", {"host": "pacs local"}),
        ("Port", {"port": 0}),
        ("Port", {"port": 65536}),
        ("AE Title", {"calling_ae": ""}),
        ("AE Title", {"calling_ae": "A" * 17}),
        ("AET", {"called_ae": "PACS\\1"}),
        ("AET", {"called_ae": "PACSÉ"}),
        ("AET", {"called_ae": "PA\tCS"}),
        ("connect_timeout", {"connect_timeout": 0}),
        ("acse_timeout", {"acse_timeout": -1}),
        ("dimse_timeout", {"dimse_timeout": 0}),
        ("network_timeout", {"network_timeout": 0}),
    ],
)
def test_endpoint_rejects_invalid_value(field: str, changes: dict[str, object]) -> None:
    values: dict[str, object] = {
        "host": "127.0.0.1",
        "port": 104,
        "calling_ae": "EYERDESKTOP",
        "called_ae": "PACS",
    }
    values.update(changes)

    with pytest.raises(ValidationError) as caught:
        DicomEndpoint(**values)  # type: ignore[arg-type]

    assert caught.value.field == field


def test_endpoint_accepts_sixteen_character_titles() -> None:
    endpoint = DicomEndpoint("pacs.local", 11112, "A" * 16, "B" * 16)

    assert endpoint.calling_ae == "A" * 16


def test_import_turns_off_identifier_logging() -> None:
    assert pynetdicom_config.LOG_REQUEST_IDENTIFIERS is False
    assert pynetdicom_config.LOG_RESPONSE_IDENTIFIERS is False
    assert pynetdicom_config.LOG_HANDLER_LEVEL == "none"
