"""Every fixture in events/ through `sam local invoke`, asserting its effect in the emulated accounts."""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import Stack
from tests.hub_support import load_event, record_queued_run, results_objects

pytestmark = pytest.mark.e2e


def test_scheduler_inventory_fixture_runs_the_job_in_every_account(stack: Stack) -> None:
    run = stack.sam.invoke("scheduler", load_event("scheduler-inventory.json")).payload
    assert run["status"] == "completed" and run["summary"]["ok"] == 5
    assert {r["output"]["count"] for r in run["results"]} == {3}
    assert len(stack.stored_results(run["run_id"])) == 5


def test_scheduler_tag_owner_fixture_tags_every_bucket(stack: Stack) -> None:
    run = stack.sam.invoke("scheduler", load_event("scheduler-tag-owner.json")).payload
    assert run["summary"]["ok"] == 5
    for account in stack.seed.target_account_ids:
        tags = stack.admin(account).client("s3").get_bucket_tagging(Bucket=f"rc-{account}-02")["TagSet"]
        assert {"Key": "owner", "Value": "platform-team"} in tags


def test_worker_fixture_records_both_targets(stack: Stack) -> None:
    # the scheduler records a run before it queues its targets; the worker refuses messages of no run
    record_queued_run(stack.emulator, stack.seed, stack.hub.table, "queuedrun0001")
    response = stack.sam.invoke("worker", load_event("worker-sqs-batch.json")).payload
    assert response == {"batchItemFailures": []}
    assert stack.stored_results("queuedrun0001") == {
        "target#200000000001#us-east-1": "ok",
        "target#200000000002#us-east-1": "ok",
    }


def test_scheduler_and_worker_write_the_results_bucket_one_line_per_target(stack: Stack) -> None:
    run = stack.sam.invoke("scheduler", load_event("scheduler-inventory.json")).payload
    prefix = f"runs/inventory/{run['created_at'][:10]}/{run['run_id']}/"
    assert run["results_uri"] == f"s3://{stack.hub.results_bucket}/{prefix}"
    inline = results_objects(stack.emulator, stack.seed, stack.hub.results_bucket, prefix)
    assert sorted(inline) == [f"{prefix}{a}-us-east-1.jsonl" for a in stack.seed.target_account_ids]
    assert all([line["status"] for line in lines] == ["ok"] for lines in inline.values())
    # the worker, twice with the same batch (SQS delivers at least once): one object a target, one line
    record_queued_run(stack.emulator, stack.seed, stack.hub.table, "queuedrun0002")
    batch = load_event("worker-sqs-batch.json", queuedrun0001="queuedrun0002")
    for _ in range(2):
        assert stack.sam.invoke("worker", batch).payload == {"batchItemFailures": []}
    queued = results_objects(stack.emulator, stack.seed, stack.hub.results_bucket, "runs/inventory/")
    mine = {k: v for k, v in queued.items() if "/queuedrun0002/" in k}
    assert sorted(k.rsplit("/", 1)[1] for k in mine) == ["200000000001-us-east-1.jsonl", "200000000002-us-east-1.jsonl"]
    assert all(len(lines) == 1 and lines[0]["run_id"] == "queuedrun0002" for lines in mine.values())


def test_remediation_create_bucket_fixture_acts_once(stack: Stack) -> None:
    event = load_event("remediation-create-bucket.json")
    outcome = stack.sam.invoke("remediation", event).payload
    assert [r["rule"] for r in outcome["rules"]] == ["block-public-bucket", "tag-new-bucket-creator"]
    s3 = stack.admin("200000000001").client("s3")
    assert all(s3.get_public_access_block(Bucket="rc-200000000001-01")["PublicAccessBlockConfiguration"].values())
    assert {"Key": "created-by", "Value": "arn:aws:iam::200000000001:user/bob"} in s3.get_bucket_tagging(
        Bucket="rc-200000000001-01"
    )["TagSet"]
    puts = len(stack.emulator.calls(action="PutPublicAccessBlock"))
    # a second delivery, in a new container: the DynamoDB idempotency record stops it acting again
    again = stack.sam.invoke("remediation", event).payload
    assert again["run_id"] == outcome["run_id"]
    assert len(stack.emulator.calls(action="PutPublicAccessBlock")) == puts


@pytest.mark.parametrize(
    "fixture,account,bucket",
    [
        ("remediation-delete-public-access-block.json", "200000000002", "rc-200000000002-01"),
        ("remediation-put-bucket-acl.json", "200000000003", "rc-200000000003-02"),
    ],
)
def test_remediation_fixtures_block_public_access(stack: Stack, fixture: str, account: str, bucket: str) -> None:
    outcome = stack.sam.invoke("remediation", load_event(fixture)).payload
    assert outcome["rules"][0]["summary"]["ok"] == 1
    block = stack.admin(account).client("s3").get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values())


def test_remediation_bad_event_fails_naming_the_field(stack: Stack) -> None:
    with pytest.raises(RuntimeError, match="account"):
        stack.sam.invoke("remediation", load_event("remediation-bad-event.json"))


def api(stack: Stack, fixture: str, **replace: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    response = stack.sam.invoke("api", load_event(fixture, **replace)).payload
    return response["statusCode"], json.loads(response["body"])


def test_api_fixtures(stack: Stack) -> None:
    status, body = api(stack, "api-get-actions.json")
    assert status == 200 and len(body["actions"]) == 4
    status, body = api(stack, "api-get-jobs.json")
    assert status == 200 and "inventory" in {j["name"] for j in body["jobs"]}
    status, run = api(stack, "api-post-run-job.json")
    assert status == 200 and run["summary"]["ok"] == 2 and run["requested_by"].endswith(":user/alice")
    status, stored = api(stack, "api-get-run.json", RUN_ID=run["run_id"])
    assert status == 200 and stored["summary"]["ok"] == 2
    status, tagged = api(stack, "api-post-run-action.json")
    assert status == 200 and tagged["summary"]["ok"] == 1
    tags = stack.admin("200000000003").client("s3").get_bucket_tagging(Bucket="rc-200000000003-01")["TagSet"]
    assert {"Key": "requested-via", "Value": "api"} in tags
    status, body = api(stack, "api-post-run-forbidden.json")
    assert status == 403 and "999999999999" in body["message"]
    status, body = api(stack, "api-post-run-bad.json")
    assert status == 422 and ("body", "accounts") in {tuple(d["loc"]) for d in body["detail"]}
