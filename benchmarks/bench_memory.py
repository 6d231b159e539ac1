"""Memory: the CLI's peak RSS against the number of target accounts, and the bounded credential cache's reuse.

Part 1 runs ``rolechain run --action list_buckets`` over N emulated accounts (U1 -> R1 -> R2, 20 threads)
in a process of its own, twice per N: ``--format json`` (the whole report printed at the end, every result
held for it) and ``--output DIR --format jsonl`` (each result written as it finishes). The peak RSS is the
CLI process's own (VmHWM, read by the process at exit: a parent's wait4 rusage would count the pages it
shared with this benchmark before exec).

Part 2 measures the credential cache in one process (``rolechain.runner.run_plan`` on one
``ChainSessions``): a run over N accounts, then the same run again, with the default bound
(``rolechain.sessions.DEFAULT_CACHE_ENTRIES`` chain points): AssumeRole calls of each run, entries held and
evictions, and the traced Python heap the cache holds after the runs.

    python benchmarks/bench_memory.py [--sizes 100,1000,10000] [--reuse 500,1000,2000] [--buckets 1]
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from emulated import Remote, cli_invocation, emulated

WORKERS = 20
# Runs the CLI's main() and reports its own peak RSS (kB) on stderr's last line when it exits.
CLI = (
    "import atexit, sys\n"
    "def peak():\n"
    "    for line in open('/proc/self/status'):\n"
    "        if line.startswith('VmHWM:'): sys.stderr.write('VmHWM ' + line.split()[1] + '\\n')\n"
    "atexit.register(peak)\n"
    "from rolechain.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def cli(remote: Remote, accounts: Sequence[str], *, stream: bool) -> dict[str, Any]:
    """One ``rolechain run`` over ``accounts``: wall seconds, peak RSS (MB), AssumeRole calls, targets ok."""
    folder = Path(tempfile.mkdtemp(prefix="rolechain-memory-"))
    output = ["--output", str(folder), "--format", "jsonl"] if stream else ["--format", "json"]
    argv, env = cli_invocation(
        remote.seed, accounts, "list_buckets", {}, WORKERS, launcher=("-c", CLI), output=output, state_home=str(folder)
    )
    remote.clear()
    started = time.monotonic()
    process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = process.communicate()
    wall = time.monotonic() - started
    lines = err.decode().strip().splitlines()
    if process.returncode != 0 or not lines or not lines[-1].startswith("VmHWM "):
        raise RuntimeError(f"rolechain run: exit {process.returncode}: {err.decode()[-800:]}")
    ok = _ok_count(out.decode(), folder, stream)
    if ok != len(accounts):
        raise RuntimeError(f"rolechain run: {ok} of {len(accounts)} targets ok")
    calls = remote.calls()
    return {
        "wall": wall,
        "rss": int(lines[-1].split()[1]) / 1024,
        "assume_role": calls[("sts", "AssumeRole")],
        "ok": ok,
    }


def _ok_count(out: str, folder: Path, stream: bool) -> int:
    if not stream:
        return int(json.loads(out)["summary"]["ok"])
    results = [json.loads(line) for line in out.splitlines() if line.strip()]
    written = next(folder.glob("*/results.jsonl")).read_text().splitlines()
    if len(written) != len(results):
        raise RuntimeError(f"--output wrote {len(written)} results, stdout showed {len(results)}")
    return sum(1 for r in results if r["status"] == "ok")


def reuse(remote: Remote, accounts: Sequence[str]) -> dict[str, Any]:
    """The same run twice in one process on one ChainSessions with the default cache bound."""
    import boto3
    from rolechain import ChainSessions, CredentialCache
    from rolechain.jobs import RoleSettings
    from rolechain.planning import PlanRequest, plan_run
    from rolechain.runner import run_plan

    seed = remote.seed
    base = boto3.Session(
        aws_access_key_id=seed.user_access_key_id,
        aws_secret_access_key=seed.user_secret_access_key,
        region_name=seed.region,
    )
    cache = CredentialCache()
    sessions = ChainSessions(base, endpoint_url=seed.endpoint_url, cache=cache)
    settings = RoleSettings(role_name=seed.target_role_name, external_id=seed.external_id, regions=[seed.region])
    request = PlanRequest(
        action="list_buckets", accounts=list(accounts), concurrency=WORKERS, extra_via=[seed.hub_role_arn]
    )
    plan = plan_run(sessions, settings, request)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    counts = []
    for _ in range(2):
        calls = cache.assume_role_calls
        report = run_plan(sessions, plan)
        if report.summary["ok"] != len(accounts):
            raise RuntimeError(f"in-process run: {report.summary}")
        counts.append(cache.assume_role_calls - calls)
        del report
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return {
        "accounts": len(accounts),
        "first": counts[0],
        "second": counts[1],
        "entries": len(cache),
        "evictions": cache.evictions,
        "held_mb": held / 1e6,
        "bound": cache.max_entries,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100,1000,10000", help="accounts of the CLI runs")
    parser.add_argument("--reuse", default="500,1000,2000", help="accounts of the in-process warm runs")
    parser.add_argument("--buckets", type=int, default=1, help="buckets per account")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    reuses = [int(s) for s in args.reuse.split(",") if s]
    largest = max(sizes + reuses)
    started = time.monotonic()
    with emulated(targets=largest, buckets_per_account=args.buckets, workers=16) as remote:
        print(f"# seeded {largest:,} accounts in {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
        accounts = remote.seed.target_account_ids
        rows = []
        for size in sizes:
            for stream in (False, True):
                row = {"size": size, "mode": "--output DIR --format jsonl" if stream else "--format json"}
                row |= cli(remote, accounts[:size], stream=stream)
                rows.append(row)
                print(f"# {row['size']} {row['mode']}: {row['rss']:.0f} MB, {row['wall']:.1f} s", file=sys.stderr)
        warm = []
        for size in reuses:
            warm.append(reuse(remote, accounts[:size]))
            print(f"# reuse {warm[-1]}", file=sys.stderr, flush=True)
    print(f"rolechain run --action list_buckets, {WORKERS} threads, {args.buckets} bucket(s) per account\n")
    print("| accounts | output | wall s | peak RSS MB | AssumeRole |")
    print("|---:|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['size']:,} | {r['mode']} | {r['wall']:.1f} | {r['rss']:.0f} | {r['assume_role']:,} |")
    print(f"\nthe same run twice in one process, credential cache bound {warm[0]['bound']:,} chain points\n")
    print("| accounts | AssumeRole, first run | AssumeRole, second run | entries | evictions | heap held after MB |")
    print("|---:|---:|---:|---:|---:|---:|")
    for w in warm:
        print(
            f"| {w['accounts']:,} | {w['first']:,} | {w['second']:,} | {w['entries']:,} | {w['evictions']:,} "
            f"| {w['held_mb']:.1f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
