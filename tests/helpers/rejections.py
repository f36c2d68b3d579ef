"""Repeat a request that a dcmtk peer rejects until the rejection is read.

Now and then, with a dcmtk peer (3.6.7) rejecting an association on
loopback, the client reports the connection closed before it has read the
A-ASSOCIATE-RJ. This was seen once in a CI run with wlmscpfs rejecting an
unknown called AE title, and once with storescp ``--refuse``; its cause
(the peer's close or pynetdicom's reading) was not traced. A
connection closed without an answer is rightly treated as transient, so
tests of how a rejection is classified repeat the request until the
rejection itself arrives.
"""

from __future__ import annotations

from collections.abc import Callable

from eyer_desktop.core.errors import DeliveryError

ATTEMPTS = 5
CLOSED_WITHOUT_ANSWER = "aborted the association request or closed the connection"


def rejection_of(request: Callable[[], object]) -> DeliveryError:
    """Return the DeliveryError of ``request``, repeating it while the peer
    closed the connection without a readable answer.

    Raises:
        AssertionError: ``request`` did not raise, or never got an answer.
    """
    error: DeliveryError | None = None
    for _ in range(ATTEMPTS):
        try:
            request()
        except DeliveryError as raised:
            error = raised
        else:
            raise AssertionError("the request was not rejected")
        if CLOSED_WITHOUT_ANSWER not in str(error):
            return error
    raise AssertionError(f"no rejection was read in {ATTEMPTS} attempts: {error}")
