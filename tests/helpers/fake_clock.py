"""A manual clock for code that takes an injected clock and sleep function."""

from __future__ import annotations

import threading

# 2027-01-15 08:00:00 UTC, a plain working-day morning.
START = 1_799_913_600.0


class FakeClock:
    """A clock that moves only when a test advances it or code sleeps on it.

    Calling the instance returns the current time as Unix time in seconds, so it
    fits wherever a ``time.time``-like clock is expected; ``sleep`` fits where a
    ``time.sleep``-like function is expected and advances the time instantly.
    """

    def __init__(self, start: float = START) -> None:
        self._now = start
        self._lock = threading.Lock()
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"a clock cannot go back {seconds} s")
        with self._lock:
            self._now += seconds

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(seconds)
