"""`sam local start-api` with a real HTTP client, and `sam local start-lambda` with the AWS CLI."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rolechain_dev import local

from tests.e2e.conftest import Stack
from tests.hub_support import ROOT

pytestmark = pytest.mark.e2e


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sam_containers(build_dir: Path) -> set[str]:
    """SAM's Lambda containers that run code from ``build_dir`` (not another SAM user's)."""
    return {
        c["Id"][:12]
        for c in local.sam_containers()
        if any(str(m.get("Source", "")).startswith(str(build_dir)) for m in c.get("Mounts", []))
    }


@pytest.fixture
def server(stack: Stack, tmp_path: Path) -> Iterator[Any]:
    """Starts `sam local <command>` on a free port; stops it with SIGTERM and checks no container is left."""
    started: list[subprocess.Popen[str]] = []
    build_dir = stack.sam.build_path
    before = sam_containers(build_dir)

    def start(command: str) -> str:
        port = free_port()
        assert stack.sam.sam is not None
        log = (tmp_path / f"{command}.log").open("w")
        process = subprocess.Popen(
            [
                stack.sam.sam,
                "local",
                command,
                "--port",
                str(port),
                "--host",
                "127.0.0.1",
                "--warm-containers",
                "LAZY",
                *stack.sam.command_args(),
            ],
            cwd=ROOT,
            env=stack.sam.process_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        started.append(process)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert process.poll() is None, (tmp_path / f"{command}.log").read_text()[-3000:]
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    return f"http://127.0.0.1:{port}"
            time.sleep(0.5)
        raise TimeoutError(f"sam local {command} did not listen on {port}")

    yield start
    for process in started:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
    time.sleep(1)
    leftover = sam_containers(build_dir) - before
    if leftover:
        subprocess.run(["docker", "rm", "-f", *leftover], capture_output=True, check=False)
    assert not leftover, f"containers left behind: {leftover}"


def http(method: str, url: str, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=180) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def test_start_api_every_route(stack: Stack, server: Any) -> None:
    base = server("start-api")
    status, body = http("GET", f"{base}/actions")
    assert status == 200 and {a["name"] for a in body["actions"]} >= {"list_buckets", "tag_resources"}
    status, body = http("GET", f"{base}/jobs")
    assert status == 200 and "tag-owner" in {j["name"] for j in body["jobs"]}
    status, run = http("POST", f"{base}/runs", {"job": "inventory", "accounts": ["200000000004", "200000000005"]})
    assert status == 200 and run["summary"] == {"ok": 2, "failed": 0, "skipped": 0, "dry_run": 0}
    status, stored = http("GET", f"{base}/runs/{run['run_id']}")
    assert status == 200 and stored["status"] == "completed" and len(stored["results"]) == 2
    status, body = http("POST", f"{base}/runs", {"action": "list_buckets", "accounts": ["999999999999"]})
    assert status == 403
    status, body = http("POST", f"{base}/runs", {"action": "list_buckets", "accounts": "200000000001"})
    assert status == 422 and ["body", "accounts"] in [d["loc"] for d in body["detail"]]
    status, body = http("POST", f"{base}/runs", {"action": "nope", "accounts": ["200000000001"]})
    assert status == 400 and "unknown action" in body["message"]
    status, body = http("GET", f"{base}/runs/unknownrun")
    assert status == 404


def rolechain(base: str, region: str, *argv: str) -> subprocess.CompletedProcess[str]:
    """The installed ``rolechain`` in a process of its own, signing with the usual AWS environment
    (sam local does not check signatures; its requests come from its fixed local caller)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "ROLECHAIN_API_URL"}
    env.update({"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_CONFIG_FILE": os.devnull})
    command = [str(Path(sys.executable).with_name("rolechain")), "runs", *argv, "--api-url", base, "--region", region]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=400, check=False)


def test_start_api_driven_by_rolechain_runs(stack: Stack, server: Any) -> None:
    base = server("start-api")
    region = stack.seed.region
    started = rolechain(base, region, "start", "inventory", "--accounts", "200000000002,200000000003", "--json")
    assert started.returncode == 0, started.stderr
    run = json.loads(started.stdout)
    assert run["status"] == "completed" and run["summary"]["ok"] == 2
    assert stack.stored_results(run["run_id"]) == {
        "target#200000000002#us-east-1": "ok",
        "target#200000000003#us-east-1": "ok",
    }
    shown = rolechain(base, region, "show", run["run_id"], "--format", "csv")
    assert shown.returncode == 0, shown.stderr
    rows = list(csv.DictReader(io.StringIO(shown.stdout)))
    assert [(r["account"], r["status"]) for r in rows] == [("200000000002", "ok"), ("200000000003", "ok")]
    table = rolechain(base, region, "show", run["run_id"])
    assert table.returncode == 0 and f"run {run['run_id']}: list_buckets" in table.stdout
    listed = rolechain(base, region, "list", "--job", "inventory", "--limit", "1", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [r["run_id"] for r in json.loads(listed.stdout)["runs"]] == [run["run_id"]]  # the newest
    nothing = rolechain(base, region, "rerun", run["run_id"], "--failed")  # every target was ok
    assert nothing.returncode == 2 and "rerun: the API answered 400: no target of run" in nothing.stderr
    refused = rolechain(base, region, "start", "--action", "nope", "--accounts", "200000000001")
    assert refused.returncode == 2 and "the API answered 400: unknown action 'nope'" in refused.stderr
    missing = rolechain(base, region, "show", "unknownrun")
    assert missing.returncode == 1 and "answered 404" in missing.stderr


def aws_cli(stack: Stack) -> str:
    assert stack.sam.sam is not None
    cli = Path(stack.sam.sam).with_name("aws")
    return str(cli) if cli.exists() else "aws"


def lambda_invoke(stack: Stack, endpoint: str, function: str, payload: dict[str, Any], out: Path) -> Any:
    result = subprocess.run(
        [
            aws_cli(stack),
            "lambda",
            "invoke",
            "--function-name",
            function,
            "--endpoint-url",
            endpoint,
            "--payload",
            json.dumps(payload),
            "--cli-read-timeout",
            "300",
            str(out),
        ],
        env={
            **os.environ,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": stack.seed.region,
        },
        capture_output=True,
        text=True,
        check=False,
        timeout=400,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["StatusCode"] == 200
    return json.loads(out.read_text())


def test_start_lambda_with_the_aws_cli(stack: Stack, server: Any, tmp_path: Path) -> None:
    endpoint = server("start-lambda")
    run = lambda_invoke(stack, endpoint, "SchedulerFunction", {"job": "block-public-access"}, tmp_path / "s.json")
    assert run["dry_run"] is True and run["summary"]["dry_run"] == 5
    assert stack.emulator.calls(action="PutPublicAccessBlock", account="200000000004") == []
    event = json.loads((ROOT / "events" / "remediation-put-bucket-acl.json").read_text())
    event["id"] = "start-lambda-" + event["id"]
    event["account"] = "200000000004"
    event["detail"]["requestParameters"]["bucketName"] = "rc-200000000004-03"
    outcome = lambda_invoke(stack, endpoint, "RemediationFunction", event, tmp_path / "r.json")
    assert outcome["rules"][0]["summary"]["ok"] == 1
    block = stack.admin("200000000004").client("s3").get_public_access_block(Bucket="rc-200000000004-03")
    assert all(block["PublicAccessBlockConfiguration"].values())
