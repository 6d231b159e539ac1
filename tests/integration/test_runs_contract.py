"""``rolechain runs`` against the contract of the routes branch ``results`` adds (GET /runs with
paging, GET /runs/{id} with a status filter and pages of results, POST /runs with ``rerun``), served by
a stand-in of that contract behind the same SigV4-checking API Gateway stand-in on loopback."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from rolechain.client import API_URL_ENV

from tests.api_server import ApiGateway, Identity
from tests.integration.support import CliResult, run_cli
from tests.secrets_guard import GUARD

pytestmark = pytest.mark.integration

KEY, SECRET = "AKIACONTRACT00000001", "contractSecret/00000000000000000000000000"
ALICE = "arn:aws:iam::111111111111:user/alice"
PAGE = 2  # the stand-in answers at most two items a page, so every listing takes several
ACCOUNTS = [f"20000000000{n}" for n in range(1, 6)]


def answer(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}


def refuse(status: int, message: str, field_: str | None = None) -> dict[str, Any]:
    return answer(status, {"statusCode": status, "message": message, **({"field": field_} if field_ else {})})


@dataclass
class ContractApi:
    """The routes of the contract over runs kept in memory. A started run is queued; each GET of it
    moves it on (running, then completed with ``outcomes``)."""

    runs: list[dict[str, Any]] = field(default_factory=list)  # oldest first
    outcomes: dict[str, str] = field(default_factory=dict)  # account -> status a started run ends with
    polls_to_complete: int = 2
    never_completes: bool = False

    def add(
        self, run_id: str, job: str, statuses: list[str], status: str = "completed", accounts: list[str] | None = None
    ) -> dict[str, Any]:
        results = [
            {"account": a, "region": "us-east-1", "action": "list_buckets", "status": s, "output": {"buckets": []},
             "error": {"type": "aws", "code": "AccessDenied", "message": "no"} if s == "failed" else None,
             "duration_ms": 5}
            for a, s in zip(accounts or ACCOUNTS, statuses, strict=False)
        ]  # fmt: skip
        counts = {s: statuses.count(s) for s in ("ok", "failed", "skipped", "dry_run")}
        run = {
            "run_id": run_id, "job": job, "action": "list_buckets", "status": status, "mode": "queued",
            "dry_run": False, "requested_by": ALICE, "created_at": f"2026-12-02T04:{len(self.runs):02d}:00+00:00",
            "completed_at": "2026-12-02T05:00:00+00:00" if status == "completed" else None,
            "target_count": len(statuses), "counts": counts, "_results": results, "_polls": 0,
        }  # fmt: skip
        self.runs.append(run)
        return run

    def __call__(self, event: dict[str, Any]) -> dict[str, Any]:
        query = event.get("queryStringParameters") or {}
        if event["httpMethod"] == "GET" and event["path"] == "/runs":
            return self.list_runs(query)
        if event["httpMethod"] == "GET" and event["resource"] == "/runs/{run_id}":
            return self.get_run(event["pathParameters"]["run_id"], query)
        if event["httpMethod"] == "POST" and event["path"] == "/runs":
            return self.start(json.loads(event["body"]))
        return refuse(404, "no such route")

    def list_runs(self, query: dict[str, str]) -> dict[str, Any]:
        limit = int(query.get("limit", "100"))
        if not 1 <= limit <= 100:
            return refuse(400, "limit must be 1..100", "limit")
        newest = [r for r in reversed(self.runs) if query.get("job") in (None, r["job"])]
        newest = [r for r in newest if query.get("status") in (None, r["status"])]
        start = int(query.get("next_token", "0"))
        size = min(limit, PAGE)
        page = newest[start : start + size]
        token = str(start + size) if start + size < len(newest) else None
        return answer(200, {"runs": [self.public(r) for r in page], "next_token": token})

    def get_run(self, run_id: str, query: dict[str, str]) -> dict[str, Any]:
        run = next((r for r in self.runs if r["run_id"] == run_id), None)
        if run is None:
            return refuse(404, f"no run {run_id!r}")
        if "next_token" not in query and run["status"] != "completed" and not self.never_completes:
            run["_polls"] += 1
            run["status"] = "running"
            if run["_polls"] >= self.polls_to_complete:
                run["status"], run["completed_at"] = "completed", "2026-12-02T05:00:00+00:00"
        wanted = query.get("status")
        if wanted not in (None, "ok", "failed", "skipped", "dry-run"):
            return refuse(400, "status must be ok, failed, skipped or dry-run", "status")
        results = [r for r in run["_results"] if wanted in (None, r["status"].replace("_", "-"))]
        if run["status"] != "completed":
            results = []
        start = int(query.get("next_token", "0"))
        token = str(start + PAGE) if start + PAGE < len(results) else None
        page = results[start : start + PAGE]
        body = {**self.public(run), "results": page, "next_token": token, "results_uri": f"s3://runs/{run_id}.jsonl"}
        return answer(200, body)

    def start(self, body: dict[str, Any]) -> dict[str, Any]:
        if "rerun" in body:
            old = next((r for r in self.runs if r["run_id"] == body["rerun"]["run_id"]), None)
            if old is None:
                return refuse(404, f"no run {body['rerun']['run_id']!r}")
            accounts = [r["account"] for r in old["_results"] if r["status"] in body["rerun"]["statuses"]]
            if not accounts:
                return refuse(400, "the run has no target of those statuses", "rerun.statuses")
            job = old["job"]
        else:
            accounts, job = body.get("accounts") or ACCOUNTS, body.get("job")
        statuses = [self.outcomes.get(a, "ok") for a in accounts]
        run = self.add(f"run-{len(self.runs) + 1}", job, statuses, "queued", accounts)
        return answer(202, self.public(run))

    @staticmethod
    def public(run: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in run.items() if not k.startswith("_")}


@pytest.fixture
def contract(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ApiGateway, ContractApi]]:
    GUARD.add(SECRET)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    api = ContractApi()
    with ApiGateway(api, {KEY: Identity(SECRET, ALICE)}) as server:
        monkeypatch.setenv(API_URL_ENV, server.url)  # the URL from the environment, no --api-url
        yield server, api


def runs(*argv: str) -> CliResult:
    return run_cli(["runs", *argv, "--region", "us-east-1"])


def test_list_pages_newest_first_up_to_the_limit(contract: tuple[ApiGateway, ContractApi]) -> None:
    gateway, api = contract
    for n in range(1, 6):
        api.add(f"inv-{n}", "inventory", ["ok", "failed"])
    api.add("tag-1", "tag-owner", ["ok"])
    listed = runs("list", "--job", "inventory", "--limit", "3", "--json")
    assert listed.code == 0, listed.err
    assert [r["run_id"] for r in listed.json["runs"]] == ["inv-5", "inv-4", "inv-3"]
    queries = [r.query for r in gateway.requests("GET", "/v1/runs")]
    assert queries == [{"job": "inventory", "limit": "3"}, {"job": "inventory", "limit": "1", "next_token": "2"}]
    assert {r.caller for r in gateway.received} == {ALICE}  # signed, the signature checked


def test_list_as_a_table_and_every_run_without_a_limit(contract: tuple[ApiGateway, ContractApi]) -> None:
    _, api = contract
    for n in range(1, 4):
        api.add(f"inv-{n}", "inventory", ["ok", "failed"])
    api.add("queued-1", "inventory", ["ok"], status="queued")
    table = runs("list", "--status", "completed", "--limit", "100")
    assert table.code == 0, table.err
    lines = table.out.splitlines()
    assert lines[0].split() == [
        "run_id",
        "created_at",
        "job",
        "action",
        "status",
        "mode",
        "dry_run",
        "targets",
        "counts",
    ]
    assert [line.split()[0] for line in lines[2:-1]] == ["inv-3", "inv-2", "inv-1"]
    assert "ok=1 failed=1" in lines[2] and lines[-1] == "3 run(s)"


def test_show_pages_through_every_result_of_a_status(contract: tuple[ApiGateway, ContractApi]) -> None:
    gateway, api = contract
    api.add("big", "inventory", ["failed", "ok", "failed", "failed", "failed"])
    shown = runs("show", "big", "--status", "failed", "--format", "jsonl")
    assert shown.code == 0, shown.err
    lines = [json.loads(line) for line in shown.out.splitlines()]
    assert [line["account"] for line in lines] == ["200000000001", "200000000003", "200000000004", "200000000005"]
    assert all(line["run_id"] == "big" and line["status"] == "failed" for line in lines)
    queries = [r.query for r in gateway.requests("GET", "/v1/runs/big")]
    assert queries == [{"status": "failed"}, {"status": "failed", "next_token": "2"}]
    whole = runs("show", "big", "--json")
    assert len(whole.json["results"]) == 5 and whole.json["results_uri"] == "s3://runs/big.jsonl"
    rows = list(csv.DictReader(io.StringIO(runs("show", "big", "--status", "dry_run", "--format", "csv").out)))
    assert rows == []  # dry_run is sent as the API spells it (dry-run): none here


def test_show_as_a_table_uses_the_runs_renderer(contract: tuple[ApiGateway, ContractApi]) -> None:
    _, api = contract
    api.add("mixed", "inventory", ["ok", "failed", "skipped"])
    shown = runs("show", "mixed")
    assert shown.code == 0, shown.err
    assert "run mixed: list_buckets" in shown.out
    assert "200000000002  us-east-1  failed   AccessDenied: no" in shown.out
    assert "1 ok, 1 failed, 1 skipped, 0 dry_run" in shown.out
    failed = runs("show", "mixed", "--status", "failed")
    assert "200000000001" not in failed.out and "0 ok, 1 failed, 0 skipped" in failed.out  # the table's
    assert "; the run: 1 ok, 1 failed, 1 skipped, 0 dry_run" in failed.out  # the run's own counters


def test_rerun_starts_a_run_over_the_failed_and_skipped_targets_and_waits(
    contract: tuple[ApiGateway, ContractApi],
) -> None:
    gateway, api = contract
    api.add("first", "inventory", ["ok", "failed", "skipped", "failed"])
    api.outcomes = {"200000000002": "failed"}  # one of them fails again
    rerun = runs("rerun", "first", "--failed", "--skipped", "--wait", "--poll-interval", "0.01", "--json")
    assert rerun.code == 1, rerun.err  # a target failed
    post = next(gateway.requests("POST", "/v1/runs"))
    assert json.loads(post.body) == {"rerun": {"run_id": "first", "statuses": ["failed", "skipped"]}}
    run = rerun.json
    assert run["status"] == "completed" and run["run_id"] != "first"
    assert sorted((r["account"], r["status"]) for r in run["results"]) == [
        ("200000000002", "failed"), ("200000000003", "ok"), ("200000000004", "ok")
    ]  # fmt: skip
    assert "waiting for it to complete" in rerun.err
    assert len(list(gateway.requests("GET", f"/v1/runs/{run['run_id']}"))) >= 2  # it polled


def test_start_wait_exits_0_when_every_target_is_ok(contract: tuple[ApiGateway, ContractApi]) -> None:
    gateway, _ = contract
    started = runs("start", "inventory", "--accounts", "200000000001,200000000002", "--wait", "--poll-interval", "0.01")
    assert started.code == 0, started.err
    assert "2 ok, 0 failed" in started.out
    key = next(gateway.requests("POST")).headers["Idempotency-Key"]
    again = runs("start", "inventory", "--idempotency-key", key)
    assert again.code == 0 and next(iter(list(gateway.requests("POST"))[1:])).headers["Idempotency-Key"] == key


def test_start_without_wait_says_how_to_follow_the_queued_run(contract: tuple[ApiGateway, ContractApi]) -> None:
    started = runs("start", "inventory")
    assert started.code == 0, started.err
    assert "run run-1 queued: 5 target(s); follow it with `rolechain runs show run-1`" in started.out


def test_wait_gives_up_after_its_timeout(contract: tuple[ApiGateway, ContractApi]) -> None:
    _, api = contract
    api.never_completes = True
    started = runs("start", "inventory", "--wait", "--poll-interval", "0.01", "--timeout", "0.05")
    assert started.code == 1 and "the run is still queued after 0.05s" in started.err


def test_rerun_of_a_run_with_nothing_to_rerun_names_the_field(contract: tuple[ApiGateway, ContractApi]) -> None:
    _, api = contract
    api.add("clean", "inventory", ["ok", "ok"])
    rerun = runs("rerun", "clean", "--failed")
    assert rerun.code == 2
    assert "rerun.statuses: the API answered 400: the run has no target of those statuses" in rerun.err


def test_start_sends_the_request_the_flags_say(contract: tuple[ApiGateway, ContractApi]) -> None:
    gateway, _ = contract
    argv = ["start", "--action", "tag_resources", "--accounts", "200000000001,200000000002"]
    argv += ["--param", 'tags={"owner":"me"}', "--param", "missing_only=true", "--target-region", "eu-west-1"]
    started = runs(*argv, "--role-name", "rolechain-target", "--no-dry-run", "--json")
    assert started.code == 0, started.err
    assert json.loads(next(gateway.requests("POST")).body) == {
        "action": "tag_resources",
        "params": {"tags": {"owner": "me"}, "missing_only": True},
        "accounts": ["200000000001", "200000000002"],
        "regions": ["eu-west-1"],
        "role_name": "rolechain-target",
        "dry_run": False,
    }
    assert json.loads(started.out)["status"] == "queued"
    runs("start", "inventory", "--dry-run")
    assert json.loads(list(gateway.requests("POST"))[1].body) == {"job": "inventory", "dry_run": True}
