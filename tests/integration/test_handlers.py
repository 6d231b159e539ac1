"""Every handler, in-process, with every fixture in events/, against the emulated accounts.

The hub's table and queues are built from template.yaml's own definitions; the functions run with
R1's session credentials, as their execution role gives them in Lambda.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rolechain.hub import Caller
from rolechain_dev.emulator import Emulator, Seed

from tests import hub_support
from tests.hub_support import (
    FakeContext,
    HubResources,
    create_hub_resources,
    load_event,
    load_handler,
    sqs_event,
    test_env,
)

ALICE = "arn:aws:iam::111111111111:user/alice"  # the caller of the events/api-*.json fixtures


@dataclass
class Hub:
    seed: Seed
    resources: HubResources
    emulator: Emulator
    load: Callable[[str], ModuleType]

    def admin(self, account: str) -> Any:
        return self.emulator.admin_session(account, self.seed.region)

    def changing_calls(self, action: str) -> int:
        return len(self.emulator.calls(action=action))

    def record_run(self, run_id: str, job: str = "inventory") -> None:
        """The record the scheduler writes before it queues a job's targets (see hub_support)."""
        hub_support.record_queued_run(self.emulator, self.seed, self.resources.table, run_id, job)


@pytest.fixture
def hub(emulator: Emulator, seed_landscape: Callable[..., Seed], monkeypatch: pytest.MonkeyPatch) -> Hub:
    seed = seed_landscape(targets=6, missing_role_accounts=["200000000006"])
    resources = create_hub_resources(emulator, seed)
    for key, value in test_env(resources, seed, AWS_LAMBDA_FUNCTION_NAME="rolechain-test").items():
        monkeypatch.setenv(key, value)
    emulator.clear_requests()
    return Hub(seed, resources, emulator, load_handler)


def drain_queue(hub: Hub) -> list[dict[str, Any]]:
    """Every message the hub queued, as (id, body) for an SQS event."""
    sqs = hub.admin(hub.seed.hub_account).client("sqs")
    messages: list[dict[str, Any]] = []
    while True:
        got = sqs.receive_message(QueueUrl=hub.resources.queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            return messages
        for m in got:
            messages.append({"id": m["MessageId"], "body": m["Body"], "receipt": m["ReceiptHandle"]})
            sqs.delete_message(QueueUrl=hub.resources.queue_url, ReceiptHandle=m["ReceiptHandle"])


def stored_results(hub: Hub, run_id: str) -> dict[str, str]:
    return hub_support.stored_results(hub.emulator, hub.seed, hub.resources.table, run_id)


def api_call(api: ModuleType, fixture: str, **replace: str) -> tuple[int, dict[str, Any]]:
    response = api.lambda_handler(load_event(fixture, **replace), FakeContext("api"))
    return response["statusCode"], json.loads(response["body"])


# -- scheduler ---------------------------------------------------------------------------------------
def test_scheduler_runs_a_small_job_inline_and_records_it(hub: Hub) -> None:
    scheduler = hub.load("scheduler")
    run = scheduler.lambda_handler(load_event("scheduler-inventory.json"), FakeContext("scheduler"))
    assert run["status"] == "completed" and run["mode"] == "inline"
    assert run["summary"] == {"ok": 5, "failed": 0, "skipped": 0, "dry_run": 0}
    assert {r["account"] for r in run["results"]} == {f"20000000000{i}" for i in range(1, 6)}
    # the run and its five results are in the table, readable through the API
    api = hub.load("api")
    status, body = api_call(api, "api-get-run.json", RUN_ID=run["run_id"])
    assert status == 200 and body["status"] == "completed" and body["summary"]["ok"] == 5
    assert body["results"][0]["output"]["count"] == 3


def test_scheduler_queues_a_large_job_ten_messages_per_call_and_the_worker_completes_it(hub: Hub) -> None:
    scheduler = hub.load("scheduler")
    scheduler.HUB.settings = scheduler.HUB.settings.model_copy(update={"inline_target_limit": 2})
    run = scheduler.lambda_handler(load_event("scheduler-tag-owner.json"), FakeContext("scheduler"))
    assert run["status"] == "queued" and run["target_count"] == 5
    assert len(hub.emulator.calls(action="SendMessageBatch")) == 1  # 5 targets, 10 a call
    assert hub.changing_calls("TagResources") == 0  # nothing ran yet
    messages = drain_queue(hub)
    assert sorted(json.loads(m["body"])["account"] for m in messages) == [f"20000000000{i}" for i in range(1, 6)]

    worker = hub.load("worker")
    response = worker.lambda_handler(sqs_event(messages), FakeContext("worker"))
    assert response == {"batchItemFailures": []}
    tagging = hub.admin("200000000002").client("s3").get_bucket_tagging(Bucket="rc-200000000002-01")["TagSet"]
    assert {"Key": "owner", "Value": "platform-team"} in tagging
    status, body = api_call(hub.load("api"), "api-get-run.json", RUN_ID=run["run_id"])
    assert status == 200 and body["status"] == "completed" and body["summary"]["ok"] == 5


def test_scheduler_rejects_a_malformed_schedule_input(hub: Hub) -> None:
    scheduler = hub.load("scheduler")
    with pytest.raises(Exception, match="job"):
        scheduler.lambda_handler({"jobb": "inventory"}, FakeContext("scheduler"))


# -- worker ------------------------------------------------------------------------------------------
def test_worker_fixture_batch_records_both_targets(hub: Hub) -> None:
    hub.record_run("queuedrun0001")
    worker = hub.load("worker")
    response = worker.lambda_handler(load_event("worker-sqs-batch.json"), FakeContext("worker"))
    assert response == {"batchItemFailures": []}
    assert stored_results(hub, "queuedrun0001") == {
        "target#200000000001#us-east-1": "ok",
        "target#200000000002#us-east-1": "ok",
    }


def test_worker_reports_only_retryable_failures(hub: Hub) -> None:
    hub.record_run("mixedrun0001")

    # Given a batch of the inventory job: a good target, a malformed body, a denied hop and a throttled target
    def body(account: str) -> str:
        return json.dumps(
            {
                "run_id": "mixedrun0001",
                "job": "inventory",
                "action": "list_buckets",
                "params": {"with_tags": True},
                "account": account,
                "region": "us-east-1",
            }
        )

    hub.emulator.inject_fault(
        "AssumeRole",
        "AccessDenied",
        "not authorized to perform: sts:AssumeRole",
        status=403,
        times=20,
        match=lambda r: r.params.get("RoleArn", "").startswith("arn:aws:iam::200000000002:"),
    )
    hub.emulator.inject_fault(
        "ListBuckets",
        "SlowDown",
        "Please reduce your request rate.",
        status=503,
        times=20,
        match=lambda r: r.account == "200000000003",
    )
    event = sqs_event(
        [
            {"id": "good", "body": body("200000000001")},
            {"id": "malformed", "body": '{"run_id": "mixedrun0001", "account": "nope"}'},
            {"id": "denied", "body": body("200000000002")},
            {"id": "throttled", "body": body("200000000003")},
        ]
    )
    # When the worker handles it
    response = hub.load("worker").lambda_handler(event, FakeContext("worker"))
    # Then only the malformed and the throttled messages go back to the queue; the denied hop is recorded failed
    assert sorted(f["itemIdentifier"] for f in response["batchItemFailures"]) == ["malformed", "throttled"]
    statuses = stored_results(hub, "mixedrun0001")
    assert statuses == {"target#200000000001#us-east-1": "ok", "target#200000000002#us-east-1": "failed"}


def test_worker_records_a_throttled_target_as_failed_on_its_last_delivery(hub: Hub) -> None:
    hub.record_run("lastrun0001")
    hub.emulator.inject_fault("ListBuckets", "SlowDown", "Please reduce your request rate.", status=503, times=20)
    body = json.dumps(
        {
            "run_id": "lastrun0001",
            "job": "inventory",
            "action": "list_buckets",
            "params": {"with_tags": True},
            "account": "200000000001",
            "region": "us-east-1",
        }
    )
    response = hub.load("worker").lambda_handler(
        sqs_event([{"id": "last", "body": body, "receive_count": 3}]), FakeContext("worker")
    )
    assert response == {"batchItemFailures": []}  # not retried again: recorded, so nothing is lost
    assert stored_results(hub, "lastrun0001") == {"target#200000000001#us-east-1": "failed"}


# -- remediation -------------------------------------------------------------------------------------
def test_remediation_create_bucket_blocks_public_access_and_tags_the_creator_once(hub: Hub) -> None:
    remediation = hub.load("remediation")
    event = load_event("remediation-create-bucket.json")
    outcome = remediation.lambda_handler(event, FakeContext("remediation"))
    assert [r["rule"] for r in outcome["rules"]] == ["block-public-bucket", "tag-new-bucket-creator"]
    s3 = hub.admin("200000000001").client("s3")
    block = s3.get_public_access_block(Bucket="rc-200000000001-01")["PublicAccessBlockConfiguration"]
    assert all(block.values()) and len(block) == 4
    tags = s3.get_bucket_tagging(Bucket="rc-200000000001-01")["TagSet"]
    assert {"Key": "created-by", "Value": "arn:aws:iam::200000000001:user/bob"} in tags
    # the other accounts were not touched
    assert all(r["account"] == "200000000001" for rule in outcome["rules"] for r in rule["results"])
    changes = hub.changing_calls("PutPublicAccessBlock"), hub.changing_calls("TagResources")
    assert changes == (1, 1)

    # A duplicate delivery of the same event acts no second time and returns the first outcome
    again = remediation.lambda_handler(event, FakeContext("remediation"))
    assert again == outcome
    assert (hub.changing_calls("PutPublicAccessBlock"), hub.changing_calls("TagResources")) == changes


@pytest.mark.parametrize(
    "fixture,account,bucket",
    [
        ("remediation-delete-public-access-block.json", "200000000002", "rc-200000000002-01"),
        ("remediation-put-bucket-acl.json", "200000000003", "rc-200000000003-02"),
    ],
)
def test_remediation_blocks_public_access_in_the_events_account(
    hub: Hub, fixture: str, account: str, bucket: str
) -> None:
    outcome = hub.load("remediation").lambda_handler(load_event(fixture), FakeContext("remediation"))
    assert outcome["rules"][0]["summary"]["ok"] == 1
    s3 = hub.admin(account).client("s3")
    assert all(s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"].values())
    # the session on the last hop carried the action's session policy only
    assume = [r for r in hub.emulator.calls(action="AssumeRole") if account in r.params["RoleArn"]]
    assert json.loads(assume[-1].params["Policy"])["Statement"][0]["Action"] == [
        "s3:GetBucketPublicAccessBlock",
        "s3:ListAllMyBuckets",
        "s3:PutBucketPublicAccessBlock",
    ]


def test_remediation_rejects_a_malformed_event_naming_the_field(hub: Hub) -> None:
    with pytest.raises(Exception, match="account"):
        hub.load("remediation").lambda_handler(load_event("remediation-bad-event.json"), FakeContext("remediation"))
    assert hub.changing_calls("PutPublicAccessBlock") == 0


# -- api ---------------------------------------------------------------------------------------------
def test_api_lists_actions_and_jobs(hub: Hub) -> None:
    api = hub.load("api")
    status, body = api_call(api, "api-get-actions.json")
    assert status == 200
    assert {a["name"] for a in body["actions"]} == {"list_buckets", "tag_resources", "block_s3_public_access", "whoami"}
    status, body = api_call(api, "api-get-jobs.json")
    assert status == 200 and {j["name"] for j in body["jobs"]} == {"inventory", "tag-owner", "block-public-access"}


def test_api_runs_a_job_and_passes_the_caller_down_the_chain(hub: Hub) -> None:
    api = hub.load("api")
    status, run = api_call(api, "api-post-run-job.json")
    assert status == 200 and run["status"] == "completed"
    assert sorted(r["account"] for r in run["results"]) == ["200000000001", "200000000002"]
    assert run["requested_by"] == ALICE
    assume = hub.emulator.calls(action="AssumeRole")
    # SourceIdentity: alice's name plus a digest of her full ARN; the session tag: the full ARN
    assert {r.params.get("SourceIdentity") for r in assume} == {Caller(ALICE).source_identity}
    assert {r.params.get("SourceIdentity", "")[:6] for r in assume} == {"alice."}
    assert all(r.params.get("Tags.member.1.Key") == "requested-by" for r in assume)
    assert {r.params.get("Tags.member.1.Value") for r in assume} == {ALICE}
    status, stored = api_call(api, "api-get-run.json", RUN_ID=run["run_id"])
    assert status == 200 and stored["requested_by"] == run["requested_by"] and stored["summary"]["ok"] == 2


def test_api_idempotency_key_runs_once(hub: Hub) -> None:
    api = hub.load("api")
    status, first = api_call(api, "api-post-run-action.json")
    assert status == 200 and first["summary"]["ok"] == 1
    tag_calls = hub.changing_calls("TagResources")
    assert tag_calls == 1
    status, second = api_call(api, "api-post-run-action.json")
    assert status == 200 and second["run_id"] == first["run_id"]
    assert hub.changing_calls("TagResources") == tag_calls
    # the same key with another body is refused
    other = load_event("api-post-run-action.json")
    other["body"] = json.dumps({"action": "list_buckets", "accounts": ["200000000003"]})
    response = api.lambda_handler(other, FakeContext("api"))
    assert response["statusCode"] == 422 and "Idempotency-Key" in response["body"]


def test_api_refuses_accounts_outside_the_configuration(hub: Hub) -> None:
    status, body = api_call(hub.load("api"), "api-post-run-forbidden.json")
    assert status == 403 and "999999999999" in body["message"]
    assert hub.emulator.calls(action="AssumeRole") == []


def test_api_bad_body_names_the_fields(hub: Hub) -> None:
    status, body = api_call(hub.load("api"), "api-post-run-bad.json")
    assert status == 422
    fields = {tuple(d["loc"]) for d in body["detail"]}
    assert ("body", "accounts") in fields and ("body", "surprise") in fields


def test_api_unknown_run_and_unknown_action(hub: Hub) -> None:
    api = hub.load("api")
    status, _body = api_call(api, "api-get-run.json", RUN_ID="doesnotexist")
    assert status == 404
    event = load_event("api-post-run-forbidden.json")
    event["body"] = json.dumps({"action": "delete_everything", "accounts": ["200000000001"]})
    response = api.lambda_handler(event, FakeContext("api"))
    assert response["statusCode"] == 400 and "unknown action" in response["body"]


def test_api_without_an_iam_identity_is_refused(hub: Hub) -> None:
    event = load_event("api-post-run-job.json")
    event["requestContext"]["identity"]["userArn"] = None
    response = hub.load("api").lambda_handler(event, FakeContext("api"))
    assert response["statusCode"] == 403
    assert hub.emulator.calls(action="AssumeRole") == []


def test_api_large_run_is_queued_with_202_and_completes_through_the_worker(hub: Hub) -> None:
    api = hub.load("api")
    api.HUB.settings = api.HUB.settings.model_copy(update={"inline_target_limit": 1})
    status, run = api_call(api, "api-post-run-job.json")
    assert status == 202 and run["status"] == "queued"
    status, pending = api_call(api, "api-get-run.json", RUN_ID=run["run_id"])
    # queued until a target is counted (as GET /runs says too)
    assert status == 200 and pending["status"] == "queued" and pending["results"] == []
    response = hub.load("worker").lambda_handler(sqs_event(drain_queue(hub)), FakeContext("worker"))
    assert response == {"batchItemFailures": []}
    status, done = api_call(api, "api-get-run.json", RUN_ID=run["run_id"])
    assert done["status"] == "completed" and done["summary"]["ok"] == 2


def test_api_accepts_every_registered_action_name_including_digits(hub: Hub) -> None:
    # Given the built-in block_s3_public_access (a digit in "s3"), which the API's old pattern refused
    api = hub.load("api")
    event = load_event("api-post-run-action.json")
    event["body"] = json.dumps({"action": "block_s3_public_access", "accounts": ["200000000004"], "dry_run": True})
    event["headers"].pop("Idempotency-Key", None)
    event["multiValueHeaders"].pop("Idempotency-Key", None)
    # When it is requested, then it runs (dry run) instead of being refused by the request model
    response = api.lambda_handler(event, FakeContext("api"))
    body = json.loads(response["body"])
    assert response["statusCode"] == 200, body
    assert body["action"] == "block_s3_public_access" and body["summary"]["dry_run"] == 1


# -- api authorisation (the job file's api rules; issue 10, defect 2) --------------------------------
BOB = "arn:aws:iam::111111111111:user/bob"  # named by no rule of the demo job file
CAROL = "arn:aws:sts::111111111111:assumed-role/rolechain-readers/carol"  # a session of the readers role


def api_as(api: ModuleType, caller: str, fixture: str, body: dict[str, Any] | None = None, **replace: str) -> Any:
    """``fixture`` sent by ``caller`` (with ``body`` instead of the fixture's own, without its Idempotency-Key)."""
    event = load_event(fixture, **replace)
    event["requestContext"]["identity"]["userArn"] = caller
    if body is not None:
        event["body"] = json.dumps(body)
        event["headers"].pop("Idempotency-Key", None)
        event["multiValueHeaders"].pop("Idempotency-Key", None)
    response = api.lambda_handler(event, FakeContext("api"))
    return response["statusCode"], json.loads(response["body"])


def test_api_a_caller_no_rule_names_may_list_but_run_nothing(hub: Hub) -> None:
    api = hub.load("api")
    assert api_as(api, BOB, "api-get-actions.json")[0] == 200
    assert api_as(api, BOB, "api-get-jobs.json")[0] == 200
    status, body = api_as(api, BOB, "api-post-run-job.json")
    assert (
        status == 403
        and body["message"] == f"{BOB} is not allowed any run (no api rule of the job file names this caller)"
    )
    status, _ = api_as(api, BOB, "api-post-run-action.json", {"action": "whoami", "accounts": ["200000000001"]})
    assert status == 403
    assert hub.emulator.calls(action="AssumeRole") == []


def test_api_an_ungranted_caller_cannot_turn_a_jobs_dry_run_off(hub: Hub) -> None:
    # Given the repro of issue 10: {"job": "block-public-access", "dry_run": false} made 3 PutPublicAccessBlock
    api = hub.load("api")
    live = {"job": "block-public-access", "dry_run": False, "accounts": ["200000000001"]}
    for caller in (BOB, CAROL):
        status, body = api_as(api, caller, "api-post-run-job.json", live)
        assert status == 403 and body["message"].startswith(f"{caller} is not allowed ")
    assert hub.changing_calls("PutPublicAccessBlock") == 0
    # alice is granted disable_dry_run: hers runs for real
    status, run = api_as(api, ALICE, "api-post-run-job.json", live)
    assert status == 200 and run["dry_run"] is False and run["summary"]["ok"] == 1
    assert hub.changing_calls("PutPublicAccessBlock") == 3


def test_api_readers_run_read_only_actions_and_their_job_but_nothing_changing(hub: Hub) -> None:
    api = hub.load("api")
    status, run = api_as(api, CAROL, "api-post-run-action.json", {"action": "whoami", "accounts": ["200000000001"]})
    assert status == 200 and run["summary"]["ok"] == 1 and run["requested_by"] == CAROL
    assert api_as(api, CAROL, "api-post-run-job.json")[0] == 200  # inventory
    tagging = {
        "action": "tag_resources",
        "accounts": ["200000000001"],
        "params": {"resource_types": ["s3"], "tags": {"x": "y"}},
    }
    status, body = api_as(api, CAROL, "api-post-run-action.json", tagging)
    assert status == 403 and body["message"] == (
        f"{CAROL} is not allowed the ad-hoc action 'tag_resources', which changes resources"
    )
    status, body = api_as(api, CAROL, "api-post-run-job.json", {"job": "tag-owner"})
    assert status == 403 and body["message"] == f"{CAROL} is not allowed starting job 'tag-owner'"
    assert "inventory" not in body["message"]  # what else the rules allow is not disclosed
    assert hub.changing_calls("TagResources") == 0


def test_api_a_run_is_readable_by_its_requester_and_read_all_only(hub: Hub) -> None:
    api = hub.load("api")
    _, run = api_as(api, CAROL, "api-post-run-action.json", {"action": "whoami", "accounts": ["200000000001"]})
    assert api_as(api, CAROL, "api-get-run.json", RUN_ID=run["run_id"])[0] == 200
    assert api_as(api, ALICE, "api-get-run.json", RUN_ID=run["run_id"])[0] == 200  # read_all
    other_carol = "arn:aws:sts::222222222222:assumed-role/rolechain-readers/carol"
    for stranger in (BOB, other_carol):
        status, body = api_as(api, stranger, "api-get-run.json", RUN_ID=run["run_id"])
        assert status == 404 and body["message"] == f"no run {run['run_id']!r}"  # as if there were none
    # a scheduled run has no requester: only read_all reads it
    scheduled = hub.load("scheduler").lambda_handler(load_event("scheduler-inventory.json"), FakeContext("scheduler"))
    assert api_as(api, CAROL, "api-get-run.json", RUN_ID=scheduled["run_id"])[0] == 404
    event = load_event("api-get-run.json", RUN_ID=run["run_id"])
    event["requestContext"]["identity"]["userArn"] = None
    assert hub.load("api").lambda_handler(event, FakeContext("api"))["statusCode"] == 403


def list_runs_as(api: ModuleType, caller: str, **query: str) -> tuple[int, dict[str, Any]]:
    """GET /runs by ``caller`` with ``query`` as its query string."""
    event = load_event("api-list-runs.json")
    event["requestContext"]["identity"]["userArn"] = caller
    event["queryStringParameters"] = query or None
    event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()} or None
    response = api.lambda_handler(event, FakeContext("api"))
    return response["statusCode"], json.loads(response["body"])


def get_run_as(api: ModuleType, caller: str, run_id: str, **query: str) -> tuple[int, dict[str, Any]]:
    """GET /runs/{run_id} by ``caller`` with ``query`` as its query string."""
    event = load_event("api-get-run.json", RUN_ID=run_id)
    event["requestContext"]["identity"]["userArn"] = caller
    event["queryStringParameters"] = query or None
    event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()} or None
    response = api.lambda_handler(event, FakeContext("api"))
    return response["statusCode"], json.loads(response["body"])


def every_page(api: ModuleType, caller: str, **query: str) -> list[list[dict[str, Any]]]:
    """Each page of GET /runs, following next_token to the end."""
    pages = []
    while True:
        status, body = list_runs_as(api, caller, **query)
        assert status == 200, body
        pages.append(body["runs"])
        if body["next_token"] is None:
            return pages
        query["next_token"] = body["next_token"]


def test_api_lists_the_runs_a_caller_may_read_newest_first_in_pages(hub: Hub) -> None:
    # Given: alice (read_all) starts three runs, carol (her own runs only) one, the schedule one
    api = hub.load("api")
    alice_runs = [
        api_as(api, ALICE, "api-post-run-action.json", {"action": "whoami", "accounts": [f"20000000000{i}"]})[1]
        for i in (1, 2, 3)
    ]
    carol_run = api_as(api, CAROL, "api-post-run-action.json", {"action": "whoami", "accounts": ["200000000004"]})[1]
    scheduled = hub.load("scheduler").lambda_handler(load_event("scheduler-inventory.json"), FakeContext("scheduler"))
    newest_first = [scheduled["run_id"], carol_run["run_id"], *(r["run_id"] for r in reversed(alice_runs))]

    # When alice pages two at a time: every run once, newest first, the last page without a token
    pages = every_page(api, ALICE, limit="2")
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [r["run_id"] for p in pages for r in p] == newest_first
    first = pages[0][0]
    assert set(first) == {"run_id", "job", "action", "status", "mode", "dry_run", "requested_by", "created_at",
                          "completed_at", "target_count", "counts"}  # fmt: skip
    assert first["job"] == "inventory" and first["status"] == "completed" and first["mode"] == "inline"
    assert first["counts"] == {"ok": 5, "failed": 0, "skipped": 0, "dry_run": 0} and first["target_count"] == 5
    # the filters: a job's runs only; a status
    assert [r["run_id"] for p in every_page(api, ALICE, job="inventory") for r in p] == [scheduled["run_id"]]
    assert len([r for p in every_page(api, ALICE, status="completed") for r in p]) == 5
    assert every_page(api, ALICE, status="running") == [[]]
    # carol sees her own run only, bob (no rule) nothing, whatever the page size
    assert [r["run_id"] for p in every_page(api, CAROL, limit="1") for r in p] == [carol_run["run_id"]]
    assert every_page(api, BOB) == [[]]
    # a Query of an index, never a Scan of the table: every run for read_all, the caller's own otherwise
    assert hub.emulator.calls(action="Scan") == []
    hub.emulator.clear_requests()
    every_page(api, ALICE)
    every_page(api, CAROL)
    indexes = [c.body.get("IndexName") for c in hub.emulator.calls(action="Query")]
    assert indexes == ["runs-by-created", "runs-by-requester"]


def test_api_list_runs_refuses_forged_tokens_and_bad_parameters_with_a_400_naming_them(hub: Hub) -> None:
    api = hub.load("api")
    for i in (1, 2):
        api_as(api, ALICE, "api-post-run-action.json", {"action": "whoami", "accounts": [f"20000000000{i}"]})
    api_as(api, CAROL, "api-post-run-action.json", {"action": "whoami", "accounts": ["200000000003"]})
    status, body = list_runs_as(api, ALICE, limit="1")
    token = body["next_token"]
    assert status == 200 and token
    payload, mac = token.split(".")
    forged = (
        base64.urlsafe_b64encode(
            base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).replace(ALICE.encode(), CAROL.encode())
        )
        .decode()
        .rstrip("=")
    )
    refused = {
        "not a token": "garbage",
        "a flipped MAC": f"{payload}.{mac[:-2]}{'AA' if mac[-2:] != 'AA' else 'BB'}",
        "carol's name in alice's token": f"{forged}.{mac}",
    }
    for why, bad in refused.items():
        status, body = list_runs_as(api, CAROL, next_token=bad)
        assert (status, body.get("field")) == (400, "next_token"), why
        assert "runs" not in body
    # alice's genuine token is hers: carol, or alice with other filters, cannot follow it
    assert list_runs_as(api, CAROL, next_token=token)[1].get("field") == "next_token"
    assert list_runs_as(api, ALICE, next_token=token, status="completed")[1].get("field") == "next_token"
    assert list_runs_as(api, ALICE, next_token=token)[0] == 200
    for name, value in {"limit": "0", "status": "done", "job": "no spaces"}.items():
        status, body = list_runs_as(api, ALICE, **{name: value})
        assert status == 400 and body["field"] == name, (name, body)
    assert list_runs_as(api, ALICE, limit="101")[1].get("field") == "limit"
    assert list_runs_as(api, ALICE, limit="ten")[1].get("field") == "limit"


def test_a_job_over_an_ou_is_resolved_once_by_the_scheduler_and_trusted_by_the_worker(
    hub: Hub, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """The hub is the organisation's management account here: R1 lists the OU with the template's
    ReadOrganization permissions; the queued run's record carries the resolved accounts, so the worker
    reads Organizations no more (one worker per message, thousands of messages)."""
    prod = hub.emulator.create_organization(
        hub.seed.hub_account, {"200000000001": ["prod"], "200000000002": ["prod"], "200000000003": ["dev"]}
    )["prod"]
    jobs = tmp_path / "jobs.yaml"
    jobs.write_text(
        "version: 1\n"
        f"defaults: {{external_id: {hub.seed.external_id}}}\n"
        "jobs:\n"
        f"  prod-inventory: {{action: list_buckets, targets: {{organization: {{ous: [{prod}]}}}}}}\n"
    )
    monkeypatch.setenv("JOB_FILE", str(jobs))
    scheduler = hub.load("scheduler")
    scheduler.HUB.settings = scheduler.HUB.settings.model_copy(update={"inline_target_limit": 1})
    hub.emulator.clear_requests()
    run = scheduler.lambda_handler({"job": "prod-inventory"}, FakeContext("scheduler"))
    assert run["status"] == "queued" and run["target_count"] == 2
    assert hub.emulator.calls(service="organizations")  # the scheduler read the OU
    messages = drain_queue(hub)
    assert sorted(json.loads(m["body"])["account"] for m in messages) == ["200000000001", "200000000002"]
    hub.emulator.clear_requests()
    worker = hub.load("worker")
    assert worker.lambda_handler(sqs_event(messages), FakeContext("worker")) == {"batchItemFailures": []}
    assert hub.emulator.calls(service="organizations") == []
    stored = hub_support.stored_results(hub.emulator, hub.seed, hub.resources.table, run["run_id"])
    assert sorted(stored.values()) == ["ok", "ok"], stored


def completion_events(hub: Hub) -> list[dict[str, Any]]:
    """The run-completed events the hub sent (and EventBridge took)."""
    events = []
    for call in hub.emulator.calls(service="events", action="PutEvents"):
        if call.status != 200:
            continue
        for entry in call.body["Entries"]:
            if entry["DetailType"] == "Rolechain Run Completed":
                events.append({**json.loads(entry["Detail"]), "source": entry["Source"], "bus": entry["EventBusName"]})
    return events


def run_record(hub: Hub, run_id: str) -> dict[str, Any]:
    dynamodb = hub.admin(hub.seed.hub_account).client("dynamodb")
    item = dynamodb.get_item(TableName=hub.resources.table, Key={"pk": {"S": f"run#{run_id}"}, "sk": {"S": "meta"}})[
        "Item"
    ]
    return {k: next(iter(v.values())) for k, v in item.items()}


def queued_tag_owner_run(hub: Hub) -> tuple[str, list[dict[str, Any]]]:
    scheduler = hub.load("scheduler")
    scheduler.HUB.settings = scheduler.HUB.settings.model_copy(update={"inline_target_limit": 2})
    run = scheduler.lambda_handler(load_event("scheduler-tag-owner.json"), FakeContext("scheduler"))
    assert run["status"] == "queued" and completion_events(hub) == []
    return run["run_id"], drain_queue(hub)


def test_workers_count_each_target_once_and_the_last_one_sends_the_one_completion_event(hub: Hub) -> None:
    run_id, messages = queued_tag_owner_run(hub)
    worker = hub.load("worker")
    assert worker.lambda_handler(sqs_event(messages[:3]), FakeContext("worker")) == {"batchItemFailures": []}
    assert completion_events(hub) == []  # 3 of 5 counted
    assert worker.lambda_handler(sqs_event(messages[3:]), FakeContext("worker")) == {"batchItemFailures": []}
    (event,) = completion_events(hub)
    assert (event["run_id"], event["job"], event["target_count"], event["source"]) == (
        run_id,
        "tag-owner",
        5,
        "rolechain",
    )
    assert event["summary"] == {"ok": 5, "failed": 0, "skipped": 0, "dry_run": 0} and event["completed_at"]
    record = run_record(hub, run_id)
    assert (record["targets_done"], record["count_ok"]) == ("5", "5")
    # every message delivered again: nothing run again, nothing counted twice, no second event
    tagged = hub.changing_calls("TagResources")
    assert worker.lambda_handler(sqs_event(messages), FakeContext("worker")) == {"batchItemFailures": []}
    assert run_record(hub, run_id)["targets_done"] == "5" and len(completion_events(hub)) == 1
    assert hub.changing_calls("TagResources") == tagged


def test_completion_reads_only_the_markers_counts_a_page_at_a_time(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    from rolechain.hub import store

    monkeypatch.setattr(store, "DONE_PAGE", 2)
    run_id, messages = queued_tag_owner_run(hub)
    worker = hub.load("worker")
    hub.emulator.clear_requests()
    assert worker.lambda_handler(sqs_event(messages), FakeContext("worker")) == {"batchItemFailures": []}
    (event,) = completion_events(hub)
    assert event["run_id"] == run_id and event["summary"] == {"ok": 5, "failed": 0, "skipped": 0, "dry_run": 0}
    queries = hub.emulator.calls(service="dynamodb", action="Query")
    counting = [q.body for q in queries if "counted" in q.body.get("FilterExpression", "")]
    assert len(counting) >= 3  # 5 markers, 2 a page: the completing worker never holds the whole run
    assert all(c["Limit"] == 2 and "count_ok" in c["ExpressionAttributeNames"].values() for c in counting)
    counts = {f"count_{status}" for status in event["summary"]}
    assert all(set(c["ExpressionAttributeNames"].values()) <= counts for c in counting)


def test_concurrent_workers_send_exactly_one_completion_event(hub: Hub) -> None:
    import threading

    run_id, messages = queued_tag_owner_run(hub)
    worker = hub.load("worker")
    barrier = threading.Barrier(len(messages))
    answers: list[Any] = []

    def deliver(message: dict[str, Any]) -> None:
        barrier.wait()
        answers.append(worker.lambda_handler(sqs_event([message]), FakeContext("worker")))

    threads = [threading.Thread(target=deliver, args=(m,)) for m in messages]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [{"batchItemFailures": []}] * len(messages)
    assert [e["run_id"] for e in completion_events(hub)] == [run_id]
    assert run_record(hub, run_id)["targets_done"] == "5"


def own_batch_processors(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each call of a worker handler gets its own batch processor, as each container has: threads of one
    process stand in for containers running at once (the handlers share ``lambda_support``'s)."""
    from rolechain.hub import lambda_support

    monkeypatch.setattr(lambda_support, "_sqs_batch_processor", lambda_support._sqs_batch_processor.__wrapped__)


def test_a_message_delivered_twice_at_once_runs_its_target_once(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    # A standard queue may deliver one message twice at the same time, to two containers: while one runs
    # the target, the other is answered as a failure without running it, and its redelivery (after the
    # visibility timeout) finds the target done.
    import threading

    from rolechain.hub import worker as hub_worker

    run_id, messages = queued_tag_owner_run(hub)
    containers = [hub.load("worker"), hub.load("worker")]
    own_batch_processors(monkeypatch)
    ran: list[str] = []
    run_plan = hub_worker.run_plan
    answered = threading.Event()

    def slow_run_plan(*args: Any, **kwargs: Any) -> Any:
        ran.append(args[1].targets[0].account)
        answered.wait(10)  # runs on once the other delivery was answered (without the lock: it runs too)
        return run_plan(*args, **kwargs)

    monkeypatch.setattr(hub_worker, "run_plan", slow_run_plan)
    message = messages[0]
    barrier = threading.Barrier(2)
    answers: list[Any] = []

    def deliver(worker: ModuleType) -> None:
        barrier.wait()
        answers.append(worker.lambda_handler(sqs_event([message]), FakeContext("worker")))
        answered.set()

    tagged = hub.changing_calls("TagResources")
    threads = [threading.Thread(target=deliver, args=(worker,)) for worker in containers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(ran) == 1
    answers.sort(key=lambda answer: len(answer["batchItemFailures"]))
    assert answers == [{"batchItemFailures": []}, {"batchItemFailures": [{"itemIdentifier": message["id"]}]}]
    assert hub.changing_calls("TagResources") == tagged + 1
    redelivered = {**message, "receive_count": 2}
    for worker in containers:  # whichever container SQS delivers it to again: the target is done
        assert worker.lambda_handler(sqs_event([redelivered]), FakeContext("worker")) == {"batchItemFailures": []}
    assert len(ran) == 1 and hub.changing_calls("TagResources") == tagged + 1
    assert run_record(hub, run_id)["targets_done"] == "1"


def target_locks(hub: Hub) -> list[dict[str, Any]]:
    """The worker's idempotency records (its locks on targets) in the runs table."""
    dynamodb = hub.admin(hub.seed.hub_account).client("dynamodb")
    items = dynamodb.query(
        TableName=hub.resources.table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": "idempotency#rolechain-test"}},
        ConsistentRead=True,
    )["Items"]
    return [item for item in items if item["sk"]["S"].startswith("rolechain.worker.target#")]


def test_a_delivery_that_died_running_a_target_leaves_it_to_the_next_delivery(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The lock on a target lasts as long as the invocation holding it may run: a worker killed mid-target
    # (its timeout, say: no exception handler runs) blocks the target until that invocation's deadline.
    import time

    from rolechain.hub import worker as hub_worker

    class Killed(BaseException):
        pass

    run_id, messages = queued_tag_owner_run(hub)
    worker = hub.load("worker")

    def killed(*args: Any, **kwargs: Any) -> Any:
        raise Killed

    with monkeypatch.context() as patch:
        patch.setattr(hub_worker, "run_plan", killed)
        before = time.time()
        with pytest.raises(Killed):
            worker.lambda_handler(sqs_event(messages[:1]), FakeContext("worker", remaining_ms=60_000))
    (lock,) = target_locks(hub)
    deadline_ms = int(lock["in_progress_expiration"]["N"])
    # the invocation's deadline: when the lock was taken plus the 60 s it had left (to the ms, truncated)
    assert lock["status"]["S"] == "INPROGRESS" and abs(deadline_ms - (before * 1000 + 60_000)) < 5_000
    assert set(lock) == {"pk", "sk", "status", "ttl", "in_progress_expiration"}  # no message, no output
    redelivered = {**messages[0], "receive_count": 2}
    # before the dead invocation's deadline: the lock holds
    answer = worker.lambda_handler(sqs_event([redelivered]), FakeContext("worker"))
    assert answer == {"batchItemFailures": [{"itemIdentifier": messages[0]["id"]}]}
    # past it (set by hand rather than waited for): the next delivery runs the target
    hub.admin(hub.seed.hub_account).client("dynamodb").update_item(
        TableName=hub.resources.table,
        Key={"pk": lock["pk"], "sk": lock["sk"]},
        UpdateExpression="SET in_progress_expiration = :past",
        ExpressionAttributeValues={":past": {"N": str(int(time.time() * 1000) - 1)}},
    )
    tagged = hub.changing_calls("TagResources")
    assert worker.lambda_handler(sqs_event([redelivered]), FakeContext("worker")) == {"batchItemFailures": []}
    assert hub.changing_calls("TagResources") == tagged + 1
    assert run_record(hub, run_id)["targets_done"] == "1"
    (done,) = target_locks(hub)
    assert done["status"]["S"] == "COMPLETED"


def test_after_its_lock_expired_a_target_is_still_not_run_again(hub: Hub) -> None:
    # the lock is kept an hour; after that (or on a redrive from the DLQ) the run's own markers say done
    run_id, messages = queued_tag_owner_run(hub)
    worker = hub.load("worker")
    assert worker.lambda_handler(sqs_event(messages[:1]), FakeContext("worker")) == {"batchItemFailures": []}
    dynamodb = hub.admin(hub.seed.hub_account).client("dynamodb")
    (lock,) = target_locks(hub)  # deleted as DynamoDB's TTL would
    dynamodb.delete_item(TableName=hub.resources.table, Key={"pk": lock["pk"], "sk": lock["sk"]})
    assert target_locks(hub) == []
    tagged = hub.changing_calls("TagResources")
    redelivered = {**messages[0], "receive_count": 2}
    assert worker.lambda_handler(sqs_event([redelivered]), FakeContext("worker")) == {"batchItemFailures": []}
    assert hub.changing_calls("TagResources") == tagged
    assert run_record(hub, run_id)["targets_done"] == "1"


def test_a_lock_the_table_refuses_is_retried_and_the_last_delivery_runs_without_it(hub: Hub) -> None:
    # DynamoDB throttling the lock's put (every retry of it): SQS delivers the message again; on its last
    # delivery the target runs anyway and is recorded, instead of going to the DLQ unrecorded
    run_id, messages = queued_tag_owner_run(hub)
    worker = hub.load("worker")

    def throttle_locks() -> None:
        hub.emulator.inject_fault(
            "PutItem",
            "ProvisionedThroughputExceededException",
            "The level of configured provisioned throughput for the table was exceeded",
            times=10,
            match=lambda request: "rolechain.worker.target#" in json.dumps(request.body),
        )

    tagged = hub.changing_calls("TagResources")  # (every test's landscape starts with no fault left)
    throttle_locks()
    answer = worker.lambda_handler(sqs_event(messages[:1]), FakeContext("worker"))
    assert answer == {"batchItemFailures": [{"itemIdentifier": messages[0]["id"]}]}
    assert hub.changing_calls("TagResources") == tagged and "targets_done" not in run_record(hub, run_id)
    hub.emulator.clear_faults()
    throttle_locks()
    last = {**messages[0], "receive_count": 3}  # MAX_RECEIVE_COUNT
    assert worker.lambda_handler(sqs_event([last]), FakeContext("worker")) == {"batchItemFailures": []}
    assert hub.changing_calls("TagResources") == tagged + 1
    assert run_record(hub, run_id)["targets_done"] == "1" and target_locks(hub) == []


def test_the_run_completes_when_the_last_count_lands_before_another_workers_marker(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Worker A counts the 4th of 5 targets and stalls before its marker says so; worker B counts the 5th,
    # marks it and finds A's marker uncounted. A must look again after its marker: it ends the run.
    import threading

    run_id, messages = queued_tag_owner_run(hub)
    first, a, b = hub.load("worker"), hub.load("worker"), hub.load("worker")
    own_batch_processors(monkeypatch)
    assert first.lambda_handler(sqs_event(messages[:3]), FakeContext("worker")) == {"batchItemFailures": []}
    client = a.HUB.store._client
    update_item = client.update_item
    counted, b_done = threading.Event(), threading.Event()

    def stalling(**kwargs: Any) -> Any:
        if kwargs.get("UpdateExpression", "").startswith("SET counted"):
            counted.set()  # A's count is in: B runs now
            assert b_done.wait(30)
        return update_item(**kwargs)

    monkeypatch.setattr(client, "update_item", stalling)
    answers: list[Any] = []
    worker_a = threading.Thread(
        target=lambda: answers.append(a.lambda_handler(sqs_event([messages[3]]), FakeContext("worker")))
    )
    worker_a.start()
    assert counted.wait(30)
    assert b.lambda_handler(sqs_event([messages[4]]), FakeContext("worker")) == {"batchItemFailures": []}
    assert completion_events(hub) == []  # B saw A's marker uncounted
    b_done.set()
    worker_a.join(30)
    assert answers == [{"batchItemFailures": []}]
    assert [e["run_id"] for e in completion_events(hub)] == [run_id]
    record = run_record(hub, run_id)
    assert record["targets_done"] == "5" and "completed_at" in record


def test_a_refused_completion_event_is_sent_by_the_retry(hub: Hub) -> None:
    run_id, messages = queued_tag_owner_run(hub)
    worker = hub.load("worker")
    hub.emulator.inject_fault("PutEvents", "InternalException", "EventBridge is down", status=500, times=100)
    response = worker.lambda_handler(sqs_event(messages), FakeContext("worker"))
    assert len(response["batchItemFailures"]) == 1  # the message whose worker completed the run: retried
    assert completion_events(hub) == []
    hub.emulator.clear_faults()  # EventBridge is back
    retried = [m for m in messages if m["id"] == response["batchItemFailures"][0]["itemIdentifier"]]
    assert worker.lambda_handler(sqs_event(retried), FakeContext("worker")) == {"batchItemFailures": []}
    (event,) = completion_events(hub)
    assert event["run_id"] == run_id and event["summary"]["ok"] == 5
    assert run_record(hub, run_id)["targets_done"] == "5"


def test_an_inline_run_sends_its_completion_event_too(hub: Hub) -> None:
    scheduler = hub.load("scheduler")
    run = scheduler.lambda_handler(load_event("scheduler-inventory.json"), FakeContext("scheduler"))
    (event,) = completion_events(hub)
    assert (event["run_id"], event["mode"], event["summary"]["ok"]) == (run["run_id"], "inline", 5)


def test_a_scheduler_out_of_time_leaves_the_rest_to_the_queue_and_the_run_still_ends_once(hub: Hub) -> None:
    scheduler = hub.load("scheduler")
    scheduler.HUB.settings = scheduler.HUB.settings.model_copy(update={"inline_target_limit": 0})
    # 5 s left: under the 10 s an enqueueing invocation keeps for itself, so it queues no target itself
    run = scheduler.lambda_handler(load_event("scheduler-tag-owner.json"), FakeContext("scheduler", remaining_ms=5000))
    assert (run["status"], run["enqueued"], run["target_count"]) == ("queued", 0, 5)
    (continuation,) = drain_queue(hub)
    assert json.loads(continuation["body"]) == {"kind": "continue", "run_id": run["run_id"], "start": 0}
    worker = hub.load("worker")
    assert worker.lambda_handler(sqs_event([continuation]), FakeContext("worker")) == {"batchItemFailures": []}
    # delivered again: that part is taken, nothing is queued twice
    assert worker.lambda_handler(sqs_event([continuation]), FakeContext("worker")) == {"batchItemFailures": []}
    targets = drain_queue(hub)
    assert sorted(json.loads(m["body"])["account"] for m in targets) == [f"20000000000{i}" for i in range(1, 6)]
    assert worker.lambda_handler(sqs_event(targets), FakeContext("worker")) == {"batchItemFailures": []}
    (event,) = completion_events(hub)
    assert event["run_id"] == run["run_id"] and event["summary"]["ok"] == 5


def test_the_queue_sends_ten_a_call_eight_calls_at_once_and_stops_between_rounds_when_time_runs_out(
    hub: Hub,
) -> None:
    from rolechain.hub.models import ContinueMessage
    from rolechain.hub.queue import TargetQueue

    sqs = hub.emulator.session(
        hub.resources.r1_credentials["AccessKeyId"],
        hub.resources.r1_credentials["SecretAccessKey"],
        hub.resources.r1_credentials["SessionToken"],
    ).client("sqs", region_name=hub.seed.region)
    queue = TargetQueue(sqs, hub.resources.queue_url)
    messages = [ContinueMessage(run_id=f"run-{i:03d}", start=i) for i in range(95)]
    budget = iter([60.0, 0.0])
    sent = queue.send(messages, remaining_seconds=lambda: next(budget), reserve_seconds=10.0)
    assert sent == 80  # one round: 8 calls of 10; then too little time for the next
    assert len(hub.emulator.calls(action="SendMessageBatch")) == 8
    bodies = sorted(json.loads(m["body"])["run_id"] for m in drain_queue(hub))
    assert bodies == [f"run-{i:03d}" for i in range(80)]  # the first ones: the caller continues at 80
    assert queue.send(messages[80:]) == 15 and len(hub.emulator.calls(action="SendMessageBatch")) == 10


def test_a_target_whose_attempt_stopped_after_claiming_it_is_counted_by_the_next_delivery(hub: Hub) -> None:
    run_id, messages = queued_tag_owner_run(hub)
    first = json.loads(messages[0]["body"])
    # an attempt that timed out between claiming the target and counting it left this marker
    dynamodb = hub.admin(hub.seed.hub_account).client("dynamodb")
    dynamodb.put_item(
        TableName=hub.resources.table,
        Item={
            "pk": {"S": f"run#{run_id}"},
            "sk": {"S": f"done#{first['account']}#{first['region']}"},
            "counted": {"BOOL": False},
        },
    )
    worker = hub.load("worker")
    assert worker.lambda_handler(sqs_event(messages), FakeContext("worker")) == {"batchItemFailures": []}
    (event,) = completion_events(hub)
    assert event["run_id"] == run_id and event["summary"]["ok"] == 5
    assert run_record(hub, run_id)["targets_done"] == "5"


def test_a_continuation_that_could_send_nothing_is_taken_up_again(hub: Hub) -> None:
    scheduler = hub.load("scheduler")
    scheduler.HUB.settings = scheduler.HUB.settings.model_copy(update={"inline_target_limit": 0})
    run = scheduler.lambda_handler(load_event("scheduler-tag-owner.json"), FakeContext("scheduler", remaining_ms=5000))
    (continuation,) = drain_queue(hub)
    worker = hub.load("worker")
    # a worker with too little time left sends nothing, and hands the part back with the message again
    assert worker.lambda_handler(sqs_event([continuation]), FakeContext("worker", remaining_ms=5000)) == {
        "batchItemFailures": []
    }
    (again,) = drain_queue(hub)
    assert json.loads(again["body"]) == {"kind": "continue", "run_id": run["run_id"], "start": 0}
    assert worker.lambda_handler(sqs_event([again]), FakeContext("worker")) == {"batchItemFailures": []}
    assert len(drain_queue(hub)) == 5


def test_a_message_for_a_target_outside_its_run_is_refused_and_not_counted(hub: Hub) -> None:
    run_id, messages = queued_tag_owner_run(hub)
    forged = {**json.loads(messages[0]["body"]), "account": "200000000006"}
    worker = hub.load("worker")
    event = sqs_event([{"id": "forged", "body": json.dumps(forged)}])
    assert worker.lambda_handler(event, FakeContext("worker")) == {"batchItemFailures": []}
    assert "targets_done" not in run_record(hub, run_id)  # not counted on the run
    stored = hub_support.stored_results(hub.emulator, hub.seed, hub.resources.table, run_id)
    assert stored == {"target#200000000006#us-east-1": "failed"}  # but recorded, refused, for the audit


# -- the results bucket ------------------------------------------------------------------------------
def bucket_objects(hub: Hub, prefix: str = "runs/") -> dict[str, list[dict[str, Any]]]:
    """key -> its JSON lines, of every object in the results bucket under ``prefix``."""
    return hub_support.results_objects(hub.emulator, hub.seed, hub.resources.results_bucket, prefix)


def test_an_inline_run_writes_one_object_per_target_with_one_line_each(hub: Hub) -> None:
    run = hub.load("scheduler").lambda_handler(load_event("scheduler-inventory.json"), FakeContext("scheduler"))
    prefix = f"runs/inventory/{run['created_at'][:10]}/{run['run_id']}/"
    assert run["results_uri"] == f"s3://{hub.resources.results_bucket}/{prefix}"
    objects = bucket_objects(hub)
    accounts = [f"20000000000{i}" for i in range(1, 6)]
    assert sorted(objects) == [f"{prefix}{a}-us-east-1.jsonl" for a in accounts]
    for key, lines in objects.items():
        (line,) = lines
        assert key.endswith(f"/{line['account']}-{line['region']}.jsonl")
        assert line["run_id"] == run["run_id"] and line["job"] == "inventory" and line["status"] == "ok"
        assert json.loads(line["output_json"])["count"] == 3 and line["error_json"] is None
    # R1 wrote them with its own policy (the emulator enforces it): PutObject, nothing else on the bucket
    puts = [c for c in hub.emulator.calls(service="s3") if hub.resources.results_bucket in c.path]
    assert {c.action for c in puts} == {"PutObject"} and all(c.status == 200 for c in puts)
    status, body = api_call(hub.load("api"), "api-get-run.json", RUN_ID=run["run_id"])
    assert status == 200 and body["results_uri"] == run["results_uri"]


def test_queued_targets_write_their_objects_once_however_often_sqs_delivers_them(hub: Hub) -> None:
    run_id, messages = queued_tag_owner_run(hub)
    # an attempt that stopped after claiming the first target (a Lambda timeout) left its claim
    first = json.loads(messages[0]["body"])
    hub.admin(hub.seed.hub_account).client("dynamodb").put_item(
        TableName=hub.resources.table,
        Item={
            "pk": {"S": f"run#{run_id}"},
            "sk": {"S": f"done#{first['account']}#{first['region']}"},
            "counted": {"BOOL": False},
        },
    )
    worker = hub.load("worker")
    assert worker.lambda_handler(sqs_event(messages), FakeContext("worker")) == {"batchItemFailures": []}
    # the whole batch delivered again: nothing is written again
    puts = len(hub.emulator.calls(action="PutObject"))
    assert worker.lambda_handler(sqs_event(messages), FakeContext("worker")) == {"batchItemFailures": []}
    assert len(hub.emulator.calls(action="PutObject")) == puts == 5
    objects = bucket_objects(hub)
    assert len(objects) == 5 and all(len(lines) == 1 for lines in objects.values())
    lines = [line for lines in objects.values() for line in lines]
    assert sorted(line["account"] for line in lines) == [f"20000000000{i}" for i in range(1, 6)]
    assert {(line["status"], line["job"], line["run_id"]) for line in lines} == {("ok", "tag-owner", run_id)}
    assert all("/tag-owner/" in key and f"/{run_id}/" in key for key in objects)


def test_a_worker_whose_bucket_write_fails_leaves_the_target_for_the_next_delivery(hub: Hub) -> None:
    run_id, messages = queued_tag_owner_run(hub)
    hub.emulator.inject_fault("PutObject", "InternalError", "We encountered an internal error.", status=500, times=3)
    worker = hub.load("worker")
    failed = worker.lambda_handler(sqs_event(messages[:1]), FakeContext("worker"))
    assert failed == {"batchItemFailures": [{"itemIdentifier": messages[0]["id"]}]}  # SQS delivers it again
    assert run_record(hub, run_id).get("targets_done") is None and bucket_objects(hub) == {}
    hub.emulator.clear_faults()
    assert worker.lambda_handler(sqs_event(messages), FakeContext("worker")) == {"batchItemFailures": []}
    assert len(bucket_objects(hub)) == 5 and run_record(hub, run_id)["targets_done"] == "5"


def test_a_refused_redelivery_finishes_the_count_of_an_attempt_that_died_before_counting(hub: Hub) -> None:
    # an attempt stored its result and died before its count; the next delivery is refused (the job
    # changed, or a replayed message): it must not rewrite the result, nor leave the run unable to end
    run_id, messages = queued_tag_owner_run(hub)
    worker = hub.load("worker")
    hub.emulator.inject_fault(
        "UpdateItem",
        "ValidationException",
        "the attempt dies here",
        match=lambda request: "ADD targets_done" in str(request.body.get("UpdateExpression", "")),
    )
    answer = worker.lambda_handler(sqs_event(messages[:1]), FakeContext("worker"))
    assert answer == {"batchItemFailures": [{"itemIdentifier": messages[0]["id"]}]}
    hub.emulator.clear_faults()
    body = json.loads(messages[0]["body"])
    assert stored_results(hub, run_id) == {f"target#{body['account']}#{body['region']}": "ok"}
    assert "targets_done" not in run_record(hub, run_id)
    refused = {
        **messages[0],
        "body": json.dumps({**body, "params": {"tags": {"owner": "mallory"}}}),
        "receive_count": 2,
    }
    assert worker.lambda_handler(sqs_event([refused]), FakeContext("worker")) == {"batchItemFailures": []}
    assert stored_results(hub, run_id) == {f"target#{body['account']}#{body['region']}": "ok"}  # not rewritten
    record = run_record(hub, run_id)
    assert (record["targets_done"], record["count_ok"]) == ("1", "1")
    assert worker.lambda_handler(sqs_event(messages), FakeContext("worker")) == {"batchItemFailures": []}
    assert run_record(hub, run_id)["targets_done"] == "5" and len(completion_events(hub)) == 1


def test_an_output_over_300_kb_is_kept_whole_in_the_bucket_and_pointed_to_by_the_item(hub: Hub) -> None:
    from rolechain.actions import REGISTRY, ActionContext, Params, register

    big = {"blob": "x" * 400_000}

    @register("big_output_test", params=Params, iam_actions=["s3:ListAllMyBuckets"], changes=False)
    def big_output(ctx: ActionContext, params: Params) -> dict[str, Any]:
        """Answers 400 KB."""
        return big

    try:
        api = hub.load("api")
        status, run = api_as(api, ALICE, "api-post-run-action.json", {"action": "big_output_test",
                                                                      "accounts": ["200000000001"]})  # fmt: skip
        assert status == 200 and run["summary"]["ok"] == 1
    finally:
        REGISTRY.pop("big_output_test")
    ((key, (line,)),) = bucket_objects(hub).items()
    assert json.loads(line["output_json"]) == big  # whole
    status, stored = get_run_as(api, ALICE, run["run_id"])
    (result,) = stored["results"]
    assert result.get("output") is None and result["output_bytes"] > 400_000  # not in the item
    assert result["output_uri"] == f"s3://{hub.resources.results_bucket}/{key}"


def test_get_run_pages_its_results_and_filters_them_by_status(hub: Hub) -> None:
    # Given: an inventory whose third account refuses ListBuckets (4 ok, 1 failed)
    hub.emulator.inject_fault(
        "ListBuckets", "AccessDenied", "Access Denied", status=403, match=lambda r: r.account == "200000000003"
    )
    run = hub.load("scheduler").lambda_handler(load_event("scheduler-inventory.json"), FakeContext("scheduler"))
    assert run["summary"]["failed"] == 1
    api = hub.load("api")
    seen, query = [], {"limit": "2"}
    while True:
        status, body = get_run_as(api, ALICE, run["run_id"], **query)
        assert status == 200 and len(body["results"]) <= 2
        assert body["summary"] == {"ok": 4, "failed": 1, "skipped": 0, "dry_run": 0}
        seen += [r["account"] for r in body["results"]]
        if body["next_token"] is None:
            break
        query["next_token"] = body["next_token"]
    assert seen == [f"20000000000{i}" for i in range(1, 6)]  # each once, in order
    status, failed = get_run_as(api, ALICE, run["run_id"], status="failed")
    assert status == 200 and [r["account"] for r in failed["results"]] == ["200000000003"]
    assert failed["next_token"] is None
    assert [r["status"] for r in get_run_as(api, ALICE, run["run_id"], status="ok")[1]["results"]] == ["ok"] * 4
    assert get_run_as(api, ALICE, run["run_id"], status="dry-run")[1]["results"] == []
    # a token of this run's pages is refused for another status, or by a page of another run
    _, first = get_run_as(api, ALICE, run["run_id"], limit="1")
    assert get_run_as(api, ALICE, run["run_id"], status="ok", next_token=first["next_token"])[0] == 400
    other = hub.load("scheduler").lambda_handler(load_event("scheduler-inventory.json"), FakeContext("scheduler"))
    status, body = get_run_as(api, ALICE, other["run_id"], next_token=first["next_token"])
    assert (status, body["field"]) == (400, "next_token")
    for name, value in {"limit": "1001", "status": "broken"}.items():
        status, body = get_run_as(api, ALICE, run["run_id"], **{name: value})
        assert (status, body["field"]) == (400, name)


# -- reruns --------------------------------------------------------------------------------------------
def refuse_list_buckets_in(hub: Hub, account: str) -> None:
    hub.emulator.inject_fault("ListBuckets", "AccessDenied", "Access Denied", status=403,
                              match=lambda r: r.account == account)  # fmt: skip


def test_a_rerun_runs_the_old_runs_job_over_only_its_failed_targets(hub: Hub) -> None:
    refuse_list_buckets_in(hub, "200000000003")
    api = hub.load("api")
    status, old = api_as(api, ALICE, "api-post-run-action.json", {"job": "inventory"})
    assert status == 200 and old["summary"] == {"ok": 4, "failed": 1, "skipped": 0, "dry_run": 0}
    hub.emulator.clear_requests()
    status, new = api_as(api, ALICE, "api-post-run-action.json", {"rerun": {"run_id": old["run_id"],
                                                                           "statuses": ["failed"]}})  # fmt: skip
    assert status == 200 and new["job"] == "inventory" and new["rerun_of"] == old["run_id"]
    assert new["target_count"] == 1 and [(r["account"], r["status"]) for r in new["results"]] == [
        ("200000000003", "ok")
    ]
    assert {c.account for c in hub.emulator.calls(action="ListBuckets")} == {"200000000003"}  # no other account
    status, stored = get_run_as(api, ALICE, new["run_id"])
    assert status == 200 and stored["rerun_of"] == old["run_id"] and stored["summary"]["ok"] == 1
    # nothing left in those statuses: a clear 400
    status, body = api_as(api, ALICE, "api-post-run-action.json", {"rerun": {"run_id": new["run_id"]}})
    assert (status, body["field"]) == (400, "rerun") and "failed or skipped" in body["message"]


def test_a_rerun_of_an_ad_hoc_run_keeps_its_action_and_params(hub: Hub) -> None:
    refuse_list_buckets_in(hub, "200000000002")
    api = hub.load("api")
    body = {"action": "list_buckets", "params": {"with_tags": True}, "accounts": ["200000000001", "200000000002"]}
    status, old = api_as(api, CAROL, "api-post-run-action.json", body)
    assert status == 200 and old["summary"]["failed"] == 1
    status, new = api_as(api, CAROL, "api-post-run-action.json", {"rerun": {"run_id": old["run_id"]}})
    assert status == 200 and new["action"] == "list_buckets" and new["job"] is None
    (result,) = new["results"]
    assert result["account"] == "200000000002" and result["status"] == "ok"
    assert all("tags" in b for b in result["output"]["buckets"])  # with_tags: the old run's params
    assert new["requested_by"] == CAROL and new["rerun_of"] == old["run_id"]


def test_a_rerun_is_authorised_as_starting_the_run_and_needs_the_old_run_readable(
    hub: Hub, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    refuse_list_buckets_in(hub, "200000000001")
    api = hub.load("api")
    _, alices = api_as(api, ALICE, "api-post-run-action.json", {"action": "list_buckets", "accounts": ["200000000001"]})
    rerun = {"rerun": {"run_id": alices["run_id"]}}
    # carol may not read alice's run: as if it did not exist; bob is named by no rule
    status, body = api_as(api, CAROL, "api-post-run-action.json", rerun)
    assert status == 404 and body["message"] == f"no run {alices['run_id']!r}"
    assert api_as(api, BOB, "api-post-run-action.json", rerun)[0] == 403
    # with read_all, carol reads the tag-owner run of alice, yet may not start tag-owner again
    _, tagging = api_as(api, ALICE, "api-post-run-action.json", {"job": "tag-owner", "dry_run": True,
                                                                   "accounts": ["200000000001"]})  # fmt: skip

    def readers_read_all(data: dict[str, Any]) -> None:
        data["api"]["rules"][1]["read_all"] = True

    monkeypatch.setenv("JOB_FILE", str(hub_support.edited_demo_job_file(tmp_path, readers_read_all)))
    api = hub.load("api")
    statuses = {"rerun": {"run_id": tagging["run_id"], "statuses": ["dry_run", "ok"]}}
    status, body = api_as(api, CAROL, "api-post-run-action.json", statuses)
    assert status == 403 and "starting job 'tag-owner'" in body["message"]
    # a rerun goes with nothing but dry_run
    status, body = api_as(api, ALICE, "api-post-run-action.json", {**rerun, "accounts": ["200000000002"]})
    assert (status, body["field"]) == (400, "rerun")


@given(position=st.integers(min_value=0), replacement=st.sampled_from("AZaz09-_.=+/ %"), garbage=st.text(max_size=80))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_a_changed_or_made_up_token_never_opens_a_page(hub: Hub, position: int, replacement: str, garbage: str) -> None:
    api = hub.load("api")
    if not list_runs_as(api, ALICE, limit="1")[1]["runs"]:
        for i in (1, 2):
            api_as(api, ALICE, "api-post-run-action.json", {"action": "whoami", "accounts": [f"20000000000{i}"]})
    _, first = list_runs_as(api, ALICE, limit="1")
    token = first["next_token"]
    genuine = list_runs_as(api, ALICE, limit="1", next_token=token)[1]
    changed = token[: position % len(token)] + replacement + token[position % len(token) + 1 :]
    for made_up in (changed, garbage):
        if not made_up:
            continue
        # another caller: never a page, whatever the token
        status, body = list_runs_as(api, CAROL, limit="1", next_token=made_up)
        assert status == 400 and body["field"] == "next_token" and "runs" not in body
        # its owner: a 400, or (a change base64 does not see) the very page the genuine token opens
        status, body = list_runs_as(api, ALICE, limit="1", next_token=made_up)
        assert (status, body.get("field")) == (400, "next_token") or body == genuine


def test_a_page_of_results_ends_at_its_byte_budget_and_the_next_page_goes_on(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a budget smaller than one result: a Lambda answer is at most 6 MB, whatever the limit
    from rolechain.hub import runs

    run = hub.load("scheduler").lambda_handler(load_event("scheduler-inventory.json"), FakeContext("scheduler"))
    monkeypatch.setattr(runs, "PAGE_BYTES", 1)
    api = hub.load("api")
    seen, query = [], {"limit": "1000"}
    while True:
        status, body = get_run_as(api, ALICE, run["run_id"], **query)
        assert status == 200 and len(body["results"]) == 1  # one result a page, never none
        seen += [r["account"] for r in body["results"]]
        if body["next_token"] is None:
            break
        query["next_token"] = body["next_token"]
    assert seen == [f"20000000000{i}" for i in range(1, 6)]
