"""The action registry's public API, and the built-in actions (importing this package registers them).

An action module, built-in or plugin, imports what it needs from here:
``from rolechain.actions import ActionContext, Params, register``.
"""

from rolechain.actions.base import (
    REGISTRY,
    Action,
    ActionContext,
    ActionFailed,
    DryRunViolation,
    DuplicateAction,
    Params,
    get_action,
    policy_document,
    register,
    target_role_policy,
)

# isort: split
# The built-ins last: each imports the names above from this package, which must be bound by then
# (sorted first, as isort would, they found a half-initialised package: a circular ImportError).
from rolechain.actions import block_s3_public_access, list_buckets, tag_resources, whoami

__all__ = [
    "REGISTRY",
    "Action",
    "ActionContext",
    "ActionFailed",
    "DryRunViolation",
    "DuplicateAction",
    "Params",
    "block_s3_public_access",
    "get_action",
    "list_buckets",
    "policy_document",
    "register",
    "tag_resources",
    "target_role_policy",
    "whoami",
]
