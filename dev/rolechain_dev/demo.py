"""The README's main command: rolechain's story on a local multi-account AWS (no real account needed).

Starts the emulator (moto behind a recording, trust-enforcing front), seeds a hub account with the
operator user U1 and the hub role R1, and target accounts with R2 ``rolechain-target``. Then:

1. as an operator would from a laptop, the ``rolechain`` CLI: ``whoami`` through U1 -> R1 -> R2, a
   hop that fails and the doctor naming its fix (live, then over the templates), the example inventory
   job (its results and HTML report kept with ``--output``, the report's path printed), the tagging job
   (dry run, then for real), then an organisation: a job over an OU, its plan (``rolechain targets``) and run;
2. as Lambda runs them, the hub's functions with the fixtures in ``events/``: the scheduled inventory
   job, the tagging job and a remediation event, through ``sam build`` + ``sam local invoke`` with
   R1's session credentials (or, where ``sam local`` cannot run, the same handlers in-process, saying
   why), and what happened in each account.

    python -m rolechain_dev.demo [--targets 5] [--buckets 3] [--part cli|lambda|all]

``ROLECHAIN_LAMBDA_RUNNER=sam`` forces ``sam local`` (the demo then fails when it cannot run instead of
falling back), ``in-process`` forces the handlers in this process, ``auto`` (the default) picks.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError
from rolechain import cli
from rolechain.actions import target_role_policy

from rolechain_dev import local
from rolechain_dev.emulator import Emulator, Seed


def example_job_file() -> str:
    return str(local.DEMO_JOB_FILE)


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
    parser = argparse.ArgumentParser(prog="python -m rolechain_dev.demo", description=__doc__.split("\n")[0])
    parser.add_argument("--targets", type=int, default=5, help="target accounts to emulate (default 5)")
    parser.add_argument("--buckets", type=int, default=3, help="S3 buckets per target account (default 3)")
    parser.add_argument("--part", choices=["cli", "lambda", "all"], default="all", help="which part to run")
    args = parser.parse_args(argv)
    if not 1 <= args.targets <= 500:
        parser.error("--targets must be between 1 and 500")
    try:
        choice = local.lambda_runner_choice()
    except ValueError as exc:
        parser.error(str(exc))
    readiness = local.SamReadiness(problem=f"{local.RUNNER_VARIABLE}=in-process")
    if args.part != "cli" and choice != "in-process":
        readiness = local.sam_local_readiness()
        if readiness.problem is not None and choice == "sam":
            print(f"demo: {local.RUNNER_VARIABLE}=sam, but `sam local` cannot run here: {readiness.problem}")
            return 1
    codes: list[int] = []
    # Containers reach the emulator at the host's bridge address; without sam local it stays on loopback.
    with Emulator(host=readiness.host_address or "127.0.0.1") as emulator:
        if args.part in ("cli", "all"):
            codes += cli_story(emulator, args.targets, args.buckets)
        if args.part in ("lambda", "all"):
            emulator.reset()
            codes += lambda_story(emulator, args.targets, args.buckets, readiness, fallback=choice == "auto")
    ok = all(c == 0 for c in codes)
    print("\ndemo " + ("finished: every step behaved as expected" if ok else "FAILED: see the steps above"))
    return 0 if ok else 1


def cli_story(emulator: Emulator, targets: int, buckets: int) -> list[int]:
    """Part 1: the operator's CLI through U1 -> R1 -> R2. Returns each step's outcome (0 = as expected)."""
    seed = emulator.seed(targets=targets, buckets_per_account=buckets, target_policy=target_role_policy())
    _say(
        f"emulated AWS at {seed.endpoint_url}: hub {seed.hub_account}, "
        f"{len(seed.targets)} target accounts with {buckets} buckets each"
    )
    print(f"U1 {seed.user_arn}\nR1 {seed.hub_role_arn}\nR2 arn:aws:iam::<target>:role/{seed.target_role_name}")
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        os.environ.pop(key, None)
    os.environ.update(operator_environment(seed))
    accounts = ",".join(seed.target_account_ids)
    job_file = example_job_file()
    via = ["--via", seed.hub_role_arn]
    codes: list[int] = []

    _say("who am I at every hop: U1 -> R1 -> R2 (first target)")
    first = seed.targets[0]
    codes.append(_run(["whoami", *via, "--via", first.role_arn, "--external-id", seed.external_id]))

    _say("the chain's identity in every target account (action whoami)")
    codes.append(_run(["run", "--action", "whoami", "--accounts", accounts, *via, "--external-id", seed.external_id]))

    _say("a hop that fails: R2 without the ExternalId its trust policy requires")
    code = _run(["whoami", *via, "--via", first.role_arn])
    codes.append(0 if code == 1 else 1)  # the expected outcome here is a clear failure

    _say("the doctor on that chain: which of the four conditions fails, and the statement that fixes it")
    audit = _audit_role(emulator, seed, first.account_id)
    code = _run(["doctor", *via, "--via", first.role_arn, "--inspect-via", audit])
    codes.append(0 if code == 1 else 1)

    _say("the doctor over the project's own templates (no AWS call): would the deployed chain work?")
    root = local.project_root()
    templates = ["--template", str(root / "template.yaml"), "--target-template", str(root / "target-role.yaml")]
    codes.append(_run(["doctor", "--templates", *templates]))

    folder = tempfile.mkdtemp(prefix="rolechain-demo-")  # the demo's output: runs kept with --output, job files
    configured = [a for a in seed.target_account_ids if a in _job_accounts()]
    only = ["--accounts", ",".join(configured)] if len(configured) < len(_job_accounts()) else []
    _say("before the first run: the doctor over the chains of the inventory job, 3 of its accounts")
    codes.append(_run(["doctor", "inventory", "--config", job_file, *via, *only, "--sample", "3"]))
    _say(f"the example inventory job ({job_file}), its results and HTML report kept with --output")
    runs = os.path.join(folder, "runs")
    codes.append(_run(["run", "inventory", "--config", job_file, *via, *only, "--output", runs]))
    report = _newest_report(runs)
    print(f"the run's HTML report (counts, failures by cause, a filter box): {report}" if report else "no HTML report")
    codes.append(0 if report else 1)
    _say("the tagging job, dry run first: what would change")
    codes.append(_run(["run", "tag-owner", "--config", job_file, *via, "--dry-run", *only]))
    _say("the tagging job for real")
    codes.append(_run(["run", "tag-owner", "--config", job_file, *via, *only]))
    _say("the inventory again: every bucket now carries the tags")
    codes.append(_run(["run", "inventory", "--config", job_file, *via, *only]))

    codes += organisation_story(emulator, seed, folder)

    calls = Counter(r.action for r in emulator.calls())
    _say("AWS calls the CLI sent (admin seeding excluded): " + ", ".join(f"{n} {c}" for n, c in calls.most_common(8)))
    return codes


MANAGEMENT_ACCOUNT = "300000000001"
ORG_READER = "rolechain-org-reader"


def organisation_story(emulator: Emulator, seed: Seed, folder: str) -> list[int]:
    """The target accounts in an organisation (OUs prod and dev, managed by another account): a job over
    an OU, its plan with ``rolechain targets``, then the run itself, its results kept with --output."""
    accounts = seed.target_account_ids
    half = max(1, len(accounts) // 2)
    members = {a: ["prod"] for a in accounts[:half]} | {a: ["dev"] for a in accounts[half:]}
    ous = emulator.create_organization(MANAGEMENT_ACCOUNT, {**members, seed.hub_account: ["platform"]})
    reader = emulator.organization_reader(MANAGEMENT_ACCOUNT, seed, ORG_READER)
    job_file = os.path.join(folder, "org-jobs.yaml")
    with open(job_file, "w", encoding="utf-8") as handle:
        handle.write(
            "version: 1\n"
            f"defaults: {{external_id: {seed.external_id}, via: ['{seed.hub_role_arn}']}}\n"
            "jobs:\n"
            "  prod-inventory:\n"
            "    action: list_buckets\n"
            f"    targets: {{organization: {{ous: [{ous['prod']}], role: '{reader}'}}}}\n"
        )
    _say(f"an organisation: {half} target account(s) in OU prod ({ous['prod']}), the rest in dev; a job over prod")
    codes = [_run(["targets", "prod-inventory", "--config", job_file])]
    _say("the events member accounts forward to the hub (from the job file's remediation rules; both stacks hold it)")
    codes.append(_run(["events", "pattern", "--config", example_job_file(), "--for", "member"]))
    _say("the job over the OU, its results kept as JSON Lines (--output)")
    codes.append(_run(["run", "prod-inventory", "--config", job_file, "--output", os.path.join(folder, "runs")]))
    return codes


def _newest_report(runs: str) -> Path | None:
    """The report.html of the latest run kept in ``runs`` (``--output`` writes one per run), if any."""
    reports = sorted(Path(runs).glob("*/report.html"), key=lambda p: p.stat().st_mtime)
    return reports[-1] if reports else None


def lambda_story(
    emulator: Emulator, targets: int, buckets: int, readiness: local.SamReadiness, *, fallback: bool = True
) -> list[int]:
    """Part 2: the hub's functions run with the fixtures in events/, as Lambda runs them: through
    ``sam local invoke`` when ``readiness`` has no problem, else in-process saying why. With ``fallback``
    off (``ROLECHAIN_LAMBDA_RUNNER=sam``) a failing ``sam local`` fails the step instead."""
    seed = emulator.seed(targets=targets, buckets_per_account=buckets, target_policy=target_role_policy())
    hub = local.create_hub_resources(emulator, seed)
    runner: local.SamLocal | local.InProcess
    sam: local.SamLocal | None = None
    if readiness.problem is None:
        port = int(seed.endpoint_url.rsplit(":", 1)[1])
        runner = sam = local.SamLocal(
            emulator_port=port, hub=hub, region=seed.region, host_address=readiness.host_address, sam=readiness.sam
        )
        _say("the hub's Lambda functions through `sam build` + `sam local invoke`, with R1's credentials")
        print(f"(the emulator listens on {readiness.host_address}, the containers' host.docker.internal)")
        print("building the application (sam build --cached --parallel)...", flush=True)
        try:
            runner.build()
        except (OSError, subprocess.SubprocessError) as exc:
            said = getattr(exc, "stderr", None) or getattr(exc, "stdout", None) or str(exc)
            problem = f"`sam build` failed: {said.strip().splitlines()[-1] if said.strip() else exc}"
            sam.close()
            if not fallback:
                print(f"FAILED: {problem}")
                return [1]
            sam, readiness = None, local.SamReadiness(problem=problem)
    if sam is None:
        _say(f"the hub's Lambda functions in-process, because {readiness.problem}")
        runner = local.InProcess(hub, seed.endpoint_url, seed.region)
    reader = "arn:aws:sts::111111111111:assumed-role/rolechain-readers/carol"
    steps: list[tuple[str, str, str, dict[str, Any]]] = [
        ("scheduler", "scheduler-inventory.json", "the scheduled inventory job", {}),
        ("scheduler", "scheduler-tag-owner.json", "the scheduled tagging job", {}),
        ("remediation", "remediation-create-bucket.json", "a CloudTrail CreateBucket event from 200000000001", {}),
        (
            "api",
            "api-post-run-job.json",
            "POST /runs by a reader (the job file's api rules grant it inventory only): blocking for real",
            {"caller": reader, "body": {"job": "block-public-access", "dry_run": False}},
        ),
    ]
    codes: list[int] = []
    for function, fixture, what, change in steps:
        event = json.loads((local.project_root() / "events" / fixture).read_text())
        if change:  # the API fixture as another caller, with another body
            event["requestContext"]["identity"]["userArn"] = change["caller"]
            event["body"] = json.dumps(change["body"])
            event["headers"].pop("Idempotency-Key", None)
            event["multiValueHeaders"].pop("Idempotency-Key", None)
        print(f"\n$ invoke {local.FUNCTIONS[function]} with events/{fixture}  ({what})", flush=True)
        try:
            outcome = runner.invoke(function, event)
        except Exception as exc:
            if fallback and isinstance(runner, local.SamLocal) and local.LAMBDA_IMAGE.split(":")[0] in str(exc):
                # SAM could not obtain the Lambda image (no network): same handlers, in this process
                print(f"  the Lambda image {local.LAMBDA_IMAGE} cannot be pulled here; running the handlers")
                print(f"  in-process instead ({local.RUNNER_VARIABLE}=sam makes this an error)")
                runner = local.InProcess(hub, seed.endpoint_url, seed.region)
                outcome = runner.invoke(function, event)
            else:  # the demo reports and goes on; its exit code says it failed
                print(f"  FAILED: {exc}")
                codes.append(1)
                continue
        print("  " + _outcome_line(outcome.payload))
        codes.append(0)
    if sam is not None:
        sam.close()
    _say("what happened in each account")
    rows = []
    for account in seed.target_account_ids:
        s3 = emulator.admin_session(account, seed.region).client("s3")
        for bucket in s3.list_buckets()["Buckets"]:
            rows.append((account, bucket["Name"], _tags(s3, bucket["Name"]), _blocked(s3, bucket["Name"])))
    print(cli.render_table(("account", "bucket", "tags", "public access blocked"), rows))
    if hub.results_bucket:
        _say(f"every run's results in the results bucket {hub.results_bucket} (JSON Lines; Athena's table reads it)")
        s3 = emulator.admin_session(seed.hub_account, seed.region).client("s3")
        runs: Counter[str] = Counter()
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=hub.results_bucket, Prefix="runs/"):
            for item in page.get("Contents", []):
                runs[item["Key"].rsplit("/", 1)[0] + "/"] += 1
        print(cli.render_table(("prefix", "objects (one per target)"), sorted(runs.items())))
    return codes


def _audit_role(emulator: Emulator, seed: Seed, account: str) -> str:
    """A read-only audit role in ``account`` that U1 may assume, for the doctor to read trust policies."""
    document = {"Effect": "Allow", "Principal": {"AWS": seed.user_arn}, "Action": "sts:AssumeRole"}
    target_iam = emulator.admin_session(account).client("iam")
    arn = str(
        target_iam.create_role(
            RoleName="rolechain-audit",
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [document]}),
        )["Role"]["Arn"]
    )
    read = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iam:GetRole", "Resource": "*"}]}
    target_iam.put_role_policy(RoleName="rolechain-audit", PolicyName="read", PolicyDocument=json.dumps(read))
    # U1 may assume it, and read its own and R1's IAM; R1 may read its own (what the doctor reads with)
    hub_iam = emulator.admin_session(seed.hub_account).client("iam")
    own = [seed.user_arn, seed.hub_role_arn]
    statements = [
        {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": arn},
        {"Effect": "Allow", "Action": ["iam:Get*", "iam:List*"], "Resource": own},
    ]
    user = seed.user_arn.rsplit("/", 1)[-1]
    hub_iam.put_user_policy(
        UserName=user, PolicyName="audit", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements})
    )
    read_own = {"Effect": "Allow", "Action": ["iam:Get*", "iam:List*"], "Resource": seed.hub_role_arn}
    hub_iam.put_role_policy(
        RoleName=seed.hub_role_arn.rsplit("/", 1)[-1],
        PolicyName="read-own",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [read_own]}),
    )
    return arn


def _outcome_line(payload: Any) -> str:
    if isinstance(payload, dict) and "statusCode" in payload:  # an API answer
        body = json.loads(payload.get("body") or "{}")
        return f"HTTP {payload['statusCode']}: {body.get('message') or _outcome_line(body)}"
    if isinstance(payload, dict) and "rules" in payload:
        return "; ".join(f"rule {r['rule']}: {_summary(r['summary'])}" for r in payload["rules"])
    if isinstance(payload, dict) and "summary" in payload:
        return f"run {payload['run_id']} ({payload.get('mode', '')}): {_summary(payload['summary'])}"
    return json.dumps(payload)[:200]


def _summary(summary: dict[str, int]) -> str:
    return ", ".join(f"{n} {status}" for status, n in summary.items() if n) or "no targets"


def _tags(s3: Any, bucket: str) -> str:
    try:
        tag_set = s3.get_bucket_tagging(Bucket=bucket)["TagSet"]
    except ClientError:
        return ""
    return " ".join(f"{t['Key']}={t['Value']}" for t in tag_set)


def _blocked(s3: Any, bucket: str) -> str:
    try:
        config = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    except ClientError:
        return "no"
    return "yes" if all(config.values()) else "partly"


def _job_accounts() -> list[str]:
    from rolechain.jobs import load_job_file

    return load_job_file(example_job_file()).job("inventory").targets.resolve()


if __name__ == "__main__":
    sys.exit(main())
