"""Issue #12.4, guardrails on the queued path: a guarded job too large to run inline is queued a wave at
a time; a wave over max_failures stops the run and the targets not started are recorded skipped with the
reason; without waves, max_failures stops the run as results come in. Every target ends exactly once and
the run sends one completion event."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.hub_support import FakeContext, sqs_event
from tests.integration import test_handlers
from tests.integration.test_handlers import Hub, completion_events, drain_queue, run_record, stored_results
from tests.integration.test_hub_scope import deliver_until_done

pytestmark = pytest.mark.integration
hub = test_handlers.hub  # the in-process hub fixture: 200000000006 has no target role (fails at hop 2)

BROKEN = "200000000006"
ORDER = ["200000000001", BROKEN, "200000000002", "200000000003", "200000000004", "200000000005"]


def guarded_job(hub: Hub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, guard: str) -> Any:
    """The scheduler of a job file with one guarded tagging job over ORDER, queued (inline limit 1)."""
    accounts = ", ".join(f"'{a}'" for a in ORDER)
    jobs = tmp_path / "jobs.yaml"
    jobs.write_text(
        "version: 1\n"
        f"defaults: {{external_id: {hub.seed.external_id}}}\n"
        "jobs:\n"
        "  careful:\n"
        "    action: tag_resources\n"
        "    params: {resource_types: [s3], tags: {owner: platform}}\n"
        f"    targets: {{accounts: [{accounts}]}}\n"
        f"    {guard}\n"
    )
    monkeypatch.setenv("JOB_FILE", str(jobs))
    scheduler = hub.load("scheduler")
    scheduler.HUB.settings = scheduler.HUB.settings.model_copy(update={"inline_target_limit": 1})
    return scheduler


def accounts_of(messages: list[dict[str, Any]]) -> list[str]:
    return [json.loads(m["body"])["account"] for m in messages if "account" in json.loads(m["body"])]


def tagged_accounts(hub: Hub) -> set[str]:
    return {c.account for c in hub.emulator.calls(action="TagResources") if c.status == 200}


def run_waves(hub: Hub) -> list[list[str]]:
    """Deliver what the queue holds until it is empty; the accounts of each delivery round."""
    rounds = []
    while messages := drain_queue(hub):
        rounds.append(accounts_of(messages))
        deliver_until_done(hub, messages)
    return rounds


def test_a_failing_wave_stops_a_queued_run_and_the_rest_is_recorded_skipped(
    hub: Hub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given waves of 2 with no failure tolerated, the broken account in the first wave
    scheduler = guarded_job(hub, monkeypatch, tmp_path, "rollout: {first: 2, then: 2}")

    run = scheduler.lambda_handler({"job": "careful"}, FakeContext("scheduler"))

    # Then only the first wave was queued
    assert run["status"] == "queued" and run["target_count"] == 6
    assert run["wave_ends"] == [2, 4, 6]
    # and once it ran, nothing else was: the four others are skipped with the reason, never tagged
    assert run_waves(hub) == [ORDER[:2]]
    assert tagged_accounts(hub) == {"200000000001"}
    stored = stored_results(hub, run["run_id"])
    assert stored == {
        "target#200000000001#us-east-1": "ok",
        f"target#{BROKEN}#us-east-1": "failed",
        **{f"target#{a}#us-east-1": "skipped" for a in ORDER[2:]},
    }
    record = run_record(hub, run["run_id"])
    why = "not started: wave 1 ended with 1 failure(s), over max_failures 0"
    assert record["stopped"] == why
    (event,) = completion_events(hub)
    assert event["summary"] == {"ok": 1, "failed": 1, "skipped": 4, "dry_run": 0}
    assert event["stopped"] == why and event["waves"] == [{"wave": 1, "targets": 2, "failed": 1}]
    dynamodb = hub.admin(hub.seed.hub_account).client("dynamodb")
    key = {"pk": {"S": f"run#{run['run_id']}"}, "sk": {"S": f"target#{ORDER[-1]}#us-east-1"}}
    item = dynamodb.get_item(TableName=hub.resources.table, Key=key)["Item"]
    assert item["error"]["M"]["message"]["S"] == why


def test_a_tolerated_failure_lets_every_wave_run_one_after_the_other(
    hub: Hub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    scheduler = guarded_job(hub, monkeypatch, tmp_path, "rollout: {first: 2, then: 2}\n    max_failures: 1")

    run = scheduler.lambda_handler({"job": "careful"}, FakeContext("scheduler"))

    # Then each wave was queued only once the one before it was done
    assert run_waves(hub) == [ORDER[:2], ORDER[2:4], ORDER[4:]]
    assert tagged_accounts(hub) == set(ORDER) - {BROKEN}
    (event,) = completion_events(hub)
    assert event["summary"] == {"ok": 5, "failed": 1, "skipped": 0, "dry_run": 0}
    assert "stopped" not in event
    assert event["waves"] == [
        {"wave": 1, "targets": 2, "failed": 1},
        {"wave": 2, "targets": 2, "failed": 0},
        {"wave": 3, "targets": 2, "failed": 0},
    ]
    assert run_record(hub, run["run_id"])["completed_at"]


def test_max_failures_without_waves_stops_a_queued_run_as_results_come_in(
    hub: Hub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given every target queued at once, no failure tolerated
    scheduler = guarded_job(hub, monkeypatch, tmp_path, "max_failures: 0")

    run = scheduler.lambda_handler({"job": "careful"}, FakeContext("scheduler"))
    messages = drain_queue(hub)
    assert accounts_of(messages) == ORDER
    # When the first two are delivered (one fails), then the rest
    deliver_until_done(hub, messages[:2])
    deliver_until_done(hub, messages[2:])

    # Then the rest were recorded skipped by the workers, not run
    assert tagged_accounts(hub) == {"200000000001"}
    stored = stored_results(hub, run["run_id"])
    assert sorted(stored.values()) == ["failed", "ok", "skipped", "skipped", "skipped", "skipped"]
    (event,) = completion_events(hub)
    assert event["stopped"] == "not started: 1 failure(s), over max_failures 0"


def test_a_dry_run_of_a_queued_guarded_job_runs_its_waves(
    hub: Hub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    scheduler = guarded_job(hub, monkeypatch, tmp_path, "rollout: {first: 1, then: '50%'}\n    dry_run: true")

    run = scheduler.lambda_handler({"job": "careful"}, FakeContext("scheduler"))

    assert run["wave_ends"] == [1, 4, 6]
    # the broken account fails its hop in a dry run too: the second wave stops the run
    assert run_waves(hub) == [ORDER[:1], ORDER[1:4]]
    assert tagged_accounts(hub) == set()
    (event,) = completion_events(hub)
    assert event["summary"] == {"ok": 0, "failed": 1, "skipped": 2, "dry_run": 3}
    assert [w["targets"] for w in event["waves"]] == [1, 3]


@pytest.mark.parametrize("fails", [False, True])
def test_a_worker_short_of_time_leaves_the_next_wave_or_the_skipping_to_the_queue(
    hub: Hub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fails: bool
) -> None:
    # Given waves of 2, and enqueueing (and skipping) that keeps more time back than a worker has left
    from rolechain.hub import rollout, runs

    guard = "rollout: {first: 2, then: 2}" + ("" if fails else "\n    max_failures: 1")
    scheduler = guarded_job(hub, monkeypatch, tmp_path, guard)
    run = scheduler.lambda_handler({"job": "careful"}, FakeContext("scheduler"))
    monkeypatch.setattr(runs, "ENQUEUE_RESERVE", 10_000.0)
    monkeypatch.setattr(rollout, "RESERVE", 10_000.0)
    worker = hub.load("worker")
    first = drain_queue(hub)
    assert accounts_of(first) == ORDER[:2]
    assert worker.lambda_handler(sqs_event(first), FakeContext("worker")) == {"batchItemFailures": []}

    # Then the wave-ending worker left a continuation from the wave's end, and nothing else
    (continuation,) = drain_queue(hub)
    assert json.loads(continuation["body"]) == {"kind": "continue", "run_id": run["run_id"], "start": 2}
    assert completion_events(hub) == []
    # which, with time enough, queues the next wave (or records the rest skipped), and the run ends once
    monkeypatch.setattr(runs, "ENQUEUE_RESERVE", 10.0)
    monkeypatch.setattr(rollout, "RESERVE", 10.0)
    deliver_until_done(hub, [continuation])
    rounds = run_waves(hub)
    (event,) = completion_events(hub)
    if fails:
        assert rounds == [] and event["summary"] == {"ok": 1, "failed": 1, "skipped": 4, "dry_run": 0}
    else:
        assert rounds == [ORDER[2:4], ORDER[4:]] and event["summary"]["ok"] == 5 and len(event["waves"]) == 3


def test_a_wave_whose_queueing_fails_is_continued_not_stalled(
    hub: Hub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given waves of 2, and SQS refusing the call that queues the second wave (once)
    scheduler = guarded_job(hub, monkeypatch, tmp_path, "rollout: {first: 2, then: 2}\n    max_failures: 1")
    run = scheduler.lambda_handler({"job": "careful"}, FakeContext("scheduler"))
    first = drain_queue(hub)
    hub.emulator.inject_fault("SendMessageBatch", "InternalError", "boom", status=500, times=1)

    # When the wave's last target is counted (its worker fails to queue the next wave: SQS retries it)
    deliver_until_done(hub, first)

    # Then the run goes on through the queue and ends once, every target once
    assert run_waves(hub) == [ORDER[2:4], ORDER[4:]]
    (event,) = completion_events(hub)
    assert event["summary"] == {"ok": 5, "failed": 1, "skipped": 0, "dry_run": 0}
    assert sorted(stored_results(hub, run["run_id"]).values()) == ["failed"] + ["ok"] * 5


def test_a_stopped_runs_skipping_never_overwrites_a_target_that_ran(
    hub: Hub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given a run whose scheduler sent every message but failed to record it (so a continuation from 0
    # follows), no failure tolerated
    from rolechain.hub.store import RunStore

    scheduler = guarded_job(hub, monkeypatch, tmp_path, "max_failures: 0")
    real = RunStore.set_enqueued
    calls = {"n": 0}

    def flaky(self: RunStore, run_id: str, upto: int) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("DynamoDB went away")
        real(self, run_id, upto)

    monkeypatch.setattr(RunStore, "set_enqueued", flaky)
    with pytest.raises(RuntimeError):
        scheduler.lambda_handler({"job": "careful"}, FakeContext("scheduler"))
    messages = drain_queue(hub)
    continuation = [m for m in messages if json.loads(m["body"]).get("kind") == "continue"]
    targets = [m for m in messages if m not in continuation]
    run_id = json.loads(targets[0]["body"])["run_id"]

    # When the first two run (one fails: the run stops), then the continuation from 0 arrives
    deliver_until_done(hub, [m for m in targets if json.loads(m["body"])["account"] in ORDER[:2]])
    deliver_until_done(hub, continuation)
    deliver_until_done(hub, [m for m in targets if json.loads(m["body"])["account"] not in ORDER[:2]])

    # Then what ran keeps its result; the rest is skipped once; the run ends once
    stored = stored_results(hub, run_id)
    assert stored["target#200000000001#us-east-1"] == "ok" and stored[f"target#{BROKEN}#us-east-1"] == "failed"
    assert sorted(stored.values()) == ["failed", "ok", "skipped", "skipped", "skipped", "skipped"]
    assert tagged_accounts(hub) == {"200000000001"}
    (event,) = completion_events(hub)
    assert event["summary"] == {"ok": 1, "failed": 1, "skipped": 4, "dry_run": 0}
