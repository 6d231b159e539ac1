"""Issue #3, the operator's edge: job files, ``rolechain validate / actions / policy / run``, exit codes
and the ``--json`` shape, with the CLI in-process and the AWS environment pointed at the emulator."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rolechain.actions import REGISTRY, target_role_policy
from rolechain.actions.tag_resources import MAX_ARNS
from rolechain.errors import ConfigError
from rolechain.jobs import load_job_file
from rolechain_dev.emulator import HUB_ACCOUNT, Emulator, Seed
from rolechain_dev.local import DEMO_JOB_FILE

from tests.integration.support import CliResult, assume_role_requests, assumed_roles, changing_calls, run_cli

pytestmark = pytest.mark.integration

Rolechain = Callable[..., CliResult]
EXAMPLE = str(DEMO_JOB_FILE)
RESULT_KEYS = {"account", "region", "action", "status", "output", "error"}


def write(tmp_path: Path, text: str, name: str = "jobs.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def job_yaml(job: str) -> str:
    """A job file with one job ``j1`` whose body is ``job`` (indented YAML lines)."""
    body = "\n".join("    " + line for line in job.strip().splitlines())
    return f"version: 1\njobs:\n  j1:\n{body}\n"


def hub_via(seed: Seed) -> list[str]:
    return ["--via", seed.hub_role_arn]


def adhoc(seed: Seed, action: str, accounts: str, *extra: str) -> list[str]:
    """``run --action`` through R1 with the seeded ExternalId."""
    return [
        "run",
        "--action",
        action,
        "--accounts",
        accounts,
        *hub_via(seed),
        "--external-id",
        seed.external_id,
        *extra,
    ]


# -- job files and validate ---------------------------------------------------------------------------
ACCOUNT = "targets: {accounts: ['200000000001']}"
BAD_JOB_FILES = {
    "unknown action": (job_yaml(f"action: nope\n{ACCOUNT}"), "jobs.j1: action: unknown action 'nope'; known: "),
    "bad param value": (
        job_yaml(f"action: list_buckets\nparams: {{with_tags: maybe}}\n{ACCOUNT}"),
        "jobs.j1: params.with_tags: Input should be a valid boolean",
    ),
    "unknown param": (
        job_yaml(f"action: list_buckets\nparams: {{colour: red}}\n{ACCOUNT}"),
        "jobs.j1: params.colour: Extra inputs are not permitted",
    ),
    "missing required param": (
        job_yaml(f"action: tag_resources\nparams: {{resource_types: [s3]}}\n{ACCOUNT}"),
        "jobs.j1: params.tags: Field required",
    ),
    "malformed account id": (
        job_yaml("action: list_buckets\ntargets: {accounts: ['2000000001']}"),
        "jobs.j1.targets.accounts[0]: String should match pattern",
    ),
    "bad schedule": (
        job_yaml(f"action: list_buckets\nschedule: every day\n{ACCOUNT}"),
        "jobs.j1.schedule: must be an EventBridge expression",
    ),
    "bad region": (
        job_yaml(f"action: list_buckets\nregions: [mars-1]\n{ACCOUNT}"),
        "jobs.j1.regions[0]: String should match pattern",
    ),
    "bad via": (
        job_yaml(f"action: list_buckets\nvia: ['arn:aws:iam::1:role/x']\n{ACCOUNT}"),
        "jobs.j1.via: 'arn:aws:iam::1:role/x' is not an IAM role ARN",
    ),
    "unknown top-level key": ("version: 1\nschedules: {}\njobs: {}\n", "schedules: Extra inputs are not permitted"),
    "bad version": ("version: 2\njobs: {}\n", "version: Input should be 1"),
    "bad defaults": ("defaults: {concurrency: 0}\njobs: {}\n", "defaults.concurrency: Input should be greater than"),
}

ARABIC_ACCOUNT = "٢٠٠٠٠٠٠٠٠٠٠١"  # Arabic-Indic digits: \\d matches them, AWS does not

REMEDIATION = """version: 1
jobs: {{}}
remediations:
  - name: r1
    match: {{source: aws.s3, event_names: [CreateBucket]}}
    action: block_s3_public_access
    params_from_event: {{bucket: "{template}"}}
"""

BAD_JOB_FILES |= {  # issue #10 defect 7: files that used to pass
    "duplicate job key": (
        f"version: 1\njobs:\n  j1:\n    action: list_buckets\n    {ACCOUNT}\n"
        f"  j1:\n    action: whoami\n    {ACCOUNT}\n",
        "at line 6, column 3: duplicate key 'j1'",
    ),
    "duplicate nested key": (
        job_yaml(f"action: list_buckets\n{ACCOUNT}\naction: whoami"),
        "duplicate key 'action'",
    ),
    "unclosed placeholder": (
        REMEDIATION.format(template="{detail.requestParameters.bucketName"),
        "remediations[0]: params_from_event.bucket: '{detail.requestParameters.bucketName' has an unclosed",
    ),
    "stray brace": (REMEDIATION.format(template="bucket}"), "has an unclosed or malformed placeholder"),
    "role template without {account}": (
        job_yaml(f"action: list_buckets\nrole_arn_template: 'arn:aws:iam::123456789012:role/x'\n{ACCOUNT}"),
        "jobs.j1.role_arn_template: must be a role ARN whose account is the {account} placeholder",
    ),
    "role template with {account} outside the account field": (
        job_yaml(f"action: list_buckets\nrole_arn_template: 'arn:aws:iam::123456789012:role/{{account}}'\n{ACCOUNT}"),
        "jobs.j1.role_arn_template: must be a role ARN whose account is the {account} placeholder",
    ),
    "exclusions remove every account": (
        job_yaml("action: list_buckets\ntargets: {accounts: ['200000000001'], exclude_accounts: ['200000000001']}"),
        "jobs.j1.targets: exclude_accounts removes every account",
    ),
    "unknown region": (
        job_yaml(f"action: list_buckets\nregions: [us-east-1, us-esat-1]\n{ACCOUNT}"),
        "jobs.j1.regions[1]: 'us-esat-1' is not a known AWS region (did you mean 'us-east-1'?)",
    ),
    "unknown default region": (
        "version: 1\ndefaults: {regions: [eu-wset-1]}\njobs: {}\n",
        "defaults.regions[0]: 'eu-wset-1' is not a known AWS region",
    ),
    "non-ASCII digits in an account": (
        job_yaml(f"action: list_buckets\ntargets: {{accounts: ['{ARABIC_ACCOUNT}']}}"),
        "jobs.j1.targets.accounts[0]: String should match pattern",
    ),
    "too many ARNs to tag": (
        job_yaml(
            "action: tag_resources\nparams: {tags: {a: b}, arns: ["
            + ", ".join(f"'arn:aws:s3:::b{i}'" for i in range(MAX_ARNS + 1))
            + f"]}}\n{ACCOUNT}"
        ),
        f"jobs.j1: params: arns: {MAX_ARNS + 1} ARNs given; at most {MAX_ARNS} per target",
    ),
}


@pytest.mark.parametrize(("text", "message"), list(BAD_JOB_FILES.values()), ids=list(BAD_JOB_FILES))
def test_bad_job_file_names_job_and_field_and_validate_exits_2(
    tmp_path: Path, rolechain_offline: Rolechain, text: str, message: str
) -> None:
    path = write(tmp_path, text)

    with pytest.raises(ConfigError) as excinfo:
        load_job_file(path)
    assert message in str(excinfo.value)

    result = rolechain_offline("validate", path)
    assert (result.code, result.out) == (2, "")
    assert result.err == f"rolechain: error: {excinfo.value.field}: {excinfo.value.rule}\n"


def test_bad_yaml_is_reported_with_its_line(tmp_path: Path, rolechain_offline: Rolechain) -> None:
    path = write(tmp_path, "version: 1\njobs:\n  j1:\n    action: list_buckets\n   targets: [\n")

    result = rolechain_offline("validate", path)

    assert result.code == 2
    assert result.err.startswith(f"rolechain: error: {path}: is not valid YAML at line 5, column 4: ")


def test_unreadable_job_file_exits_2(tmp_path: Path, rolechain_offline: Rolechain) -> None:
    result = rolechain_offline("validate", str(tmp_path / "absent.yaml"))
    assert result.code == 2
    assert "absent.yaml: cannot read: No such file or directory" in result.err


def test_the_example_job_file_is_valid(rolechain_offline: Rolechain) -> None:
    job_file = load_job_file(EXAMPLE)

    result = rolechain_offline("validate", EXAMPLE)

    assert (result.code, result.err) == (0, "")
    assert result.out.startswith(f"{EXAMPLE}: ok: {len(job_file.jobs)} job(s) (")
    assert {"inventory", "tag-owner", "block-public-access"} <= set(job_file.jobs)


# -- actions and policy -------------------------------------------------------------------------------
def test_actions_lists_the_registry(rolechain_offline: Rolechain) -> None:
    table = rolechain_offline("actions")
    as_json = rolechain_offline("actions", "--json")

    assert table.code == as_json.code == 0
    header, _, *rows = table.out.strip().splitlines()
    assert header.split()[:3] == ["action", "changes", "iam"]
    assert [row.split()[0] for row in rows] == sorted(REGISTRY)
    described = as_json.json["actions"]
    assert [a["name"] for a in described] == sorted(REGISTRY)
    for entry in described:
        action = REGISTRY[entry["name"]]
        assert entry["iam_actions"] == list(action.iam_actions)
        assert entry["changes"] is action.changes
        assert entry["params_schema"] == action.params_model.model_json_schema()
        assert entry["description"]


def test_policy_target_is_the_union_of_the_registrys_iam_actions(rolechain_offline: Rolechain) -> None:
    result = rolechain_offline("policy", "target")

    assert result.code == 0
    document = result.json
    assert document == target_role_policy()
    (statement,) = document["Statement"]
    # the registry's actions, and the runner's own (the enabled regions, for regions: all)
    union = sorted({a for action in REGISTRY.values() for a in action.iam_actions} | {"ec2:DescribeRegions"})
    assert (statement["Effect"], statement["Action"], statement["Resource"]) == ("Allow", union, "*")
    only = rolechain_offline("policy", "target", "--actions", "whoami").json
    assert only["Statement"][0]["Action"] == ["ec2:DescribeRegions", "sts:GetCallerIdentity"]


# -- run a job ----------------------------------------------------------------------------------------
def test_run_example_inventory_job_json(rolechain: Rolechain, operator_env: Seed, emulator: Emulator) -> None:
    result = rolechain("run", "inventory", "--config", EXAMPLE, *hub_via(operator_env), "--json")

    assert (result.code, result.err) == (0, "")
    report = result.json
    assert report["summary"] == {"ok": 5, "failed": 0, "skipped": 0, "dry_run": 0}
    assert isinstance(report["run_id"], str) and report["run_id"]
    assert [r["account"] for r in report["results"]] == list(operator_env.target_account_ids)
    for entry, target in zip(report["results"], operator_env.targets, strict=True):
        assert set(entry) >= RESULT_KEYS
        assert (entry["region"], entry["action"], entry["status"], entry["error"]) == (
            "us-east-1",
            "list_buckets",
            "ok",
            None,
        )
        assert [b["name"] for b in entry["output"]["buckets"]] == list(target.buckets)
        assert all(b["tags"] == {} for b in entry["output"]["buckets"])  # the job asks for tags
    targets = [r for r in assume_role_requests(emulator) if r.params["RoleArn"] != operator_env.hub_role_arn]
    assert {r.params["RoleSessionName"] for r in targets} == {f"rolechain.inventory.{report['run_id']}"}
    assert {r.params["ExternalId"] for r in targets} == {operator_env.external_id}


def test_run_job_table_output(rolechain: Rolechain, operator_env: Seed) -> None:
    result = rolechain("run", "inventory", "--config", EXAMPLE, *hub_via(operator_env), "--accounts", "200000000004")

    assert result.code == 0
    lines = result.out.strip().splitlines()
    assert lines[0].startswith("run ") and lines[0].endswith(": list_buckets")
    assert lines[1].split() == ["account", "region", "status", "detail"]
    assert lines[3].startswith("200000000004  us-east-1  ok      3 bucket(s): rc-200000000004-01")
    assert lines[-1].startswith("1 ok, 0 failed, 0 skipped, 0 dry_run in ")


def test_run_job_narrowed_to_some_of_its_accounts(rolechain: Rolechain, operator_env: Seed, emulator: Emulator) -> None:
    result = rolechain(
        "run",
        "inventory",
        "--config",
        EXAMPLE,
        *hub_via(operator_env),
        "--accounts",
        "200000000002,200000000004",
        "--json",
    )

    assert result.code == 0
    assert [r["account"] for r in result.json["results"]] == ["200000000002", "200000000004"]
    assert len(assume_role_requests(emulator)) == 3


def test_run_job_in_other_regions(rolechain: Rolechain, operator_env: Seed) -> None:
    result = rolechain(
        "run",
        "inventory",
        "--config",
        EXAMPLE,
        *hub_via(operator_env),
        "--accounts",
        "200000000001",
        "--region",
        "eu-west-1",
        "--region",
        "us-east-1",
        "--json",
    )

    assert result.code == 0
    counts = [(r["account"], r["region"], r["output"]["count"]) for r in result.json["results"]]
    assert counts == [("200000000001", "eu-west-1", 0), ("200000000001", "us-east-1", 3)]


def test_run_job_refuses_an_account_outside_its_targets(
    rolechain: Rolechain, operator_env: Seed, emulator: Emulator
) -> None:
    result = rolechain(
        "run", "inventory", "--config", EXAMPLE, *hub_via(operator_env), "--accounts", "200000000001,999999999999"
    )

    assert (result.code, result.out) == (2, "")
    assert result.err == "rolechain: error: accounts: 999999999999 not among the targets of job 'inventory'\n"
    assert emulator.calls() == []


@pytest.mark.mutates
def test_tagging_job_dry_run_then_for_real_then_nothing_left(
    rolechain: Rolechain, operator_env: Seed, emulator: Emulator
) -> None:
    args = ["run", "tag-owner", "--config", EXAMPLE, *hub_via(operator_env), "--json"]

    # When the job runs with --dry-run
    dry = rolechain(*args, "--dry-run")
    # Then it reports every bucket it would tag and changes nothing
    assert dry.code == 0
    assert dry.json["dry_run"] is True
    assert dry.json["summary"] == {"ok": 0, "failed": 0, "skipped": 0, "dry_run": 5}
    assert all(len(r["output"]["would_tag"]) == 3 for r in dry.json["results"])
    assert changing_calls(emulator) == []

    # When it runs for real: one TagResources per account
    real = rolechain(*args)
    assert real.code == 0 and real.json["summary"]["ok"] == 5
    assert all(len(r["output"]["tagged"]) == 3 for r in real.json["results"])
    assert sorted(r.account for r in emulator.calls(action="TagResources")) == list(operator_env.target_account_ids)

    # When it runs again in this process: every bucket has the tags (missing_only), no chain is assumed again
    emulator.clear_requests()
    again = rolechain(*args)
    assert again.code == 0
    assert all(r["output"]["tagged"] == [] and len(r["output"]["already_tagged"]) == 3 for r in again.json["results"])
    assert changing_calls(emulator) == []
    assert assume_role_requests(emulator) == []


def test_job_with_dry_run_default_changes_nothing(rolechain: Rolechain, operator_env: Seed, emulator: Emulator) -> None:
    result = rolechain("run", "block-public-access", "--config", EXAMPLE, *hub_via(operator_env), "--json")

    assert result.code == 0
    assert result.json["dry_run"] is True
    assert {r["status"] for r in result.json["results"]} == {"dry_run"}
    assert all(len(r["output"]["would_change"]) == 3 for r in result.json["results"])
    assert emulator.calls(action="PutPublicAccessBlock") == []


@pytest.mark.mutates
@pytest.mark.mutates
def test_job_reads_its_external_id_from_ssm_once(
    rolechain: Rolechain, operator_env: Seed, emulator: Emulator, tmp_path: Path
) -> None:
    # Given the ExternalId kept in an SSM SecureString parameter of the hub account, which the operator
    # may read (the emulator enforces IAM: without this grant the run fails before any hop)
    emulator.admin_session(HUB_ACCOUNT).client("ssm").put_parameter(
        Name="/rolechain/external-id", Value=operator_env.external_id, Type="SecureString"
    )
    parameter = f"arn:aws:ssm:{operator_env.region}:{HUB_ACCOUNT}:parameter/rolechain/external-id"
    read = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "ssm:GetParameter", "Resource": parameter}],
    }
    emulator.admin_session(HUB_ACCOUNT).client("iam").put_user_policy(
        UserName=operator_env.user_arn.rsplit("/", 1)[-1],
        PolicyName="read-external-id",
        PolicyDocument=json.dumps(read),
    )
    path = write(
        tmp_path,
        "version: 1\ndefaults:\n  external_id: {ssm_parameter: /rolechain/external-id}\njobs:\n  who:\n"
        f"    action: whoami\n    targets: {{accounts: {list(operator_env.target_account_ids)}}}\n",
    )

    result = rolechain("run", "who", "--config", path, *hub_via(operator_env), "--json")

    # Then every target was reached, the parameter read once with the base credentials (U1)
    assert result.code == 0, result.err
    assert result.json["summary"]["ok"] == 5
    (read,) = emulator.calls(action="GetParameter")
    assert read.access_key == operator_env.user_access_key_id
    last_hops = [r for r in assume_role_requests(emulator) if r.params["RoleArn"] != operator_env.hub_role_arn]
    assert len(last_hops) == 5 and {r.params["ExternalId"] for r in last_hops} == {operator_env.external_id}


# -- run an action ad hoc -----------------------------------------------------------------------------
def test_run_action_json_shape_and_exit_0(rolechain: Rolechain, operator_env: Seed) -> None:
    result = rolechain(
        *adhoc(operator_env, "list_buckets", "200000000001,200000000003", "--param", "with_tags=true", "--json")
    )

    assert (result.code, result.err) == (0, "")
    report = result.json
    assert {"run_id", "summary", "results"} <= set(report)
    assert set(report["summary"]) == {"ok", "failed", "skipped", "dry_run"}
    assert report["summary"]["ok"] == 2
    assert [(r["account"], r["status"]) for r in report["results"]] == [("200000000001", "ok"), ("200000000003", "ok")]
    assert all(set(r) >= RESULT_KEYS and "tags" in r["output"]["buckets"][0] for r in report["results"])


@pytest.mark.mutates
def test_run_action_with_params_json(rolechain: Rolechain, operator_env: Seed, emulator: Emulator) -> None:
    bucket = operator_env.targets[0].buckets[0]
    params = {"arns": [f"arn:aws:s3:::{bucket}"], "tags": {"owner": "me"}}

    result = rolechain(
        *adhoc(operator_env, "tag_resources", "200000000001", "--params-json", json.dumps(params), "--json")
    )

    assert result.code == 0, result.err
    assert result.json["results"][0]["output"]["tagged"] == params["arns"]
    (call,) = emulator.calls(action="TagResources")
    assert call.body == {"ResourceARNList": params["arns"], "Tags": {"owner": "me"}}


def test_run_action_param_overrides_params_json(rolechain: Rolechain, operator_env: Seed) -> None:
    result = rolechain(
        *adhoc(operator_env, "list_buckets", "200000000001", "--params-json", '{"with_tags": true}'),
        "--param",
        "with_tags=false",
        "--json",
    )
    assert result.code == 0
    assert "tags" not in result.json["results"][0]["output"]["buckets"][0]


def test_run_action_in_another_region(rolechain: Rolechain, operator_env: Seed, emulator: Emulator) -> None:
    result = rolechain(*adhoc(operator_env, "list_buckets", "200000000001", "--region", "eu-west-1", "--json"))

    assert result.code == 0
    (entry,) = result.json["results"]
    assert (entry["region"], entry["output"]["count"]) == ("eu-west-1", 0)  # the buckets live in us-east-1
    assert {r.region for r in emulator.calls(action="ListBuckets")} == {"eu-west-1"}


def test_run_action_dry_run_and_concurrency(rolechain: Rolechain, operator_env: Seed, emulator: Emulator) -> None:
    accounts = ",".join(operator_env.target_account_ids)

    result = rolechain(
        *adhoc(operator_env, "block_s3_public_access", accounts, "--dry-run", "--concurrency", "2", "--json")
    )

    assert result.code == 0
    assert result.json["summary"] == {"ok": 0, "failed": 0, "skipped": 0, "dry_run": 5}
    assert changing_calls(emulator) == []


def test_run_action_with_another_role_name(
    seed_landscape: Callable[..., Seed], as_operator: Callable[[Seed], Seed], emulator: Emulator
) -> None:
    # Given target roles named ops-target
    seed = as_operator(seed_landscape(targets=2, target_role_name="ops-target"))

    named = run_cli(adhoc(seed, "whoami", "200000000001,200000000002", "--role-name", "ops-target", "--json"))
    default = run_cli(adhoc(seed, "whoami", "200000000001", "--json"))

    assert named.code == 0
    assert [r["output"]["arn"].split("/")[1] for r in named.json["results"]] == ["ops-target"] * 2
    assert default.code == 1
    error = default.json["results"][0]["error"]
    assert (error["type"], error["hop"], error["role_arn"]) == (
        "assume_role",
        2,
        "arn:aws:iam::200000000001:role/rolechain-target",
    )
    assert "arn:aws:iam::200000000001:role/ops-target" in assumed_roles(emulator)


def test_run_action_exits_1_when_a_target_fails(
    seed_landscape: Callable[..., Seed], as_operator: Callable[[Seed], Seed]
) -> None:
    seed = as_operator(seed_landscape(targets=3, missing_role_accounts=["200000000002"]))

    result = run_cli(adhoc(seed, "whoami", ",".join(seed.target_account_ids)))

    assert result.code == 1
    table, _, details = result.out.partition("\ndetails:\n")  # a long hint is printed in full below the table
    rows = {line.split()[0]: line for line in table.splitlines() if line.startswith("2000")}
    assert rows["200000000001"].split()[2] == rows["200000000003"].split()[2] == "ok"
    assert rows["200000000002"].split()[2:5] == ["failed", "hop", "2"]
    assert "AccessDenied: likely condition (2)" in rows["200000000002"]
    assert details.startswith("200000000002 us-east-1: hop 2 AccessDenied: likely condition (2)")
    assert result.out.strip().splitlines()[-1].startswith("2 ok, 1 failed, 0 skipped, 0 dry_run")


BAD_RUNS: dict[str, tuple[list[str], str]] = {
    "unknown action": (["--action", "nope", "--accounts", "200000000001"], "action: unknown action 'nope'"),
    "bad param": (
        ["--action", "list_buckets", "--accounts", "200000000001", "--param", "with_tags=maybe"],
        "params.with_tags: Input should be a valid boolean",
    ),
    "unknown param": (
        ["--action", "whoami", "--accounts", "200000000001", "--param", "colour=red"],
        "params.colour: Extra inputs are not permitted",
    ),
    "malformed account": (
        ["--action", "whoami", "--accounts", "200000000001,20000000002"],
        "accounts: '20000000002' is not a 12-digit AWS account id",
    ),
    "bad params json": (
        ["--action", "whoami", "--accounts", "200000000001", "--params-json", "{with_tags: true}"],
        "--params-json: is not valid JSON",
    ),
    "params json not an object": (
        ["--action", "whoami", "--accounts", "200000000001", "--params-json", "[1]"],
        "--params-json: must be a JSON object",
    ),
    "bad via": (
        ["--action", "whoami", "--accounts", "200000000001", "--via", "arn:aws:iam::1:role/hub"],
        "via: 'arn:aws:iam::1:role/hub' is not an IAM role ARN",
    ),
    "bad external id": (
        ["--action", "whoami", "--accounts", "200000000001", "--external-id", "a b"],
        "--external-id: must be 2-1224 characters",
    ),
    "bad role name": (
        ["--action", "whoami", "--accounts", "200000000001", "--role-name", "no/slash"],
        "--role-name: String should match pattern",
    ),
    "bad region": (
        ["--action", "whoami", "--accounts", "200000000001", "--region", "moon"],
        "regions: 'moon' is not an AWS region name",
    ),
    "bad concurrency": (
        ["--action", "whoami", "--accounts", "200000000001", "--concurrency", "0"],
        "--concurrency: must be between 1 and",
    ),
    "no accounts": (["--action", "whoami"], "--accounts: required with --action"),
    "nothing to run": ([], "run: give a JOB (with --config) or --action NAME"),
    "job without config": (["inventory"], "run: give either JOB with --config FILE"),
    "job with action params": (
        ["inventory", "--config", EXAMPLE, "--param", "with_tags=false"],
        "--param/--params-json/--role-name/--external-id go with --action",
    ),
    "unknown job": (["nightly", "--config", EXAMPLE], "job: no job named 'nightly' (jobs: "),
}


@pytest.mark.parametrize(("args", "message"), list(BAD_RUNS.values()), ids=list(BAD_RUNS))
def test_bad_run_input_exits_2_before_any_request(
    rolechain: Rolechain, emulator: Emulator, args: list[str], message: str
) -> None:
    result = rolechain("run", *args, "--json")

    assert (result.code, result.out) == (2, "")
    assert result.err.startswith("rolechain: error: ")
    assert message in result.err
    assert emulator.calls() == []


def test_argparse_errors_exit_2(rolechain_offline: Rolechain, capsys: pytest.CaptureFixture[Any]) -> None:
    assert rolechain_offline("run", "--action", "whoami", "--concurrency", "many").code == 2
    assert rolechain_offline("frobnicate").code == 2
    assert "invalid int value: 'many'" in capsys.readouterr().err
