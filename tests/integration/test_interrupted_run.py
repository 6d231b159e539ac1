"""Issue #10: Ctrl-C or SIGTERM during ``rolechain run`` starts no new target, waits for those in flight,
reports every target once (the rest skipped, "interrupted") and exits 130, never with a traceback.
The CLI runs in a subprocess against the in-process emulator, slowed down so the run can be interrupted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from rolechain import ChainSessions
from rolechain.runner import Status, TargetResult, run_plan
from rolechain_dev.emulator import Emulator, Seed

from tests.integration.support import plan_action

pytestmark = pytest.mark.integration


def start_run(seed: Seed, *extra: str, state: Path | None = None) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "rolechain.cli", "run", "--action", "list_buckets"]
    argv += ["--accounts", ",".join(seed.target_account_ids), "--via", seed.hub_role_arn]
    argv += ["--external-id", seed.external_id, "--concurrency", "1", *extra]
    env = {k: v for k, v in os.environ.items() if k != "MOTO_ACCOUNT_ID"}  # the operator's, set by operator_env
    if state is not None:
        env["XDG_STATE_HOME"] = str(state)
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def wait_for_first_target(
    emulator: Emulator, process: subprocess.Popen[str], timeout: float = 60, action: str = "ListBuckets"
) -> None:
    deadline = time.monotonic() + timeout
    while not emulator.calls(action=action):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the run never reached a target"
        time.sleep(0.02)


def interrupt(
    emulator: Emulator,
    process: subprocess.Popen[str],
    *signums: signal.Signals,
    pause: float = 0.1,
    after: str = "ListBuckets",
) -> tuple[str, str, float]:
    """Send ``signums`` (``pause`` s apart) once the run reached its first target; returns its stdout,
    stderr and the seconds it took to end after the last signal. The process never outlives the test."""
    try:
        wait_for_first_target(emulator, process, action=after)
        for index, signum in enumerate(signums):
            if index:
                time.sleep(pause)
            process.send_signal(signum)
            last = time.monotonic()
        out, err = process.communicate(timeout=60)
        return out, err, time.monotonic() - last
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_an_interrupted_run_reports_every_target_once_and_exits_130(
    emulator: Emulator, operator_env: Seed, tmp_path: Path
) -> None:
    signum = signal.SIGINT
    # Given a run over five targets, one at a time, each request slowed down
    emulator.latency = 0.2
    process = start_run(operator_env, "--json", state=tmp_path)
    # When it is interrupted while the first target is running
    out, err, _ = interrupt(emulator, process, signum)
    # Then it waited for the target in flight, skipped the others, and printed the whole report
    assert process.returncode == 130, err
    assert "Traceback" not in err and f"rolechain: {signum.name}: starting no more targets" in err
    report = json.loads(out)
    assert report["interrupted"] is True
    assert sorted(r["account"] for r in report["results"]) == sorted(operator_env.target_account_ids)
    statuses = [r["status"] for r in report["results"]]
    assert statuses[0] == "ok" and "skipped" in statuses and set(statuses) <= {"ok", "skipped"}
    skipped = [r for r in report["results"] if r["status"] == "skipped"]
    assert all(r["error"]["message"].startswith("interrupted:") for r in skipped)
    # And no skipped target was touched
    listed = {r.account for r in emulator.calls(action="ListBuckets")}
    assert listed.isdisjoint(r["account"] for r in skipped)
    # And the report is saved where the operator is told
    saved = tmp_path / "rolechain" / "runs" / f"{report['run_id']}.json"
    assert f"the interrupted run's report is saved in {saved}" in err
    assert json.loads(saved.read_text()) == report


def test_a_run_stopped_by_sigterm_prints_its_table(emulator: Emulator, operator_env: Seed, tmp_path: Path) -> None:
    emulator.latency = 0.2
    process = start_run(operator_env, state=tmp_path)
    out, err, _ = interrupt(emulator, process, signal.SIGTERM)
    assert process.returncode == 130 and "Traceback" not in err and "SIGTERM" in err
    assert "(interrupted: targets not started are skipped)" in out
    assert "interrupted: not started before the run was stopped" in out


def test_a_second_signal_quits_at_once(emulator: Emulator, operator_env: Seed, tmp_path: Path) -> None:
    # Given a run whose first target is in flight: every request takes 2 s, and the signals come once its
    # role was assumed (the ListBuckets that follows is then under way, whatever the machine's load)
    emulator.latency = 2.0
    process = start_run(operator_env, state=tmp_path)
    target_role = operator_env.targets[0].role_arn

    def assumed_target_role() -> bool:
        return any(r.params.get("RoleArn") == target_role for r in emulator.calls(action="AssumeRole"))

    deadline = time.monotonic() + 60
    while not assumed_target_role():
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    _out, err, elapsed = interrupt(emulator, process, signal.SIGINT, signal.SIGINT, after="AssumeRole")
    # Then it quits without waiting for the target in flight (which needs a second more), says so, and
    # never shows a traceback
    assert process.returncode == 130 and "Traceback" not in err
    assert "quitting without waiting" in err, err
    assert elapsed < 1.5  # the ListBuckets in flight alone needs 2 s


def test_the_runner_skips_what_it_had_not_started_once_stopped(
    emulator: Emulator, landscape: Seed, operator_sessions: ChainSessions
) -> None:
    stop = threading.Event()
    plan = plan_action(operator_sessions, landscape, "whoami", concurrency=1)

    def stop_after_first(result: TargetResult, done: int, total: int) -> None:
        stop.set()

    report = run_plan(operator_sessions, plan, stop=stop, on_result=stop_after_first)
    assert report.interrupted
    assert [r.status for r in report.results] == [Status.OK] + [Status.SKIPPED] * (len(landscape.targets) - 1)
