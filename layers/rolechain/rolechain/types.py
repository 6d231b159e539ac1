"""Validated types shared by every edge: the job file, the API's models, the SQS message, the handlers
and the CLI. Each pattern is written once, here, ASCII-only: Python's and pydantic's ``\\d`` and ``\\w``
also match non-ASCII digits and letters (``٢`` is a digit to them), which AWS never accepts.
"""

from __future__ import annotations

import difflib
import functools
import re
from typing import Annotated

import botocore.loaders
from pydantic import AfterValidator, StringConstraints

from rolechain.errors import ConfigError

WORD = "A-Za-z0-9_"  # STS's \w
ACCOUNT_ID = r"[0-9]{12}"
REGION = r"[a-z]{2}(-[a-z]+)+-[0-9]{1,2}"
ROLE_NAME = rf"[{WORD}+=,.@-]{{1,64}}"
ROLE_PATH = rf"/([{WORD}+=,.@-]+/)*"
PARTITION = r"aws|aws-cn|aws-us-gov|aws-iso|aws-iso-b"
ROLE_ARN = (
    rf"arn:(?P<partition>{PARTITION}):iam::(?P<account>{ACCOUNT_ID}):"
    rf"role/(?P<path>(?:[{WORD}+=,.@-]+/)*)(?P<name>[{WORD}+=,.@-]{{1,64}})"
)
JOB_NAME = rf"[{WORD}.-]{{1,64}}"
ACTION_NAME = r"[a-z][a-z0-9_]{0,63}"  # goes into session names and API bodies
RUN_ID = rf"[{WORD}-]{{1,64}}"
EXTERNAL_ID = rf"[{WORD}+=,.@:/-]{{2,1224}}"
SSM_PARAMETER_NAME = rf"/?[{WORD}.\-/]+"
MFA_SERIAL = rf"[{WORD}+=/:,.@-]{{9,256}}"  # STS SerialNumber: a virtual device's ARN or a hardware serial
TOKEN_CODE = r"[0-9]{6}"
SCHEDULE_GROUP = r"[0-9A-Za-z_.-]{1,64}"  # EventBridge Scheduler's rule for a group's (and a schedule's) name
FUNCTION_ARN = rf"arn:({PARTITION}):lambda:{REGION}:{ACCOUNT_ID}:function:[{WORD}-]{{1,64}}(:[{WORD}$-]{{1,128}})?"

SESSION_NAME = rf"[{WORD}+=,.@-]{{2,64}}"  # RoleSessionName and SourceIdentity

# Python's "$" also matches before a final newline: compiled checks end with \Z ("\n" is never valid).
ROLE_ARN_RE = re.compile(f"^{ROLE_ARN}\\Z")
SESSION_NAME_RE = re.compile(f"^{SESSION_NAME}\\Z")
SESSION_NAME_CHARS_RE = re.compile(f"[^{WORD}+=,.@-]")
EXTERNAL_ID_RE = re.compile(f"^{EXTERNAL_ID}\\Z")
MFA_SERIAL_RE = re.compile(f"^{MFA_SERIAL}\\Z")
TOKEN_CODE_RE = re.compile(f"^{TOKEN_CODE}\\Z")
DEFAULT_ROLE_NAME = "rolechain-target"  # what target-role.yaml creates


@functools.cache
def known_regions(partition: str | None = None) -> frozenset[str]:
    """The region names of ``partition`` (every partition's for None) in botocore's bundled endpoint
    data: read from the installed package, never from the network. Empty for an unknown partition."""
    data = botocore.loaders.create_loader().load_data("endpoints")
    return frozenset(
        region
        for entry in data.get("partitions", [])
        if partition is None or entry.get("partition") == partition
        for region in entry.get("regions", {})
    )


def region_problem(region: str, partition: str | None = None) -> str | None:
    """Why ``region`` is not a known region (of ``partition``, or of any), or None when it is one."""
    known = known_regions(partition)
    if region in known:
        return None
    where = f"a region of partition {partition}" if partition else "a known AWS region"
    # Letters swapped (us-esat-1) first: difflib alone would rather suggest us-west-1.
    swapped = [name for name in sorted(known) if sorted(name) == sorted(region)]
    close = swapped or difflib.get_close_matches(region, sorted(known), n=1)
    return f"{region!r} is not {where}" + (f" (did you mean {close[0]!r}?)" if close else "")


def _known_region(value: str) -> str:
    problem = region_problem(value)
    if problem:
        raise ValueError(problem)
    return value


ALL_REGIONS = "all"  # every region enabled in a target account, found through its chain


def _region_or_all(value: str) -> str:
    return value if value == ALL_REGIONS else _known_region(value)


AccountId = Annotated[str, StringConstraints(pattern=f"^{ACCOUNT_ID}$")]
Region = Annotated[str, StringConstraints(pattern=f"^{REGION}$"), AfterValidator(_known_region)]
RegionOrAll = Annotated[str, StringConstraints(pattern=f"^({REGION}|{ALL_REGIONS})$"), AfterValidator(_region_or_all)]
RoleName = Annotated[str, StringConstraints(pattern=f"^{ROLE_NAME}$")]
RolePath = Annotated[str, StringConstraints(pattern=f"^{ROLE_PATH}$")]
RoleArn = Annotated[str, StringConstraints(pattern=f"^{ROLE_ARN}$")]
JobName = Annotated[str, StringConstraints(pattern=f"^{JOB_NAME}$")]
ActionName = Annotated[str, StringConstraints(pattern=f"^{ACTION_NAME}$")]
RunId = Annotated[str, StringConstraints(pattern=f"^{RUN_ID}$")]
ExternalId = Annotated[str, StringConstraints(pattern=f"^{EXTERNAL_ID}$")]
ScheduleGroupName = Annotated[str, StringConstraints(pattern=f"^{SCHEDULE_GROUP}$")]
FunctionArn = Annotated[str, StringConstraints(pattern=f"^{FUNCTION_ARN}$")]

_CHECKS = {
    "account": (re.compile(f"^{ACCOUNT_ID}\\Z"), "is not a 12-digit AWS account id"),
    "region": (re.compile(f"^{REGION}\\Z"), "is not an AWS region name like us-east-1"),
    "role_arn": (ROLE_ARN_RE, "is not an IAM role ARN"),
    "mfa_serial": (MFA_SERIAL_RE, "is not an MFA device ARN (arn:aws:iam::123456789012:mfa/name) or serial number"),
}


def check(kind: str, value: str, field: str) -> str:
    """``value`` if it is a valid ``kind`` (account, region, role_arn, mfa_serial). Raises ConfigError naming
    ``field`` otherwise: for values that reach rolechain outside a pydantic model (CLI flags, API lists)."""
    pattern, rule = _CHECKS[kind]
    if not isinstance(value, str) or not pattern.match(value):
        raise ConfigError(field, f"{value!r} {rule}")
    problem = region_problem(value) if kind == "region" else None
    if problem:
        raise ConfigError(field, problem)
    return value
