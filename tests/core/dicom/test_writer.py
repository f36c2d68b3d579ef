"""The template encoder against pydicom's own writer, and atomic writes."""

from __future__ import annotations

import copy
import errno
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import UID, ExplicitVRLittleEndian, JPEGBaseline8Bit

from eyer_desktop.core.dicom import writer
from eyer_desktop.core.dicom.writer import (
    EncodedTemplate,
    encode_dataset,
    encode_file,
    write_dataset,
    write_files,
    write_temporary,
)
from eyer_desktop.core.errors import ConversionError


def template() -> tuple[Dataset, FileMetaDataset]:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.PatientName = "Conceição^Maria"
    ds.Modality = "OT"
    ds.AnatomicRegionSequence = [Dataset()]
    ds.AnatomicRegionSequence[0].CodeMeaning = "Olho"
    meta = FileMetaDataset()
    meta.FileMetaInformationVersion = b"\x00\x01"
    meta.MediaStorageSOPClassUID = UID(ds.SOPClassUID)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = UID("1.2.3.4")
    meta.ImplementationVersionName = "TEST_1"
    return ds, meta


Element = tuple[str, Any]


def part(uid: str, number: str, rows: int) -> list[Element]:
    return [
        ("SOPInstanceUID", uid),
        ("InstanceNumber", number),
        ("Rows", rows),
        ("Modality", "OP"),
    ]


def reference(
    shared: Dataset,
    meta: FileMetaDataset,
    own: list[Element],
    fragment: bytes | None = None,
) -> bytes:
    ds = copy.deepcopy(shared)
    for keyword, value in own:
        setattr(ds, keyword, list(value) if isinstance(value, tuple) else value)
    if fragment is not None:
        ds.PixelData = encapsulate([fragment])
        ds["PixelData"].VR = "OB"
        ds["PixelData"].is_undefined_length = True
    ds.file_meta = copy.deepcopy(meta)
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return encode_dataset(ds)


def joined(buffers: list[bytes | memoryview]) -> bytes:
    return b"".join(buffers)


def test_template_encoding_equals_pydicom() -> None:
    shared, meta = template()
    encoded = EncodedTemplate(shared, meta)

    for own in [part("1.2.3.5", "1", 480), part("1.2.3.66", "2", 480)]:
        assert joined(encode_file(encoded, own)) == reference(shared, meta, own)


@pytest.mark.parametrize("length", [1, 2, 7, 1000])
def test_pixel_fragment_framing_equals_pydicom(length: int) -> None:
    shared, meta = template()
    meta.TransferSyntaxUID = JPEGBaseline8Bit
    encoded = EncodedTemplate(shared, meta)
    fragment = bytes(range(256)) * 4
    fragment = fragment[:length]
    own = part("1.2.3.5", "1", 480)

    buffers = encode_file(encoded, own, fragment)

    assert joined(buffers) == reference(shared, meta, own, fragment)
    assert any(buffer is fragment for buffer in buffers)


def test_direct_text_encoding_equals_pydicom() -> None:
    shared, meta = template()
    encoded = EncodedTemplate(shared, meta)
    own: list[Element] = [
        ("SOPInstanceUID", "1.2.3.4.5"),
        ("InstanceNumber", "12"),
        ("ImageType", ("ORIGINAL", "PRIMARY", "", "COLOR")),
        ("PixelSpacing", ("0.0123457", "0.0123457")),
        ("LossyImageCompressionRatio", ("12.5", "3")),
        ("ImageLaterality", "R"),
        ("ContentDate", "20261204"),
        ("ContentTime", "101112.123"),
        ("AcquisitionDateTime", "20261204101112-0300"),
        ("PatientAge", "041Y"),
        ("RetrieveAETitle", "ARCHIVE"),
        ("PresentationLUTShape", ""),
    ]

    assert joined(encode_file(encoded, own)) == reference(shared, meta, own)


def test_values_outside_direct_encoding_go_through_pydicom() -> None:
    shared, meta = template()
    encoded = EncodedTemplate(shared, meta)
    own: list[Element] = [
        ("SOPInstanceUID", "1.2.3.4.5"),
        ("SeriesDescription", "Retinografia à cores"),
        ("InstanceNumber", 12),
        ("ICCProfile", bytes(range(255))),
        ("AnatomicRegionSequence", [Dataset()]),
    ]

    assert joined(encode_file(encoded, own)) == reference(shared, meta, own)


def test_remembered_encodings_keep_values_apart() -> None:
    shared, meta = template()
    encoded = EncodedTemplate(shared, meta)

    first = joined(encode_file(encoded, part("1.2.3.5", "1", 480)))
    second = joined(encode_file(encoded, part("1.2.3.5", "1", 481)))

    assert first != second
    assert pydicom.dcmread(pydicom.filebase.DicomBytesIO(second)).Rows == 481


def test_remembered_encodings_keep_text_and_numbers_apart() -> None:
    shared, meta = template()
    encoded = EncodedTemplate(shared, meta)

    text = joined(encode_file(encoded, [*part("1.2.3.5", "1", 480), ("Rows", 2)]))
    number = joined(encode_file(encoded, [*part("1.2.3.5", "1", 480), ("Rows", 3)]))

    assert pydicom.dcmread(pydicom.filebase.DicomBytesIO(text)).Rows == 2
    assert pydicom.dcmread(pydicom.filebase.DicomBytesIO(number)).Rows == 3


def test_write_temporary_writes_buffers_in_order(tmp_path: Path) -> None:
    buffers = [b"abc", memoryview(b"defgh")[1:4], b""]

    path = write_temporary(buffers, tmp_path, "file.dcm")

    assert path.read_bytes() == b"abcefg"
    assert path.parent == tmp_path
    assert path.name.startswith(".file.dcm.")
    assert path.name.endswith(".part")


def test_write_temporary_never_reuses_a_name(tmp_path: Path) -> None:
    paths = {write_temporary(b"x", tmp_path, "file.dcm") for _ in range(50)}

    assert len(paths) == 50


def test_failed_temporary_write_leaves_no_file(tmp_path: Path) -> None:
    not_a_buffer: Any = "text"

    with pytest.raises(TypeError):
        write_temporary([b"start", not_a_buffer], tmp_path, "file.dcm")

    assert list(tmp_path.iterdir()) == []


def test_write_files_in_order(tmp_path: Path) -> None:
    big = bytes(range(256)) * 1024
    files = [
        (f"{index}.dcm", [b"head", memoryview(big)[index:], b"tail"])
        for index in range(12)
    ]

    paths = write_files(files, tmp_path)

    assert [path.name for path in paths] == [f"{index}.dcm" for index in range(12)]
    for index, path in enumerate(paths):
        assert path.read_bytes() == b"head" + big[index:] + b"tail"
    assert sorted(entry.name for entry in tmp_path.iterdir()) == sorted(
        path.name for path in paths
    )


def test_failed_source_keeps_earlier_files(tmp_path: Path) -> None:
    (tmp_path / "2.dcm").write_bytes(b"earlier")

    def files() -> Iterator[tuple[str, list[bytes]]]:
        for index in range(10):
            yield f"{index}.dcm", [b"new" * 1000]
        raise ConversionError("image 10 is damaged")

    with pytest.raises(ConversionError, match="image 10"):
        write_files(files(), tmp_path)

    assert [entry.name for entry in tmp_path.iterdir()] == ["2.dcm"]
    assert (tmp_path / "2.dcm").read_bytes() == b"earlier"


def test_failed_write_removes_all_files(tmp_path: Path) -> None:
    not_a_buffer: Any = "text"
    files = [(f"{index}.dcm", [b"data"]) for index in range(8)]
    files[5] = ("5.dcm", [b"start", not_a_buffer])

    with pytest.raises(TypeError):
        write_files(files, tmp_path)

    assert list(tmp_path.iterdir()) == []


def test_write_files_full_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A fake for a fault no real peer produces on demand: the file system
    # refuses the fourth file's bytes.
    calls = 0
    real_writev = os.writev

    def writev_until_full(handle: int, buffers: Any) -> int:
        nonlocal calls
        calls += 1
        if calls == 4:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_writev(handle, buffers)

    monkeypatch.setattr(writer.os, "writev", writev_until_full)
    files = [(f"{index}.dcm", [b"data"]) for index in range(8)]

    with pytest.raises(OSError, match="No space left"):
        write_files(files, tmp_path)

    assert list(tmp_path.iterdir()) == []


class Interrupted(BaseException):
    """Raised by the test's signal handler, as Ctrl-C raises KeyboardInterrupt."""


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="POSIX timers")
def test_interrupt_while_writing_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write = writer._write_temporary

    def slow_write(data: Any, folder: str, name: str) -> str:
        time.sleep(0.3)
        return real_write(data, folder, name)

    def interrupt(signum: int, frame: object) -> None:
        raise Interrupted

    monkeypatch.setattr(writer, "_write_temporary", slow_write)
    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        # The signal comes while the caller waits for the first write.
        signal.setitimer(signal.ITIMER_REAL, 0.1)
        with pytest.raises(Interrupted):
            write_files([("a.dcm", [b"data"])], tmp_path)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)

    assert list(tmp_path.iterdir()) == []


def old_files(folder: Path, names: list[str]) -> dict[str, bytes]:
    contents = {name: f"old {name}".encode() for name in names}
    for name, content in contents.items():
        (folder / name).write_bytes(content)
    return contents


def folder_contents(folder: Path) -> dict[str, bytes]:
    return {
        entry.name: entry.read_bytes() for entry in folder.iterdir() if entry.is_file()
    }


def test_write_files_replaces_earlier_files(tmp_path: Path) -> None:
    old_files(tmp_path, ["a.dcm", "b.dcm"])

    write_files([("a.dcm", [b"new a"]), ("b.dcm", [b"new b"])], tmp_path)

    assert folder_contents(tmp_path) == {"a.dcm": b"new a", "b.dcm": b"new b"}


def test_folder_in_the_way_changes_nothing(tmp_path: Path) -> None:
    earlier = old_files(tmp_path, ["a.dcm", "b.dcm"])
    (tmp_path / "c.dcm").mkdir()
    files = [(name, [b"new"]) for name in ("a.dcm", "b.dcm", "c.dcm")]

    with pytest.raises(IsADirectoryError) as caught:
        write_files(files, tmp_path)

    assert caught.value.filename == str(tmp_path / "c.dcm")
    assert folder_contents(tmp_path) == earlier
    assert sorted(entry.name for entry in tmp_path.iterdir()) == [
        "a.dcm",
        "b.dcm",
        "c.dcm",
    ]


@pytest.mark.parametrize("fault", [OSError, Interrupted], ids=["error", "interrupt"])
def test_failed_rename_puts_earlier_files_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: type[BaseException]
) -> None:
    # A fake for a fault Linux does not produce here: on Windows a viewer
    # or a virus scanner holding a file open makes its rename fail.
    earlier = old_files(tmp_path, ["a.dcm", "b.dcm", "c.dcm"])
    real_replace = os.replace

    def replace_until_c(source: Any, target: Any) -> None:
        if str(target).endswith("c.dcm") and ".part" in str(source):
            raise fault(errno.EACCES, "The file is open in another program")
        real_replace(source, target)

    monkeypatch.setattr(writer.os, "replace", replace_until_c)
    files = [(name, [b"new"]) for name in ("a.dcm", "b.dcm", "c.dcm")]

    with pytest.raises(fault):
        write_files(files, tmp_path)

    monkeypatch.undo()
    assert sorted(entry.name for entry in tmp_path.iterdir()) == sorted(earlier)
    assert folder_contents(tmp_path) == earlier


@pytest.mark.parametrize("has_writev", [True, False], ids=["writev", "write"])
def test_short_writes_are_continued(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, has_writev: bool
) -> None:
    # A fake for a fault regular files rarely show: every call writes at most
    # 7 bytes, as a pipe or a network file system may.
    real_write = os.write

    def short_write(handle: int, buffer: Any) -> int:
        return real_write(handle, bytes(memoryview(buffer)[:7]))

    def short_writev(handle: int, buffers: Any) -> int:
        return short_write(handle, b"".join(buffers))

    monkeypatch.setattr(writer, "_HAS_WRITEV", has_writev)
    monkeypatch.setattr(writer.os, "writev", short_writev, raising=False)
    monkeypatch.setattr(writer.os, "write", short_write)
    buffers = [b"", b"abc", b"defghijklmnopq", b"", b"r" * 100, b"stuvwxyz"]

    path = write_temporary(buffers, tmp_path, "file.dcm")

    assert path.read_bytes() == b"".join(buffers)


def test_zero_byte_write_raises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A fake: a broken file system driver that accepts no bytes and reports
    # no error would otherwise make the writer loop for ever.
    monkeypatch.setattr(writer.os, "writev", lambda handle, buffers: 0, raising=False)
    monkeypatch.setattr(writer.os, "write", lambda handle, buffer: 0)

    with pytest.raises(OSError, match="accepted no bytes"):
        write_temporary([b"abc"], tmp_path, "file.dcm")

    assert list(tmp_path.iterdir()) == []


def test_write_dataset_is_atomic(tmp_path: Path) -> None:
    shared, meta = template()
    shared.SOPInstanceUID = "1.2.3.5"
    shared.file_meta = meta
    meta.MediaStorageSOPInstanceUID = UID("1.2.3.5")
    path = tmp_path / "file.dcm"

    write_dataset(shared, path)

    assert [entry.name for entry in tmp_path.iterdir()] == ["file.dcm"]
    assert pydicom.dcmread(path).PatientName == "Conceição^Maria"


def test_write_dataset_into_missing_folder(tmp_path: Path) -> None:
    shared, meta = template()
    shared.SOPInstanceUID = "1.2.3.5"
    meta.MediaStorageSOPInstanceUID = UID("1.2.3.5")
    shared.file_meta = meta

    with pytest.raises(ConversionError, match="Cannot write"):
        write_dataset(shared, tmp_path / "missing" / "file.dcm")
