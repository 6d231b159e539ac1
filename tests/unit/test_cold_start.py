"""What a handler's import (Lambda's Init phase) leaves for later, and that tracing is unchanged by it.

Each handler module is imported by a fresh interpreter, with the environment a deployed function has
(tracing on: ``LAMBDA_TASK_ROOT`` set, no POWERTOOLS_TRACE_DISABLED), and the modules it loaded are read
from ``sys.modules``. Not timed: ``benchmarks/bench_cold_start.py`` measures; this checks what must not
load at import. A stand-in X-Ray daemon (a UDP socket on loopback) receives what the tracer sends.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.hub_support import ROOT, load_event

FUNCTIONS = ("scheduler", "worker", "remediation", "api", "schedules")
# Modules an import must not load: the X-Ray SDK (made on the first traced call), PyYAML (the job file is
# read by the first call that needs it), Powertools' batch utility (the worker's first batch makes its
# processor), and what is never shipped or needed in Lambda (the emulator's moto, the development package).
NOT_AT_IMPORT = (
    "aws_xray_sdk",
    "wrapt",
    "yaml",
    "aws_lambda_powertools.utilities.batch",
    "moto",
    "rolechain_dev",
    "rich",  # the CLI's tables (rolechain.render): not shipped in the layer at all
)
TRACE_ROOT = "1-5759e988-bd862e3fe1be46a994272793"


def lambda_env(function: str, **extra: str) -> dict[str, str]:
    """A deployed function's environment (the template's variables, what Lambda sets), no AWS reachable."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "POWERTOOLS_SERVICE_NAME": "rolechain",
        "POWERTOOLS_METRICS_NAMESPACE": "Rolechain",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "JOB_FILE": str(ROOT / "layers" / "rolechain" / "rolechain-config" / "jobs.yaml"),
        "ROLECHAIN_PLUGINS": "",
        "RUNS_TABLE": "rolechain-RunsTable-TEST",
        "TARGET_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/111111111111/rolechain-TargetQueue-TEST",
        "INLINE_TARGET_LIMIT": "10",
        "MAX_RECEIVE_COUNT": "3",
        "RESULTS_BUCKET": "rolechain-resultsbucket-test",
        "PAGE_TOKEN_KEY_ID": "arn:aws:kms:us-east-1:111111111111:key/00000000-0000-0000-0000-000000000000",
        "AWS_MAX_ATTEMPTS": "3",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_LAMBDA_FUNCTION_NAME": f"rolechain-{function}",
        "LAMBDA_TASK_ROOT": str(ROOT / "functions" / function),
        "AWS_ACCESS_KEY_ID": "ASIATESTCOLDSTART000",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "functions" / function), *sys.path]),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    env.update(extra)
    return env


def run_in_fresh_python(function: str, code: str, **extra: str) -> dict[str, Any]:
    """``code`` run by a new interpreter in the function's folder; it prints one JSON line last."""
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT / "functions" / function,
        env=lambda_env(function, **extra),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


IMPORT_ONLY = """
import json, sys
import botocore.client

clients = []  # every boto3 client the import makes, by service
make = botocore.client.ClientCreator.create_client
def recording(self, service_name, *args, **kwargs):
    clients.append(service_name)
    return make(self, service_name, *args, **kwargs)
botocore.client.ClientCreator.create_client = recording

import app
print(json.dumps({"modules": sorted(sys.modules), "clients": clients}))
"""


@pytest.mark.parametrize("function", FUNCTIONS)
@pytest.mark.parametrize("tracing", ["on", "off"])
def test_a_handler_import_loads_no_xray_sdk_yaml_nor_development_tooling_and_makes_no_client(
    function: str, tracing: str
) -> None:
    # Given a deployed function's environment, with tracing on (as the template deploys it) or off
    extra = {} if tracing == "on" else {"POWERTOOLS_TRACE_DISABLED": "true"}
    # When a fresh interpreter imports the handler module, as Lambda's Init phase does
    imported = run_in_fresh_python(function, IMPORT_ONLY, **extra)
    # Then the handler and the hub are there, and none of what is made on first use or never shipped
    modules = imported["modules"]
    assert "app" in modules and "rolechain.hub.hub" in modules and "boto3" in modules
    loaded = sorted(m for m in modules if any(m == name or m.startswith(f"{name}.") for name in NOT_AT_IMPORT))
    assert loaded == []
    # And no boto3 client was made (each loads its service model): the hub's and the idempotency store's
    # are made by the first call that uses them
    assert imported["clients"] == []


TRACED_CALLS = """
import json, sys
import app
from rolechain_dev.local import FakeContext

event = json.loads(sys.argv[1])
imported = sorted(m for m in sys.modules if m.split(".")[0] == "aws_xray_sdk")
responses = [app.lambda_handler(event, FakeContext("api"))["statusCode"] for _ in range(2)]
print(json.dumps({"xray_at_import": imported, "xray_after": "aws_xray_sdk.core" in sys.modules,
                  "responses": responses}))
"""


def traced_call(code: str, event: dict[str, Any], tracing_disabled: bool) -> tuple[dict[str, Any], list[Any]]:
    """Runs ``code`` (the api handler called twice) with a stand-in X-Ray daemon; what it printed and
    every document the daemon received."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as daemon:
        daemon.bind(("127.0.0.1", 0))
        daemon.settimeout(0.5)
        address = f"127.0.0.1:{daemon.getsockname()[1]}"
        extra = {
            "AWS_XRAY_DAEMON_ADDRESS": address,
            "_X_AMZN_TRACE_ID": f"Root={TRACE_ROOT};Parent=53995c3f42cd8ad8;Sampled=1",
        }
        if tracing_disabled:
            extra["POWERTOOLS_TRACE_DISABLED"] = "true"
        done = subprocess.run(
            [sys.executable, "-c", code, json.dumps(event)],
            cwd=ROOT / "functions" / "api",
            env=lambda_env("api", **extra),
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        documents = []
        while True:
            try:
                datagram = daemon.recv(65536).decode()
            except TimeoutError:
                break
            header, _, body = datagram.partition("\n")
            assert json.loads(header) == {"format": "json", "version": 1}
            documents.append(json.loads(body))
    printed: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return printed, documents


def test_with_tracing_on_the_first_call_makes_the_tracer_and_traces_each_call_as_powertools_does() -> None:
    # Given the API handler in a deployed function's environment, tracing on, an X-Ray daemon listening
    # When it is imported, then called twice (GET /actions)
    printed, documents = traced_call(TRACED_CALLS, load_event("api-get-actions.json"), tracing_disabled=False)
    # Then the X-Ray SDK was not loaded by the import, only by the first call
    assert printed["xray_at_import"] == [] and printed["xray_after"] is True
    assert printed["responses"] == [200, 200]
    # And each call sent the Powertools handler subsegment of the invocation's trace: the cold start
    # annotated on the first only, the service, and the response as metadata
    handler = [d for d in documents if d.get("name") == "## lambda_handler"]
    assert [d["annotations"] for d in handler] == [
        {"ColdStart": True, "Service": "rolechain"},
        {"ColdStart": False, "Service": "rolechain"},
    ]
    assert {d["trace_id"] for d in handler} == {TRACE_ROOT}
    assert all(json.loads(d["metadata"]["rolechain"]["lambda_handler response"]["body"])["actions"] for d in handler)


def test_with_tracing_off_no_call_loads_the_xray_sdk_nor_sends_anything() -> None:
    printed, documents = traced_call(TRACED_CALLS, load_event("api-get-actions.json"), tracing_disabled=True)

    assert printed == {"xray_at_import": [], "xray_after": False, "responses": [200, 200]}
    assert documents == []


def test_the_worker_record_handler_still_gets_the_invocation_context() -> None:
    # Powertools passes lambda_context to a record handler whose signature names it: the lazy tracer's
    # wrapper must keep that signature visible (functools.wraps)
    code = "import inspect, json, app; print(json.dumps(list(inspect.signature(app.record_handler).parameters)))"
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT / "functions" / "worker",
        env=lambda_env("worker"),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == ["record", "lambda_context"]


def test_the_test_environment_is_a_deployed_functions_environment() -> None:
    # The environment above stands for the template's: every variable Globals sets is in it
    from tests.hub_support import load_template

    variables = set(load_template()["Globals"]["Function"]["Environment"]["Variables"])
    missing = variables - set(lambda_env("api")) - {"AWS_ENDPOINT_URL"}  # empty when deployed: unset here
    assert missing == set()
    assert Path(lambda_env("api")["JOB_FILE"]).is_file()


class _Body:
    def stream(self) -> Any:
        yield b"{}"


def test_the_idempotency_store_makes_the_hubs_client_on_first_use_with_powertools_user_agent() -> None:
    from botocore.awsrequest import AWSResponse
    from rolechain.hub.lambda_support import build_hub, idempotency_store

    # Given the hub as a handler builds it, and the idempotency store over it
    hub = build_hub(lambda_env("api"))
    asked: list[str] = []
    hub_client = hub.sessions.client

    def recording(chain: Any, service: str, region: str | None = None) -> Any:
        asked.append(service)
        return hub_client(chain, service, region)

    hub.sessions.client = recording  # type: ignore[method-assign]
    store = idempotency_store(hub)
    # Then making the store made no client; its first use makes the hub's DynamoDB client, once
    assert asked == []
    client = store.client
    assert client is store.client is hub_client(None, "dynamodb")
    assert asked == ["dynamodb"]
    # And its requests carry Powertools' idempotency feature in the User-Agent, as when it was given the client
    sent: dict[str, str] = {}

    def answer(request: Any, **_: Any) -> AWSResponse:
        agent = request.headers["User-Agent"]
        sent["agent"] = agent.decode() if isinstance(agent, bytes) else agent
        return AWSResponse(request.url, 200, {}, _Body())

    client.meta.events.register("before-send.dynamodb.GetItem", answer)
    client.get_item(TableName=hub.settings.runs_table, Key={"pk": {"S": "p"}, "sk": {"S": "s"}})
    assert " PT/idempotency/" in sent["agent"]


DEFERRED = """
import json, sys
import app
import pydantic

built = []  # rolechain's pydantic models whose validators the import built
for name, module in list(sys.modules.items()):
    if name == "app" or name.split(".")[0] == "rolechain":
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, pydantic.BaseModel) and value.__module__ == name:
                if value.__pydantic_complete__:
                    built.append(value.__qualname__)
print(json.dumps(sorted(set(built))))
"""


@pytest.mark.parametrize("function", FUNCTIONS)
def test_a_handler_import_builds_only_the_validators_of_its_settings(function: str) -> None:
    # rolechain's models defer building their validators (defer_build) to their first use: the import
    # validates the environment (Settings, PluginSettings) and leaves the models of events, bodies,
    # job files and plans, which a route or a call may never need, for later
    built = run_in_fresh_python(function, DEFERRED)

    # (the schedules function reads its environment per request: an import that failed would leave
    # CloudFormation waiting for an answer, where a request answers FAILED with the reason)
    assert built == ([] if function == "schedules" else ["PluginSettings", "Settings"])


FIRST_USE = """
import json
from pydantic import ValidationError
from rolechain.hub.models import RunRequest

before = RunRequest.__pydantic_complete__
body = RunRequest.model_validate({"action": "list_buckets", "accounts": ["200000000001"]})
try:
    RunRequest.model_validate({"action": "list_buckets", "accounts": ["2000"]})
    refused = None
except ValidationError as exc:
    refused = [error["loc"] for error in exc.errors()]
print(json.dumps({"before": before, "after": RunRequest.__pydantic_complete__, "accounts": body.accounts,
                  "refused": refused}))
"""


def test_a_deferred_model_is_built_by_its_first_use_and_validates_as_before() -> None:
    result = run_in_fresh_python("api", FIRST_USE)

    assert result == {"before": False, "after": True, "accounts": ["200000000001"], "refused": [["accounts", 0]]}


def test_the_clis_import_leaves_the_doctors_for_the_doctor_command() -> None:
    # `rolechain run` is what an operator starts most: it never needs the doctors nor the template reader
    code = "import json, sys, rolechain.cli; print(json.dumps(sorted(sys.modules)))"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "layers" / "rolechain")}
    loaded = set(
        json.loads(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, check=True).stdout)
    )
    assert "rolechain.cli" in loaded and "rolechain.planning" in loaded
    assert not loaded & {"rolechain.doctor", "rolechain.static_doctor", "rolechain.templates", "yaml"}
