"""The hub application: what the four Lambda functions do, with no Lambda event parsing.

Handlers (``functions/*/app.py``) parse their events (``rolechain.hub.lambda_support``) and call one
use case of the :class:`Hub`: ``runs`` (scheduler and API), ``worker``, ``remediation``. The base
credentials are the Lambda's own role R1, so a chain to a target is just R2.
"""

from rolechain.hub.errors import Forbidden, NotFound, TransientTargetError
from rolechain.hub.hub import Hub
from rolechain.hub.models import Caller, RunRequest, TargetMessage
from rolechain.hub.queue import TargetQueue
from rolechain.hub.settings import Settings
from rolechain.hub.store import RunStore
from rolechain.hub.worker import is_transient

__all__ = [
    "Caller",
    "Forbidden",
    "Hub",
    "NotFound",
    "RunRequest",
    "RunStore",
    "Settings",
    "TargetMessage",
    "TargetQueue",
    "TransientTargetError",
    "is_transient",
]
