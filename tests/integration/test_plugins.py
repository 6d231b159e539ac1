"""Issue #9 item 4 end to end: a plugin package installed with its ``rolechain.actions`` entry point
drives the CLI in a fresh process (listed, in R2's policy, run in the target account with exactly its
own session policy, stopped by the dry-run guard); the same plugin named by ``ROLECHAIN_PLUGINS`` is
run by the API handler in-process."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rolechain.actions import REGISTRY, policy_document, target_role_policy
from rolechain.errors import PluginError
from rolechain_dev.emulator import Emulator, Seed

from tests.hub_support import (
    FakeContext,
    create_hub_resources,
    edited_demo_job_file,
    load_event,
    load_handler,
    test_env,
)
from tests.integration.support import CliResult, assume_role_requests, run_process
from tests.plugin_support import (
    MARKER,
    PLUGIN_ACTION,
    PLUGIN_IAM_ACTIONS,
    PLUGIN_MODULE,
    plugin_venv,
    write_plugin_module,
    write_plugin_package,
)

pytestmark = pytest.mark.integration

# What the plugin declares, written out here rather than derived: the last hop must carry exactly this.
PLUGIN_SESSION_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": PLUGIN_IAM_ACTIONS, "Resource": "*"}],
}


@pytest.fixture(scope="module")
def plugin_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The python of a temporary venv with the plugin package pip-installed (entry point and all)."""
    root = tmp_path_factory.mktemp("plugin")
    return plugin_venv(root / "venv", write_plugin_package(root / "acme-marker"))


def cli_env(seed: Seed | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ROLECHAIN_"))}
    env.update(AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull, AWS_DEFAULT_REGION="us-east-1")
    if seed is None:  # offline: any request fails fast on a closed port
        env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_ENDPOINT_URL="http://127.0.0.1:9")
    else:
        env.update(
            AWS_ACCESS_KEY_ID=seed.user_access_key_id,
            AWS_SECRET_ACCESS_KEY=seed.user_secret_access_key,
            AWS_DEFAULT_REGION=seed.region,
            AWS_ENDPOINT_URL=seed.endpoint_url,
            NO_PROXY="127.0.0.1,localhost",
        )
    return env


def rolechain_in(python: Path, *argv: str, seed: Seed | None = None) -> CliResult:
    """``rolechain ARGV`` in a fresh process of the plugin's venv."""
    return run_process([str(python), "-m", "rolechain.cli", *argv], cli_env(seed))


def run_marker(python: Path, seed: Seed, account: str, value: str, *extra: str) -> CliResult:
    return rolechain_in(
        python,
        "run",
        "--action",
        PLUGIN_ACTION,
        "--accounts",
        account,
        "--via",
        seed.hub_role_arn,
        "--external-id",
        seed.external_id,
        "--param",
        f"value={value}",
        *extra,
        seed=seed,
    )


def marker_in(emulator: Emulator, account: str) -> str | None:
    ssm = emulator.admin_session(account).client("ssm")
    try:
        return str(ssm.get_parameter(Name=MARKER)["Parameter"]["Value"])
    except ssm.exceptions.ParameterNotFound:
        return None


@pytest.fixture
def plugin_landscape(plugin_python: Path, seed_landscape: Callable[..., Seed], emulator: Emulator) -> Seed:
    """Two target accounts whose R2 has what ``rolechain policy target`` prints with the plugin installed."""
    policy = rolechain_in(plugin_python, "policy", "target")
    assert policy.code == 0, policy.err
    seed = seed_landscape(targets=2, buckets_per_account=0, target_policy=policy.json)
    emulator.clear_requests()
    return seed


def test_installed_plugin_is_listed_and_in_r2s_policy(plugin_python: Path) -> None:
    listed = rolechain_in(plugin_python, "actions", "--json")
    policy = rolechain_in(plugin_python, "policy", "target")

    assert (listed.code, listed.err) == (0, "")
    (marker,) = [a for a in listed.json["actions"] if a["name"] == PLUGIN_ACTION]
    assert (marker["changes"], marker["iam_actions"]) == (True, PLUGIN_IAM_ACTIONS)
    assert {"whoami", "list_buckets"} <= {a["name"] for a in listed.json["actions"]}  # with the built-ins
    assert policy.code == 0
    assert set(PLUGIN_IAM_ACTIONS) | {"sts:GetCallerIdentity"} <= set(policy.json["Statement"][0]["Action"])


def test_installed_plugin_runs_in_the_target_account_with_exactly_its_session_policy(
    plugin_python: Path, plugin_landscape: Seed, emulator: Emulator
) -> None:
    target, other = plugin_landscape.targets

    result = run_marker(plugin_python, plugin_landscape, target.account_id, "run-1", "--json")

    assert result.code == 0, result.err
    (entry,) = result.json["results"]
    assert (entry["account"], entry["status"]) == (target.account_id, "ok")
    assert entry["output"] == {"name": MARKER, "before": None, "value": "run-1"}
    assert (marker_in(emulator, target.account_id), marker_in(emulator, other.account_id)) == ("run-1", None)
    assert [r.account for r in emulator.calls(service="ssm", action="PutParameter")] == [target.account_id]
    hub_hop, target_hop = assume_role_requests(emulator)
    assert "Policy" not in hub_hop.params
    assert target_hop.params["RoleArn"] == target.role_arn
    assert json.loads(target_hop.params["Policy"]) == PLUGIN_SESSION_POLICY


def test_installed_plugins_summary_is_the_table_detail(
    plugin_python: Path, plugin_landscape: Seed, emulator: Emulator
) -> None:
    account = plugin_landscape.targets[0].account_id
    run_marker(plugin_python, plugin_landscape, account, "first")

    result = run_marker(plugin_python, plugin_landscape, account, "second")

    assert result.code == 0, result.err
    row = result.out.splitlines()[3]
    assert row.split(maxsplit=3) == [account, "us-east-1", "ok", f"marker {MARKER}: first -> second"]


def test_dry_run_refuses_the_plugins_changing_call(
    plugin_python: Path, plugin_landscape: Seed, emulator: Emulator
) -> None:
    account = plugin_landscape.targets[0].account_id

    result = run_marker(plugin_python, plugin_landscape, account, "never", "--dry-run", "--json")

    assert result.code == 1
    (entry,) = result.json["results"]
    assert entry["status"] == "failed"
    assert entry["error"] == {"type": "dry_run_violation", "message": "dry run: refused changing call put_parameter"}
    assert [r.action for r in emulator.calls(service="ssm")] == ["GetParameter"]  # the read went through
    assert marker_in(emulator, account) is None


def test_a_broken_plugin_fails_the_cli_with_one_line(plugin_python: Path) -> None:
    result = run_process(
        [str(plugin_python), "-m", "rolechain.cli", "actions"], {**cli_env(), "ROLECHAIN_PLUGINS": "acme-marker"}
    )

    assert (result.code, result.out) == (2, "")
    assert result.err.startswith("rolechain: error: ROLECHAIN_PLUGINS[0]: 'acme-marker' is not a module name")
    assert result.err.count("\n") == 1


# -- the handlers: the same plugin named by ROLECHAIN_PLUGINS ---------------------------------------------
@pytest.fixture
def plugin_hub(
    tmp_path: Path,
    emulator: Emulator,
    seed_landscape: Callable[..., Seed],
    monkeypatch: pytest.MonkeyPatch,
    isolated_registry: dict[str, Any],
) -> tuple[Seed, Any]:
    """The hub's functions' environment with ROLECHAIN_PLUGINS naming the plugin, a module on sys.path
    (as a layer puts it under /opt/python). R2 is deployed with the plugin's permissions added."""
    write_plugin_module(tmp_path / "layer")
    monkeypatch.syspath_prepend(str(tmp_path / "layer"))
    deployed = policy_document([*target_role_policy()["Statement"][0]["Action"], *PLUGIN_IAM_ACTIONS])
    seed = seed_landscape(targets=2, buckets_per_account=0, target_policy=deployed)
    resources = create_hub_resources(emulator, seed)

    def grant_the_plugin(job_file: dict[str, Any]) -> None:  # a changing action: the API runs it once granted
        job_file["api"]["rules"][0]["actions"].append(PLUGIN_ACTION)

    job_file = str(edited_demo_job_file(tmp_path, grant_the_plugin))
    env = test_env(
        resources, seed, AWS_LAMBDA_FUNCTION_NAME="rolechain-test", ROLECHAIN_PLUGINS=PLUGIN_MODULE, JOB_FILE=job_file
    )
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    emulator.clear_requests()
    return seed, resources


def test_api_handler_runs_a_plugin_named_by_rolechain_plugins(plugin_hub: tuple[Seed, Any], emulator: Emulator) -> None:
    seed, _ = plugin_hub
    target = seed.targets[1]
    assert PLUGIN_ACTION not in REGISTRY  # the handler's start-up loads it

    api = load_handler("api")
    event = load_event("api-post-run-action.json")
    event["body"] = json.dumps({"action": PLUGIN_ACTION, "accounts": [target.account_id], "params": {"value": "api"}})
    for headers in (event["headers"], event["multiValueHeaders"]):
        headers.pop("Idempotency-Key")

    response = api.lambda_handler(event, FakeContext("api"))

    body = json.loads(response["body"])
    assert response["statusCode"] == 200, body
    assert body["summary"]["ok"] == 1
    assert marker_in(emulator, target.account_id) == "api"
    target_hop = [r for r in assume_role_requests(emulator) if r.params["RoleArn"] == target.role_arn]
    assert [json.loads(r.params["Policy"]) for r in target_hop] == [PLUGIN_SESSION_POLICY]
    listed = api.lambda_handler(load_event("api-get-actions.json"), FakeContext("api"))
    assert PLUGIN_ACTION in {a["name"] for a in json.loads(listed["body"])["actions"]}


def test_a_handler_with_a_broken_plugin_fails_at_cold_start(
    plugin_hub: tuple[Seed, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROLECHAIN_PLUGINS", f"{PLUGIN_MODULE},acme_missing")

    with pytest.raises(PluginError) as caught:
        load_handler("scheduler")

    assert str(caught.value) == (
        "plugin acme_missing (ROLECHAIN_PLUGINS): import failed: ModuleNotFoundError: No module named 'acme_missing'"
    )
