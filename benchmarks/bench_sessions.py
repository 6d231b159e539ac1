"""Chained sessions: AssumeRole calls and client CPU, naive boto3 against rolechain.

M uses over N targets through U1 -> R1 -> R2. Naive boto3 builds a new session and assumes both
roles on every use (2*M*N AssumeRole); rolechain reuses cached credentials (N+1 AssumeRole) and
builds every session from one shared loader. The emulator runs in a child process, so CPU time is
the client's alone.

    python benchmarks/bench_sessions.py [--uses 10] [--targets 20]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import boto3

sys.path.insert(0, str(Path(__file__).resolve().parent))
from emulated import Remote, emulated
from rolechain import Chain, ChainSessions, CredentialCache
from rolechain_dev.emulator import Seed


def naive_use(seed: Seed, account_role: str) -> None:
    """What hand-written boto3 often does: a fresh session and both AssumeRoles on every use."""
    u1 = boto3.Session(
        aws_access_key_id=seed.user_access_key_id,
        aws_secret_access_key=seed.user_secret_access_key,
        region_name=seed.region,
    )
    r1 = u1.client("sts", endpoint_url=seed.endpoint_url).assume_role(
        RoleArn=seed.hub_role_arn, RoleSessionName="naive"
    )["Credentials"]
    s1 = boto3.Session(
        aws_access_key_id=r1["AccessKeyId"],
        aws_secret_access_key=r1["SecretAccessKey"],
        aws_session_token=r1["SessionToken"],
        region_name=seed.region,
    )
    r2 = s1.client("sts", endpoint_url=seed.endpoint_url).assume_role(
        RoleArn=account_role, RoleSessionName="naive", ExternalId=seed.external_id
    )["Credentials"]
    s2 = boto3.Session(
        aws_access_key_id=r2["AccessKeyId"],
        aws_secret_access_key=r2["SecretAccessKey"],
        aws_session_token=r2["SessionToken"],
        region_name=seed.region,
    )
    s2.client("s3", endpoint_url=seed.endpoint_url).list_buckets()


def measure(remote: Remote, uses: int, work: Callable[[str], None]) -> tuple[float, float, int, int]:
    remote.clear()
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(uses):
        for target in remote.seed.targets:
            work(target.role_arn)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    calls = remote.calls()
    return cpu, wall, calls[("sts", "AssumeRole")], calls[("s3", "ListBuckets")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--uses", type=int, default=10, help="M: uses of every target")
    parser.add_argument("--targets", type=int, default=20, help="N: target accounts")
    args = parser.parse_args()
    with emulated(targets=args.targets, buckets_per_account=1) as remote:
        seed = remote.seed
        naive = measure(remote, args.uses, lambda role: naive_use(seed, role))

        base = boto3.Session(
            aws_access_key_id=seed.user_access_key_id,
            aws_secret_access_key=seed.user_secret_access_key,
            region_name=seed.region,
        )
        sessions = ChainSessions(base, endpoint_url=seed.endpoint_url, cache=CredentialCache())
        sessions.client(None, "sts"), sessions.client(None, "s3")  # load the models once, as any warm process has
        chains = {
            t.role_arn: Chain.build([seed.hub_role_arn, t.role_arn], external_id=seed.external_id) for t in seed.targets
        }
        # first use of each target alone: the cost of a new target (assume + session + client)
        first = measure(remote, 1, lambda role: sessions.client(chains[role], "s3").list_buckets())
        repeat = measure(remote, args.uses - 1, lambda role: sessions.client(chains[role], "s3").list_buckets())

    m, n = args.uses, args.targets
    rolechain_cpu = first[0] + repeat[0]
    rows = [
        ("naive boto3", naive[2], 2 * m * n, naive[0], naive[0] / (m * n) * 1000, naive[1]),
        ("rolechain", first[2] + repeat[2], n + 1, rolechain_cpu, rolechain_cpu / (m * n) * 1000, first[1] + repeat[1]),
    ]
    print(f"M={m} uses x N={n} targets through U1 -> R1 -> R2 (ListBuckets per use); client CPU only\n")
    print(f"{'':12} {'AssumeRole':>10} {'expected':>9} {'CPU s':>8} {'CPU ms/use':>11} {'wall s':>8}")
    for name, calls, expected, cpu, per_use, wall in rows:
        print(f"{name:12} {calls:>10} {expected:>9} {cpu:>8.2f} {per_use:>11.1f} {wall:>8.2f}")
    per_target_naive = naive[0] / (m * n) * 1000
    per_target_first = first[0] / n * 1000
    print(
        f"\nnew target: naive {per_target_naive:.1f} ms CPU per use (3 sessions, 2 assumes, 3 clients); "
        f"rolechain {per_target_first:.1f} ms CPU for a target's first use (assume + session + client), "
        f"{repeat[0] / max(1, (m - 1) * n) * 1000:.2f} ms per reuse"
    )
    print(
        f"CPU per target, naive / rolechain first use: {per_target_naive / per_target_first:.1f}x; "
        f"whole run: {naive[0] / rolechain_cpu:.1f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
