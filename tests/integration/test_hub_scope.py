"""The hub acts only inside its configuration and keeps a run's meaning through the queue (issue #10,
defects 3-5): queued messages are checked against their job or run record, remediation acts only in
configured accounts on their own resources, and every target of a run ends exactly once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.hub_support import FakeContext, load_event, sqs_event
from tests.integration import test_handlers
from tests.integration.test_handlers import Hub, api_call, drain_queue, stored_results

hub = test_handlers.hub  # the in-process hub fixture of the handler tests

ALT_ROLE = "rolechain-alt"


def message(run_id: str, account: str = "200000000001", **fields: Any) -> str:
    body = {
        "run_id": run_id,
        "job": "inventory",
        "action": "list_buckets",
        "params": {"with_tags": True},
        "account": account,
        "region": "us-east-1",
        **fields,
    }
    return json.dumps(body)


def run_worker(hub: Hub, *bodies: str) -> dict[str, Any]:
    event = sqs_event([{"id": f"m{i}", "body": body} for i, body in enumerate(bodies)])
    response: dict[str, Any] = hub.load("worker").lambda_handler(event, FakeContext("worker"))
    return response


def api_post(hub: Hub, body: dict[str, Any], *, inline_limit: int | None = None) -> tuple[int, dict[str, Any]]:
    api = hub.load("api")
    if inline_limit is not None:
        api.HUB.settings = api.HUB.settings.model_copy(update={"inline_target_limit": inline_limit})
    event = load_event("api-post-run-action.json")
    event["body"] = json.dumps(body)
    event["headers"].pop("Idempotency-Key", None)
    event["multiValueHeaders"].pop("Idempotency-Key", None)
    response = api.lambda_handler(event, FakeContext("api"))
    return response["statusCode"], json.loads(response["body"])


# -- defect 4: queued runs keep their meaning --------------------------------------------------------
@pytest.mark.parametrize(
    "fields",
    [
        {"action": "tag_resources", "params": {"arns": ["arn:aws:s3:::rc-200000000001-01"], "tags": {"x": "y"}}},
        {"params": {"with_tags": False}},
        {"account": "999999999999"},
        {"account": "200000000006"},  # seeded, but no job targets it
        {"region": "eu-west-1"},
        {"role": {"role_name": "OrganizationAccountAccessRole"}},
        {"job": "no-such-job"},
    ],
    ids=["action", "params", "foreign-account", "unconfigured-account", "region", "role", "unknown-job"],
)
def test_worker_refuses_a_message_its_job_does_not_allow_and_records_it(hub: Hub, fields: dict[str, Any]) -> None:
    # Given a message of a recorded inventory run but asking for something else
    hub.record_run("forgedrun0001")
    body = json.loads(message("forgedrun0001"))
    body.update(fields)
    # When the worker gets it, then it is recorded failed (not retried, not dead-lettered) and nothing ran
    response = run_worker(hub, json.dumps(body))
    assert response == {"batchItemFailures": []}
    assert stored_results(hub, "forgedrun0001") == {f"target#{body['account']}#{body['region']}": "failed"}
    assert hub.emulator.calls(action="AssumeRole") == []
    assert hub.changing_calls("TagResources") == 0


def test_worker_refuses_an_ad_hoc_message_that_no_run_recorded(hub: Hub) -> None:
    body = message("adhocrun0001", job=None, action="whoami", params={})
    assert run_worker(hub, body) == {"batchItemFailures": []}
    assert stored_results(hub, "adhocrun0001") == {}  # no run, so no result to add to it
    assert hub.emulator.calls(action="AssumeRole") == []


def test_worker_refuses_a_job_message_of_an_unrecorded_run_and_never_rewrites_a_result(hub: Hub) -> None:
    # Given a forged message of no recorded run (a job's name, its action and params: all "valid")
    assert run_worker(hub, message("norecord0001")) == {"batchItemFailures": []}
    assert stored_results(hub, "norecord0001") == {} and hub.emulator.calls(action="AssumeRole") == []
    # And a replayed message asking for more, of a run whose target already has its result
    hub.record_run("replayed0001")
    assert run_worker(hub, message("replayed0001")) == {"batchItemFailures": []}
    assert stored_results(hub, "replayed0001") == {"target#200000000001#us-east-1": "ok"}
    forged = message("replayed0001", params={"with_tags": False})
    assert run_worker(hub, forged) == {"batchItemFailures": []}
    assert stored_results(hub, "replayed0001") == {"target#200000000001#us-east-1": "ok"}  # not rewritten


def test_worker_refuses_a_message_that_turns_its_runs_dry_run_off(hub: Hub) -> None:
    # Given a queued dry run of block-public-access through the API
    body = {"job": "block-public-access", "accounts": ["200000000001", "200000000002"]}
    status, run = api_post(hub, body, inline_limit=1)
    assert status == 202 and run["dry_run"] is True
    (first, second) = drain_queue(hub)
    forged = {**json.loads(first["body"]), "dry_run": False}
    # When one message is altered to act for real, then it is refused; the other runs as the dry run it is
    assert run_worker(hub, json.dumps(forged), second["body"]) == {"batchItemFailures": []}
    assert hub.changing_calls("PutPublicAccessBlock") == 0
    statuses = sorted(stored_results(hub, run["run_id"]).values())
    assert statuses == ["dry_run", "failed"]


def test_queued_ad_hoc_run_uses_the_requested_role(hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a second configured target role, deployed in two accounts
    for account in ("200000000001", "200000000002"):
        iam = hub.admin(account).client("iam")
        trust = iam.get_role(RoleName="rolechain-target")["Role"]["AssumeRolePolicyDocument"]
        iam.create_role(RoleName=ALT_ROLE, AssumeRolePolicyDocument=json.dumps(trust), MaxSessionDuration=3600)
        for name in iam.list_role_policies(RoleName="rolechain-target")["PolicyNames"]:
            document = iam.get_role_policy(RoleName="rolechain-target", PolicyName=name)["PolicyDocument"]
            iam.put_role_policy(RoleName=ALT_ROLE, PolicyName=name, PolicyDocument=json.dumps(document))
    hub.admin(hub.seed.hub_account).client("iam").put_role_policy(
        RoleName=hub.seed.hub_role_arn.rsplit("/", 1)[-1],
        PolicyName="assume-alt",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "sts:*", "Resource": f"arn:aws:iam::*:role/{ALT_ROLE}"}],
            }
        ),
    )
    jobs = yaml.safe_load(Path(hub.resources.job_file).read_text())
    jobs["jobs"]["alt-whoami"] = {
        "action": "whoami",
        "role_name": ALT_ROLE,
        "targets": {"accounts": ["200000000001", "200000000002"]},
    }
    job_file = tmp_path / "jobs.yaml"
    job_file.write_text(yaml.safe_dump(jobs))
    monkeypatch.setenv("JOB_FILE", str(job_file))
    # When an ad-hoc run asks for that role and is queued
    status, run = api_post(
        hub, {"action": "whoami", "accounts": ["200000000001", "200000000002"], "role_name": ALT_ROLE}, inline_limit=1
    )
    assert status == 202, run
    assert run_worker(hub, *(m["body"] for m in drain_queue(hub))) == {"batchItemFailures": []}
    # Then the worker reached the requested role, not the default one
    roles = {r.params["RoleArn"].rsplit("/", 1)[-1] for r in hub.emulator.calls(action="AssumeRole")}
    assert roles == {ALT_ROLE}
    stored = api_call(hub.load("api"), "api-get-run.json", RUN_ID=run["run_id"])[1]
    assert [r["status"] for r in stored["results"]] == ["ok", "ok"]


def test_worker_hands_back_a_target_skipped_for_lack_of_time_until_its_last_delivery(hub: Hub) -> None:
    worker = hub.load("worker")
    short = FakeContext("worker", remaining_ms=1_000)  # under the runner's reserve: nothing starts
    # (a refused message rides along: Powertools raises when every record of a batch fails)
    hub.record_run("laterun0001")
    refused = {"id": "refused", "body": message("laterun0001", account="200000000002", action="whoami")}
    event = sqs_event([{"id": "late", "body": message("laterun0001")}, refused])
    assert worker.lambda_handler(event, short) == {"batchItemFailures": [{"itemIdentifier": "late"}]}
    assert "target#200000000001#us-east-1" not in stored_results(hub, "laterun0001")
    last = sqs_event([{"id": "late", "body": message("laterun0001"), "receive_count": 3}])
    assert worker.lambda_handler(last, short) == {"batchItemFailures": []}
    assert stored_results(hub, "laterun0001")["target#200000000001#us-east-1"] == "skipped"


# -- defect 5: duplicate regions ----------------------------------------------------------------------
@pytest.mark.parametrize("inline_limit", [10, 1], ids=["inline", "queued"])
def test_duplicate_regions_act_once_and_the_run_completes(hub: Hub, inline_limit: int) -> None:
    body = {
        "action": "tag_resources",
        "accounts": ["200000000003", "200000000003"],
        "regions": ["us-east-1", "us-east-1"],
        "params": {"resource_types": ["s3"], "tags": {"dup": "once"}},
    }
    status, run = api_post(hub, body, inline_limit=inline_limit)
    assert status in (200, 202) and run["target_count"] == 1
    if status == 202:
        assert run_worker(hub, *(m["body"] for m in drain_queue(hub))) == {"batchItemFailures": []}
    assert hub.changing_calls("TagResources") == 1
    status, stored = api_call(hub.load("api"), "api-get-run.json", RUN_ID=run["run_id"])
    assert stored["status"] == "completed" and stored["summary"]["ok"] == 1


# -- defect 3: remediation acts only inside the configuration, on the account's own resources ---------
def remediate(hub: Hub, event: dict[str, Any]) -> dict[str, Any]:
    outcome: dict[str, Any] = hub.load("remediation").lambda_handler(event, FakeContext("remediation"))
    return outcome


def rule_statuses(outcome: dict[str, Any]) -> dict[str, list[str]]:
    return {rule["rule"]: [r["status"] for r in rule["results"]] for rule in outcome["rules"]}


def run_records(hub: Hub, prefix: str) -> list[str]:
    dynamodb = hub.admin(hub.seed.hub_account).client("dynamodb")
    items = dynamodb.scan(TableName=hub.resources.table)["Items"]
    return sorted(i["pk"]["S"] for i in items if i["sk"]["S"] == "meta" and i["pk"]["S"].startswith(prefix))


@pytest.mark.parametrize("account", ["999999999999", "111111111111", "200000000006"], ids=["foreign", "hub", "seeded"])
def test_remediation_refuses_an_event_from_an_unconfigured_account(hub: Hub, account: str) -> None:
    event = load_event("remediation-create-bucket.json", **{"200000000001": account})
    outcome = remediate(hub, event)
    assert rule_statuses(outcome) == {"block-public-bucket": ["skipped"], "tag-new-bucket-creator": ["skipped"]}
    assert all("refused" in r["error"]["message"] for rule in outcome["rules"] for r in rule["results"])
    assert hub.emulator.calls(action="AssumeRole") == []
    # recorded, one run per rule, ids derived from the event
    assert len(run_records(hub, f"run#{outcome['run_id']}-")) == 2
    # and in the results bucket, a line per rule under its own name
    lines = {k.split("/")[1]: v for k, v in test_handlers.bucket_objects(hub).items()}
    assert {name: [line["status"] for line in found] for name, found in lines.items()} == {
        "remediation.block-public-bucket": ["skipped"],
        "remediation.tag-new-bucket-creator": ["skipped"],
    }


def test_a_remediation_rule_may_list_its_own_accounts(
    hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    jobs = yaml.safe_load(Path(hub.resources.job_file).read_text())
    jobs["remediations"][0]["targets"] = {"accounts": ["200000000002"]}
    job_file = tmp_path / "jobs.yaml"
    job_file.write_text(yaml.safe_dump(jobs))
    monkeypatch.setenv("JOB_FILE", str(job_file))
    outcome = remediate(hub, load_event("remediation-create-bucket.json"))
    assert rule_statuses(outcome) == {"block-public-bucket": ["skipped"], "tag-new-bucket-creator": ["ok"]}
    assert hub.changing_calls("PutPublicAccessBlock") == 0 and hub.changing_calls("TagResources") == 1


def test_a_rule_whose_params_cannot_be_built_fails_alone_and_the_event_is_not_retried(hub: Hub) -> None:
    # Given a CreateBucket made by an AWS service: no userIdentity.arn for the tagging rule
    event = load_event("remediation-create-bucket.json")
    event["detail"]["userIdentity"] = {"type": "AWSService", "invokedBy": "cloudformation.amazonaws.com"}
    # When it is delivered (twice, as EventBridge may), then the block rule acted once, the tag rule failed
    remediation = hub.load("remediation")
    outcome = remediation.lambda_handler(event, FakeContext("remediation"))
    again = remediation.lambda_handler(event, FakeContext("remediation"))
    assert again == outcome, (again, outcome)
    assert rule_statuses(outcome) == {"block-public-bucket": ["ok"], "tag-new-bucket-creator": ["failed"]}
    (tag_result,) = outcome["rules"][1]["results"]
    assert "userIdentity.arn" in tag_result["error"]["message"]
    assert hub.changing_calls("PutPublicAccessBlock") == 1 and hub.changing_calls("TagResources") == 0
    assert run_records(hub, f"run#{outcome['run_id']}-") == [f"run#{outcome['run_id']}-0", f"run#{outcome['run_id']}-1"]
    assert run_records(hub, "run#") == run_records(hub, f"run#{outcome['run_id']}-")  # one record per rule


def test_remediation_never_touches_another_accounts_bucket(hub: Hub) -> None:
    # Given an event in 200000000001 naming 200000000002's bucket
    event = load_event("remediation-create-bucket.json", **{"rc-200000000001-01": "rc-200000000002-01"})
    outcome = remediate(hub, event)
    # Then both rules failed at that target and nothing changed in either account
    assert rule_statuses(outcome) == {"block-public-bucket": ["failed"], "tag-new-bucket-creator": ["failed"]}
    assert hub.changing_calls("PutPublicAccessBlock") == 0 and hub.changing_calls("TagResources") == 0
    tagging = outcome["rules"][1]["results"][0]["output"]
    assert tagging["tagged"] == [] and tagging["failed"]["arn:aws:s3:::rc-200000000002-01"]["code"] == "ForeignResource"
    # and every bucket call named the event's account as the expected owner
    bucket_calls = hub.emulator.calls(action="GetPublicAccessBlock")
    assert bucket_calls and {c.params.get("ExpectedBucketOwner") for c in bucket_calls} == {"200000000001"}


def test_block_public_access_names_the_expected_owner_on_every_bucket_call(hub: Hub) -> None:
    status, run = api_post(hub, {"job": "block-public-access", "accounts": ["200000000004"], "dry_run": False})
    assert status == 200 and run["summary"]["ok"] == 1
    calls = hub.emulator.calls(action="GetPublicAccessBlock") + hub.emulator.calls(action="PutPublicAccessBlock")
    assert len(calls) == 6 and {c.params.get("ExpectedBucketOwner") for c in calls} == {"200000000004"}


def test_api_tag_resources_refuses_foreign_arns_and_never_reports_them_tagged(hub: Hub) -> None:
    foreign = ["arn:aws:s3:::rc-200000000001-01", "arn:aws:ec2:us-east-1:200000000001:instance/i-0123456789abcdef0"]
    own = "arn:aws:s3:::rc-200000000003-01"
    body = {
        "action": "tag_resources",
        "accounts": ["200000000003"],
        "params": {"arns": [*foreign, own], "tags": {"a": "b"}},
    }
    status, run = api_post(hub, body)
    (result,) = run["results"]
    assert status == 200 and result["status"] == "failed"
    assert result["output"]["tagged"] == [own] and sorted(result["output"]["failed"]) == sorted(foreign)
    sent = [c.body for c in hub.emulator.calls(action="TagResources")]
    assert len(sent) == 1 and sent[0]["ResourceARNList"] == [own]


# -- nothing is lost: every target of a queued run ends exactly once, no side effect twice --------------
def deliver_until_done(hub: Hub, messages: list[dict[str, Any]], max_receive: int = 3) -> list[str]:
    """SQS's part: deliver ``messages`` in batches, redeliver what the worker hands back (with its
    receive count), dead-letter what failed ``max_receive`` times. Returns the dead-lettered bodies."""
    worker = hub.load("worker")
    pending = [{**m, "receive_count": 1} for m in messages]
    dead: list[str] = []
    while pending:
        response = worker.lambda_handler(sqs_event(pending), FakeContext("worker"))
        failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
        again = [{**m, "receive_count": m["receive_count"] + 1} for m in pending if m["id"] in failed]
        dead += [m["body"] for m in again if m["receive_count"] > max_receive]
        pending = [m for m in again if m["receive_count"] <= max_receive]
    return dead


def test_a_queued_run_under_faults_ends_every_target_exactly_once(hub: Hub, no_backoff: None) -> None:
    # Given tag-owner queued (5 targets) and faults: throttling, 5xx, a throttled hop, and a result
    # write that fails after the action ran (the record raises: SQS delivers it again)
    scheduler = hub.load("scheduler")
    scheduler.HUB.settings = scheduler.HUB.settings.model_copy(update={"inline_target_limit": 2})
    run = scheduler.lambda_handler(load_event("scheduler-tag-owner.json"), FakeContext("scheduler"))
    assert run["status"] == "queued"
    messages = drain_queue(hub)

    def at(account: str) -> Any:
        return lambda r: r.account == account or account in str(r.params.get("RoleArn", ""))

    emu = hub.emulator
    emu.inject_fault("GetResources", "Throttling", "Rate exceeded", status=400, times=2, match=at("200000000002"))
    emu.inject_fault("ListBuckets", "InternalError", "boom", status=500, times=2, match=at("200000000003"))
    emu.inject_fault("AssumeRole", "Throttling", "Rate exceeded", status=400, times=2, match=at("200000000004"))
    emu.inject_fault("BatchWriteItem", "InternalServerError", "boom", status=500, times=2)
    # When SQS and the worker have done their parts
    dead = deliver_until_done(hub, messages)
    # Then nothing was dead-lettered, each target has one final result and the run completed
    assert dead == []
    results = stored_results(hub, run["run_id"])
    assert sorted(results) == [f"target#20000000000{i}#us-east-1" for i in range(1, 6)]
    assert set(results.values()) <= {"ok", "failed", "skipped", "dry_run"}
    status, body = api_call(hub.load("api"), "api-get-run.json", RUN_ID=run["run_id"])
    assert status == 200 and body["status"] == "completed" and sum(body["summary"].values()) == 5
    # and no resource was tagged twice
    tagged = [arn for c in emu.calls(action="TagResources") if c.status == 200 for arn in c.body["ResourceARNList"]]
    assert len(tagged) == len(set(tagged))
    injected = {c.action for c in emu.calls() if c.emulator_error}
    assert injected >= {"GetResources", "ListBuckets", "AssumeRole", "BatchWriteItem"}
    ok = [key.split("#")[1] for key, status in results.items() if status == "ok"]
    assert {f"arn:aws:s3:::rc-{account}-0{i}" for account in ok for i in (1, 2, 3)} <= set(tagged)
    assert len(ok) == 5  # every fault here is transient: each target succeeded on a later delivery
