"""DICOM networking: C-ECHO, C-STORE and Modality Worklist C-FIND.

Importing this package turns off pynetdicom's logging of query identifiers
and per-message dumps, so no patient data reaches a log.
"""

from eyer_desktop.core.net.association import DicomEndpoint, echo, open_association
from eyer_desktop.core.net.store import (
    StorageProbe,
    StoreOutcome,
    StoreReport,
    StoreStatus,
    describe_store_status,
    probe_storage,
    store,
)
from eyer_desktop.core.net.tls import TlsSettings, create_ssl_context
from eyer_desktop.core.net.transcode import StoreFallback
from eyer_desktop.core.net.worklist import WorklistItem, WorklistQuery, query_worklist

__all__ = [
    "DicomEndpoint",
    "StorageProbe",
    "StoreFallback",
    "StoreOutcome",
    "StoreReport",
    "StoreStatus",
    "TlsSettings",
    "WorklistItem",
    "WorklistQuery",
    "create_ssl_context",
    "describe_store_status",
    "echo",
    "open_association",
    "probe_storage",
    "query_worklist",
    "store",
]
