"""Event-driven remediation: the rules a CloudTrail event matches, applied in the event's account."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from rolechain.chain import new_run_id
from rolechain.errors import ConfigError
from rolechain.hub.runs import start
from rolechain.planning import PlanRequest, plan_run

if TYPE_CHECKING:
    from rolechain.hub.hub import Hub


def remediate(hub: Hub, event: Mapping[str, Any], *, run_id: str | None = None) -> dict[str, Any]:
    """Apply every remediation rule ``event`` matches, in the event's own account and region.

    Raises ConfigError when the event lacks what a rule needs (account, region, a param path).
    """
    account, region = event.get("account"), event.get("region")
    if not isinstance(account, str) or not isinstance(region, str):
        raise ConfigError("event", "needs 'account' and 'region'")
    rules = hub.job_file.remediations_for(event)
    run_id = run_id or new_run_id()
    results: list[dict[str, Any]] = []
    for rule in rules:
        request = PlanRequest(
            action=rule.action,
            params=rule.params_for(event),
            accounts=[account],
            regions=[region],
            job=f"remediation.{rule.name}",
        )
        plan = plan_run(hub.sessions, rule, request)
        # a remediation acts at once, in the event's own account, however small the inline limit
        run = start(hub, plan, f"{run_id}-{len(results)}", None, None, inline=True)
        results.append({"rule": rule.name, **run})
    return {"run_id": run_id, "event_id": event.get("id"), "rules": results}
