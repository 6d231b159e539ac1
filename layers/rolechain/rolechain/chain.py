"""Chains and hops: what to assume, in which order, validated against STS rules before any call.

A chain is base credentials (U1's profile, or the Lambda's R1 role) followed by hops, each an
``sts:AssumeRole`` of one role with the credentials the previous hop produced.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from rolechain.errors import ConfigError
from rolechain.types import (
    EXTERNAL_ID_RE,
    MFA_SERIAL_RE,
    ROLE_ARN_RE,
    SESSION_NAME_CHARS_RE,
    SESSION_NAME_RE,
    TOKEN_CODE_RE,
)

# STS limits (https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html); the session
# name, SourceIdentity and ExternalId patterns are rolechain.types' (ASCII). Tag keys and values may be
# any Unicode letter, as IAM allows.
TAG_KEY_RE = re.compile(r"^[\w\s.:/=+\-@]{1,128}\Z", re.UNICODE)
TAG_VALUE_RE = re.compile(r"^[\w\s.:/=+\-@]{0,256}\Z", re.UNICODE)
MIN_DURATION = 900
MAX_DURATION = 43200
MAX_CHAINED_DURATION = 3600  # AWS caps every role-chained session at one hour
MAX_SESSION_POLICY_CHARS = 2048
MAX_SESSION_TAGS = 50
DEFAULT_DURATION = 3600


class Hop(BaseModel):
    """One AssumeRole: the role and the options sent with it.

    ``session_policy`` narrows the session to the intersection of it and the role's permissions.
    ``transitive_tag_keys`` must be a subset of ``tags`` keys.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    role_arn: str
    external_id: str | None = Field(default=None, repr=False)  # a shared secret: never in a repr
    session_name: str | None = None
    duration_seconds: int = Field(default=DEFAULT_DURATION)
    source_identity: str | None = None
    tags: tuple[tuple[str, str], ...] = ()
    transitive_tag_keys: tuple[str, ...] = ()
    session_policy: str | None = None
    # MFA for this AssumeRole (the trust policy may require aws:MultiFactorAuthPresent): the device's
    # serial number or ARN and the current one-time code. A code is good once, so a session refreshed
    # after it expires needs a new one.
    serial_number: str | None = None
    token_code: str | None = Field(default=None, repr=False)

    @field_validator("role_arn")
    @classmethod
    def _role_arn(cls, value: str) -> str:
        if not ROLE_ARN_RE.match(value):
            raise ValueError(
                "must be an IAM role ARN like arn:aws:iam::123456789012:role/name "
                "(partition aws, aws-cn or aws-us-gov; 12-digit account)"
            )
        return value

    @field_validator("external_id")
    @classmethod
    def _external_id(cls, value: str | None) -> str | None:
        if value is not None and not (EXTERNAL_ID_RE.match(value)):
            raise ValueError("must be 2-1224 characters of letters, digits and +=,.@:/-")
        return value

    @field_validator("session_name")
    @classmethod
    def _session_name(cls, value: str | None) -> str | None:
        if value is not None and not (SESSION_NAME_RE.match(value)):
            raise ValueError("must be 2-64 characters of letters, digits and +=,.@-")
        return value

    @field_validator("source_identity")
    @classmethod
    def _source_identity(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if not (SESSION_NAME_RE.match(value)):
            raise ValueError("must be 2-64 characters of letters, digits and +=,.@-")
        if value.lower().startswith("aws:"):
            raise ValueError("must not start with 'aws:' (reserved by AWS)")
        return value

    @field_validator("duration_seconds")
    @classmethod
    def _duration(cls, value: int) -> int:
        if not MIN_DURATION <= value <= MAX_DURATION:
            raise ValueError(f"must be between {MIN_DURATION} and {MAX_DURATION} seconds")
        return value

    @field_validator("session_policy", mode="before")
    @classmethod
    def _session_policy(cls, value: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f"is not valid JSON: {exc.msg}") from exc
        if not isinstance(value, Mapping) or "Statement" not in value:
            raise ValueError("must be an IAM policy document (an object with a Statement)")
        text = minify_policy(value)
        if len(text) > MAX_SESSION_POLICY_CHARS:
            raise ValueError(f"is {len(text)} characters minified; STS allows at most {MAX_SESSION_POLICY_CHARS}")
        return text

    @field_validator("tags", mode="before")
    @classmethod
    def _tags_input(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            return tuple(sorted((str(k), str(v)) for k, v in value.items()))
        return value

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
        if len(value) > MAX_SESSION_TAGS:
            raise ValueError(f"has {len(value)} tags; STS allows at most {MAX_SESSION_TAGS}")
        seen: set[str] = set()
        for key, tag_value in value:
            if not TAG_KEY_RE.match(key):
                raise ValueError(f"key {key!r} must be 1-128 characters of letters, digits, spaces and _.:/=+-@")
            if key.lower().startswith("aws:"):
                raise ValueError(f"key {key!r} must not start with 'aws:'")
            if not TAG_VALUE_RE.match(tag_value):
                raise ValueError(f"value of {key!r} must be 0-256 characters of letters, digits, spaces and _.:/=+-@")
            if key.lower() in seen:  # session tag keys are case-insensitive in STS
                raise ValueError(f"key {key!r} is given twice (keys are case-insensitive)")
            seen.add(key.lower())
        return value

    @field_validator("serial_number")
    @classmethod
    def _serial_number(cls, value: str | None) -> str | None:
        if value is not None and not MFA_SERIAL_RE.match(value):
            raise ValueError(
                "must be an MFA device ARN like arn:aws:iam::123456789012:mfa/name or a hardware serial "
                "(9-256 characters of letters, digits and +=/:,.@-)"
            )
        return value

    @field_validator("token_code")
    @classmethod
    def _token_code(cls, value: str | None) -> str | None:
        if value is not None and not TOKEN_CODE_RE.match(value):
            raise ValueError("must be the 6 digits the MFA device shows")
        return value

    @model_validator(mode="after")
    def _mfa_pair(self) -> Hop:
        if (self.serial_number is None) != (self.token_code is None):
            raise ValueError("serial_number and token_code go together (the MFA device and its current code)")
        return self

    @model_validator(mode="after")
    def _transitive_keys(self) -> Hop:
        keys = {key.lower() for key, _ in self.tags}
        missing = [k for k in self.transitive_tag_keys if k.lower() not in keys]
        if missing:
            raise ValueError(f"transitive_tag_keys {missing} are not among the session tags")
        return self

    @property
    def account_id(self) -> str:
        return role_arn_parts(self.role_arn)[1]

    @property
    def partition(self) -> str:
        return role_arn_parts(self.role_arn)[0]

    def assume_role_params(self, session_name: str) -> dict[str, Any]:
        """The keyword arguments for ``sts.assume_role`` (session name resolved by the caller)."""
        params: dict[str, Any] = {
            "RoleArn": self.role_arn,
            "RoleSessionName": self.session_name or session_name,
            "DurationSeconds": self.duration_seconds,
        }
        if self.external_id is not None:
            params["ExternalId"] = self.external_id
        if self.source_identity is not None:
            params["SourceIdentity"] = self.source_identity
        if self.tags:
            params["Tags"] = [{"Key": k, "Value": v} for k, v in self.tags]
        if self.transitive_tag_keys:
            params["TransitiveTagKeys"] = list(self.transitive_tag_keys)
        if self.session_policy is not None:
            params["Policy"] = self.session_policy
        if self.serial_number is not None:
            params["SerialNumber"] = self.serial_number
            params["TokenCode"] = self.token_code
        return params


class Chain(BaseModel):
    """An ordered, non-empty list of hops. Hashable, so it keys the credential cache.

    ``session_name`` is the default RoleSessionName of every hop that sets none (see
    :func:`default_session_name`).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    hops: tuple[Hop, ...] = Field(min_length=1)
    session_name: str = "rolechain"

    @field_validator("session_name")
    @classmethod
    def _session_name(cls, value: str) -> str:
        if not (SESSION_NAME_RE.match(value)):
            raise ValueError("must be 2-64 characters of letters, digits and +=,.@-")
        return value

    @model_validator(mode="after")
    def _chained_rules(self) -> Chain:
        for index, hop in enumerate(self.hops[1:], start=1):
            if hop.duration_seconds > MAX_CHAINED_DURATION:
                raise ValueError(
                    f"hops[{index}].duration_seconds is {hop.duration_seconds}: a role-chained session lasts "
                    f"at most {MAX_CHAINED_DURATION} seconds"
                )
        # STS keeps the first SourceIdentity for the rest of the chain and rejects a different one.
        first_identity: str | None = None
        for index, hop in enumerate(self.hops):
            if hop.source_identity is None:
                continue
            if first_identity is None:
                first_identity = hop.source_identity
            elif hop.source_identity != first_identity:
                raise ValueError(
                    f"hops[{index}].source_identity {hop.source_identity!r} differs from {first_identity!r} "
                    "set earlier in the chain; STS does not allow changing it"
                )
        return self

    @classmethod
    def build(
        cls,
        role_arns: Sequence[str],
        *,
        external_id: str | None = None,
        session_name: str = "rolechain",
        source_identity: str | None = None,
        tags: Mapping[str, str] | None = None,
        session_policy: Mapping[str, Any] | str | None = None,
        duration_seconds: int = DEFAULT_DURATION,
        mfa: tuple[str, str] | None = None,
    ) -> Chain:
        """A chain through ``role_arns``; ``external_id`` and ``session_policy`` apply to the last hop,
        ``mfa`` (serial number, one-time code) to the first.

        Raises:
            ConfigError: naming the first field that breaks an STS rule.
        """
        hops: list[dict[str, Any]] = []
        for index, arn in enumerate(role_arns):
            last = index == len(role_arns) - 1
            hop: dict[str, Any] = {"role_arn": arn, "duration_seconds": duration_seconds}
            if source_identity is not None:
                hop["source_identity"] = source_identity
            if tags:
                hop["tags"] = dict(tags)
            if last and external_id is not None:
                hop["external_id"] = external_id
            if last and session_policy is not None:
                hop["session_policy"] = session_policy
            if index == 0 and mfa is not None:
                hop["serial_number"], hop["token_code"] = mfa
            hops.append(hop)
        return parse_chain({"hops": hops, "session_name": session_name})

    def prefix(self, length: int) -> Chain:
        return self.model_copy(update={"hops": self.hops[:length]})

    @property
    def target(self) -> Hop:
        return self.hops[-1]


def parse_chain(data: Mapping[str, Any], *, where: str = "") -> Chain:
    """Parse a chain from plain data, turning pydantic's errors into one :class:`ConfigError`."""
    try:
        return Chain.model_validate(data)
    except ValidationError as exc:
        raise config_error(exc, where=where) from exc


def config_error(exc: ValidationError, *, where: str = "") -> ConfigError:
    """The first pydantic error as a ConfigError whose field reads like ``hops[1].external_id``."""
    first = exc.errors()[0]
    field = where
    for part in first["loc"]:
        if isinstance(part, int):
            field += f"[{part}]"
        else:
            field += f".{part}" if field else str(part)
    message = str(first["msg"]).removeprefix("Value error, ")
    return ConfigError(field or "input", message)


def role_arn_parts(role_arn: str) -> tuple[str, str, str, str]:
    """(partition, account, path, name) of a role ARN. Raises ConfigError on a malformed ARN."""
    match = ROLE_ARN_RE.match(role_arn)
    if not match:
        raise ConfigError("role_arn", f"{role_arn!r} is not an IAM role ARN")
    return match["partition"], match["account"], "/" + match["path"], match["name"]


def minify_policy(policy: Mapping[str, Any]) -> str:
    """The policy as compact JSON, the form whose length STS limits."""
    return json.dumps(policy, separators=(",", ":"), sort_keys=False)


def new_run_id() -> str:
    """A short, sortable-enough id for one run; it travels in session names and logs."""
    return uuid.uuid4().hex[:12]


def sanitize_session_name(value: str, *, fallback: str = "rolechain") -> str:
    """``value`` made valid as a RoleSessionName or SourceIdentity: characters STS refuses become
    '-', the result is cut to 64 characters and padded to 2."""
    # ':' is not an allowed character, so the result can never start with the reserved "aws:".
    cleaned = SESSION_NAME_CHARS_RE.sub("-", value).strip("-")[:64] or fallback
    return cleaned if len(cleaned) >= 2 else (cleaned + "--")[:2]


def source_identity_of(caller_arn: str) -> str | None:
    """The person's name in ``caller_arn``, as a SourceIdentity: an IAM user's or federated user's name, an
    assumed-role session's name (an IAM Identity Center user's sign-in name, for an SSO profile); None for
    an account root, which names nobody. Characters STS refuses become '-'."""
    resource = caller_arn.split(":", 5)[-1]
    kind, _, rest = resource.partition("/")
    if kind in ("user", "federated-user") and rest:
        return sanitize_session_name(rest.rsplit("/", 1)[-1])
    if kind == "assumed-role" and "/" in rest:
        return sanitize_session_name(rest.split("/", 1)[1])
    return None


TAG_VALUE_CHARS_RE = re.compile(r"[^A-Za-z0-9_ .:/=+@-]")


def sanitize_tag_value(value: str) -> str:
    """``value`` made valid as a session tag value: characters STS refuses (and every non-ASCII one)
    become '-', the result is cut to 256 characters."""
    return TAG_VALUE_CHARS_RE.sub("-", value)[:256]


def default_session_name(purpose: str, run_id: str | None = None) -> str:
    """A RoleSessionName that tells a CloudTrail reader in the target account what ran and which run.

    Form: ``rolechain.<purpose>.<run_id>``. The run id is never cut; ``purpose`` is shortened
    (and sanitised) so the whole stays within STS's 64 characters whatever the inputs.
    """
    run = SESSION_NAME_CHARS_RE.sub("-", run_id)[:24] if run_id else ""
    suffix = f".{run}" if run else ""
    room = 64 - len("rolechain.") - len(suffix)
    what = SESSION_NAME_CHARS_RE.sub("-", purpose)[:room] or "run"
    return f"rolechain.{what}{suffix}"
