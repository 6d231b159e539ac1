"""The fault matrix: each fault the emulator can inject, over the inline and the queued path of a
changing job (tag-owner, five targets). Whatever happens, every target ends exactly once as ok, failed,
skipped or dry_run, the run completes, no resource is tagged twice and retries stay bounded."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.hub_support import FakeContext, load_event
from tests.integration import test_handlers
from tests.integration.test_handlers import Hub, api_call, drain_queue, stored_results
from tests.integration.test_hub_scope import deliver_until_done

pytestmark = pytest.mark.integration
hub = test_handlers.hub  # the in-process hub fixture of the handler tests

ACCOUNTS = [f"20000000000{i}" for i in range(1, 6)]
FINAL = {"ok", "failed", "skipped", "dry_run"}


def at(account: str) -> Callable[[Any], bool]:
    return lambda r: r.account == account or account in str(r.params.get("RoleArn", ""))


# name -> (operation, code, message, status, times, account or None for every account)
FAULTS: dict[str, tuple[str, str, str, int, int, str | None]] = {
    "throttled target call": ("GetResources", "Throttling", "Rate exceeded", 400, 2, "200000000002"),
    "5xx target call": ("ListBuckets", "InternalError", "boom", 500, 2, "200000000003"),
    "throttled hop": ("AssumeRole", "Throttling", "Rate exceeded", 400, 2, "200000000004"),
    "expired credentials": (
        "ListBuckets",
        "ExpiredToken",
        "The security token included in the request is expired",
        400,
        1,
        "200000000005",
    ),
    "denied hop": ("AssumeRole", "AccessDenied", "not authorized to perform: sts:AssumeRole", 403, 50, "200000000001"),
    "result write fails after acting": ("BatchWriteItem", "InternalServerError", "boom", 500, 2, None),
}


@pytest.mark.parametrize("path", ["inline", "queued"])
@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_every_target_ends_exactly_once_whatever_fails(hub: Hub, no_backoff: None, fault: str, path: str) -> None:
    operation, code, message, status, times, account = FAULTS[fault]
    scheduler = hub.load("scheduler")
    limit = 10 if path == "inline" else 1
    scheduler.HUB.settings = scheduler.HUB.settings.model_copy(update={"inline_target_limit": limit})
    match = at(account) if account else None
    if fault == "result write fails after acting":  # the results' write, not the queued plan's (also a batch)
        match = lambda r: "target#" in json.dumps(r.body)  # noqa: E731
    hub.emulator.inject_fault(operation, code, message, status=status, times=times, match=match)
    # When the scheduler starts the job (and, queued, SQS and the worker do their parts)
    try:
        run = scheduler.lambda_handler(load_event("scheduler-tag-owner.json"), FakeContext("scheduler"))
    except Exception:
        # an inline run whose result write still fails raises: the schedule's retry and DLQ keep the event
        assert path == "inline" and fault == "result write fails after acting"
        return
    dead: list[str] = []
    if path == "queued":
        assert run["status"] == "queued"
        dead = deliver_until_done(hub, drain_queue(hub))
    # Then each target has exactly one final result and the run is complete
    results = stored_results(hub, run["run_id"])
    assert sorted(results) == [f"target#{a}#us-east-1" for a in ACCOUNTS], (fault, path, dead)
    assert set(results.values()) <= FINAL
    got, body = api_call(hub.load("api"), "api-get-run.json", RUN_ID=run["run_id"])
    assert got == 200 and body["status"] == "completed" and sum(body["summary"].values()) == len(ACCOUNTS)
    # no resource tagged twice, and retries bounded (at most the delivery limit per target)
    tagged = [
        a for c in hub.emulator.calls(action="TagResources") if c.status == 200 for a in c.body["ResourceARNList"]
    ]
    assert len(tagged) == len(set(tagged))
    assert len(hub.emulator.calls(action="AssumeRole")) <= 3 * len(ACCOUNTS) * 2
    if fault == "denied hop":
        assert results[f"target#{account}#us-east-1"] == "failed"  # refused for good, never retried into ok
    assert dead == []
