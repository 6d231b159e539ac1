"""Fan-out: a queued run over N emulated target accounts, as Lambda would run it.

The scheduler handler runs in a process of its own (INLINE_TARGET_LIMIT 0: every target queued), then
several worker processes drain the emulated SQS queue as the Lambda event source would (receive 10,
call the worker handler, delete what it did not hand back). The emulator (moto behind rolechain's
IAM-enforcing front) runs in this process. Reported per N: wall time of the scheduler and of the whole
run, peak RSS of the scheduler and of the largest worker (and that worker's peak when it had done half
its targets: flat memory means the second half adds nothing), AWS calls by kind against their floor, targets
lost (N minus the targets counted on the run: must be 0) and completion events (must be 1). Then
Organizations resolution at --org accounts in 50 nested OUs (calls and time).

    python benchmarks/bench_fanout.py [--sizes 100,1000,10000] [--workers 4] [--org 1000] [--plot PNG]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


# -- the child processes ------------------------------------------------------------------------------
def child_scheduler() -> None:
    """Run the scheduler handler once over job ``bench`` (environment: the function's)."""
    from rolechain_dev.local import FakeContext, load_handler

    scheduler = load_handler("scheduler", ROOT)
    run = scheduler.lambda_handler({"job": "bench"}, FakeContext("scheduler", remaining_ms=900_000))
    print(
        json.dumps(
            {"run_id": run["run_id"], "enqueued": run.get("enqueued"), "status": run["status"], "rss": _peak_rss()}
        )
    )


def child_worker() -> None:
    """Drain the queue as the SQS event source would, until it stays empty and the run is completed."""
    import boto3
    from rolechain_dev.local import FakeContext, load_handler

    worker = load_handler("worker", ROOT)
    sqs = boto3.client("sqs")
    dynamodb = boto3.client("dynamodb")
    queue, table, run_id = os.environ["TARGET_QUEUE_URL"], os.environ["RUNS_TABLE"], os.environ["BENCH_RUN_ID"]
    processed, idle = 0, 0
    peaks: list[tuple[int, float]] = []  # (targets processed, peak RSS so far): flat once its caches are full
    while True:
        got = sqs.receive_message(
            QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1, AttributeNames=["ApproximateReceiveCount"]
        ).get("Messages", [])
        if not got:
            idle += 1
            key = {"pk": {"S": f"run#{run_id}"}, "sk": {"S": "meta"}}
            meta = dynamodb.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item", {})
            if "completed_at" in meta or idle > 60:
                break
            continue
        idle = 0
        event = {"Records": [_record(m) for m in got]}
        response = worker.lambda_handler(event, FakeContext("worker", remaining_ms=900_000))
        failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
        done = [m for m in got if m["MessageId"] not in failed]
        if done:
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)]
            sqs.delete_message_batch(QueueUrl=queue, Entries=entries)
        processed += len(got)
        peaks.append((processed, _peak_rss()))
    half = next((rss for done, rss in peaks if done >= processed / 2), 0.0)
    print(json.dumps({"processed": processed, "rss": _peak_rss(), "rss_half": half}))


def _peak_rss() -> float:
    """This process's peak RSS in MB since its exec (VmHWM). Not the parent's wait4 rusage: Linux counts
    in a child's ru_maxrss the pages it shared with its parent before exec, which here is the emulator
    holding every seeded account (that made scheduler and worker look alike and grow with the run)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _record(message: dict[str, Any]) -> dict[str, Any]:
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {
            "ApproximateReceiveCount": message.get("Attributes", {}).get("ApproximateReceiveCount", "1"),
            "SentTimestamp": "0",
            "SenderId": "bench",
            "ApproximateFirstReceiveTimestamp": "0",
        },
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:111111111111:bench",
        "awsRegion": "us-east-1",
    }


def _spawn(role: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, __file__, "--child", role], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _reap(process: subprocess.Popen[str]) -> tuple[dict[str, Any], float, float]:
    """The child's last line of output (JSON), its own peak RSS in MB and its CPU seconds (wait4's
    rusage of that one child)."""
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    out = process.stdout.read() if process.stdout else ""
    err = process.stderr.read() if process.stderr else ""
    if process.returncode != 0:
        raise RuntimeError(f"child failed ({process.returncode}): {err[-2000:]}")
    answer: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return answer, float(answer["rss"]), usage.ru_utime + usage.ru_stime


# -- one size -------------------------------------------------------------------------------------------
def fan_out(emulator: Any, size: int, workers: int) -> dict[str, Any]:
    from rolechain_dev.local import create_hub_resources

    emulator.reset()
    started = time.monotonic()
    seed = emulator.seed(targets=size, buckets_per_account=0, workers=16)
    seeded = time.monotonic() - started
    hub = create_hub_resources(emulator, seed, ROOT)
    folder = Path(tempfile.mkdtemp(prefix="rolechain-fanout-"))
    jobs = folder / "jobs.yaml"
    accounts = ", ".join(f"'{a}'" for a in seed.target_account_ids)
    jobs.write_text(
        "version: 1\n"
        f"defaults: {{external_id: {seed.external_id}}}\n"
        f"jobs:\n  bench: {{action: list_buckets, targets: {{accounts: [{accounts}]}}}}\n"
    )
    env = {
        **os.environ,
        **hub.function_env(seed.endpoint_url, seed.region),
        **hub.credential_env(),
        "AWS_DEFAULT_REGION": seed.region,
        "JOB_FILE": str(jobs),
        "INLINE_TARGET_LIMIT": "0",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "ERROR",
    }
    for key in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        env.pop(key, None)
    emulator.clear_requests()
    started = time.monotonic()
    emulator_cpu = _own_cpu()
    run, scheduler_rss, scheduler_cpu = _reap(_spawn("scheduler", env))
    scheduler_s = time.monotonic() - started
    env["BENCH_RUN_ID"] = run["run_id"]
    children = [_spawn("worker", env) for _ in range(workers)]
    reaped = [_reap(child) for child in children]
    largest = max(reaped, key=lambda r: r[1])
    worker_rss = largest[1]
    total_s = time.monotonic() - started
    emulator_cpu = _own_cpu() - emulator_cpu

    calls = Counter(r.action for r in emulator.calls())
    dynamodb = emulator.admin_session(seed.hub_account, seed.region).client("dynamodb")
    counted = 0
    for page in dynamodb.get_paginator("query").paginate(
        TableName=hub.table,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :done)",
        ExpressionAttributeValues={":pk": {"S": f"run#{run['run_id']}"}, ":done": {"S": "done#"}},
        Select="COUNT",
    ):
        counted += page["Count"]
    events = sum(1 for r in emulator.calls(service="events", action="PutEvents") if r.status == 200)
    return {
        "size": size,
        "seed_s": seeded,
        "scheduler_s": scheduler_s,
        "total_s": total_s,
        "scheduler_rss": scheduler_rss,
        "worker_rss": worker_rss,
        "worker_rss_half": largest[0]["rss_half"],
        "worker_targets": largest[0]["processed"],
        "client_cpu": scheduler_cpu + sum(r[2] for r in reaped),
        "emulator_cpu": emulator_cpu,
        "calls": calls,
        "lost": size - counted,
        "events": events,
    }


def _own_cpu() -> float:
    """CPU seconds of this process (the emulator's threads) so far."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def organisation(emulator: Any, accounts: int) -> dict[str, Any]:
    """Resolve ``accounts`` accounts in 50 nested OUs (10 top OUs, each with 4 below it) with R1's reader."""
    from rolechain import ChainSessions, CredentialCache
    from rolechain.jobs import OrganizationTargets, Targets
    from rolechain.targets import OrganizationReader, resolve
    from rolechain_dev.emulator import HUB_ACCOUNT

    emulator.reset()
    paths = [[f"top{t}"] for t in range(10)] + [[f"top{t}", f"sub{s}"] for t in range(10) for s in range(4)]
    members = {f"4{n:011d}": paths[n % len(paths)] for n in range(accounts)}
    started = time.monotonic()
    emulator.create_organization(HUB_ACCOUNT, members)
    seeded = time.monotonic() - started
    sessions = ChainSessions(
        emulator.admin_session(HUB_ACCOUNT), endpoint_url=emulator.endpoint_url, cache=CredentialCache()
    )
    reader = OrganizationReader(sessions)
    started = time.monotonic()
    resolved = resolve(Targets(organization=OrganizationTargets(root=True)), reader, hub_account=HUB_ACCOUNT)
    return {
        "accounts": len(resolved.accounts),
        "ous": len(paths),
        "calls": reader.calls,
        "seconds": time.monotonic() - started,
        "seed_s": seeded,
    }


def floors(size: int) -> dict[str, int]:
    """The fewest calls of each kind a queued run over ``size`` targets can make."""
    return {
        "AssumeRole": size,  # one per target (R1 is the functions' own role)
        "SendMessageBatch": math.ceil(size / 10),
        "ReceiveMessage": math.ceil(size / 10),
        "ListBuckets": size,  # the action itself
        "BatchGetItem": size,  # the worker's one read: record, the target's marker, its plan bucket
        "PutObject": size,  # the target's results in the results bucket
        "PutEvents": 1,  # the completion event
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--workers", type=int, default=4, help="worker processes draining the queue")
    parser.add_argument("--org", type=int, default=1000, help="accounts of the Organizations resolution (0: skip)")
    parser.add_argument("--plot", type=Path, help="write a PNG of wall time and memory against targets")
    parser.add_argument(
        "--no-iam",
        action="store_true",
        help="the emulator checks trust (AssumeRole) but no IAM policy: its own cost off the measured time",
    )
    parser.add_argument("--child", choices=["scheduler", "worker"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child == "scheduler":
        child_scheduler()
        return 0
    if args.child == "worker":
        child_worker()
        return 0
    from rolechain_dev.emulator import Emulator

    sizes = [int(s) for s in args.sizes.split(",") if s]
    rows = []
    with Emulator() as emulator:
        emulator.enforce_iam = not args.no_iam
        # first: resetting the emulator after 10,000 seeded accounts takes minutes
        org = organisation(emulator, args.org) if args.org else None
        for size in sizes:
            row = fan_out(emulator, size, args.workers)
            rows.append(row)
            # each row as soon as it is measured: a later size failing loses nothing
            shown = {k: v for k, v in row.items() if k != "calls"} | {"calls": dict(row["calls"])}
            print(f"# {size} targets: {json.dumps(shown, default=str)}", file=sys.stderr, flush=True)
    iam = "trust only (--no-iam)" if args.no_iam else "trust and IAM policies"
    print(f"queued path, {args.workers} worker processes (python {sys.version.split()[0]}), emulator enforces {iam}\n")
    print(
        "| targets | scheduler s | total s | scheduler RSS MB | worker RSS MB (at half its targets) "
        "| targets of that worker | hub CPU s | emulator CPU s | lost | completion events |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['size']:,} | {r['scheduler_s']:.1f} | {r['total_s']:.1f} | {r['scheduler_rss']:.0f} "
            f"| {r['worker_rss']:.0f} ({r['worker_rss_half']:.0f}) | {r['worker_targets']:,} "
            f"| {r['client_cpu']:.1f} | {r['emulator_cpu']:.1f} | {r['lost']} | {r['events']} |"
        )
    print("\nAWS calls by kind (floor in brackets)\n")
    kinds = [*floors(1), "PutItem", "BatchWriteItem", "UpdateItem", "GetItem", "DeleteMessageBatch"]
    print("| targets | " + " | ".join(kinds) + " |")
    print("|---:|" + "---:|" * len(kinds))
    for r in rows:
        floor = floors(r["size"])
        cells = [f"{r['calls'].get(k, 0):,}" + (f" ({floor[k]:,})" if k in floor else "") for k in kinds]
        print(f"| {r['size']:,} | " + " | ".join(cells) + " |")
    if org:
        print(
            f"\nOrganizations: {org['accounts']:,} accounts in {org['ous']} nested OUs resolved with "
            f"{org['calls']} calls in {org['seconds']:.2f} s (seeding {org['seed_s']:.1f} s)"
        )
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        figure, (axis, memory) = plt.subplots(1, 2, figsize=(10, 4))
        sizes = [r["size"] for r in rows]
        axis.plot(sizes, [r["total_s"] for r in rows], marker="o", label="queued run, total")
        axis.plot(sizes, [r["scheduler_s"] for r in rows], marker="s", label="scheduler")
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("targets")
        axis.set_ylabel("wall time (s)")
        axis.set_title(f"fan-out, {args.workers} worker processes, emulated AWS")
        axis.legend()
        memory.plot(sizes, [r["scheduler_rss"] for r in rows], marker="s", label="scheduler")
        memory.plot(sizes, [r["worker_rss"] for r in rows], marker="o", label="largest worker")
        half = [r["worker_rss_half"] for r in rows]
        memory.plot(sizes, half, marker="o", linestyle="--", label="it, at half its targets")
        memory.set_xscale("log")
        memory.set_ylim(bottom=0)
        memory.set_xlabel("targets")
        memory.set_ylabel("peak RSS (MB)")
        memory.set_title("memory per process")
        memory.legend()
        figure.tight_layout()
        figure.savefig(args.plot, dpi=120)
        print(f"\nplot: {args.plot}")
    return 0 if all(r["lost"] == 0 and r["events"] == 1 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
