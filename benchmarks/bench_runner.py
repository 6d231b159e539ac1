"""Runner: a job over N accounts with rolechain and with botocove, on one emulator in one run.

Two jobs over N target accounts (5 buckets each) through U1 -> R1 -> R2 (R2 with an ExternalId):

* inventory: action list_buckets, with_tags false;
* tagging: action tag_resources, resource_types [s3], tags {owner: x}, missing_only false.

Each job runs with (a) rolechain: ``plan_run`` + ``run_plan`` with a ``ChainSessions`` on U1's keys and
``extra_via=[R1]`` (a fresh credential cache: every AssumeRole is paid), then (b) again in the same process
(warm: cached credentials and clients), and (c) botocove (``@cove`` with ``target_ids``, ``external_id``,
the same session policy and an R1 session obtained from U1 as ``assuming_session``), running the same
action code on its per-account boto3 session, with the same number of threads, and (d) ``rolechain run`` as
an operator runs it, in a process of its own (its CPU from its rusage), then in two processes at once with
half the accounts each. The emulator runs in a child process, so CPU is the client's alone; AWS calls are
what the emulator recorded.

    python benchmarks/bench_runner.py [--accounts 10,50,200] [--buckets 5] [--workers 20]
                                      [--latency 0,0.05] [--iam on,off] [--plot FILE.png]
                                      [--profile | --no-profile]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import math
import os
import pstats
import resource
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import boto3
import botocove.cove_runner
from botocove import cove

sys.path.insert(0, str(Path(__file__).resolve().parent))
import rolechain.runner
from emulated import Remote, cli_invocation, emulated
from rolechain import ChainSessions, CredentialCache
from rolechain.actions import ActionContext, get_action
from rolechain.jobs import RoleSettings
from rolechain.planning import PlanRequest, plan_run
from rolechain.runner import RunReport, run_plan
from rolechain_dev.emulator import Seed

JOBS: dict[str, tuple[str, dict[str, Any]]] = {
    "inventory": ("list_buckets", {"with_tags": False}),
    "tagging": ("tag_resources", {"resource_types": ["s3"], "tags": {"owner": "x"}, "missing_only": False}),
}
COUNTED = [("sts", "AssumeRole"), ("s3", "ListBuckets"), ("tagging", "GetResources"), ("tagging", "TagResources")]


def isolate_environment() -> None:
    """Keep the developer's AWS config, credentials and proxies out of the run (boto3 reads them when
    sessions and clients are made, not at import); no botocove progress bar on stderr."""
    os.environ.update(
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_DEFAULT_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
    )
    # tqdm reads TQDM_* variables when imported, i.e. already; rolechain_job prints no progress either.
    botocove.cove_runner.tqdm = lambda iterable, **_kwargs: iterable  # type: ignore[attr-defined]
    for name in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        os.environ.pop(name, None)


@dataclass
class Measured:
    tool: str
    job: str
    n: int
    wall: float
    cpu: float
    calls: Counter[tuple[str, str]]
    server_cpu: float
    server_busy: float
    gc: float  # seconds the cyclic garbage collector ran in this process during the run


# -- the two tools -------------------------------------------------------------------------------------


def new_sessions(seed: Seed) -> ChainSessions:
    """U1's keys as the base, a private credential cache (so a cold run pays every AssumeRole)."""
    u1 = boto3.Session(
        aws_access_key_id=seed.user_access_key_id,
        aws_secret_access_key=seed.user_secret_access_key,
        region_name=seed.region,
    )
    return ChainSessions(u1, endpoint_url=seed.endpoint_url, cache=CredentialCache())


def rolechain_job(sessions: ChainSessions, seed: Seed, accounts: Sequence[str], job: str, workers: int) -> RunReport:
    action, params = JOBS[job]
    settings = RoleSettings(role_name=seed.target_role_name, external_id=seed.external_id, regions=[seed.region])
    request = PlanRequest(
        action=action,
        params=params,
        accounts=accounts,
        concurrency=workers,
        extra_via=[seed.hub_role_arn],
        job=f"bench-{job}",
    )
    plan = plan_run(sessions, settings, request)
    report = run_plan(sessions, plan)
    bad = [r.to_dict() for r in report.results if str(r.status) != "ok"]
    if bad:
        raise RuntimeError(f"rolechain {job}: {len(bad)} target(s) not ok, first: {bad[0]}")
    for result in report.results:
        check_output(job, result.output or {}, len(seed.target(result.account).buckets))
    return report


def botocove_job(remote: Remote, accounts: Sequence[str], job: str, workers: int) -> None:
    """The same action code, on the boto3 session botocove builds per account."""
    seed = remote.seed
    # botocove has no endpoint_url argument: its clients (and the R1 session's) find the emulator here.
    os.environ["AWS_ENDPOINT_URL"] = seed.endpoint_url
    # botocove always calls organizations:ListAccounts on the assuming session, even with target_ids.
    # R1 may not (its policy allows sts:AssumeRole only), so AWS answers AccessDenied and botocove goes on
    # with the target_ids alone. moto answers an empty list instead, which botocove would read as "no
    # account is ACTIVE in the organization": make the emulator answer as AWS would.
    remote.inject_fault(
        "ListAccounts",
        "AccessDeniedException",
        f"User: arn:aws:sts::{seed.hub_account}:assumed-role/{seed.hub_role_arn.rsplit('/', 1)[-1]}/botocove-bench "
        "is not authorized to perform: organizations:ListAccounts",
    )
    action_name, params = JOBS[job]
    action = get_action(action_name)
    parsed = action.parse_params(params)
    u1 = boto3.Session(
        aws_access_key_id=seed.user_access_key_id,
        aws_secret_access_key=seed.user_secret_access_key,
        region_name=seed.region,
    )
    r1 = u1.client("sts").assume_role(RoleArn=seed.hub_role_arn, RoleSessionName="botocove-bench")["Credentials"]
    r1_session = boto3.Session(
        aws_access_key_id=r1["AccessKeyId"],
        aws_secret_access_key=r1["SecretAccessKey"],
        aws_session_token=r1["SessionToken"],
        region_name=seed.region,
    )

    @cove(
        target_ids=list(accounts),
        rolename=seed.target_role_name,
        role_session_name=f"botocove-bench-{job}",
        policy=json.dumps(action.session_policy(), separators=(",", ":")),  # rolechain sends it on the last hop
        external_id=seed.external_id,
        assuming_session=r1_session,
        thread_workers=workers,
        regions=[seed.region],
    )
    def body(session: Any) -> dict[str, Any]:
        context = ActionContext(
            account=session.session_information["Id"],
            region=seed.region,
            dry_run=False,
            run_id="botocove",
            client_factory=session.client,
        )
        return action.run(context, parsed)

    output = body()
    if output["Exceptions"] or output["FailedAssumeRole"] or len(output["Results"]) != len(accounts):
        first = (output["Exceptions"] or output["FailedAssumeRole"] or [{}])[0]
        raise RuntimeError(f"botocove {job}: {len(output['Results'])}/{len(accounts)} ok, first failure: {first}")
    for result in output["Results"]:
        check_output(job, result["Result"], len(seed.target(result["Id"]).buckets))


def cli_command(seed: Seed, accounts: Sequence[str], job: str, workers: int) -> tuple[list[str], dict[str, str]]:
    """The ``rolechain run`` command line and environment of a job (:func:`emulated.cli_invocation`)."""
    action, params = JOBS[job]
    return cli_invocation(seed, accounts, action, params, workers)


def run_cli(seed: Seed, accounts: Sequence[str], job: str, workers: int, processes: int = 1) -> float:
    """Run the job through the CLI in ``processes`` processes of its own at once (the accounts split
    evenly, ``workers`` threads in all); returns their CPU seconds (user + system), interpreter start and
    imports included: the rusage of this process's terminated children before and after (the emulator,
    the only other child, runs on)."""
    shares = [list(accounts[i::processes]) for i in range(processes)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    running = []
    for share in shares:
        argv, env = cli_command(seed, share, job, max(1, workers // processes))
        running.append(subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    outputs = [process.communicate() for process in running]
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    for process, (out, err), share in zip(running, outputs, shares, strict=True):
        if process.returncode != 0:
            raise RuntimeError(f"rolechain CLI {job}: exit {process.returncode}: {err.decode()[-500:]}")
        report = json.loads(out)
        if report["summary"]["ok"] != len(share):
            raise RuntimeError(f"rolechain CLI {job}: {report['summary']}")
        for result in report["results"]:
            check_output(job, result["output"], len(seed.target(result["account"]).buckets))
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def check_output(job: str, output: dict[str, Any], buckets: int) -> None:
    done = output.get("count") if job == "inventory" else len(output.get("tagged", []))
    if done != buckets:
        raise RuntimeError(f"{job}: expected {buckets} buckets, got {output}")


# -- measuring -----------------------------------------------------------------------------------------


class GcClock:
    """CPU time spent in the cyclic garbage collector (it holds the GIL: every thread waits meanwhile).
    A collection starts and ends in one thread, so that thread's CPU clock measures it."""

    def __init__(self) -> None:
        self.total = 0.0
        self._started = 0.0  # collections never overlap: they run under the GIL
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.thread_time()
        else:
            self.total += time.thread_time() - self._started


GC_CLOCK = GcClock()


def measure(remote: Remote, tool: str, job: str, n: int, work: Callable[[], object]) -> Measured:
    # Collect the previous runs' garbage first, so that no run pays for another's.
    gc.collect()
    remote.clear()
    server_cpu = remote.server()[0]
    gc_before = GC_CLOCK.total
    cpu, wall = time.process_time(), time.perf_counter()
    done = work()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    server_cpu_after, busy = remote.server()
    gc_time = GC_CLOCK.total - gc_before
    if isinstance(done, float):  # the work ran in a process of its own and says what CPU that used
        cpu, gc_time = done, float("nan")
    return Measured(tool, job, n, wall, cpu, remote.calls(), server_cpu_after - server_cpu, busy, gc_time)


def warm_up(remote: Remote, workers: int) -> None:
    """Both tools once on one account per job, untimed: imports and one-time loads are not measured."""
    accounts = list(remote.seed.target_account_ids[:1])
    for job in JOBS:
        botocove_job(remote, accounts, job, workers)
        rolechain_job(new_sessions(remote.seed), remote.seed, accounts, job, workers)
        run_cli(remote.seed, accounts, job, workers)  # the page cache holds the CLI's modules


def run_matrix(remote: Remote, ns: Sequence[int], workers: int) -> list[Measured]:
    seed = remote.seed
    rows: list[Measured] = []
    for n in ns:
        accounts = list(seed.target_account_ids[:n])
        for job in JOBS:
            rows.append(measure(remote, "botocove", job, n, partial(botocove_job, remote, accounts, job, workers)))
            # one ChainSessions for the cold run and the warm one after it (credentials and clients cached)
            rolechain_run = partial(rolechain_job, new_sessions(seed), seed, accounts, job, workers)
            rows.append(measure(remote, "rolechain", job, n, rolechain_run))
            rows.append(measure(remote, "rolechain warm", job, n, rolechain_run))
            rows.append(measure(remote, "rolechain CLI", job, n, partial(run_cli, seed, accounts, job, workers)))
            # both cores: two CLI processes at once, half the accounts and half the threads each
            two = partial(run_cli, seed, accounts, job, workers, processes=2)
            rows.append(measure(remote, "rolechain CLI x2", job, n, two))
    return rows


def other_calls(calls: Counter[tuple[str, str]]) -> str:
    rest = {f"{s}:{a}": c for (s, a), c in sorted(calls.items()) if (s, a) not in COUNTED}
    return " ".join(f"{k}={v}" for k, v in rest.items()) or "-"


def gc_column(seconds: float) -> str:
    return "-" if math.isnan(seconds) else f"{seconds:.2f}"  # NaN: measured in another process


def print_table(rows: list[Measured], latency: float, workers: int, buckets: int, iam: bool) -> None:
    print(
        f"\n## per-request latency {latency * 1000:.0f} ms, {workers} threads, {buckets} buckets per account, "
        f"emulator IAM enforcement {'on' if iam else 'off'}"
    )
    print("   calls per target: AR=AssumeRole LB=ListBuckets GR=GetResources TR=TagResources; others in total\n")
    header = (
        f"{'job':9} {'N':>4} {'tool':16} {'wall s':>7} {'CPU s':>7} {'GC s':>6} {'srv CPU s':>9} "
        f"{'AR':>5} {'LB':>5} {'GR':>5} {'TR':>5} {'AR total':>8} {'wall x':>7} {'CPU x':>6}  other calls (total)"
    )
    print(header)
    print("-" * len(header))
    baseline = {(r.job, r.n): r for r in rows if r.tool == "botocove"}
    for r in rows:
        base = baseline[(r.job, r.n)]
        per = [r.calls[key] / r.n for key in COUNTED]
        print(
            f"{r.job:9} {r.n:>4} {r.tool:16} {r.wall:>7.2f} {r.cpu:>7.2f} {gc_column(r.gc):>6} {r.server_cpu:>9.2f} "
            + " ".join(f"{p:>5.2f}" for p in per)
            + f" {r.calls[('sts', 'AssumeRole')]:>8} {base.wall / r.wall:>6.1f}x {base.cpu / max(r.cpu, 1e-9):>5.1f}x"
            + f"  {other_calls(r.calls)}"
        )
    print(
        "\n(wall x, CPU x: botocove's wall / CPU time divided by this row's; GC: part of CPU spent in the cyclic "
        "garbage collector; srv CPU: the emulator process's; rolechain CLI: `rolechain run` in a process of its own, "
        "its CPU from its rusage, interpreter start and imports included)"
    )


def print_speedups(rows: list[Measured], ns: Sequence[int]) -> None:
    def row(tool: str, job: str, n: int) -> Measured:
        return next(r for r in rows if (r.tool, r.job, r.n) == (tool, job, n))

    for n in ns:
        for job in JOBS:
            base = row("botocove", job, n)
            line = "  ".join(
                f"{tool} wall {base.wall / m.wall:5.1f}x CPU {base.cpu / m.cpu:5.1f}x"
                for tool in ("rolechain", "rolechain CLI")
                for m in [row(tool, job, n)]
            )
            print(f"speedup {job:9} N={n:<4} {line}")
    warm_assumes = {(r.job, r.n): r.calls[("sts", "AssumeRole")] for r in rows if r.tool == "rolechain warm"}
    print(f"AssumeRole in warm runs: {warm_assumes} (expected all 0)")


def plot(rows: list[Measured], path: Path, latency: float, iam: bool, workers: int, buckets: int) -> None:
    """Wall time against accounts, one panel per job, botocove and rolechain (CLI process and in-process)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(JOBS), figsize=(11, 4.2), sharey=True)
    styles = {"botocove": "o-", "rolechain CLI": "s-", "rolechain": "^--"}
    for ax, job in zip(axes, JOBS, strict=True):
        for tool, style in styles.items():
            points = sorted((r.n, r.wall) for r in rows if r.tool == tool and r.job == job)
            ax.plot([n for n, _ in points], [w for _, w in points], style, label=tool)
            n, wall = points[-1]
            ax.annotate(f"{wall:.1f} s", (n, wall), textcoords="offset points", xytext=(-10, 6), ha="right")
        ax.set_title(f"{job} ({JOBS[job][0]})")
        ax.set_xlabel("target accounts")
        ax.set_yscale("log")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("wall time, s (log)")
    axes[0].legend()
    fig.suptitle(
        f"U1 -> R1 -> R2 on the emulator: {workers} threads, {buckets} buckets per account, "
        f"latency {latency * 1000:.0f} ms, IAM enforcement {'on' if iam else 'off'}",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -- profiling -----------------------------------------------------------------------------------------

# (label, file suffix, function name or function): inclusive CPU time of these functions, over every thread.
PHASES: list[tuple[str, str, str | Callable[..., Any]]] = [
    ("job run by a worker thread (all below)", "rolechain/runner.py", "_run_target"),
    ("  AssumeRole U1->R1 once, R1->R2 per target", "rolechain/sessions.py", "_assume"),
    ("  client creation (boto3 Session.client)", "boto3/session.py", "client"),
    ("  chain + hop validation (pydantic)", "rolechain/runner.py", "chain"),
    ("  action (incl. the AssumeRole, clients it asks for)", "rolechain/actions/list_buckets.py", "list_buckets"),
    ("  action (incl. the AssumeRole, clients it asks for)", "rolechain/actions/tag_resources.py", "tag_resources"),
    ("every AWS request (BaseClient._make_api_call)", "botocore/client.py", "_make_api_call"),
    ("  endpoint resolution (rules engine)", "botocore/regions.py", "construct_endpoint"),
    ("  param validation + serialization", "botocore/client.py", "_convert_to_request_dict"),
    ("  request signing (SigV4)", "botocore/signers.py", "sign"),
    ("  HTTP send + receive (urllib3, http.client; CPU)", "botocore/httpsession.py", "send"),
    ("  response parsing", "botocore/parsers.py", "parse"),
    ("  retry handler + other events", "botocore/retries/standard.py", "needs_retry"),
]


def profile_rolechain(remote: Remote, n: int, job: str, workers: int, timer: Callable[[], float]) -> pstats.Stats:
    """A cold rolechain run with a profiler in every worker thread (cProfile only sees its own thread)."""
    seed = remote.seed
    accounts = list(seed.target_account_ids[:n])
    local = threading.local()
    profilers: list[cProfile.Profile] = []
    lock = threading.Lock()
    original = rolechain.runner._run_target

    def profiled(*args: Any, **kwargs: Any) -> Any:
        profiler = getattr(local, "profiler", None)
        if profiler is None:
            profiler = local.profiler = cProfile.Profile(timer)
            with lock:
                profilers.append(profiler)
        profiler.enable()
        try:
            return original(*args, **kwargs)
        finally:
            profiler.disable()

    rolechain.runner._run_target = profiled  # type: ignore[assignment]
    try:
        rolechain_job(new_sessions(seed), seed, accounts, job, workers)
    finally:
        rolechain.runner._run_target = original
    stats = pstats.Stats(profilers[0])
    for profiler in profilers[1:]:
        stats.add(profiler)
    return stats


def inclusive(stats: pstats.Stats, suffix: str, what: str | Callable[..., Any]) -> tuple[float, int]:
    """Inclusive time and calls of the functions named ``what`` in files ending with ``suffix`` (or of
    the function ``what`` itself, when several in the file share its name)."""
    name, line = (what, None) if isinstance(what, str) else (what.__name__, what.__code__.co_firstlineno)
    total, calls = 0.0, 0
    for (filename, lineno, func), (_cc, nc, _tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        if func == name and filename.replace(os.sep, "/").endswith(suffix) and line in (None, lineno):
            total += ct
            calls += nc
    return total, calls


def print_profile(remote: Remote, n: int, job: str, workers: int, latency: float) -> None:
    seed = remote.seed
    accounts = list(seed.target_account_ids[:n])
    # Unprofiled cold run first: wall, client CPU and the server's share.
    sessions = new_sessions(seed)
    m = measure(remote, "rolechain", job, n, lambda: rolechain_job(sessions, seed, accounts, job, workers))
    requests = sum(m.calls.values())
    print(
        f"\n## where a cold rolechain run's time goes: {job}, N={n}, {workers} threads, latency {latency * 1000:.0f} ms"
    )
    print(f"wall {m.wall:.2f} s for {requests} AWS requests ({requests / m.wall:.0f}/s)")
    print(f"  client process CPU  {m.cpu:6.2f} s = {m.cpu / m.wall:4.0%} of wall (one GIL: at most ~100%)")
    print(f"    of which cyclic GC {m.gc:5.2f} s = {m.gc / m.cpu:4.0%} of it (every thread waits meanwhile)")
    print(
        f"  emulator CPU        {m.server_cpu:6.2f} s = {m.server_cpu / m.wall:4.0%} of wall (one GIL: at most ~100%)"
    )
    print(
        f"  emulator in-request {m.server_busy:6.2f} s summed = {m.server_busy / m.wall:.1f} requests in the server "
        f"on average, {m.server_busy / requests * 1000:.1f} ms per request (incl. injected latency)"
    )
    per_target, per_request = m.cpu / n * 1000, m.server_cpu / requests * 1000
    print(f"  client CPU per target {per_target:.1f} ms, emulator CPU per request {per_request:.2f} ms")

    stats = profile_rolechain(remote, n, job, workers, time.thread_time)
    total = sum(tt for (_cc, _nc, tt, _ct, _callers) in stats.stats.values())  # type: ignore[attr-defined]
    print(f"\nclient CPU by phase (cProfile with thread CPU time in each worker thread, {total:.2f} s profiled;")
    print("inclusive times, indented rows are parts of the row above; GC pauses count where they hit; a tracing")
    print("profiler inflates CPU ~2-3x, most in functions called very often, e.g. botocore's event aliasing):")
    seen: dict[str, tuple[float, int]] = {}
    for label, suffix, name in PHASES:
        t, c = inclusive(stats, suffix, name)
        prev = seen.get(label, (0.0, 0))
        seen[label] = (prev[0] + t, prev[1] + c)
    for label, (t, c) in seen.items():
        print(f"  {label:52} {t:6.2f} s {t / total:5.0%}  {c:>6} calls")
    print("\ntop functions by own CPU time:")
    own = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)[:12]  # type: ignore[attr-defined]
    for (filename, line, func), (_cc, nc, tt, ct, _callers) in own:
        where = "/".join(Path(filename).parts[-2:])
        print(f"  {tt:6.2f} s {tt / total:5.0%} own  {ct:6.2f} s incl  {nc:>7}  {where}:{line}({func})")


# -- main ----------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--accounts", default="10,50,200", help="comma-separated N values (default 10,50,200)")
    parser.add_argument("--buckets", type=int, default=5, help="buckets per account (default 5)")
    parser.add_argument("--workers", type=int, default=20, help="threads for both tools (default 20)")
    parser.add_argument(
        "--latency", default="0", help="comma-separated per-request latencies in seconds (e.g. 0,0.05; default 0)"
    )
    parser.add_argument(
        "--profile", action=argparse.BooleanOptionalAction, default=True, help="profile rolechain at the largest N"
    )
    parser.add_argument(
        "--iam",
        default="on",
        help="comma-separated emulator IAM enforcement modes, a table each (on: every request checked; default on)",
    )
    parser.add_argument("--plot", type=Path, help="write a PNG of wall time against accounts (the first table) here")
    args = parser.parse_args()
    isolate_environment()
    iam_modes = [{"on": True, "off": False}[mode] for mode in args.iam.split(",")]
    ns = sorted({int(n) for n in args.accounts.split(",")})
    latencies = [float(x) for x in args.latency.split(",")]

    started = time.perf_counter()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"load average {load} on {os.cpu_count()} CPUs (other processes skew wall and CPU times)")
    with emulated(targets=max(ns), buckets_per_account=args.buckets) as remote:
        print(
            f"emulator seeded with {max(ns)} accounts x {args.buckets} buckets in {time.perf_counter() - started:.1f} s"
        )
        plotted: list[Measured] = []
        for iam in iam_modes:
            remote.set_enforce_iam(iam)
            for latency in latencies:
                remote.set_latency(latency)
                rows = run_matrix(remote, ns, args.workers)
                print_table(rows, latency, args.workers, args.buckets, iam)
                print_speedups(rows, ns)
                if not plotted:
                    plotted = rows
        remote.set_enforce_iam(iam_modes[0])
        if args.plot:
            plot(plotted, args.plot, latencies[0], iam_modes[0], args.workers, args.buckets)
            print(f"\nplot of wall time against accounts (latency {latencies[0] * 1000:.0f} ms) written to {args.plot}")
        if args.profile:
            for latency in latencies:
                remote.set_latency(latency)
                print_profile(remote, max(ns), "tagging", args.workers, latency)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\ntotal {time.perf_counter() - started:.0f} s; load average now {load} on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
