"""Property-based tests over the remediation and worker handlers (the API's and the job-file loader's
are in test_hostile_api.py and tests/unit/test_job_file_properties.py): whatever CloudTrail envelope
or SQS message arrives, the handler answers without an unhandled error, never acts outside the
configured accounts, never on another account's bucket, and never runs an action the job does not name.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from rolechain_dev.emulator import HUB_ACCOUNT, Emulator, Seed

from tests.hub_support import FakeContext, create_hub_resources, load_event, load_handler, sqs_event, test_env

pytestmark = [pytest.mark.integration, pytest.mark.mutates]

CONFIGURED = ["200000000001", "200000000002"]  # targets of the demo job file's jobs, seeded here
UNCONFIGURED = "200000000006"  # seeded with R2 and buckets, but no job names it
CHANGING = ("PutPublicAccessBlock", "TagResources", "PutBucketTagging")
FUZZ = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


@pytest.fixture
def handlers(
    emulator: Emulator, seed_landscape: Callable[..., Seed], monkeypatch: pytest.MonkeyPatch
) -> tuple[Emulator, Seed, Any, Any]:
    seed = seed_landscape(targets=6, buckets_per_account=2)
    resources = create_hub_resources(emulator, seed)
    for key, value in test_env(resources, seed, AWS_LAMBDA_FUNCTION_NAME="rolechain-fuzz").items():
        monkeypatch.setenv(key, value)
    return emulator, seed, load_handler("remediation"), load_handler("worker")


def changing_calls(emulator: Emulator) -> list[Any]:
    return [r for r in emulator.calls() if r.action in CHANGING]


accounts = st.sampled_from([*CONFIGURED, UNCONFIGURED, HUB_ACCOUNT, "999999999999", "12345", "٢٠٠٠٠٠٠٠٠٠٠١"])
buckets = st.sampled_from(["rc-200000000001-01", "rc-200000000002-02", "rc-200000000006-01", "no-such-bucket"])
text = st.text(max_size=40)


@st.composite
def cloudtrail_events(draw: st.DrawFn) -> dict[str, Any]:
    event: dict[str, Any] = load_event("remediation-create-bucket.json")
    event["id"] = str(uuid.uuid4())
    event["account"] = draw(accounts)
    event["region"] = draw(st.sampled_from(["us-east-1", "eu-west-1", "us-esat-1", ""]))
    event["source"] = draw(st.sampled_from(["aws.s3", "aws.ec2", "custom"]))
    detail = event["detail"]
    detail["eventName"] = draw(st.sampled_from(["CreateBucket", "PutBucketAcl", "DeleteBucket", "x"]))
    detail["requestParameters"]["bucketName"] = draw(st.one_of(buckets, text))
    identity = draw(st.sampled_from(["user", "service", "missing", "odd"]))
    if identity == "service":
        detail["userIdentity"] = {"type": "AWSService", "invokedBy": "cloudformation.amazonaws.com"}
    elif identity == "missing":
        detail.pop("userIdentity")
    elif identity == "odd":
        detail["userIdentity"] = {"arn": draw(text)}
    if draw(st.booleans()):
        detail.pop(draw(st.sampled_from(["requestParameters", "eventName", "eventSource"])), None)
    return event


@given(event=cloudtrail_events())
@FUZZ
def test_remediation_never_acts_outside_the_event_account_or_the_configuration(
    handlers: tuple[Emulator, Seed, Any, Any], event: dict[str, Any]
) -> None:
    emulator, _, remediation, _ = handlers
    emulator.clear_requests()
    try:
        outcome = remediation.lambda_handler(copy.deepcopy(event), FakeContext("remediation"))
    except ValidationError:
        # a malformed envelope is refused by the event model, before anything acts
        assert changing_calls(emulator) == []
        return
    assert isinstance(outcome, dict)
    for call in changing_calls(emulator):
        assert call.account == event["account"] in CONFIGURED, (call.account, call.action)
        owned = call.params.get("ExpectedBucketOwner") or call.account
        assert owned == call.account
        arns = (call.body or {}).get("ResourceARNList", []) if isinstance(call.body, dict) else []
        for arn in arns:
            assert arn.rsplit(":", 1)[-1].startswith(f"rc-{call.account}-"), arn  # only its own buckets


def message_body(draw: st.DrawFn) -> str:
    base = {
        "run_id": "fuzz" + uuid.uuid4().hex[:8],
        "job": "inventory",
        "action": "list_buckets",
        "params": {"with_tags": True},
        "account": CONFIGURED[0],
        "region": "us-east-1",
        "dry_run": False,
    }
    mutations = {
        "job": st.sampled_from(["inventory", "tag-owner", "block-public-access", "nope", None]),
        "action": st.sampled_from(["list_buckets", "tag_resources", "block_s3_public_access", "rm_rf", ""]),
        "params": st.sampled_from([{}, {"with_tags": True}, {"tags": {"owner": "x"}, "resource_types": ["s3"]}, []]),
        "account": accounts,
        "region": st.sampled_from(["us-east-1", "us-esat-1", "eu-west-1"]),
        "dry_run": st.sampled_from([True, False, "yes"]),
        "run_id": st.sampled_from(["../../etc", "", "x" * 100, "ok-1"]),
    }
    body: dict[str, Any] = dict(base)
    for key in draw(st.lists(st.sampled_from(sorted(mutations)), max_size=3, unique=True)):
        body[key] = draw(mutations[key])
    if draw(st.integers(0, 9)) == 0:
        return draw(st.sampled_from(["", "not json", "[]", "{}", json.dumps(body)[:-3]]))
    return json.dumps(body)


@given(data=st.data())
@FUZZ
def test_worker_answers_every_message_and_runs_only_what_the_job_names(
    handlers: tuple[Emulator, Seed, Any, Any], data: st.DataObject
) -> None:
    emulator, _, _, worker = handlers
    emulator.clear_requests()
    count = data.draw(st.integers(1, 3))
    bodies = [message_body(data.draw) for _ in range(count)]
    messages = [
        {"id": f"m{i}", "body": body, "receive_count": data.draw(st.integers(1, 3))} for i, body in enumerate(bodies)
    ]
    response = worker.lambda_handler(sqs_event(messages), FakeContext("worker"))
    failures = {f["itemIdentifier"] for f in response["batchItemFailures"]}
    assert failures <= {m["id"] for m in messages}
    # the inventory job only lists: no message may make the worker change anything anywhere
    allowed = {"inventory": set(), "tag-owner": {"TagResources", "PutBucketTagging"}}
    for call in changing_calls(emulator):
        asked = [json.loads(b) for b in bodies if b.startswith("{") and b.endswith("}")]
        jobs = {m.get("job") for m in asked if isinstance(m, dict)}
        assert any(call.action in allowed.get(str(job), {"PutPublicAccessBlock"}) for job in jobs), call.action
        assert call.account in CONFIGURED, call.account
