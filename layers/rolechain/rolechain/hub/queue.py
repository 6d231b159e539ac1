"""The SQS queue of targets for the worker."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pydantic import BaseModel

from rolechain.errors import RolechainError

SQS_BATCH = 10  # SendMessageBatch takes at most 10 entries
SEND_WORKERS = 8  # SendMessageBatch calls in flight at once


class TargetQueue:
    """The SQS queue of targets for the worker."""

    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self._url = queue_url

    def send(
        self,
        messages: Sequence[BaseModel],
        *,
        remaining_seconds: Callable[[], float] | None = None,
        reserve_seconds: float = 10.0,
        workers: int = SEND_WORKERS,
    ) -> int:
        """Send messages, 10 a call and ``workers`` calls at once, in rounds, until all are sent or fewer
        than ``reserve_seconds`` remain; entries SQS refuses are sent again, then reported. Returns how
        many were sent (always the first ones: a caller continues from there)."""
        sent = 0
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rolechain-send") as pool:
            while sent < len(messages):
                if remaining_seconds is not None and remaining_seconds() <= reserve_seconds:
                    break
                round_end = min(len(messages), sent + workers * SQS_BATCH)
                batches = [messages[i : min(i + SQS_BATCH, round_end)] for i in range(sent, round_end, SQS_BATCH)]
                list(pool.map(self._send_batch, batches))  # re-raises the first batch that failed
                sent = round_end
        return sent

    def _send_batch(self, batch: Sequence[BaseModel]) -> None:
        pending = {str(i): m for i, m in enumerate(batch)}
        for _ in range(5):
            response = self._client.send_message_batch(
                QueueUrl=self._url,
                Entries=[{"Id": key, "MessageBody": m.model_dump_json()} for key, m in pending.items()],
            )
            pending = {f["Id"]: pending[f["Id"]] for f in response.get("Failed", [])}
            if not pending:
                return
            time.sleep(0.2)
        raise RolechainError(f"SQS refused {len(pending)} target message(s) after retries")
