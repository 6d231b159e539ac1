"""Issue #12.3, a queued run's plan: its accounts are kept in small items of their own, so the record every
worker reads stays the same size however many targets the run has, a worker checks its message with one
read, and a message whose account the plan does not hold is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.hub_support import FakeContext, sqs_event
from tests.integration import test_handlers
from tests.integration.test_handlers import Hub, completion_events, drain_queue, run_record, stored_results

pytestmark = pytest.mark.integration
hub = test_handlers.hub


def large_job(hub: Hub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, extra: int) -> list[str]:
    """A job over the five seeded accounts and ``extra`` accounts that are never run."""
    accounts = [f"20000000000{i}" for i in range(1, 6)] + [f"3{n:011d}" for n in range(extra)]
    jobs = tmp_path / "jobs.yaml"
    listed = ", ".join(f"'{a}'" for a in accounts)
    jobs.write_text(
        "version: 1\n"
        f"defaults: {{external_id: {hub.seed.external_id}}}\n"
        f"jobs:\n  big: {{action: list_buckets, targets: {{accounts: [{listed}]}}}}\n"
    )
    monkeypatch.setenv("JOB_FILE", str(jobs))
    return accounts


@pytest.mark.parametrize("extra", [0, 495])
def test_the_record_a_worker_reads_does_not_grow_with_the_run(
    hub: Hub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, extra: int
) -> None:
    accounts = large_job(hub, monkeypatch, tmp_path, extra)
    scheduler = hub.load("scheduler")
    scheduler.HUB.settings = scheduler.HUB.settings.model_copy(update={"inline_target_limit": 1})
    hub.emulator.clear_requests()

    run = scheduler.lambda_handler({"job": "big"}, FakeContext("scheduler"))

    # Then the record holds no account list, only the count and the plan's buckets (about 100 accounts each)
    record = run_record(hub, run["run_id"])
    assert len(json.dumps(record, default=str)) < 2_000
    assert int(record["plan_buckets"]) == max(1, -(-len(accounts) // 100))
    assert "accounts" not in json.dumps(record["queued"])
    # and every account was queued once (SQS keeps no order), its plan the job's accounts in their order
    messages = drain_queue(hub)
    assert sorted(json.loads(m["body"])["account"] for m in messages) == sorted(accounts)
    store = scheduler.HUB.store
    assert store.plan_targets(run["run_id"], int(record["plan_buckets"])) == [(a, "us-east-1") for a in accounts]


def test_a_worker_checks_a_message_with_one_read_and_runs_it(
    hub: Hub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    large_job(hub, monkeypatch, tmp_path, 295)
    scheduler = hub.load("scheduler")
    scheduler.HUB.settings = scheduler.HUB.settings.model_copy(update={"inline_target_limit": 1})
    run = scheduler.lambda_handler({"job": "big"}, FakeContext("scheduler"))
    # a message of a seeded account (SQS keeps no order: the others name accounts nobody seeded)
    first = [m for m in drain_queue(hub) if json.loads(m["body"])["account"] == "200000000001"]
    hub.emulator.clear_requests()

    response = hub.load("worker").lambda_handler(sqs_event(first), FakeContext("worker"))

    assert response == {"batchItemFailures": []}
    assert stored_results(hub, run["run_id"]) == {"target#200000000001#us-east-1": "ok"}
    reads = [c.action for c in hub.emulator.calls(service="dynamodb") if c.action in ("GetItem", "BatchGetItem")]
    # the record, the target's marker and its plan bucket at once; then, targets being left, the progress
    # once more after the marker (another worker's count may have ended the run in between)
    assert reads == ["BatchGetItem", "GetItem"], reads


def test_a_message_whose_account_the_plan_does_not_hold_is_refused_whatever_it_claims(
    hub: Hub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    accounts = large_job(hub, monkeypatch, tmp_path, 195)
    scheduler = hub.load("scheduler")
    scheduler.HUB.settings = scheduler.HUB.settings.model_copy(update={"inline_target_limit": 1})
    run = scheduler.lambda_handler({"job": "big"}, FakeContext("scheduler"))
    body = json.loads(drain_queue(hub)[0]["body"])
    # 200000000006 is seeded but not in the job; the hint names a wrong number of buckets too
    forged = [
        {"id": "other-account", "body": json.dumps({**body, "account": "200000000006"})},
        {"id": "wrong-hint", "body": json.dumps({**body, "account": accounts[1], "plan_buckets": 7})},
    ]

    response = hub.load("worker").lambda_handler(sqs_event(forged), FakeContext("worker"))

    assert response == {"batchItemFailures": []}
    stored = stored_results(hub, run["run_id"])
    # the account outside the plan is refused; the wrong hint only cost a second read: the target ran
    assert stored == {
        "target#200000000006#us-east-1": "failed",
        f"target#{accounts[1]}#us-east-1": "ok",
    }
    assert int(run_record(hub, run["run_id"])["targets_done"]) == 1  # the refused one is not counted
    assert completion_events(hub) == []


def test_a_run_over_scattered_targets_queues_exactly_those_and_refuses_the_others(
    hub: Hub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A rerun keeps only some (account, region) pairs of a job: its plan is those pairs, not every
    account in every region (which would run targets outside it, and size its waves wrongly)."""
    import dataclasses

    from rolechain.hub import runs
    from rolechain.planning import Target

    jobs = tmp_path / "jobs.yaml"
    jobs.write_text(
        "version: 1\n"
        f"defaults: {{external_id: {hub.seed.external_id}}}\n"
        "jobs:\n  two-regions: {action: list_buckets, regions: [us-east-1, eu-west-1], rollout: {first: 1, then: 1},\n"
        "    max_failures: 5, targets: {accounts: ['200000000001', '200000000002']}}\n"
    )
    monkeypatch.setenv("JOB_FILE", str(jobs))
    scheduler = hub.load("scheduler")
    scheduler.HUB.settings = scheduler.HUB.settings.model_copy(update={"inline_target_limit": 1})
    plan = runs._job_plan(scheduler.HUB, "two-regions", None, None, None)
    scattered = [Target("200000000001", "us-east-1"), Target("200000000002", "eu-west-1")]

    run = runs.start(scheduler.HUB, dataclasses.replace(plan, targets=scattered), "scattered001", None, None)

    assert run["target_count"] == 2 and run["wave_ends"] == [1, 2]
    first = drain_queue(hub)
    assert [(json.loads(m["body"])["account"], json.loads(m["body"])["region"]) for m in first] == [
        ("200000000001", "us-east-1")
    ]
    worker = hub.load("worker")
    # a message for a pair the plan does not hold (an account and a region it holds, apart) is refused
    forged = {**json.loads(first[0]["body"]), "region": "eu-west-1"}
    worker.lambda_handler(sqs_event([{"id": "forged", "body": json.dumps(forged)}]), FakeContext("worker"))
    worker.lambda_handler(sqs_event(first), FakeContext("worker"))
    second = drain_queue(hub)
    assert [(json.loads(m["body"])["account"], json.loads(m["body"])["region"]) for m in second] == [
        ("200000000002", "eu-west-1")
    ]
    worker.lambda_handler(sqs_event(second), FakeContext("worker"))
    stored = stored_results(hub, "scattered001")
    assert stored["target#200000000001#eu-west-1"] == "failed"  # the refusal, recorded for the audit
    (event,) = completion_events(hub)
    assert event["summary"] == {"ok": 2, "failed": 0, "skipped": 0, "dry_run": 0}
