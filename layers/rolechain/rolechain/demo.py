"""The README's main command: rolechain's story on a local multi-account AWS (no real account needed).

Starts the emulator (moto behind a recording, trust-enforcing front), seeds a hub account with the
operator user U1 and the hub role R1, and target accounts with R2 ``rolechain-target``; then, as an
operator would from a laptop, runs the ``rolechain`` CLI: ``whoami`` through U1 -> R1 -> R2 in every
account, the example inventory job, the tagging job, and the inventory again to show the tags.

    python -m rolechain.demo [--targets 5] [--buckets 3]
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections import Counter
from collections.abc import Sequence
from importlib import resources

from rolechain import cli
from rolechain.actions import target_role_policy
from rolechain.emulator import Emulator, Seed


def example_job_file() -> str:
    return str(resources.files("rolechain") / "examples" / "jobs.yaml")


def _say(text: str) -> None:
    print(f"\n== {text}", flush=True)


def _run(argv: Sequence[str]) -> int:
    print("$ rolechain " + " ".join(shlex.quote(a) for a in argv), flush=True)
    code = cli.main(list(argv))
    print(f"(exit {code})", flush=True)
    return code


def operator_environment(seed: Seed) -> dict[str, str]:
    """The environment of an operator whose profile is U1, pointed at the emulator."""
    return {
        "AWS_ACCESS_KEY_ID": seed.user_access_key_id,
        "AWS_SECRET_ACCESS_KEY": seed.user_secret_access_key,
        "AWS_DEFAULT_REGION": seed.region,
        "AWS_ENDPOINT_URL": seed.endpoint_url,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rolechain.demo", description=__doc__.split("\n")[0])
    parser.add_argument("--targets", type=int, default=5, help="target accounts to emulate (default 5)")
    parser.add_argument("--buckets", type=int, default=3, help="S3 buckets per target account (default 3)")
    args = parser.parse_args(argv)
    if not 1 <= args.targets <= 500:
        parser.error("--targets must be between 1 and 500")

    with Emulator() as emulator:
        seed = emulator.seed(targets=args.targets, buckets_per_account=args.buckets, target_policy=target_role_policy())
        _say(
            f"emulated AWS at {seed.endpoint_url}: hub {seed.hub_account}, "
            f"{len(seed.targets)} target accounts with {args.buckets} buckets each"
        )
        print(f"U1 {seed.user_arn}\nR1 {seed.hub_role_arn}\nR2 arn:aws:iam::<target>:role/{seed.target_role_name}")
        for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
            os.environ.pop(key, None)
        os.environ.update(operator_environment(seed))
        accounts = ",".join(seed.target_account_ids)
        job_file = example_job_file()
        codes: list[int] = []

        _say("who am I at every hop: U1 -> R1 -> R2 (first target)")
        first = seed.targets[0]
        codes.append(
            _run(["whoami", "--via", seed.hub_role_arn, "--via", first.role_arn, "--external-id", seed.external_id])
        )

        _say("the chain's identity in every target account (action whoami)")
        codes.append(
            _run(
                [
                    "run",
                    "--action",
                    "whoami",
                    "--accounts",
                    accounts,
                    "--via",
                    seed.hub_role_arn,
                    "--external-id",
                    seed.external_id,
                ]
            )
        )

        _say("a hop that fails: R2 without the ExternalId its trust policy requires")
        code = _run(["whoami", "--via", seed.hub_role_arn, "--via", first.role_arn])
        codes.append(0 if code == 1 else 1)  # the expected outcome here is a clear failure

        configured = [a for a in seed.target_account_ids if a in _job_accounts()]
        only = ["--accounts", ",".join(configured)] if len(configured) < len(_job_accounts()) else []
        _say(f"the example inventory job ({job_file})")
        codes.append(_run(["run", "inventory", "--config", job_file, "--via", seed.hub_role_arn, *only]))

        _say("the tagging job, dry run first: what would change")
        codes.append(_run(["run", "tag-owner", "--config", job_file, "--via", seed.hub_role_arn, "--dry-run", *only]))
        _say("the tagging job for real")
        codes.append(_run(["run", "tag-owner", "--config", job_file, "--via", seed.hub_role_arn, *only]))
        _say("the inventory again: every bucket now carries the tags")
        codes.append(_run(["run", "inventory", "--config", job_file, "--via", seed.hub_role_arn, *only]))

        calls = Counter(r.action for r in emulator.calls())
        _say(
            "AWS calls the demo sent (admin seeding excluded): "
            + ", ".join(f"{name} {n}" for name, n in calls.most_common(8))
        )
    ok = all(c == 0 for c in codes)
    print("\ndemo " + ("finished: every step behaved as expected" if ok else "FAILED: see the steps above"))
    return 0 if ok else 1


def _job_accounts() -> list[str]:
    from rolechain.jobs import load_job_file

    return load_job_file(example_job_file()).job("inventory").targets.resolve()


if __name__ == "__main__":
    sys.exit(main())
