"""The server list: field validation, primary cloud rules and persistence."""

from __future__ import annotations

import ipaddress
import json
import math
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.provisional import domains

from eyer_desktop.core.errors import ConfigError, ValidationError
from eyer_desktop.core.fields import (
    validate_ae_title,
    validate_base_url,
    validate_host,
    validate_modality,
    validate_port,
    validate_timeout,
)
from eyer_desktop.core.secrets import SecretStore
from eyer_desktop.core.server_settings import (
    DicomStorageSettings,
    DicomTimeouts,
    DicomWebSettings,
    DicomWorklistSettings,
    PatientNameOrder,
    ServerKind,
    SopClassFallback,
    TlsSettings,
    WebAuth,
)
from eyer_desktop.core.servers import Server, ServerAction, ServerList
from tests.helpers.keyrings import MemoryKeyring

AE_RULE = re.compile(r"[ -\[\]-~]{1,16}")
MODALITY_RULE = re.compile(r"[A-Z0-9 _]{0,16}")
HOST_LABEL_RULE = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")

STORAGE = DicomStorageSettings(called_ae="ARCHIVE", host="127.0.0.1", port=11112)
WORKLIST = DicomWorklistSettings(called_ae="WORKLIST", host="::1", port=104)
WEB = DicomWebSettings(base_url="https://pacs.example.com/dicom-web")

NON_PRIMARY_ACTIONS = [
    ServerAction.MIRROR,
    ServerAction.CONTINGENCY,
    ServerAction.MANUAL,
    ServerAction.DEACTIVATED,
]


def assert_names_field(error: ValidationError, field: str) -> None:
    assert error.field == field
    assert str(error).startswith(field)


# AE titles


ae_titles = st.text(
    alphabet=st.characters(
        min_codepoint=0x20, max_codepoint=0x7E, exclude_characters="\\"
    ),
    min_size=1,
    max_size=16,
).filter(lambda title: title.strip(" "))


@given(title=ae_titles, left=st.integers(0, 3), right=st.integers(0, 3))
def test_valid_ae_title_accepted(title: str, left: int, right: int) -> None:
    accepted = validate_ae_title(" " * left + title + " " * right)

    assert accepted == title.strip(" ")
    assert validate_ae_title(accepted) == accepted


@given(text=st.text(max_size=24))
def test_any_ae_title_accepted_or_named(text: str) -> None:
    try:
        accepted = validate_ae_title(text, "AET")
    except ValidationError as err:
        assert_names_field(err, "AET")
        return

    assert AE_RULE.fullmatch(accepted)
    assert accepted == accepted.strip(" ")
    assert validate_ae_title(accepted, "AET") == accepted


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "empty"),
        ("    ", "empty"),
        ("A" * 17, "17 characters"),
        ("AE\\TITLE", "backslash"),
        ("AE\tTITLE", "not printable ASCII"),
        ("AÉTITLE", "not printable ASCII"),
    ],
)
def test_invalid_ae_title_rejected(text: str, problem: str) -> None:
    with pytest.raises(ValidationError, match=problem) as caught:
        validate_ae_title(text)

    assert_names_field(caught.value, "AE Title")


def test_ae_title_not_text_rejected() -> None:
    with pytest.raises(ValidationError) as caught:
        validate_ae_title(104)

    assert_names_field(caught.value, "AE Title")


# Hosts


def meets_host_rule(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return True

    labels = host.removesuffix(".").split(".")
    return (
        len(host.removesuffix(".")) <= 253
        and not labels[-1].isdigit()
        and all(HOST_LABEL_RULE.fullmatch(label) for label in labels)
    )


hosts = st.one_of(
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(str),
    domains(),
)


@given(host=hosts)
def test_valid_host_accepted(host: str) -> None:
    accepted = validate_host(f"  {host} ")

    assert accepted == host
    assert validate_host(accepted) == accepted


@given(address=st.ip_addresses(v=6).map(str))
def test_bracketed_ipv6_accepted(address: str) -> None:
    assert validate_host(f"[{address}]") == address


@given(text=st.text(alphabet=st.sampled_from("abz019.-_: []%\u00e9"), max_size=30))
def test_any_host_accepted_or_named(text: str) -> None:
    try:
        accepted = validate_host(text)
    except ValidationError as err:
        assert_names_field(err, "Host")
        return

    assert meets_host_rule(accepted)
    assert validate_host(accepted) == accepted


@pytest.mark.parametrize(
    "text",
    [
        "",
        "10.0.0",
        "256.1.1.1",
        "1.2.3.4.5",
        "-pacs.local",
        "pacs-.local",
        "pacs..local",
        "pacs_1.local",
        "pa cs",
        "clínica.local",
        "a" * 64 + ".local",
        ".".join(["a" * 60] * 5),
        "::1::",
    ],
)
def test_invalid_host_rejected(text: str) -> None:
    with pytest.raises(ValidationError, match="not a valid IP address") as caught:
        validate_host(text)

    assert_names_field(caught.value, "Host")


# Ports


@given(port=st.integers(1, 65535))
def test_valid_port_accepted(port: int) -> None:
    assert validate_port(port) == port
    assert validate_port(str(port)) == port
    assert validate_port(f" {port} ") == port


@given(
    value=st.one_of(
        st.integers().filter(lambda port: not 1 <= port <= 65535),
        st.booleans(),
        st.floats(),
        st.none(),
        st.text().filter(lambda text: not text.strip().isdigit()),
    )
)
def test_invalid_port_rejected(value: object) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_port(value)

    assert_names_field(caught.value, "Port")


@pytest.mark.parametrize("text", ["0", "65536", "-1", "１０４", "10 4", "1e3"])
def test_invalid_port_text_rejected(text: str) -> None:
    with pytest.raises(ValidationError, match="1 to 65535") as caught:
        validate_port(text)

    assert_names_field(caught.value, "Port")


# Modality


@given(modality=st.from_regex(MODALITY_RULE, fullmatch=True))
def test_valid_modality_accepted(modality: str) -> None:
    accepted = validate_modality(modality)

    assert accepted == modality.strip(" ")
    assert validate_modality(accepted) == accepted


@given(text=st.text(max_size=20))
def test_any_modality_accepted_or_named(text: str) -> None:
    try:
        accepted = validate_modality(text)
    except ValidationError as err:
        assert_names_field(err, "Modality")
        return

    assert MODALITY_RULE.fullmatch(accepted)
    assert accepted == accepted.strip(" ")


def test_empty_modality_means_no_filter() -> None:
    assert validate_modality("") == ""
    assert validate_modality("   ") == ""


def test_lower_case_modality_suggests_upper() -> None:
    with pytest.raises(ValidationError, match="Use upper case: OP") as caught:
        validate_modality("op")

    assert_names_field(caught.value, "Modality")


# Timeouts


@pytest.mark.parametrize(
    "value", [0, -1, 0.4, 121, math.nan, math.inf, True, None, "soon", "nan"]
)
def test_invalid_connect_timeout_rejected(value: object) -> None:
    with pytest.raises(ValidationError) as caught:
        DicomTimeouts(connect=value)  # type: ignore[arg-type]

    assert_names_field(caught.value, "Connection timeout")


@given(seconds=st.floats(0.5, 120))
def test_valid_connect_timeout_accepted(seconds: float) -> None:
    assert DicomTimeouts(connect=seconds).connect == seconds


def test_timeout_defaults() -> None:
    timeouts = DicomTimeouts()

    assert timeouts.connect == 5.0
    assert timeouts.acse == 30.0
    assert timeouts.dimse == 30.0
    assert timeouts.network == 60.0


@pytest.mark.parametrize(
    ("name", "field"),
    [
        ("acse", "ACSE timeout"),
        ("dimse", "DIMSE timeout"),
        ("network", "Network timeout"),
    ],
)
def test_each_timeout_named(name: str, field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        DicomTimeouts(**{name: 0})

    assert_names_field(caught.value, field)


def test_timeout_text_accepted() -> None:
    assert validate_timeout("2.5", "Timeout", 1, 10) == 2.5


# DICOM and DICOMweb settings


def test_dicom_settings_normalised() -> None:
    settings = DicomStorageSettings(
        calling_ae=" EYER ", called_ae="PACS ", host=" pacs.local ", port="104"
    )

    assert settings.calling_ae == "EYER"
    assert settings.called_ae == "PACS"
    assert settings.host == "pacs.local"
    assert settings.port == 104
    assert settings.patient_name_order is PatientNameOrder.FAMILY_GIVEN
    assert settings.sop_class_fallback is SopClassFallback.NONE
    assert settings.tls.enabled is False
    assert settings.tls.verify is True


def test_called_ae_named_aet() -> None:
    with pytest.raises(ValidationError) as caught:
        DicomStorageSettings(called_ae="", host="pacs.local", port=104)

    assert_names_field(caught.value, "AET")


def test_enum_values_coerced_from_text() -> None:
    settings = DicomStorageSettings(
        called_ae="PACS",
        host="pacs.local",
        port=104,
        patient_name_order="Given^Family",  # type: ignore[arg-type]
        sop_class_fallback="secondary-capture",  # type: ignore[arg-type]
    )

    assert settings.patient_name_order is PatientNameOrder.GIVEN_FAMILY
    assert settings.sop_class_fallback is SopClassFallback.SECONDARY_CAPTURE


def test_unknown_fallback_lists_choices() -> None:
    with pytest.raises(ValidationError, match="vl-photographic") as caught:
        DicomStorageSettings(
            called_ae="PACS",
            host="pacs.local",
            port=104,
            sop_class_fallback="jpeg",  # type: ignore[arg-type]
        )

    assert_names_field(caught.value, "SOP class fallback")


def test_tls_key_needs_certificate() -> None:
    with pytest.raises(ValidationError, match="without a client certificate") as caught:
        TlsSettings(enabled=True, key_file=Path("/etc/eyer/client.key"))

    assert_names_field(caught.value, "Client key")


def test_tls_empty_paths_are_none() -> None:
    tls = TlsSettings(enabled=True, ca_file="", cert_file=" ")  # type: ignore[arg-type]

    assert tls.ca_file is None
    assert tls.cert_file is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://cloud.example.com/dicom-web/", "https://cloud.example.com/dicom-web"),
        ("HTTP://127.0.0.1:8042/dicom-web", "http://127.0.0.1:8042/dicom-web"),
        ("http://[::1]:8042/dicom-web", "http://[::1]:8042/dicom-web"),
        (" https://pacs.local ", "https://pacs.local"),
        ("https://pacs.local/", "https://pacs.local"),
    ],
)
def test_valid_base_url_accepted(text: str, expected: str) -> None:
    assert validate_base_url(text) == expected
    assert validate_base_url(expected) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("ftp://pacs.local/dicom-web", "http:// or https://"),
        ("pacs.local/dicom-web", "http:// or https://"),
        ("https:///dicom-web", "no valid host"),
        ("https://pa_cs.local", "no valid host"),
        ("https://user:secret@pacs.local", "user name or password"),
        ("https://pacs.local/?token=x", "query or fragment"),
        ("https://pacs.local/#top", "query or fragment"),
        ("https://pacs.local:99999/", "invalid port"),
        ("https://pacs.local:0/", "invalid port"),
        ("https://pacs .local/", "spaces"),
        ("", "http:// or https://"),
    ],
)
def test_invalid_base_url_rejected(text: str, problem: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(problem)) as caught:
        validate_base_url(text)

    assert_names_field(caught.value, "Base URL")
    if "secret" in text:
        assert "secret" not in str(caught.value)


def test_basic_auth_needs_username() -> None:
    with pytest.raises(ValidationError, match="basic authentication") as caught:
        DicomWebSettings(base_url="https://pacs.local", auth=WebAuth.BASIC)

    assert_names_field(caught.value, "Username")


def test_username_with_colon_rejected() -> None:
    with pytest.raises(ValidationError, match="colon") as caught:
        DicomWebSettings(auth=WebAuth.BASIC, username="clinic:admin")

    assert_names_field(caught.value, "Username")


def test_dicomweb_defaults_verify_https() -> None:
    assert WEB.verify_tls is True
    assert WEB.ca_file is None
    assert WEB.auth is WebAuth.NONE
    assert WEB.timeout == 30.0


# Primary cloud rules


def test_new_list_has_unconfigured_primary() -> None:
    servers = ServerList.default()

    (primary,) = list(servers)
    assert primary is servers.primary
    assert primary.key == "EYE000"
    assert primary.name == "EyerCloud"
    assert primary.is_primary_cloud is True
    assert primary.kind is ServerKind.DICOMWEB
    assert primary.action is ServerAction.PRIMARY
    assert primary.is_configured is False
    assert servers.primary_is_active is False


def test_primary_active_once_configured() -> None:
    servers = ServerList.default()

    servers.update_settings("EYE000", WEB)
    assert servers.primary_is_active is True

    servers.set_action("EYE000", ServerAction.DEACTIVATED)
    assert servers.primary_is_active is False

    servers.set_action("EYE000", "primary")
    assert servers.primary_is_active is True


def test_primary_cannot_be_removed() -> None:
    servers = ServerList.default()

    with pytest.raises(ValidationError, match="cannot be removed") as caught:
        servers.remove("eye000")

    assert "deactivated" in str(caught.value)
    assert len(servers) == 1


@pytest.mark.parametrize("action", NON_PRIMARY_ACTIONS[:3])
def test_primary_only_primary_or_deactivated(action: ServerAction) -> None:
    servers = ServerList.default()

    with pytest.raises(ValidationError, match="primary or deactivated") as caught:
        servers.set_action("EYE000", action)

    assert_names_field(caught.value, "Action")
    assert servers.primary.action is ServerAction.PRIMARY


@pytest.mark.parametrize("settings", [STORAGE, WORKLIST])
def test_primary_stays_dicomweb(settings: DicomStorageSettings) -> None:
    servers = ServerList.default()

    with pytest.raises(ValidationError, match="DICOMweb") as caught:
        servers.update_settings("EYE000", settings)

    assert_names_field(caught.value, "Kind")
    assert servers.primary.kind is ServerKind.DICOMWEB


def test_other_server_cannot_be_primary() -> None:
    servers = ServerList.default()
    archive = servers.add("Archive", ServerAction.MIRROR, STORAGE)

    with pytest.raises(
        ValidationError, match="reserved for the primary cloud"
    ) as caught:
        servers.set_action(archive.key, ServerAction.PRIMARY)

    assert_names_field(caught.value, "Action")
    assert servers.get(archive.key).action is ServerAction.MIRROR


def test_new_server_cannot_be_primary() -> None:
    servers = ServerList.default()

    with pytest.raises(ValidationError, match="reserved for the primary cloud"):
        servers.add("Second cloud", "primary", WEB)

    assert len(servers) == 1


def test_failed_edit_changes_nothing() -> None:
    servers = ServerList.default()
    archive = servers.add("Archive", ServerAction.MIRROR, STORAGE)

    with pytest.raises(ValidationError):
        servers.edit(archive.key, name="Renamed", action=ServerAction.PRIMARY)

    assert servers.get(archive.key) == archive


@pytest.mark.parametrize("action", NON_PRIMARY_ACTIONS)
def test_other_actions_allowed(action: ServerAction) -> None:
    servers = ServerList.default()
    archive = servers.add("Archive", ServerAction.MANUAL, STORAGE)

    assert servers.set_action(archive.key, action).action is action
    assert servers.with_action(action) == [servers.get(archive.key)]


def test_dicomweb_mirror_needs_base_url() -> None:
    servers = ServerList.default()

    with pytest.raises(ValidationError, match="missing") as caught:
        servers.add("Cloud copy", ServerAction.MIRROR, DicomWebSettings())

    assert_names_field(caught.value, "Base URL")


def test_list_without_primary_rejected() -> None:
    archive = Server(key="ARC000", name="Archive", action="mirror", settings=STORAGE)

    with pytest.raises(ValidationError, match="missing") as caught:
        ServerList([archive])

    assert_names_field(caught.value, "Primary cloud")


def test_primary_not_first_rejected() -> None:
    primary = ServerList.default().primary
    archive = Server(key="ARC000", name="Archive", action="mirror", settings=STORAGE)

    with pytest.raises(ValidationError, match="not first"):
        ServerList([archive, primary])


def test_two_primaries_rejected() -> None:
    primary = ServerList.default().primary
    other = Server(
        key="EYE001",
        name="EyerCloud 2",
        action="deactivated",
        settings=WEB,
        is_primary_cloud=True,
    )

    with pytest.raises(ValidationError, match="more than once"):
        ServerList([primary, other])


# Order and edits


def test_iteration_puts_primary_first() -> None:
    servers = ServerList.default()
    servers.add("Archive", ServerAction.MIRROR, STORAGE)
    servers.add("Worklist", ServerAction.MANUAL, WORKLIST)
    servers.add("Backup", ServerAction.CONTINGENCY, WEB)

    assert [server.key for server in servers] == [
        "EYE000",
        "ARC000",
        "WOR000",
        "BAC000",
    ]
    assert len(servers) == 4


def test_edit_changes_kind_and_keeps_key() -> None:
    servers = ServerList.default()
    archive = servers.add("Archive", ServerAction.MIRROR, STORAGE)

    edited = servers.edit(archive.key, name="Worklist", settings=WORKLIST)

    assert edited.key == archive.key
    assert edited.kind is ServerKind.DICOM_WORKLIST
    assert edited.name == "Worklist"
    assert servers.get(archive.key) == edited


def test_remove_returns_server() -> None:
    servers = ServerList.default()
    archive = servers.add("Archive", ServerAction.MIRROR, STORAGE)

    assert servers.remove(archive.key.lower()) == archive
    assert archive.key not in servers
    assert len(servers) == 1


def test_only_worklist_is_not_storage() -> None:
    servers = ServerList.default()
    archive = servers.add("Archive", ServerAction.MIRROR, STORAGE)
    worklist = servers.add("Worklist", ServerAction.MANUAL, WORKLIST)

    assert servers.primary.is_storage is True
    assert archive.is_storage is True
    assert worklist.is_storage is False


def test_server_objects_are_frozen() -> None:
    primary = ServerList.default().primary

    with pytest.raises(AttributeError):
        primary.action = ServerAction.MIRROR  # type: ignore[misc]


# Persistence


paths = st.sampled_from(
    ["/etc/eyer/ca.pem", "/opt/eyer/client.pem", "C:\\certs\\ca.pem"]
)

tls_settings = st.builds(
    lambda enabled, ca, cert, key, verify: TlsSettings(
        enabled=enabled,
        ca_file=ca,
        cert_file=cert,
        key_file=key if cert is not None else None,
        verify=verify,
    ),
    st.booleans(),
    st.none() | paths,
    st.none() | paths,
    st.none() | paths,
    st.booleans(),
)

timeouts = st.builds(
    DicomTimeouts,
    connect=st.floats(0.5, 120),
    acse=st.floats(1, 600),
    dimse=st.floats(1, 3600),
    network=st.floats(1, 3600),
)

dicom_common: dict[str, Any] = {
    "calling_ae": ae_titles,
    "called_ae": ae_titles,
    "host": hosts,
    "port": st.integers(1, 65535),
    "patient_name_order": st.sampled_from(PatientNameOrder),
    "timeouts": timeouts,
    "tls": tls_settings,
}

base_urls = st.builds(
    lambda scheme, host, port, path: f"{scheme}://{host}{port}{path}",
    st.sampled_from(["http", "https"]),
    domains(),
    st.sampled_from(["", ":8042", ":443"]),
    st.sampled_from(["", "/dicom-web", "/api/v1/dicomweb"]),
)

web_settings = st.builds(
    DicomWebSettings,
    base_url=base_urls,
    auth=st.sampled_from(WebAuth),
    username=st.from_regex(r"[a-z][a-z0-9._-]{0,20}", fullmatch=True),
    verify_tls=st.booleans(),
    ca_file=st.none() | paths,
    timeout=st.floats(1, 3600),
)

server_settings = st.one_of(
    st.builds(
        DicomStorageSettings,
        **dicom_common,
        sop_class_fallback=st.sampled_from(SopClassFallback),
    ),
    st.builds(
        DicomWorklistSettings,
        **dicom_common,
        modality=st.from_regex(MODALITY_RULE, fullmatch=True),
    ),
    web_settings,
)

server_names = st.text(
    alphabet=st.characters(exclude_categories=["Cc", "Cs", "Zl", "Zp"]),
    min_size=1,
    max_size=64,
).filter(lambda name: name.strip())


@st.composite
def server_lists(draw: st.DrawFn) -> ServerList:
    servers = ServerList.default()
    servers.update_settings("EYE000", draw(web_settings | st.just(DicomWebSettings())))
    servers.set_action(
        "EYE000",
        draw(st.sampled_from([ServerAction.PRIMARY, ServerAction.DEACTIVATED])),
    )

    entries = draw(
        st.lists(
            st.tuples(
                server_names, st.sampled_from(NON_PRIMARY_ACTIONS), server_settings
            ),
            max_size=6,
        )
    )
    for name, action, entry_settings in entries:
        servers.add(name, action, entry_settings)

    added_keys = [server.key for server in servers][1:]
    if added_keys:
        removed = draw(st.lists(st.sampled_from(added_keys), unique=True))
        for key in removed:
            servers.remove(key)
    return servers


@settings(deadline=None)
@given(servers=server_lists())
def test_json_round_trip(servers: ServerList) -> None:
    text = json.dumps(servers.to_json())

    assert ServerList.from_json(json.loads(text)) == servers


@settings(deadline=None, max_examples=30)
@given(servers=server_lists())
def test_file_round_trip(servers: ServerList) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "servers.json"

        servers.save(path)
        loaded = ServerList.load(path)

    assert loaded == servers
    assert [server.key for server in loaded] == [server.key for server in servers]


def test_missing_file_loads_default(tmp_path: Path) -> None:
    servers = ServerList.load(tmp_path / "servers.json")

    assert servers == ServerList.default()
    assert not (tmp_path / "servers.json").exists()


def test_saved_file_has_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "servers.json"
    ServerList.default().save(path)

    document = json.loads(path.read_text())

    assert document["schema_version"] == 1
    assert document["servers"][0]["primary_cloud"] is True


def test_secret_never_in_servers_file(tmp_path: Path) -> None:
    servers = ServerList.default()
    settings = DicomWebSettings(
        base_url="https://cloud.example.com/dicom-web",
        auth=WebAuth.BASIC,
        username="clinic",
    )
    servers.update_settings("EYE000", settings)
    SecretStore(MemoryKeyring()).set("EYE000", "s3cr3t-Password")
    path = tmp_path / "servers.json"

    servers.save(path)

    content = path.read_text()
    assert "clinic" in content
    assert "s3cr3t-Password" not in content


def servers_document_with(entry: dict[str, Any]) -> dict[str, Any]:
    document = ServerList.default().to_json()
    document["servers"].append(entry)
    return document


def archive_entry(**changes: Any) -> dict[str, Any]:
    entry = {
        "key": "ARC000",
        "name": "Archive",
        "action": "mirror",
        "primary_cloud": False,
        "kind": "dicom-storage",
        "settings": STORAGE.to_json(),
    }
    return entry | changes


def load_damaged(path: Path, document: dict[str, Any]) -> str:
    path.write_text(json.dumps(document))
    with pytest.raises(ConfigError) as caught:
        ServerList.load(path)

    moved = list(path.parent.glob("servers.json.damaged-*"))
    assert len(moved) == 1
    assert json.loads(moved[0].read_text()) == document
    assert not path.exists()
    assert str(moved[0]) in str(caught.value)
    return str(caught.value)


def test_unknown_member_in_file_rejected(tmp_path: Path) -> None:
    entry = archive_entry(colour="blue")

    message = load_damaged(tmp_path / "servers.json", servers_document_with(entry))

    assert "'colour'" in message
    assert "server ARC000" in message


def test_unknown_setting_in_file_rejected(tmp_path: Path) -> None:
    settings = STORAGE.to_json() | {"aet": "PACS"}
    entry = archive_entry(settings=settings)

    message = load_damaged(tmp_path / "servers.json", servers_document_with(entry))

    assert "'aet'" in message
    assert "Settings of server ARC000" in message


def test_unknown_top_level_member_rejected(tmp_path: Path) -> None:
    document = ServerList.default().to_json() | {"servers_v2": []}

    message = load_damaged(tmp_path / "servers.json", document)

    assert "'servers_v2'" in message


def test_invalid_value_in_file_names_field(tmp_path: Path) -> None:
    settings = STORAGE.to_json() | {"called_ae": "BAD\\AE"}
    entry = archive_entry(settings=settings)

    message = load_damaged(tmp_path / "servers.json", servers_document_with(entry))

    assert "AET of server ARC000" in message
    assert "backslash" in message


def test_missing_member_in_file_rejected(tmp_path: Path) -> None:
    entry = archive_entry()
    del entry["settings"]["host"]

    message = load_damaged(tmp_path / "servers.json", servers_document_with(entry))

    assert "'host'" in message


def test_mirror_primary_in_file_rejected(tmp_path: Path) -> None:
    document = ServerList.default().to_json()
    document["servers"][0]["action"] = "mirror"

    message = load_damaged(tmp_path / "servers.json", document)

    assert "primary cloud" in message


def test_optional_members_take_defaults(tmp_path: Path) -> None:
    settings = {"called_ae": "PACS", "host": "pacs.local", "port": 104}
    entry = archive_entry(settings=settings)
    del entry["primary_cloud"]
    path = tmp_path / "servers.json"
    path.write_text(json.dumps(servers_document_with(entry)))

    archive = ServerList.load(path).get("ARC000")

    assert isinstance(archive.settings, DicomStorageSettings)
    assert archive.settings.calling_ae == "EYERDESKTOP"
    assert archive.settings.timeouts == DicomTimeouts()
    assert archive.settings.tls == TlsSettings()
    assert archive.is_primary_cloud is False
