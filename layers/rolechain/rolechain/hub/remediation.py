"""Event-driven remediation: the rules a CloudTrail event matches, applied in the event's account.

A rule acts only in the accounts of the configuration (its own ``targets``, else the jobs'); an event
from any other account is refused and recorded. Each rule stands alone: one whose params cannot be
built from the event (a CreateBucket by an AWS service has no ``userIdentity.arn``) is recorded
failed while the others act, and the event is not raised back, so no retry acts twice. Run ids are
derived from the event id: a redelivery rewrites the same records instead of adding new ones.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rolechain.errors import ConfigError, RolechainError
from rolechain.hub.results import results_prefix
from rolechain.hub.runs import archive_inline, run_record, start
from rolechain.jobs import Remediation
from rolechain.planning import PlanRequest, plan_run
from rolechain.runner import FailureKind, RunReport, Status, TargetResult
from rolechain.types import RUN_ID

if TYPE_CHECKING:
    from rolechain.hub.hub import Hub

logger = logging.getLogger(__name__)
EVENT_RUN_PREFIX = "ev-"


def remediate(hub: Hub, event: Mapping[str, Any], *, run_id: str | None = None) -> dict[str, Any]:
    """Apply every remediation rule ``event`` matches, in the event's own account and region; rule
    ``i`` is run ``<run_id>-<i>``, with ``run_id`` derived from the event id by default.

    Raises ConfigError when the event has no account or region. A rule that is refused or cannot be
    planned is recorded (skipped or failed, naming why) and does not stop the others.
    """
    account, region = event.get("account"), event.get("region")
    if not isinstance(account, str) or not isinstance(region, str):
        raise ConfigError("event", "needs 'account' and 'region'")
    run_id = run_id or event_run_id(str(event.get("id") or ""))
    results: list[dict[str, Any]] = []
    for index, rule in enumerate(hub.job_file.remediations_for(event)):
        rule_run = f"{run_id}-{index}"
        if account not in hub.job_file.remediation_accounts(rule, hub.targets_of):
            reason = f"refused: account {account} is not among the accounts rule {rule.name!r} acts on"
            logger.warning("remediation %s: %s", rule_run, reason)
            results.append(_record(hub, rule, rule_run, Status.SKIPPED, account, region, reason))
            continue
        try:
            request = PlanRequest(
                action=rule.action,
                params=rule.params_for(event),
                accounts=[account],
                regions=[region],
                job=f"remediation.{rule.name}",
            )
            plan = plan_run(hub.sessions, rule, request)
        except RolechainError as exc:  # this rule cannot run on this event; the others still may
            logger.warning("remediation %s: rule %s not run: %s", rule_run, rule.name, exc)
            results.append(_record(hub, rule, rule_run, Status.FAILED, account, region, str(exc)))
            continue
        # a remediation acts at once, in the event's own account, however small the inline limit
        run = start(hub, plan, rule_run, None, None, inline=True)
        results.append({"rule": rule.name, **run})
    return {"run_id": run_id, "event_id": event.get("id"), "rules": results}


def event_run_id(event_id: str) -> str:
    """The run id of an event: its id when that is a short plain one, else a digest of it."""
    if re.fullmatch(RUN_ID, event_id) and len(event_id) <= 48:
        return EVENT_RUN_PREFIX + event_id
    return EVENT_RUN_PREFIX + hashlib.sha256(event_id.encode()).hexdigest()[:40]


def _record(
    hub: Hub, rule: Remediation, run_id: str, status: Status, account: str, region: str, why: str
) -> dict[str, Any]:
    """Record a rule that did not run: its run with one result saying why."""
    result = TargetResult(account, region, rule.action, status, error={"type": FailureKind.CONFIG, "message": why})
    report = RunReport(run_id, rule.action, rule.dry_run, datetime.now(UTC).isoformat(), 0.0, [result])
    run = {**run_record(run_id, f"remediation.{rule.name}", rule.action, rule.dry_run, None, 1), "mode": "inline"}
    run["results_uri"] = hub.results.uri(results_prefix(run))
    hub.store.put_run(run)
    hub.store.put_results(run_id, [result], archive_inline(hub, run, [result], [(account, region)]))
    return {"rule": rule.name, **run, **report.to_dict(), "status": "completed"}
