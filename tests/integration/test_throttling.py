"""Issue #12.4, throttling control: per-service caps on the requests in flight per target account
(a job's ``service_concurrency``), and an adaptive client-side rate limiter per target client, so a
throttled account slows down alone."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from rolechain import ChainSessions
from rolechain.jobs import load_job_file
from rolechain.planning import PlanRequest, plan_job
from rolechain.runner import run_plan
from rolechain_dev.emulator import Emulator, RecordedRequest, Seed

from tests.integration.support import plan_action

pytestmark = pytest.mark.integration

REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1"]


def most_in_flight(requests: list[RecordedRequest]) -> int:
    """The most of ``requests`` the emulator was handling at one moment (from their start and duration)."""
    edges = sorted([(r.time, 1) for r in requests] + [(r.time + r.duration, -1) for r in requests])
    most = now = 0
    for _at, step in edges:
        now += step
        most = max(most, now)
    return most


@pytest.fixture
def slow(emulator: Emulator) -> Iterator[Emulator]:
    """Every request takes 30 ms: requests sent at once overlap at the emulator."""
    emulator.latency = 0.03
    yield emulator
    emulator.latency = 0.0


def s3_requests_by_account(emulator: Emulator, since: int) -> dict[str, list[RecordedRequest]]:
    found: dict[str, list[RecordedRequest]] = defaultdict(list)
    for request in emulator.calls()[since:]:
        if request.service == "s3":
            found[request.account].append(request)
    return found


@pytest.mark.parametrize("cap", [1, 2])
def test_a_service_cap_bounds_the_requests_in_flight_per_account_across_regions(
    operator_sessions: ChainSessions, landscape: Seed, slow: Emulator, cap: int
) -> None:
    # Given four regions of two accounts run eight at once, S3 capped at `cap` request(s) per account
    accounts = landscape.target_account_ids[:2]
    plan = plan_action(
        operator_sessions,
        landscape,
        "list_buckets",
        accounts=accounts,
        regions=REGIONS,
        concurrency=8,
        service_concurrency={"s3": cap},
    )
    since = len(slow.calls())

    report = run_plan(operator_sessions, plan)

    # Then every target is ok, and no account ever had more than `cap` S3 requests in flight
    assert report.summary["ok"] == len(accounts) * len(REGIONS)
    by_account = s3_requests_by_account(slow, since)
    assert set(by_account) == set(accounts)
    for account, requests in by_account.items():
        assert len(requests) >= len(REGIONS), account
        assert most_in_flight(requests) <= cap, account
    # while the two accounts, each capped on its own, did overlap each other
    assert most_in_flight([r for rs in by_account.values() for r in rs]) > cap


def test_without_a_cap_the_same_run_overlaps_an_accounts_requests(
    operator_sessions: ChainSessions, landscape: Seed, slow: Emulator
) -> None:
    # The control of the test above: it can fail, since uncapped requests do overlap
    account = landscape.target_account_ids[0]
    plan = plan_action(operator_sessions, landscape, "list_buckets", accounts=[account], regions=REGIONS, concurrency=8)
    since = len(slow.calls())

    run_plan(operator_sessions, plan)

    assert most_in_flight(s3_requests_by_account(slow, since)[account]) > 1


def test_a_job_files_service_concurrency_reaches_the_plan_and_its_defaults_apply(tmp_path: Path) -> None:
    # Given defaults capping S3 and a job capping EC2 too
    path = tmp_path / "jobs.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "defaults": {"role_name": "rolechain-target", "service_concurrency": {"s3": 2}},
                "jobs": {
                    "inventory": {
                        "action": "list_buckets",
                        "targets": {"accounts": ["200000000001"]},
                        "service_concurrency": {"s3": 3, "ec2": 1},
                    },
                    "plain": {"action": "list_buckets", "targets": {"accounts": ["200000000001"]}},
                },
            }
        )
    )
    job_file = load_job_file(path)
    sessions = ChainSessions(explain_denials=False)

    # Then the job's caps win over the defaults, a job without its own keeps the defaults', a request's win
    assert plan_job(sessions, job_file, "inventory").service_concurrency == {"s3": 3, "ec2": 1}
    assert plan_job(sessions, job_file, "plain").service_concurrency == {"s3": 2}
    narrowed = plan_job(sessions, job_file, "plain", PlanRequest(service_concurrency={"s3": 1}))
    assert narrowed.service_concurrency == {"s3": 1}


@pytest.mark.parametrize(
    ("caps", "says"),
    [
        ({"s4": 2}, "'s4' is not a boto3 service name"),
        ({"ec22": 2}, "did you mean 'ec2'?"),
        ({"s3": 0}, "s3: must be a count of requests from 1 to 256"),
        ({"s3": "all"}, "s3: must be a count of requests from 1 to 256"),
        (["s3"], "must be a mapping of service name to a count"),
    ],
)
def test_a_bad_service_cap_is_an_error_naming_the_job_and_the_service(tmp_path: Path, caps: Any, says: str) -> None:
    path = tmp_path / "jobs.yaml"
    job = {"action": "list_buckets", "targets": {"accounts": ["200000000001"]}, "service_concurrency": caps}
    path.write_text(yaml.safe_dump({"jobs": {"inventory": job}}))
    with pytest.raises(Exception) as caught:
        load_job_file(path)
    assert "jobs.inventory.service_concurrency" in str(caught.value)
    assert says in str(caught.value)


def test_the_cli_takes_service_caps_and_refuses_a_bad_one(
    rolechain: Any, operator_env: Seed, capsys: pytest.CaptureFixture[str]
) -> None:
    account = operator_env.target_account_ids[0]
    common = ["run", "--action", "list_buckets", "--accounts", account, "--via", operator_env.hub_role_arn]
    common += ["--external-id", operator_env.external_id, "--json"]

    ok = rolechain(*common, "--service-concurrency", "s3=1,ec2=2")
    assert ok.code == 0, ok.err
    capsys.readouterr()
    # argparse reports a bad flag value on the process's stderr, with the usage
    assert rolechain(*common, "--service-concurrency", "s3=many").code == 2
    assert "'s3=many' is not SERVICE=N" in capsys.readouterr().err
    assert rolechain(*common, "--service-concurrency", "s33=1").code == 2
    assert "'s33' is not a boto3 service name" in capsys.readouterr().err


def limiter_of(client: Any) -> Any:
    """The adaptive rate limiter of a target's client (botocore's ClientRateLimiter)."""
    assert client.rolechain_rate is not None
    return client.rolechain_rate[0].__self__


def test_a_throttled_account_gets_a_send_rate_of_its_own_and_the_others_do_not(
    operator_sessions: ChainSessions, landscape: Seed, emulator: Emulator, no_backoff: None
) -> None:
    # Given ListBuckets throttled twice in one account of five
    victim, *others = landscape.target_account_ids
    emulator.inject_fault("ListBuckets", "Throttling", "Rate exceeded", times=2, match=lambda r: r.account == victim)
    plan = plan_action(operator_sessions, landscape, "list_buckets")

    report = run_plan(operator_sessions, plan)

    # Then the retries got every target through, the victim's client now limits its send rate, and
    # no other account's client does (each account's limiter is its own)
    assert report.summary["ok"] == len(landscape.target_account_ids), [r.error for r in report.results]
    clients = _run_clients(operator_sessions, plan, landscape)
    assert limiter_of(clients[victim])._enabled
    assert not any(limiter_of(clients[account])._enabled for account in others)


def _run_clients(sessions: ChainSessions, plan: Any, seed: Seed) -> dict[str, Any]:
    """The S3 clients a run of ``plan`` used (the cache keys chains without their session name)."""
    policy = plan.action.session_policy()
    return {
        account: sessions.client(
            plan.chain_to(account, session_name="any-name", session_policy=policy),
            "s3",
            seed.region,
        )
        for account in seed.target_account_ids
    }


def test_without_adaptive_retries_a_targets_client_has_no_rate_limiter(
    landscape: Seed, emulator: Emulator, no_backoff: None
) -> None:
    sessions = ChainSessions(_operator_session(landscape), endpoint_url=landscape.endpoint_url, adaptive_retries=False)
    plan = plan_action(sessions, landscape, "list_buckets", accounts=landscape.target_account_ids[:1])

    run_plan(sessions, plan)

    client = _run_clients(sessions, plan, landscape)[landscape.target_account_ids[0]]
    assert client.rolechain_account == landscape.target_account_ids[0]
    assert client.rolechain_rate is None


def _operator_session(seed: Seed) -> Any:
    import boto3

    return boto3.Session(
        aws_access_key_id=seed.user_access_key_id,
        aws_secret_access_key=seed.user_secret_access_key,
        region_name=seed.region,
    )
