"""``rolechain runs`` against the real API handler: an API Gateway stand-in on loopback checks each
request's SigV4 signature, turns it into the REST event (``userArn``: whoever signed) and calls
``functions/api/app.py`` over the emulated hub. The CLI signs with a profile's keys, as an operator's."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from rolechain.client import ApiClient
from rolechain_dev.emulator import Emulator, Seed

from tests.api_server import ApiGateway, Fault, Identity
from tests.hub_support import FakeContext, HubResources, create_hub_resources, load_handler, sqs_event, test_env
from tests.integration.support import CliResult, run_cli
from tests.secrets_guard import GUARD

pytestmark = pytest.mark.integration

ALICE = "arn:aws:iam::111111111111:user/alice"  # the demo job file's operator: every job, read_all
READER = "arn:aws:sts::111111111111:assumed-role/rolechain-readers/bob"  # inventory only, own runs
PROFILES = {
    "alice": ("AKIAALICECLIENT00001", "aliceClientSecret/000000000000000000000000", ALICE),
    "bob": ("AKIABOBCLIENT0000001", "bobClientSecret/00000000000000000000000000", READER),
}
MALLORY = ("AKIAALICECLIENT00001", "notAlicesSecret/0000000000000000000000000")  # alice's key id, wrong secret


@pytest.fixture(scope="module")
def hub(
    emulator: Emulator, landscapes: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Seed, HubResources, ModuleType]]:
    """The API handler over the demo hub, its env set as Lambda sets it (R1's credentials)."""
    seed: Seed = landscapes.fresh()
    resources = create_hub_resources(emulator, seed)
    credentials = tmp_path_factory.mktemp("aws") / "credentials"
    profiles = {**{name: key[:2] for name, key in PROFILES.items()}, "mallory": MALLORY}
    credentials.write_text(
        "".join(
            f"[{name}]\naws_access_key_id = {k}\naws_secret_access_key = {s}\n" for name, (k, s) in profiles.items()
        )
    )
    GUARD.add(*(secret for _, secret in profiles.values()))
    with pytest.MonkeyPatch.context() as monkeypatch:
        for key, value in test_env(resources, seed, AWS_LAMBDA_FUNCTION_NAME="rolechain-test").items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
        monkeypatch.setenv("AWS_CONFIG_FILE", str(Path(credentials).with_name("config")))
        monkeypatch.delenv("ROLECHAIN_API_URL", raising=False)
        yield seed, resources, load_handler("api")
    landscapes.invalidate()


@pytest.fixture
def gateway(hub: tuple[Seed, HubResources, ModuleType]) -> Iterator[ApiGateway]:
    api = hub[2]
    identities = {key: Identity(secret, arn) for key, secret, arn in PROFILES.values()}
    with ApiGateway(lambda event: api.lambda_handler(event, FakeContext("api")), identities) as server:
        yield server


def runs(gateway: ApiGateway, *argv: str, profile: str = "alice") -> CliResult:
    return run_cli(["runs", *argv, "--api-url", gateway.url, "--profile", profile, "--region", "us-east-1"])


def stored_runs(emulator: Emulator, seed: Seed, table: str) -> set[str]:
    dynamodb = emulator.admin_session(seed.hub_account, seed.region).client("dynamodb")
    items = dynamodb.scan(TableName=table)["Items"]
    return {i["pk"]["S"] for i in items if i["sk"]["S"] == "meta" and i["pk"]["S"].startswith("run#")}


def test_start_then_show_a_run_through_the_signed_api(gateway: ApiGateway) -> None:
    # Given alice's profile, when she starts the inventory over two accounts
    started = runs(gateway, "start", "inventory", "--accounts", "200000000001,200000000002", "--json")
    # then it ran inline and completed, both targets ok
    assert started.code == 0, started.err
    run = started.json
    assert run["status"] == "completed" and run["summary"]["ok"] == 2 and run["requested_by"] == ALICE
    post = next(gateway.requests("POST", "/v1/runs"))
    assert post.caller == ALICE and post.status == 200 and len(post.headers["Idempotency-Key"]) >= 32
    # and show reads it back: CSV, one row per target, with the runner's columns
    shown = runs(gateway, "show", run["run_id"], "--format", "csv")
    assert shown.code == 0, shown.err
    rows = list(csv.DictReader(io.StringIO(shown.out)))
    assert [(r["account"], r["status"]) for r in rows] == [("200000000001", "ok"), ("200000000002", "ok")]
    table = runs(gateway, "show", run["run_id"])
    assert table.code == 0 and f"run {run['run_id']}: list_buckets" in table.out and "2 ok" in table.out
    assert "status: completed (inline, 2 target(s), requested by " + ALICE in table.out


def test_a_lost_answer_is_retried_with_the_same_key_and_the_run_starts_once(
    gateway: ApiGateway, emulator: Emulator, hub: tuple[Seed, HubResources, ModuleType]
) -> None:
    seed, resources, _ = hub
    before = stored_runs(emulator, seed, resources.table)
    # Given a gateway that loses the answer to the first start (the handler ran, the client sees a 502)
    gateway.faults = [Fault(502, after=True, body=b'{"message": "Internal server error"}')]
    started = runs(gateway, "start", "inventory", "--accounts", "200000000003", "--json")
    assert started.code == 0, started.err
    posts = list(gateway.requests("POST", "/v1/runs"))
    assert [p.status for p in posts] == [502, 200]
    assert posts[0].headers["Idempotency-Key"] == posts[1].headers["Idempotency-Key"]
    # then the hub recorded one run, the one the retry answered
    assert stored_runs(emulator, seed, resources.table) - before == {f"run#{started.json['run_id']}"}


def test_throttling_before_the_handler_is_retried(gateway: ApiGateway) -> None:
    gateway.faults = [Fault(429, headers={"Retry-After": "0"}), Fault(503, headers={"Retry-After": "0"})]
    started = runs(gateway, "start", "inventory", "--accounts", "200000000004", "--json")
    assert started.code == 0, started.err
    assert [p.status for p in gateway.requests("POST")] == [429, 503, 200]


def test_a_refusal_shows_the_apis_message_and_field(gateway: ApiGateway) -> None:
    unknown = runs(gateway, "start", "--action", "nope", "--accounts", "200000000001")
    assert unknown.code == 2
    assert "the API answered 400: unknown action 'nope'" in unknown.err and unknown.err.startswith(
        "rolechain: error: action:"
    )
    outside = runs(gateway, "start", "--action", "list_buckets", "--accounts", "999999999999")
    assert outside.code == 1 and "answered 403: accounts outside the configured targets: 999999999999" in outside.err
    assert len(list(gateway.requests("POST"))) == 2  # a 4xx is not retried


def test_a_caller_the_rules_do_not_grant_is_refused_and_cannot_read_anothers_run(gateway: ApiGateway) -> None:
    run_id = runs(gateway, "start", "inventory", "--accounts", "200000000005", "--json").json["run_id"]
    refused = runs(gateway, "start", "tag-owner", profile="bob")
    assert refused.code == 1 and "answered 403" in refused.err and "tag-owner" in refused.err
    hidden = runs(gateway, "show", run_id, profile="bob")
    assert hidden.code == 1 and f"answered 404: no run '{run_id}'" in hidden.err
    assert {r.caller for r in gateway.requests("POST")} == {ALICE, READER}


def test_a_request_signed_with_the_wrong_secret_is_refused_and_no_secret_is_shown(gateway: ApiGateway) -> None:
    result = runs(gateway, "show", "abc123", profile="mallory")
    assert result.code == 1
    assert "answered 403: The request signature we calculated does not match" in result.err
    assert MALLORY[1] not in result.out + result.err  # the guard checks every seeded secret as well


def test_bad_input_is_refused_before_any_request(gateway: ApiGateway) -> None:
    cases = [
        (
            ["start", "--action", "list_buckets", "--accounts", "2000000000O1"],
            "--accounts: '2000000000O1' is not a 12-digit",
        ),
        (["start", "--action", "list_buckets"], "--accounts: required with --action"),
        (["start", "inventory", "--action", "list_buckets"], "give either JOB or --action"),
        (
            ["start", "--action", "list_buckets", "--accounts", "200000000001", "--target-region", "us-esat-1"],
            "--target-region",
        ),
        (["show", "../jobs"], "RUN_ID: '../jobs' is not a run id"),
        (["rerun", "abc123"], "give --failed and/or --skipped"),
        (["list", "--limit", "0"], "--limit: must be at least 1"),
        (["show", "abc123", "--status", "broken"], "--status: 'broken' is not one of ok, failed, skipped, dry-run"),
    ]
    for argv, said in cases:
        result = runs(gateway, *argv)
        assert result.code == 2 and said in result.err, (argv, result.err)
    region = run_cli(["runs", "list", "--stack", "rolechain-hub", "--profile", "alice", "--region", "us-esat-1"])
    assert region.code == 2 and region.err.startswith("rolechain: error: --region: 'us-esat-1' is not")
    assert gateway.received == []


def test_the_url_comes_from_the_stacks_api_url_output(
    gateway: ApiGateway,
    emulator: Emulator,
    hub: tuple[Seed, HubResources, ModuleType],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seed = hub[0]
    # Given the hub stack, whose ApiUrl output is the gateway, and an operator allowed to describe it
    admin = emulator.admin_session(seed.hub_account, seed.region)
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {"ApiUrl": {"Value": gateway.url}, "HubRoleArn": {"Value": seed.hub_role_arn}},
    }
    admin.client("cloudformation").create_stack(StackName="rolechain-hub", TemplateBody=json.dumps(template))
    admin.client("iam").put_user_policy(
        UserName=seed.user_arn.rsplit("/", 1)[-1],
        PolicyName="describe-hub-stack",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "cloudformation:DescribeStacks", "Resource": "*"}],
            }
        ),
    )
    credentials = tmp_path / "credentials"
    credentials.write_text(
        f"[operator]\naws_access_key_id = {seed.user_access_key_id}\n"
        f"aws_secret_access_key = {seed.user_secret_access_key}\n"
    )
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    gateway.identities[seed.user_access_key_id] = Identity(seed.user_secret_access_key, seed.user_arn)
    # When the operator names the stack instead of the URL
    argv = ["runs", "show", "abc123", "--profile", "operator", "--region", seed.region]
    shown = run_cli([*argv, "--stack", "rolechain-hub"])
    # then the request reached the gateway (the hub knows no such run), signed by the operator
    assert shown.code == 1 and "GET /runs/abc123: the API answered 404: no run 'abc123'" in shown.err
    assert [r.caller for r in gateway.received] == [seed.user_arn]
    missing = run_cli([*argv, "--stack", "no-such-stack"])
    assert missing.code == 2 and missing.err.startswith("rolechain: error: --stack: 'no-such-stack': ValidationError")


def alice_client(gateway: ApiGateway, **kwargs: Any) -> ApiClient:
    return ApiClient(gateway.url, boto3.Session(profile_name="alice", region_name="us-east-1"), **kwargs)


def test_list_pages_through_the_real_api_newest_first(gateway: ApiGateway) -> None:
    # Given three runs of the inventory, one after the other
    started = [
        runs(gateway, "start", "inventory", "--accounts", account, "--json").json["run_id"]
        for account in ("200000000001", "200000000002", "200000000003")
    ]
    newest_first = started[::-1]
    # When the CLI lists the job's two newest
    listed = runs(gateway, "list", "--job", "inventory", "--limit", "2", "--json")
    assert listed.code == 0, listed.err
    assert [r["run_id"] for r in listed.json["runs"]] == newest_first[:2]
    assert listed.json["runs"][0]["counts"]["ok"] == 1 and listed.json["runs"][0]["requested_by"] == ALICE
    # and a client asking one run a page follows the API's sealed next_token through every run
    gateway.received.clear()
    every = [r["run_id"] for r in alice_client(gateway, page_size=1).list_runs(job="inventory")]
    assert every[:3] == newest_first and len(every) == len(set(every))
    tokens = [r.query.get("next_token") for r in gateway.requests("GET", "/v1/runs")]
    assert tokens[0] is None and all(tokens[1:]) and len(tokens) == len(every)  # one run a page, to the last
    assert [r.status for r in gateway.received] == [200] * len(tokens)
    table = runs(gateway, "list", "--job", "inventory", "--status", "completed")
    assert table.code == 0 and newest_first[0] in table.out.splitlines()[2]


def test_show_pages_through_the_real_apis_results(gateway: ApiGateway) -> None:
    accounts = ["200000000001", "200000000002", "200000000003"]
    run_id = runs(gateway, "start", "inventory", "--accounts", ",".join(accounts), "--json").json["run_id"]
    gateway.received.clear()
    run = alice_client(gateway, results_page_size=1).get_run(run_id)
    assert sorted(r["account"] for r in run["results"]) == accounts and run["summary"]["ok"] == 3
    queries = [r.query for r in gateway.requests("GET", f"/v1/runs/{run_id}")]
    assert len(queries) >= 3 and queries[0] == {"limit": "1"} and all(q.get("next_token") for q in queries[1:])
    failed = runs(gateway, "show", run_id, "--status", "failed", "--json")
    assert failed.code == 0 and failed.json["results"] == [] and failed.json["summary"]["ok"] == 3
    ok = runs(gateway, "show", run_id, "--status", "ok", "--format", "jsonl")
    assert sorted(json.loads(line)["account"] for line in ok.out.splitlines()) == accounts


def test_rerun_of_the_failed_targets_through_the_real_api(gateway: ApiGateway, emulator: Emulator) -> None:
    # Given a run whose target 200000000002 fails (ListBuckets refused there)
    emulator.inject_fault(
        "ListBuckets", "AccessDenied", "refused for the test", status=403, match=lambda r: r.account == "200000000002"
    )
    first = runs(gateway, "start", "inventory", "--accounts", "200000000001,200000000002,200000000003", "--json")
    assert first.code == 1, first.err  # a target failed
    old = first.json
    assert old["summary"]["failed"] == 1 and old["summary"]["ok"] == 2
    # When its failed targets are run again (the fault is spent: this time it works)
    again = runs(gateway, "rerun", old["run_id"], "--failed", "--wait", "--json")
    # then a new run covers only that target, and it is ok
    assert again.code == 0, again.err
    run = again.json
    assert run["run_id"] != old["run_id"] and run["rerun_of"] == old["run_id"]
    assert [(r["account"], r["status"]) for r in run["results"]] == [("200000000002", "ok")]
    post = list(gateway.requests("POST", "/v1/runs"))[-1]
    assert json.loads(post.body) == {"rerun": {"run_id": old["run_id"], "statuses": ["failed"]}}
    # a run with nothing of those statuses is the API's 400, shown with its field
    nothing = runs(gateway, "rerun", run["run_id"], "--failed", "--skipped")
    assert nothing.code == 2, nothing.err
    said = f"rolechain: error: rerun: the API answered 400: no target of run {run['run_id']!r} ended failed or skipped"
    assert nothing.err.startswith(said)


def test_rerun_as_a_dry_run_through_the_real_api(gateway: ApiGateway, emulator: Emulator) -> None:
    emulator.inject_fault(
        "ListBuckets", "AccessDenied", "refused", status=403, match=lambda r: r.account == "200000000004"
    )
    old = runs(gateway, "start", "inventory", "--accounts", "200000000004,200000000005", "--json").json
    again = runs(gateway, "rerun", old["run_id"], "--failed", "--dry-run", "--json")
    assert again.code == 0, again.err
    assert again.json["dry_run"] is True and [r["account"] for r in again.json["results"]] == ["200000000004"]
    post = list(gateway.requests("POST", "/v1/runs"))[-1]
    assert json.loads(post.body) == {"rerun": {"run_id": old["run_id"], "statuses": ["failed"]}, "dry_run": True}


def test_start_wait_follows_a_queued_run_the_worker_completes(
    hub: tuple[Seed, HubResources, ModuleType], emulator: Emulator
) -> None:
    # Given a gateway behind which the worker takes five targets off the queue before each poll of the run
    seed, resources, api = hub
    worker = load_handler("worker")
    sqs = emulator.admin_session(seed.hub_account, seed.region).client("sqs")

    def work_then_answer(event: dict[str, Any]) -> dict[str, Any]:
        if event["resource"] == "/runs/{run_id}" and not (event["queryStringParameters"] or {}).get("next_token"):
            got = sqs.receive_message(QueueUrl=resources.queue_url, MaxNumberOfMessages=5).get("Messages", [])
            if got:
                for m in got:
                    sqs.delete_message(QueueUrl=resources.queue_url, ReceiptHandle=m["ReceiptHandle"])
                batch = [{"id": m["MessageId"], "body": m["Body"], "receipt": m["ReceiptHandle"]} for m in got]
                assert worker.lambda_handler(sqs_event(batch), FakeContext("worker")) == {"batchItemFailures": []}
        return dict(api.lambda_handler(event, FakeContext("api")))

    identities = {key: Identity(secret, arn) for key, secret, arn in PROFILES.values()}
    with ApiGateway(work_then_answer, identities) as gateway:
        # When alice starts 15 targets (over the inline limit of 10: queued) and waits
        regions = ["--target-region", "us-east-1", "--target-region", "eu-west-1", "--target-region", "us-west-2"]
        accounts = ",".join(f"20000000000{n}" for n in range(1, 6))
        argv = [
            "start",
            "--action",
            "list_buckets",
            "--accounts",
            accounts,
            *regions,
            "--wait",
            "--poll-interval",
            "0.05",
        ]
        waited = runs(gateway, *argv, "--json")
        # then it polled until the worker had run every target, and printed the completed run
        assert waited.code == 0, waited.err
        run = waited.json
        assert run["mode"] == "queued" and run["status"] == "completed" and run["summary"]["ok"] == 15
        assert len(run["results"]) == 15
        assert next(gateway.requests("POST")).status == 202 and "waiting for it to complete" in waited.err
        assert len([r for r in gateway.requests("GET") if "next_token" not in r.query]) >= 3
