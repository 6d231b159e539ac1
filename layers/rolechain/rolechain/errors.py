"""Domain errors. They are turned into exit codes / HTTP codes only at the edges (CLI, handlers)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# AWS error codes of throttling, and of every failure a retry may fix (throttling and server-side 5xx).
THROTTLING_ERROR_CODES = frozenset(
    {"Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException"}
)
TRANSIENT_ERROR_CODES = THROTTLING_ERROR_CODES | {"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout"}
# AWS's answers to a request signed with credentials that expired or were revoked before they looked it:
# the cached credentials must be dropped, and a retry with fresh ones may succeed.
REJECTED_CREDENTIAL_CODES = frozenset({"ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId"})


def is_transient_error(code: str, status: int | None = None) -> bool:
    """Whether an AWS error ``code`` (with HTTP ``status``) is one a retry may fix: throttling or a 5xx."""
    return code in TRANSIENT_ERROR_CODES or (status is not None and status >= 500)


class RolechainError(Exception):
    """Base class of every error rolechain raises on purpose."""


class ConfigError(RolechainError, ValueError):
    """A value given to rolechain breaks a rule; raised before any AWS call is made.

    ``field`` names what was wrong (e.g. ``hops[1].external_id``), ``rule`` the rule it broke.
    """

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field = field
        self.rule = rule


class PluginError(ConfigError):
    """A plugin (a module named by a ``rolechain.actions`` entry point or by ``ROLECHAIN_PLUGINS``) cannot
    be loaded: ``field`` names the plugin and how it was named, ``rule`` the cause."""


LikelyCause = Literal["caller_permission", "trust_policy", "either", "caller_credentials", "request", "transient"]


@dataclass(frozen=True)
class HopFailure:
    """Everything known about one failed AssumeRole: which hop, who called, what AWS said, why."""

    hop: int  # 1-based: hop 1 is base -> first role
    role_arn: str
    caller_arn: str
    code: str
    message: str
    likely_cause: LikelyCause
    hint: str

    def to_dict(self) -> dict[str, str | int]:
        return {
            "hop": self.hop,
            "role_arn": self.role_arn,
            "caller_arn": self.caller_arn,
            "code": self.code,
            "message": self.message,
            "likely_cause": self.likely_cause,
            "hint": self.hint,
        }


class AssumeRoleError(RolechainError):
    """AssumeRole failed at one hop of a chain. rolechain never falls back to the caller's credentials."""

    def __init__(self, failure: HopFailure) -> None:
        super().__init__(
            f"hop {failure.hop} failed: {failure.caller_arn} -> {failure.role_arn}: "
            f"{failure.code}: {failure.message}. {failure.hint}"
        )
        self.failure = failure


class BaseCredentialsError(RolechainError):
    """No usable base credentials (the operator's profile/env, or the Lambda's own role)."""
