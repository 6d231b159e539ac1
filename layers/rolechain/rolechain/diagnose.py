"""Explain a failed hop: which of the chain's two conditions most likely broke, in plain words.

A hop caller -> role works only when (1) the caller's own permissions allow ``sts:AssumeRole`` on
the role and (2) the role's trust policy allows the caller (with the ExternalId it requires). AWS
answers both failures with the same ``AccessDenied``; its newer messages add "because no
identity-based policy allows" (1) or "because no resource-based policy allows" (2), and where
they do not, the shape of the hop decides which is likelier.
"""

from __future__ import annotations

import re

from rolechain.chain import Hop, role_arn_parts
from rolechain.errors import (
    REJECTED_CREDENTIAL_CODES,
    THROTTLING_ERROR_CODES,
    HopFailure,
    LikelyCause,
    is_transient_error,
)

_IDENTITY_SIDE = (
    "identity-based policy",
    "permissions boundary",
    "service control policy",
    "session policy",
    "resource control policy",
)
_TRUST_SIDE = ("resource-based policy", "trust policy")
_CREDENTIAL_CODES = REJECTED_CREDENTIAL_CODES | {
    "SignatureDoesNotMatch",
    "UnrecognizedClientException",
    "NoCredentialsError",
    "InvalidAccessKeyId",
}
_NETWORK_CODES = {
    "EndpointConnectionError",
    "ConnectTimeoutError",
    "ReadTimeoutError",
    "ConnectionClosedError",
    "ProxyConnectionError",
    "SSLError",
}
# "... is not authorized to perform: sts:TagSession on resource: ..." names the action actually denied.
_DENIED_ACTION_RE = re.compile(r"perform: (sts:\w+)")


def _account_of(arn: str) -> str | None:
    parts = arn.split(":")
    return parts[4] if len(parts) > 4 and parts[4].isdigit() else None


def classify_assume_role_error(
    *, hop: int, hop_spec: Hop, caller_arn: str, code: str, message: str, status: int | None = None
) -> HopFailure:
    """A :class:`HopFailure` for AssumeRole of ``hop_spec`` by ``caller_arn`` that failed with
    ``code``/``message`` (HTTP ``status`` when known); ``hop`` is 1-based (hop 1: base credentials ->
    first role). Throttling and server errors (5xx) are ``transient``: a retry may fix them."""
    role = hop_spec.role_arn
    lowered = message.lower()
    # A hop with session tags or a SourceIdentity also needs sts:TagSession / sts:SetSourceIdentity.
    denied = _DENIED_ACTION_RE.search(message)
    action = denied.group(1) if denied else "sts:AssumeRole"
    cond1 = (
        f"condition (1): {caller_arn} is not allowed {action} on {role} by its own permissions "
        f"(add a statement Allow {action} on {role} to the caller's policies, and check SCPs / "
        "permission boundaries)"
    )
    # The ExternalId is a shared secret: say that one was sent, never its value (hints reach API
    # responses, stored runs, logs and the CLI). Whether it matched is not knowable from the caller's
    # side: STS answers a wrong ExternalId and a missing trust statement with the same AccessDenied.
    ext = (
        " with the ExternalId it was given (value not shown; check it matches the trust policy's)"
        if hop_spec.external_id
        else ""
    )
    cond2 = (
        f"condition (2): the trust policy of {role} does not allow {caller_arn}{ext} "
        f'(its AssumeRolePolicyDocument needs Principal {{"AWS": "{trust_principal(caller_arn)}"}}'
        + (" and Condition StringEquals sts:ExternalId" if hop_spec.external_id else "")
        + (", plus sts:TagSession" if hop_spec.tags else "")
        + (", plus sts:SetSourceIdentity" if hop_spec.source_identity else "")
        + "), or the role does not exist (check its ARN: account, path and name)"
        + (
            "; if that trust policy requires sts:ExternalId, none was sent: give one"
            if not hop_spec.external_id and _account_of(caller_arn) not in (None, role_arn_parts(role)[1])
            else ""  # an ExternalId guards cross-account trust: no advice about it for a same-account role
        )
    )
    cause: LikelyCause
    if code in _CREDENTIAL_CODES:
        cause = "caller_credentials"
        hint = f"the credentials of {caller_arn} are invalid or expired; " + (
            "refresh the base credentials (profile, SSO login or environment)"
            if hop == 1
            else "the previous hop's credentials were rejected"
        )
    elif code in _NETWORK_CODES:
        cause = "transient"
        hint = f"could not reach the STS endpoint ({message}); check the network, the region and any endpoint override"
    elif code in THROTTLING_ERROR_CODES:
        cause = "transient"
        hint = "STS throttled the call; retry with backoff or lower the run's concurrency"
    elif is_transient_error(code, status):
        cause = "transient"
        hint = f"STS answered a server error ({code}); it is on AWS's side: retry later"
    elif code == "RegionDisabledException":
        cause = "request"
        hint = "STS is not activated in this region for the account; use another region or activate it in IAM"
    elif code in {"ValidationError", "MalformedPolicyDocument", "PackedPolicyTooLarge"}:
        cause = "request"
        if "duration" in lowered:
            hint = (
                f"DurationSeconds {hop_spec.duration_seconds} is over what this hop allows: at most 3600 for "
                f"a chained hop and at most {role}'s MaxSessionDuration"
            )
        elif code == "PackedPolicyTooLarge":
            hint = "the session policy and session tags together are too large once packed; send fewer"
        else:
            hint = f"STS rejected the request parameters of hop {hop}: {message}"
    elif code.startswith("AccessDenied") and already_is(caller_arn, role):
        # the caller already is a session of this role: the hop is one too many, not a missing permission
        cause = "request"
        hint = f"the caller ({caller_arn}) already is {role}: drop this hop from the chain (--via {role})"
    elif code.startswith("AccessDenied"):
        if any(marker in lowered for marker in _IDENTITY_SIDE):
            cause, hint = "caller_permission", "likely " + cond1
        elif any(marker in lowered for marker in _TRUST_SIDE):
            cause, hint = "trust_policy", "likely " + cond2
        else:
            # No reason given: a cross-account hop or one with an ExternalId fails on trust far more
            # often (the member account's role is the part deployed separately).
            cross_account = _account_of(caller_arn) not in (None, role_arn_parts(role)[1])
            if hop_spec.external_id or cross_account:
                cause, hint = "either", "likely " + cond2 + "; otherwise " + cond1
            else:
                cause, hint = "either", "likely " + cond1 + "; otherwise " + cond2
    else:
        cause = "either"
        hint = f"unexpected error from STS; check {cond1}; and {cond2}"
    return HopFailure(
        hop=hop,
        role_arn=role,
        caller_arn=caller_arn,
        code=code,
        message=message,
        likely_cause=cause,
        hint=hint,
    )


def already_is(caller_arn: str, role_arn: str) -> bool:
    """Whether ``caller_arn`` is a session of ``role_arn`` (a session ARN carries its role's name and
    account, not its path): assuming that role again is one hop too many."""
    partition, account, _path, name = role_arn_parts(role_arn)
    return caller_arn != trust_principal(caller_arn) == f"arn:{partition}:iam::{account}:role/{name}"


def trust_principal(caller_arn: str) -> str:
    """The principal a trust policy names for a caller: an assumed-role session is trusted by its role ARN."""
    parts = caller_arn.split(":")
    if len(parts) >= 6 and parts[2] == "sts" and parts[5].startswith("assumed-role/"):
        role_name = parts[5].split("/")[1]
        return f"arn:{parts[1]}:iam::{parts[4]}:role/{role_name}"
    return caller_arn
