"""Tests that pin meanings a mutant once changed unnoticed (issue #10): each fails when its one-token
mutant is planted (the mutant is named in the test's docstring) and passes on the code as it is."""

from __future__ import annotations

import json

import pytest

from tests.hub_support import FakeContext, load_event, sqs_event
from tests.integration.test_handlers import Hub, api_call, hub, stored_results

__all__ = ["hub"]  # the fixture, shared with the handler tests

pytestmark = pytest.mark.integration


@pytest.mark.usefixtures("no_backoff")
def test_a_queued_target_throttled_with_code_throttling_goes_back_to_the_queue(hub: Hub) -> None:
    """Mutant: "Throttling" removed from errors.TRANSIENT_ERROR_CODES (the code STS, IAM and other query
    APIs answer throttled calls with) -> the target is recorded failed instead of retried."""
    # Given two queued targets; every ListBuckets in the first account is throttled with the code "Throttling"
    hub.emulator.inject_fault(
        "ListBuckets", "Throttling", "Rate exceeded", times=20, match=lambda r: r.account == "200000000001"
    )

    hub.record_run("throttled0001")

    def body(account: str) -> str:  # a queued target of the inventory job (its action and params)
        return json.dumps(
            {
                "run_id": "throttled0001",
                "job": "inventory",
                "action": "list_buckets",
                "params": {"with_tags": True},
                "account": account,
                "region": "us-east-1",
            }
        )

    batch = sqs_event([{"id": "throttled", "body": body("200000000001")}, {"id": "good", "body": body("200000000002")}])
    # When the worker handles their first delivery
    response = hub.load("worker").lambda_handler(batch, FakeContext("worker"))
    # Then the throttled message is handed back to SQS, with no final result recorded for it yet
    assert response == {"batchItemFailures": [{"itemIdentifier": "throttled"}]}
    assert stored_results(hub, "throttled0001") == {"target#200000000002#us-east-1": "ok"}


def test_a_run_of_exactly_the_inline_limit_runs_inline(hub: Hub) -> None:
    """Mutant: ``len(plan.targets) <= inline_target_limit`` -> ``<`` in hub/runs.py (a run of exactly the
    limit would be queued; INLINE_TARGET_LIMIT says "at most this many targets execute at once")."""
    api = hub.load("api")
    # Given the limit is 2 and the job of api-post-run-job.json names 2 accounts
    api.HUB.settings = api.HUB.settings.model_copy(update={"inline_target_limit": 2})
    status, run = api_call(api, "api-post-run-job.json")
    # Then it ran at once, nothing was queued
    assert (status, run["status"], run["mode"], run["target_count"]) == (200, "completed", "inline", 2)
    assert hub.emulator.calls(action="SendMessageBatch") == []


def test_two_different_s3_events_are_both_remediated(hub: Hub) -> None:
    """Mutant: remediation idempotency keyed on the event's ``source`` instead of its ``id`` -> every S3
    event after the first returns the first one's outcome for 24 h and nothing is remediated."""
    remediation = hub.load("remediation")
    first = load_event("remediation-delete-public-access-block.json")
    second = load_event("remediation-put-bucket-acl.json")
    assert first["source"] == second["source"] and first["id"] != second["id"]
    # When both arrive
    outcomes = [remediation.lambda_handler(e, FakeContext("remediation")) for e in (first, second)]
    # Then each acted in its own account, on its own bucket
    assert [o["rules"][0]["results"][0]["account"] for o in outcomes] == ["200000000002", "200000000003"]
    for account, bucket in (("200000000002", "rc-200000000002-01"), ("200000000003", "rc-200000000003-02")):
        block = hub.admin(account).client("s3").get_public_access_block(Bucket=bucket)
        assert all(block["PublicAccessBlockConfiguration"].values()), account
    assert hub.changing_calls("PutPublicAccessBlock") == 2
