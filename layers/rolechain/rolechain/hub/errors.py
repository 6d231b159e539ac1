"""The hub's domain errors; the handlers turn them into HTTP codes or SQS retries."""

from __future__ import annotations

from rolechain.errors import RolechainError
from rolechain.runner import TargetResult


class Forbidden(RolechainError):
    """The request names accounts or roles outside the configuration, or a run the caller is not granted."""


class UnknownRun(Forbidden):
    """A queued message names a run that no record exists for (a run is recorded before its messages)."""


class NotFound(RolechainError):
    """No such run or job."""


class TransientTargetError(RolechainError):
    """A target failed transiently; raising it makes SQS deliver the message again."""

    def __init__(self, result: TargetResult) -> None:
        super().__init__(f"transient failure at {result.account}/{result.region}: {result.error}")
        self.result = result
