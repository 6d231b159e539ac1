"""Validated types shared by every edge: the job file, the API's models, the SQS message, the handlers
and the CLI. Each pattern is written once, here, ASCII-only: Python's and pydantic's ``\\d`` and ``\\w``
also match non-ASCII digits and letters (``٢`` is a digit to them), which AWS never accepts.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import StringConstraints

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

ROLE_ARN_RE = re.compile(f"^{ROLE_ARN}$")
DEFAULT_ROLE_NAME = "rolechain-target"  # what target-role.yaml creates

AccountId = Annotated[str, StringConstraints(pattern=f"^{ACCOUNT_ID}$")]
Region = Annotated[str, StringConstraints(pattern=f"^{REGION}$")]
RoleName = Annotated[str, StringConstraints(pattern=f"^{ROLE_NAME}$")]
RolePath = Annotated[str, StringConstraints(pattern=f"^{ROLE_PATH}$")]
RoleArn = Annotated[str, StringConstraints(pattern=f"^{ROLE_ARN}$")]
JobName = Annotated[str, StringConstraints(pattern=f"^{JOB_NAME}$")]
ActionName = Annotated[str, StringConstraints(pattern=f"^{ACTION_NAME}$")]
RunId = Annotated[str, StringConstraints(pattern=f"^{RUN_ID}$")]
ExternalId = Annotated[str, StringConstraints(pattern=f"^{EXTERNAL_ID}$")]

_CHECKS = {
    "account": (re.compile(f"^{ACCOUNT_ID}$"), "is not a 12-digit AWS account id"),
    "region": (re.compile(f"^{REGION}$"), "is not an AWS region name like us-east-1"),
    "role_arn": (ROLE_ARN_RE, "is not an IAM role ARN"),
}


def check(kind: str, value: str, field: str) -> str:
    """``value`` if it is a valid ``kind`` (account, region, role_arn). Raises ConfigError naming
    ``field`` otherwise: for values that reach rolechain outside a pydantic model (CLI flags, API lists)."""
    pattern, rule = _CHECKS[kind]
    if not isinstance(value, str) or not pattern.match(value):
        raise ConfigError(field, f"{value!r} {rule}")
    return value
