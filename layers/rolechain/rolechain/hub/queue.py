"""The SQS queue of targets for the worker."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from rolechain.errors import RolechainError
from rolechain.hub.models import TargetMessage

SQS_BATCH = 10  # SendMessageBatch takes at most 10 entries


class TargetQueue:
    """The SQS queue of targets for the worker."""

    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self._url = queue_url

    def send(self, messages: Sequence[TargetMessage]) -> None:
        """Send every message, 10 a call; entries SQS refuses are sent again, then reported."""
        for start in range(0, len(messages), SQS_BATCH):
            pending = {str(i): m for i, m in enumerate(messages[start : start + SQS_BATCH])}
            for _ in range(5):
                response = self._client.send_message_batch(
                    QueueUrl=self._url,
                    Entries=[{"Id": key, "MessageBody": m.model_dump_json()} for key, m in pending.items()],
                )
                pending = {f["Id"]: pending[f["Id"]] for f in response.get("Failed", [])}
                if not pending:
                    break
                time.sleep(0.2)
            else:
                raise RolechainError(f"SQS refused {len(pending)} target message(s) after retries")
