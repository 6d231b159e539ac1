"""The EventBridge patterns of a job file's remediation rules, generated once for both stacks.

A member account's rule (target-role.yaml) forwards the CloudTrail events these patterns match to the
hub's bus; the hub's rule (template.yaml, the remediation function's event) delivers them, from any
account of the organisation, to the remediation function. Both templates hold the pattern literally
(CloudFormation cannot read the job file); a test fails when either differs from
:func:`event_pattern` for the job file the stacks ship. ``rolechain events pattern`` prints it.

The member's and the hub's patterns are the same today, on purpose: a member forwards exactly what the
hub remediates, so no forwarded event is dropped unread and no remediated event is left unforwarded.
They are asked for by audience so either may narrow on its own later without a second generator.
Which accounts a remediation may act in is not the pattern's to decide: the function refuses any
account outside the job file's scope (``rolechain.hub.remediation``), whatever the bus delivers.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from rolechain.errors import ConfigError
from rolechain.jobs import JobFile

Audience = Literal["member", "hub"]
AUDIENCES: tuple[Audience, ...] = get_args(Audience)
# What a remediation rule matches: the CloudTrail record of an API call (README: "Job files").
CLOUDTRAIL_API_CALL = "AWS API Call via CloudTrail"


def event_pattern(job_file: JobFile, audience: Audience = "hub") -> dict[str, Any]:
    """The EventBridge pattern matching every event some remediation rule of ``job_file`` matches.

    One branch per event source (``source``, the CloudTrail detail type and the rules' event names,
    sorted so reordering rules changes nothing); several sources are joined with ``$or`` so no source
    matches another's event names. ``audience`` is ``member`` (what a member account forwards) or
    ``hub`` (what the hub's rule delivers to the remediation function).

    Raises:
        ConfigError: ``audience`` when it is neither; ``remediations`` when the file has no
            rule (a pattern that matches nothing cannot be written).
    """
    if audience not in AUDIENCES:
        raise ConfigError("audience", f"must be one of {', '.join(AUDIENCES)}, not {audience!r}")
    names_by_source: dict[str, set[str]] = {}
    for rule in job_file.remediations:
        names_by_source.setdefault(rule.match.source, set()).update(rule.match.event_names)
    if not names_by_source:
        raise ConfigError("remediations", "the job file has no remediation rules: no event to forward or remediate")
    branches = [
        {"source": [source], "detail-type": [CLOUDTRAIL_API_CALL], "detail": {"eventName": sorted(names)}}
        for source, names in sorted(names_by_source.items())
    ]
    return branches[0] if len(branches) == 1 else {"$or": branches}


def event_patterns(job_file: JobFile) -> dict[Audience, dict[str, Any]]:
    """Every audience's pattern (see :func:`event_pattern`), keyed by audience."""
    return {audience: event_pattern(job_file, audience) for audience in AUDIENCES}
