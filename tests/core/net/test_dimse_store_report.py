"""C-STORE status meanings, outcome counts and proposed contexts."""

from __future__ import annotations

import pytest
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEGBaseline8Bit

from eyer_desktop.core.net import StoreFallback, StoreOutcome, StoreReport, StoreStatus
from eyer_desktop.core.net.store import (
    _Item,
    _requested_contexts,
    describe_store_status,
)
from tests.helpers.op_samples import OP_8BIT_IMAGE_STORAGE

SMR = "1.2.840.10008.5.1.4.1.1.77.1.5.3"


@pytest.mark.parametrize(
    ("code", "meaning"),
    [
        (0x0000, "Success"),
        (0xB000, "Coercion of Data Elements"),
        (0xB006, "Element Discarded"),
        (0xB007, "Data Set Does Not Match SOP Class"),
        (0xA7FF, "Refused: Out of Resources"),
        (0xA912, "Data Set Does Not Match SOP Class"),
        (0xC0FF, "Cannot Understand"),
        (0x0122, "Refused: SOP Class Not Supported"),
        (0x0001, "Warning (status not defined for the Storage Service)"),
    ],
)
def test_status_meaning(code: int, meaning: str) -> None:
    assert describe_store_status(code) == meaning


def test_report_counts_and_summary() -> None:
    outcomes = (
        StoreOutcome("1", StoreStatus.SENT, 0),
        StoreOutcome("2", StoreStatus.WARNING, 0xB000),
        StoreOutcome("3", StoreStatus.FAILED, 0xA700),
        StoreOutcome("4", StoreStatus.NOT_SENT),
    )

    report = StoreReport("PACS@h:1", outcomes, 0.5)

    assert report.count(StoreStatus.SENT) == 1
    assert report.count(StoreStatus.NOT_SENT) == 1
    assert report.all_stored is False
    assert [outcome.stored for outcome in outcomes] == [True, True, False, False]
    assert report.summary() == (
        "4 instances to PACS@h:1: 1 sent, 1 warning, 1 failed, 1 not sent"
    )


def item(sop_class: str, transfer_syntax: str) -> _Item:
    return _Item(
        source=__file__,
        sop_class_uid=sop_class,
        sop_instance_uid="1.2",
        transfer_syntax_uid=transfer_syntax,
    )  # type: ignore[arg-type]


def test_contexts_have_one_syntax_each() -> None:
    items = [
        item(OP_8BIT_IMAGE_STORAGE, JPEGBaseline8Bit),
        item(SMR, ExplicitVRLittleEndian),
    ]

    contexts = _requested_contexts(items)

    proposed = [(c.abstract_syntax, c.transfer_syntax) for c in contexts]
    assert proposed == [
        (OP_8BIT_IMAGE_STORAGE, [JPEGBaseline8Bit]),
        (OP_8BIT_IMAGE_STORAGE, [ExplicitVRLittleEndian]),
        (OP_8BIT_IMAGE_STORAGE, [ImplicitVRLittleEndian]),
        (SMR, [ExplicitVRLittleEndian]),
        (SMR, [ImplicitVRLittleEndian]),
    ]


def test_contexts_include_fallback_for_op_only() -> None:
    items = [
        item(OP_8BIT_IMAGE_STORAGE, JPEGBaseline8Bit),
        item(SMR, ExplicitVRLittleEndian),
    ]

    contexts = _requested_contexts(items, StoreFallback.SECONDARY_CAPTURE)

    classes = [c.abstract_syntax for c in contexts]
    assert classes.count("1.2.840.10008.5.1.4.1.1.7") == 3
    assert len(contexts) == 8
