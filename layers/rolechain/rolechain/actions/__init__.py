"""Built-in actions. Importing this package registers them in :data:`REGISTRY`."""

from rolechain.actions import block_s3_public_access, list_buckets, tag_resources, whoami
from rolechain.actions.base import (
    REGISTRY,
    Action,
    ActionContext,
    ActionFailed,
    DryRunViolation,
    Params,
    get_action,
    policy_document,
    register,
    target_role_policy,
)

__all__ = [
    "REGISTRY",
    "Action",
    "ActionContext",
    "ActionFailed",
    "DryRunViolation",
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
