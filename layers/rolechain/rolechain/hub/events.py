"""Run events on the hub's EventBridge bus: one ``Rolechain Run Completed`` per run, with its summary,
for whatever the platform team hangs on it (a Slack message, a ticket, a follow-up job)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from rolechain.errors import RolechainError

SOURCE = "rolechain"
RUN_COMPLETED = "Rolechain Run Completed"


class RunEvents:
    """Publishes run events with the hub's own credentials."""

    def __init__(self, client: Any, bus: str) -> None:
        self._client = client
        self._bus = bus

    def run_completed(self, detail: Mapping[str, Any]) -> None:
        """Send one event; raises RolechainError when EventBridge does not take it."""
        response = self._client.put_events(
            Entries=[
                {
                    "Source": SOURCE,
                    "DetailType": RUN_COMPLETED,
                    "Detail": json.dumps(detail, default=str),
                    "EventBusName": self._bus,
                }
            ]
        )
        if response.get("FailedEntryCount"):
            entry = (response.get("Entries") or [{}])[0]
            raise RolechainError(f"EventBridge refused the completion event: {entry.get('ErrorCode')}")
