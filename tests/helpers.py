"""Test helpers shared by every tier (no AWS, no emulator here)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class Clock:
    """A clock the test moves by hand (ChainSessions' ``clock``)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
