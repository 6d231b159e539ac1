"""The emulator itself: AssumeRole enforcement, recording, isolation, fault/latency injection, seeding.

Real boto3 clients talk HTTP to an in-process emulator on 127.0.0.1. One emulator serves the module;
every test starts from a freshly reset and seeded state.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from rolechain_dev.emulator import (
    HUB_ACCOUNT,
    Emulator,
    RecordedRequest,
    Seed,
    _s3_operation,
    target_account_id,
)

pytestmark = pytest.mark.integration

NO_RETRY = Config(retries={"mode": "standard", "total_max_attempts": 1})
MISSING = target_account_id(3)


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator() as emu:
        yield emu


@pytest.fixture
def seed(emulator: Emulator) -> Seed:
    emulator.reset()
    emulator.enforce = True
    emulator.detailed_denials = True
    emulator.latency = 0.0
    return emulator.seed(targets=3, buckets_per_account=2, missing_role_accounts=[MISSING])


def creds_session(emulator: Emulator, credentials: Mapping[str, Any]) -> boto3.Session:
    return emulator.session(credentials["AccessKeyId"], credentials["SecretAccessKey"], credentials["SessionToken"])


def user_session(emulator: Emulator, seed: Seed) -> boto3.Session:
    return emulator.session(seed.user_access_key_id, seed.user_secret_access_key)


def hub_session(emulator: Emulator, seed: Seed, **kwargs: Any) -> boto3.Session:
    sts = user_session(emulator, seed).client("sts", config=NO_RETRY)
    response = sts.assume_role(RoleArn=seed.hub_role_arn, RoleSessionName="hop1", **kwargs)
    return creds_session(emulator, response["Credentials"])


def assume(session: boto3.Session, role_arn: str, **kwargs: Any) -> dict[str, Any]:
    sts = session.client("sts", config=NO_RETRY)
    return dict(sts.assume_role(RoleArn=role_arn, RoleSessionName="hop2", **kwargs))


def error_of(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    error = excinfo.value.response["Error"]
    return error["Code"], error["Message"]


# ---- the chain --------------------------------------------------------------------------------


def test_chain_succeeds_with_external_id_and_each_hop_has_its_identity(emulator: Emulator, seed: Seed) -> None:
    user = user_session(emulator, seed)
    me = user.client("sts").get_caller_identity()
    assert (me["Account"], me["Arn"]) == (HUB_ACCOUNT, seed.user_arn)

    hub = hub_session(emulator, seed)
    me = hub.client("sts").get_caller_identity()
    assert (me["Account"], me["Arn"]) == (HUB_ACCOUNT, f"arn:aws:sts::{HUB_ACCOUNT}:assumed-role/rolechain-hub/hop1")

    target = seed.targets[0]
    response = assume(hub, target.role_arn, ExternalId=seed.external_id)
    assert response["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{target.account_id}:assumed-role/rolechain-target/hop2"
    leaf = creds_session(emulator, response["Credentials"])
    me = leaf.client("sts").get_caller_identity()
    assert (me["Account"], me["Arn"]) == (target.account_id, response["AssumedRoleUser"]["Arn"])
    buckets = sorted(b["Name"] for b in leaf.client("s3").list_buckets()["Buckets"])
    assert buckets == sorted(target.buckets)


def test_missing_or_wrong_external_id_is_denied_by_the_trust_policy(emulator: Emulator, seed: Seed) -> None:
    hub = hub_session(emulator, seed)
    role_arn = seed.targets[0].role_arn
    for kwargs in ({}, {"ExternalId": "not-the-right-one"}):
        with pytest.raises(ClientError) as excinfo:
            assume(hub, role_arn, **kwargs)
        code, message = error_of(excinfo)
        assert code == "AccessDenied"
        assert message == (
            f"User: arn:aws:sts::{HUB_ACCOUNT}:assumed-role/rolechain-hub/hop1 is not authorized to perform: "
            f"sts:AssumeRole on resource: {role_arn} because no resource-based policy allows the "
            "sts:AssumeRole action"
        )
        assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_detailed_denials_can_be_turned_off(emulator: Emulator, seed: Seed) -> None:
    emulator.detailed_denials = False
    with pytest.raises(ClientError) as excinfo:
        assume(hub_session(emulator, seed), seed.targets[0].role_arn)
    _, message = error_of(excinfo)
    assert message.endswith(f"on resource: {seed.targets[0].role_arn}")


def test_operator_cannot_skip_the_hub_role(emulator: Emulator, seed: Seed) -> None:
    user = user_session(emulator, seed)
    role_arn = seed.targets[0].role_arn
    with pytest.raises(ClientError) as excinfo:
        assume(user, role_arn, ExternalId=seed.external_id)
    code, message = error_of(excinfo)
    assert code == "AccessDenied"
    assert message.startswith(f"User: {seed.user_arn} is not authorized")
    assert message.endswith("because no identity-based policy allows the sts:AssumeRole action")

    # Even with an identity policy allowing everything, R2's trust policy does not name U1.
    admin_iam = emulator.admin_session(HUB_ACCOUNT).client("iam")
    admin_iam.put_user_policy(
        UserName="rolechain-operator",
        PolicyName="everything",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:*", "Resource": "*"}]}
        ),
    )
    with pytest.raises(ClientError) as excinfo:
        assume(user, role_arn, ExternalId=seed.external_id)
    code, message = error_of(excinfo)
    assert code == "AccessDenied"
    assert message.endswith("because no resource-based policy allows the sts:AssumeRole action")


def test_identity_policy_is_required_even_when_the_trust_policy_allows(emulator: Emulator, seed: Seed) -> None:
    admin_iam = emulator.admin_session(HUB_ACCOUNT).client("iam")
    other = admin_iam.create_role(
        RoleName="other",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": f"arn:aws:iam::{HUB_ACCOUNT}:root"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )["Role"]["Arn"]
    user = user_session(emulator, seed)
    with pytest.raises(ClientError) as excinfo:
        assume(user, other)
    code, message = error_of(excinfo)
    assert code == "AccessDenied"
    assert message == (
        f"User: {seed.user_arn} is not authorized to perform: sts:AssumeRole on resource: {other} "
        "because no identity-based policy allows the sts:AssumeRole action"
    )

    # An identity policy naming the role by wildcard suffices; an explicit Deny beats it.
    allow = {"Effect": "Allow", "Action": "STS:Assume*", "Resource": f"arn:aws:iam::{HUB_ACCOUNT}:role/oth?r"}
    admin_iam.put_user_policy(
        UserName="rolechain-operator",
        PolicyName="other",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [allow]}),
    )
    assert assume(user, other)["AssumedRoleUser"]["Arn"].endswith(":assumed-role/other/hop2")
    deny = {"Effect": "Deny", "Action": "sts:AssumeRole", "Resource": "*"}
    admin_iam.put_user_policy(
        UserName="rolechain-operator",
        PolicyName="deny",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [deny]}),
    )
    with pytest.raises(ClientError) as excinfo:
        assume(user, other)
    assert error_of(excinfo)[1].endswith("with an explicit deny in an identity-based policy")

    with emulator.unenforced():
        assert assume(user, other)["AssumedRoleUser"]["Arn"].endswith(":assumed-role/other/hop2")
    assert emulator.enforce is True


def test_durations_beyond_the_chaining_limit_or_max_session_duration_fail(emulator: Emulator, seed: Seed) -> None:
    with pytest.raises(ClientError) as excinfo:
        assume(hub_session(emulator, seed), seed.targets[0].role_arn, ExternalId=seed.external_id, DurationSeconds=7200)
    assert error_of(excinfo) == (
        "ValidationError",
        "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.",
    )
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400

    # Not chained (U1 is a user), but R1's MaxSessionDuration is 3600.
    with pytest.raises(ClientError) as excinfo:
        hub_session(emulator, seed, DurationSeconds=7200)
    assert error_of(excinfo) == (
        "ValidationError",
        "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
    )
    # Within limits is fine.
    assume(hub_session(emulator, seed, DurationSeconds=3600), seed.targets[0].role_arn, ExternalId=seed.external_id)


def test_missing_role_is_denied(emulator: Emulator, seed: Seed) -> None:
    missing = seed.target(MISSING)
    assert missing.role_missing
    with pytest.raises(ClientError) as excinfo:
        assume(hub_session(emulator, seed), missing.role_arn, ExternalId=seed.external_id)
    code, message = error_of(excinfo)
    assert code == "AccessDenied"
    assert f"on resource: {missing.role_arn} because no resource-based policy allows" in message


def test_session_tags_need_tag_session_in_the_trust_policy(emulator: Emulator, seed: Seed) -> None:
    # R2 in the account seeded without it, trusting R1 for sts:AssumeRole only.
    admin_iam = emulator.admin_session(MISSING).client("iam")
    narrow = admin_iam.create_role(
        RoleName=seed.target_role_name,
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": [seed.hub_role_arn]},
                        "Action": "sts:AssumeRole",
                        "Condition": {"StringEquals": {"sts:ExternalId": seed.external_id}},
                    }
                ],
            }
        ),
    )["Role"]["Arn"]
    hub = hub_session(emulator, seed)
    tags = [{"Key": "job", "Value": "inventory"}]
    with pytest.raises(ClientError) as excinfo:
        assume(hub, narrow, ExternalId=seed.external_id, Tags=tags)
    code, message = error_of(excinfo)
    assert code == "AccessDenied"
    assert message.endswith(
        f"not authorized to perform: sts:TagSession on resource: {narrow} "
        "because no resource-based policy allows the sts:TagSession action"
    )
    with pytest.raises(ClientError) as excinfo:
        assume(hub, narrow, ExternalId=seed.external_id, SourceIdentity="alice")
    assert "sts:SetSourceIdentity on resource" in error_of(excinfo)[1]
    assume(hub, narrow, ExternalId=seed.external_id)  # untagged: fine
    # The seeded R2 trusts R1 for tags and source identity.
    assume(hub, seed.targets[1].role_arn, ExternalId=seed.external_id, Tags=tags, SourceIdentity="alice")


def test_admin_sessions_bypass_enforcement_and_are_hidden(emulator: Emulator, seed: Seed) -> None:
    admin = emulator.admin_session(HUB_ACCOUNT)
    response = assume(admin, seed.targets[0].role_arn)  # no ExternalId, no trust: still fine
    assert response["AssumedRoleUser"]["Arn"].startswith(f"arn:aws:sts::{seed.targets[0].account_id}:")
    assert emulator.calls(service="sts", action="AssumeRole") == []
    admin_calls = emulator.calls(service="sts", action="AssumeRole", include_admin=True)
    assert admin_calls and all(r.admin for r in admin_calls)


# ---- recording --------------------------------------------------------------------------------


def test_recording_names_actions_params_and_callers(emulator: Emulator, seed: Seed) -> None:
    assert len(emulator.calls(include_admin=True)) > 0  # the seeding itself, recorded as admin
    emulator.clear_requests()
    assert emulator.requests == []

    hub = hub_session(emulator, seed)
    target = seed.targets[0]
    leaf = creds_session(emulator, assume(hub, target.role_arn, ExternalId=seed.external_id)["Credentials"])
    s3 = leaf.client("s3")
    s3.list_buckets()
    bucket = target.buckets[0]
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.get_bucket_location(Bucket=bucket)
    leaf.client("resourcegroupstaggingapi").get_resources(ResourceTypeFilters=["s3"])
    emulator.admin_session(target.account_id).client("s3").list_buckets()  # admin: hidden by default

    assumes = emulator.calls(service="sts", action="AssumeRole")
    assert [r.params["RoleArn"] for r in assumes] == [seed.hub_role_arn, target.role_arn]
    assert [r.params["RoleSessionName"] for r in assumes] == ["hop1", "hop2"]
    assert "ExternalId" not in assumes[0].params
    assert assumes[1].params["ExternalId"] == seed.external_id
    assert assumes[0].access_key == seed.user_access_key_id
    assert [r.account for r in assumes] == [HUB_ACCOUNT, HUB_ACCOUNT]  # callers: U1, then the R1 session
    assert all(r.status == 200 and not r.admin for r in assumes)

    target_calls = emulator.calls(account=target.account_id)
    assert [(r.service, r.action) for r in target_calls] == [
        ("s3", "ListBuckets"),
        ("s3", "PutPublicAccessBlock"),
        ("s3", "GetBucketLocation"),
        ("tagging", "GetResources"),
    ]
    put = target_calls[1]
    assert (put.method, put.path) == ("PUT", f"/{bucket}")
    assert "<BlockPublicAcls>true</BlockPublicAcls>" in put.body
    assert target_calls[3].body == {"ResourceTypeFilters": ["s3"]}
    assert len(emulator.calls(account=target.account_id, include_admin=True)) == len(target_calls) + 1


def test_request_bodies_reach_moto_intact(emulator: Emulator, seed: Seed) -> None:
    s3 = emulator.admin_session(seed.targets[0].account_id).client("s3")
    payload = os.urandom(3 * 1024 * 1024 + 7)
    bucket = seed.targets[0].buckets[0]
    s3.put_object(Bucket=bucket, Key="dir/blob.bin", Body=payload)
    assert s3.get_object(Bucket=bucket, Key="dir/blob.bin")["Body"].read() == payload
    actions = [r.action for r in emulator.calls(service="s3", include_admin=True)][-2:]
    assert actions == ["PutObject", "GetObject"]


def test_the_timestamps_moto_writes_back_are_the_instants_it_keeps(emulator: Emulator, seed: Seed) -> None:
    # moto's serialiser reads them with a fast path (ISO 8601 in UTC) and botocore's parser for the rest
    from botocore.utils import parse_to_aware_datetime
    from moto.core import serialize
    from moto.s3.models import s3_backends

    fast = serialize.parse_to_aware_datetime  # type: ignore[attr-defined]
    assert getattr(fast, "rolechain_fast", False)
    for value in ("2026-12-03T14:05:06.000Z", "2026-12-03T14:05:06Z", "2026-12-03T16:05:06+02:00", 1764770706):
        assert fast(value) == parse_to_aware_datetime(value), value
    account = seed.targets[0].account_id
    listed = emulator.admin_session(account).client("s3").list_buckets()["Buckets"]
    kept = {name: bucket.creation_date for name, bucket in s3_backends[account]["aws"].buckets.items()}
    # ListBuckets gives the instant to the second (moto writes ".000Z")
    assert listed and all(b["CreationDate"] == kept[b["Name"]].replace(microsecond=0) for b in listed)


# ---- isolation, faults, latency, reset ----------------------------------------------------------


def test_accounts_are_isolated(emulator: Emulator, seed: Seed) -> None:
    one, two = seed.targets[0], seed.targets[1]
    listed_one = {b["Name"] for b in emulator.admin_session(one.account_id).client("s3").list_buckets()["Buckets"]}
    listed_two = {b["Name"] for b in emulator.admin_session(two.account_id).client("s3").list_buckets()["Buckets"]}
    assert listed_one == set(one.buckets)
    assert listed_two == set(two.buckets)
    hub_roles = {r["RoleName"] for r in emulator.admin_session(HUB_ACCOUNT).client("iam").list_roles()["Roles"]}
    assert hub_roles == {"rolechain-hub"}
    missing_roles = emulator.admin_session(MISSING).client("iam").list_roles()["Roles"]
    assert missing_roles == []


def test_injected_throttling_fails_once_then_succeeds(emulator: Emulator, seed: Seed) -> None:
    sts = user_session(emulator, seed).client("sts", config=NO_RETRY)
    emulator.inject_fault("GetCallerIdentity", "Throttling", "Rate exceeded", status=400)
    with pytest.raises(ClientError) as excinfo:
        sts.get_caller_identity()
    assert error_of(excinfo) == ("Throttling", "Rate exceeded")
    assert sts.get_caller_identity()["Arn"] == seed.user_arn
    statuses = [(r.status, r.emulator_error) for r in emulator.calls(action="GetCallerIdentity")]
    assert statuses == [(400, "Throttling"), (200, None)]


def test_injected_faults_speak_each_protocol(emulator: Emulator, seed: Seed) -> None:
    admin = emulator.admin_session(seed.targets[0].account_id)
    leaf = creds_session(
        emulator,
        assume(hub_session(emulator, seed), seed.targets[0].role_arn, ExternalId=seed.external_id)["Credentials"],
    )
    # JSON protocol, with botocore's default retries: one throttle is absorbed by a retry.
    emulator.inject_fault("GetResources", "ThrottlingException", "Rate exceeded", times=1)
    response = leaf.client("resourcegroupstaggingapi").get_resources()
    assert response["ResponseMetadata"]["RetryAttempts"] == 1
    assert [r.status for r in emulator.calls(action="GetResources")] == [400, 200]
    # S3 XML, only for requests the predicate selects; admin requests are never faulted.
    emulator.inject_fault(
        "ListBuckets",
        "AccessDenied",
        "Access Denied",
        status=403,
        match=lambda r: r.account == seed.targets[0].account_id,
    )
    admin.client("s3").list_buckets()
    with pytest.raises(ClientError) as excinfo:
        leaf.client("s3", config=NO_RETRY).list_buckets()
    assert error_of(excinfo) == ("AccessDenied", "Access Denied")
    leaf.client("s3").list_buckets()


def test_latency_slows_requests_down(emulator: Emulator, seed: Seed) -> None:
    sts = user_session(emulator, seed).client("sts")
    sts.get_caller_identity()

    def timed() -> float:
        started = time.perf_counter()
        sts.get_caller_identity()
        return time.perf_counter() - started

    fast = min(timed() for _ in range(3))
    emulator.latency = 0.3
    slow = timed()
    emulator.latency = 0.0
    assert slow >= 0.3
    assert slow - fast >= 0.25


def test_reset_wipes_state_and_records(emulator: Emulator, seed: Seed) -> None:
    target = seed.targets[0]
    assert emulator.requests
    emulator.inject_fault("ListBuckets", "Throttling", "x")
    emulator.reset()
    assert emulator.requests == []
    s3 = emulator.admin_session(target.account_id).client("s3")
    assert s3.list_buckets()["Buckets"] == []  # the fault is gone too
    with pytest.raises(ClientError) as excinfo:
        emulator.admin_session(HUB_ACCOUNT).client("iam").get_user(UserName="rolechain-operator")
    assert error_of(excinfo)[0] == "NoSuchEntity"
    # The same names can be seeded again (moto's global bucket namespace was cleared too).
    again = emulator.seed(targets=1, buckets_per_account=2)
    assert again.targets[0].buckets == target.buckets


# ---- seed, CLI, packaging ---------------------------------------------------------------------


def test_seed_round_trips_through_json(seed: Seed) -> None:
    assert Seed.from_dict(json.loads(json.dumps(seed.to_dict()))) == seed
    assert seed.target_account_ids == ("200000000001", "200000000002", "200000000003")
    assert seed.targets[0].buckets == ("rc-200000000001-01", "rc-200000000001-02")
    assert seed.user_arn == "arn:aws:iam::111111111111:user/rolechain-operator"
    assert seed.hub_role_arn == "arn:aws:iam::111111111111:role/rolechain-hub"


def test_seeded_policies_match_the_contract(emulator: Emulator, seed: Seed) -> None:
    hub_iam = emulator.admin_session(HUB_ACCOUNT).client("iam")
    hub_role = hub_iam.get_role(RoleName="rolechain-hub")["Role"]
    assert hub_role["MaxSessionDuration"] == 3600
    trust: Any = hub_role["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    principals = [s["Principal"] for s in trust["Statement"]]
    assert {"AWS": seed.user_arn} in principals and {"Service": "lambda.amazonaws.com"} in principals
    target_iam = emulator.admin_session(seed.targets[0].account_id).client("iam")
    target_trust: Any = target_iam.get_role(RoleName="rolechain-target")["Role"]["AssumeRolePolicyDocument"]
    target_trust = json.loads(target_trust) if isinstance(target_trust, str) else target_trust
    assert target_trust["Statement"][0]["Condition"] == {"StringEquals": {"sts:ExternalId": seed.external_id}}


def test_cli_serve_prints_the_seed_and_stops_on_sigterm(tmp_path: Path) -> None:
    seed_file = tmp_path / "seed.json"
    env = {k: v for k, v in os.environ.items() if k != "MOTO_ACCOUNT_ID"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rolechain_dev.emulator",
            "serve",
            "--targets",
            "2",
            "--buckets",
            "1",
            "--seed-file",
            str(seed_file),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        seed = Seed.from_dict(json.loads(line))
        assert Seed.from_dict(json.loads(seed_file.read_text())) == seed
        assert seed.endpoint_url.startswith("http://127.0.0.1:")
        assert len(seed.targets) == 2
        sts = boto3.client(
            "sts",
            endpoint_url=seed.endpoint_url,
            region_name=seed.region,
            aws_access_key_id=seed.user_access_key_id,
            aws_secret_access_key=seed.user_secret_access_key,
            config=Config(proxies={}),
        )
        assert sts.get_caller_identity()["Arn"] == seed.user_arn
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_module_imports_without_moto() -> None:
    code = "import sys; sys.modules['moto'] = None; import rolechain_dev.emulator as e; print(e.HUB_ACCOUNT)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == HUB_ACCOUNT


def test_only_one_emulator_per_process(emulator: Emulator) -> None:
    with pytest.raises(RuntimeError, match="another Emulator"):
        Emulator().start()
    assert emulator.running


@pytest.mark.parametrize(
    ("method", "path", "query", "expected"),
    [
        ("GET", "/", {}, "ListBuckets"),
        ("PUT", "/b", {}, "CreateBucket"),
        ("PUT", "/b", {"publicAccessBlock": ""}, "PutPublicAccessBlock"),
        ("GET", "/b", {"publicAccessBlock": ""}, "GetPublicAccessBlock"),
        ("DELETE", "/b", {"publicAccessBlock": ""}, "DeletePublicAccessBlock"),
        ("GET", "/b", {"tagging": ""}, "GetBucketTagging"),
        ("PUT", "/b", {"tagging": ""}, "PutBucketTagging"),
        ("GET", "/b", {"location": ""}, "GetBucketLocation"),
        ("GET", "/b", {"list-type": "2"}, "ListObjectsV2"),
        ("GET", "/b", {}, "ListObjects"),
        ("PUT", "/b/k/ey", {"tagging": ""}, "PutObjectTagging"),
        ("POST", "/b/k", {"uploads": ""}, "CreateMultipartUpload"),
        ("PATCH", "/b", {}, "PATCH /b"),
    ],
)
def test_s3_operation_names(method: str, path: str, query: dict[str, str], expected: str) -> None:
    assert _s3_operation(method, path, query, {}) == expected


def test_recorded_request_is_immutable() -> None:
    request = RecordedRequest("sts", "GetCallerIdentity", {}, "AKIA", HUB_ACCOUNT, False, "h", "POST", "/", 200, 0.0)
    with pytest.raises(AttributeError):
        request.status = 500  # type: ignore[misc]


def test_trust_conditions_are_evaluated_like_iam(emulator: Emulator, seed: Seed) -> None:
    # Given R2 (in the account seeded without it) trusting R1 only with a SourceIdentity "ops-*",
    # refusing sessions tagged env=prod
    admin_iam = emulator.admin_session(MISSING).client("iam")
    actions = ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"]
    trust_r1 = {"Principal": {"AWS": seed.hub_role_arn}, "Action": actions}

    def trust(*statements: dict[str, Any]) -> str:
        return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})

    allow_ops = {
        "Effect": "Allow",
        **trust_r1,
        "Condition": {
            "StringLike": {"sts:SourceIdentity": "ops-*"},
            "ArnEquals": {"aws:PrincipalArn": seed.hub_role_arn},
        },
    }
    deny_prod = {"Effect": "Deny", **trust_r1, "Condition": {"StringEquals": {"aws:RequestTag/env": "prod"}}}
    name = seed.target_role_name
    role = admin_iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust(allow_ops, deny_prod))["Role"]["Arn"]
    hub = hub_session(emulator, seed)
    # Then each condition decides
    assume(hub, role, SourceIdentity="ops-alice", Tags=[{"Key": "env", "Value": "dev"}])
    prod = [{"Key": "env", "Value": "prod"}]
    for refused in ({"SourceIdentity": "dev-bob"}, {}, {"SourceIdentity": "ops-alice", "Tags": prod}):
        with pytest.raises(ClientError) as excinfo:
            assume(hub, role, **refused)
        assert error_of(excinfo)[0] == "AccessDenied", refused
    # And MFA, which a role session never has, is demanded like IAM demands it
    mfa = {"Effect": "Allow", **trust_r1, "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}}}
    admin_iam.update_assume_role_policy(RoleName=name, PolicyDocument=trust(mfa))
    with pytest.raises(ClientError) as excinfo:
        assume(hub, role)
    assert "because no resource-based policy allows the sts:AssumeRole action" in error_of(excinfo)[1]


def test_sending_and_receiving_stay_linear_and_queue_counts_stay_exact(emulator: Emulator, seed: Seed) -> None:
    # moto counted the whole queue on every message sent and received (quadratic at 10,000 messages):
    # the emulator skips those counts inside send and receive, and GetQueueAttributes still counts
    sqs = emulator.admin_session(seed.hub_account, seed.region).client("sqs")
    url = sqs.create_queue(QueueName=f"linear-{time.monotonic_ns()}")["QueueUrl"]
    for _ in range(30):
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": "x"} for i in range(10)])
    got = sum(len(sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])) for _ in range(5))
    counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert got == 50
    assert counts["ApproximateNumberOfMessages"] == "250"
    assert counts["ApproximateNumberOfMessagesNotVisible"] == "50"
    assert counts["ApproximateNumberOfMessagesDelayed"] == "0"
