"""The ``rolechain`` command line: the operator's edge. Exit codes: 0 ok, 1 a hop/target failed,
2 bad input (a plugin that cannot be loaded included), 130 interrupted (Ctrl-C or SIGTERM). Each
command parses its flags into domain objects and calls the library; the commands that use actions
load the plugins first."""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from importlib import metadata
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, TextIO

import boto3
from botocore.exceptions import BotoCoreError, ProfileNotFound
from pydantic import ValidationError

import rolechain
from rolechain.actions import REGISTRY, target_role_policy
from rolechain.actions.plugins import load_plugins
from rolechain.chain import Chain, config_error, default_session_name, new_run_id, source_identity_of
from rolechain.cli_events import events_parser
from rolechain.errors import AssumeRoleError, BaseCredentialsError, ConfigError, RolechainError
from rolechain.jobs import (
    MAX_CONCURRENCY,
    OrganizationTargets,
    RoleSettings,
    Targets,
    check_service_caps,
    load_job_file,
)
from rolechain.planning import PlanRequest, plan_job, plan_run
from rolechain.render import Progress, Terminal, render_csv, render_html, render_report, render_table
from rolechain.runner import RunReport, TargetResult, run_plan
from rolechain.schedules_cli import schedules_parser
from rolechain.sessions import ChainSessions, Identity
from rolechain.targets import Excluded, resolve_accounts
from rolechain.types import ALL_REGIONS, DEFAULT_ROLE_NAME, SESSION_NAME_RE, TOKEN_CODE_RE, check

if TYPE_CHECKING:  # the doctors load when a doctor command runs: `rolechain run` never needs them
    from rolechain import doctor

# render_csv, render_report and render_table live in rolechain.render; other commands (and the demo) use them
# from here too.
__all__ = ["build_parser", "main", "render_csv", "render_report", "render_table"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C

Command = Callable[[argparse.Namespace, TextIO, TextIO], int]


def base_session(args: argparse.Namespace) -> boto3.Session:
    """The operator's base session (U1) from --profile/--region and the standard AWS environment."""
    try:
        return boto3.Session(profile_name=args.profile, region_name=args.region)
    except ProfileNotFound as exc:
        raise ConfigError("--profile", str(exc)) from exc


def add_aws_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", help="AWS profile of the base credentials (default: the standard chain)")
    parser.add_argument("--region", help="region of the sessions and of the STS endpoint")


def add_mfa_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--mfa-serial",
        metavar="SERIAL",
        help="MFA device (ARN or serial number) sent with the first --via hop, for trust policies that require "
        "aws:MultiFactorAuthPresent",
    )
    parser.add_argument(
        "--mfa-code", metavar="CODE", help="the device's current 6-digit code (asked for when omitted on a terminal)"
    )


def mfa_of(args: argparse.Namespace, *, via_required: bool = True) -> tuple[str, str] | None:
    """(serial, code) for the first hop, or None. The code is never echoed, not even in an error.
    ``via_required``: the chain's first hop is a --via (a job's own via hops come first otherwise)."""
    if args.mfa_serial is None:
        if args.mfa_code is not None:
            raise ConfigError("--mfa-code", "goes with --mfa-serial (the device it comes from)")
        return None
    if via_required and not args.via:
        raise ConfigError("--mfa-serial", "applies to the first --via hop; give at least one --via ROLE_ARN")
    serial = check("mfa_serial", args.mfa_serial, "--mfa-serial")
    code = args.mfa_code
    if code is None:
        if not sys.stdin.isatty():
            raise ConfigError("--mfa-code", "required with --mfa-serial when not on a terminal")
        code = getpass.getpass(f"MFA code for {serial}: ").strip()
    if not TOKEN_CODE_RE.match(code):
        raise ConfigError("--mfa-code", "must be the 6 digits the MFA device shows")
    return serial, code


SOURCE_IDENTITY_OF_CALLER = ""  # a bare --source-identity: the base identity's own name


def add_source_identity_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--source-identity",
        nargs="?",
        const=SOURCE_IDENTITY_OF_CALLER,
        metavar="NAME",
        help="SourceIdentity sent on every hop (needs sts:SetSourceIdentity): STS keeps it for the rest of the "
        "chain and CloudTrail in every account names it (a role whose trust requires it, like R1's "
        "OperatorPrincipals statement, refuses hops without it). Bare: your IAM user name or your role "
        "session's name (an SSO user's sign-in name)",
    )


def source_identity(args: argparse.Namespace, sessions: ChainSessions) -> str | None:
    """The SourceIdentity the flags ask for: None without --source-identity, the base identity's name for a
    bare flag. Raises ConfigError when the name breaks STS's rule or the base identity names nobody."""
    value: str | None = args.source_identity
    if value is None:
        return None
    if value == SOURCE_IDENTITY_OF_CALLER:
        arn = sessions.identity(None).arn
        value = source_identity_of(arn)
        if value is None:
            raise ConfigError("--source-identity", f"{arn} names no person: give --source-identity NAME")
    if not SESSION_NAME_RE.match(value) or value.lower().startswith("aws:"):
        raise ConfigError(
            "--source-identity", "must be 2-64 characters of letters, digits and +=,.@- (not starting with aws:)"
        )
    return value


# -- whoami ---------------------------------------------------------------------------------------
def _whoami_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "whoami",
        help="assume each --via role in turn and print the identity at every hop",
        description="Assumes each --via role in turn, from the base credentials, and prints the identity (account, "
        "ARN, user id) at every hop, so you see which chain a run would take.",
    )
    p.add_argument("--via", action="append", default=[], metavar="ROLE_ARN", help="role to assume (repeatable)")
    p.add_argument("--external-id", help="ExternalId for the last hop")
    p.add_argument("--session-name", help="RoleSessionName for every hop")
    add_source_identity_flag(p)
    add_mfa_flags(p)
    add_aws_flags(p)
    p.add_argument("--json", action="store_true", help='print {"hops": [{"arn", "account", "user_id"}, ...]}')
    p.set_defaults(command=cmd_whoami)


def cmd_whoami(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if args.region is not None:  # run checks its regions when it plans
        check("region", args.region, "--region")
    flags = (
        ("--external-id", args.external_id),
        ("--session-name", args.session_name),
        ("--source-identity", args.source_identity),
    )
    for flag, value in flags:
        if value is not None and not args.via:
            raise ConfigError(flag, "applies to the --via hops; give at least one --via ROLE_ARN")
    mfa = mfa_of(args)
    sessions = ChainSessions(base_session(args))
    identities: list[Identity] = [sessions.identity(None)]
    if args.via:
        chain = Chain.build(
            args.via,
            external_id=args.external_id,
            session_name=args.session_name or default_session_name("whoami", new_run_id()),
            source_identity=source_identity(args, sessions),
            mfa=mfa,
        )
        identities = sessions.identities(chain)
    if args.json:
        out.write(json.dumps({"hops": [i.to_dict() for i in identities]}) + "\n")
    else:
        rows = [("base" if n == 0 else n, i.account, i.arn, i.user_id) for n, i in enumerate(identities)]
        out.write(render_table(("hop", "account", "arn", "user_id"), rows, terminal=Terminal.of(out)) + "\n")
    return EXIT_OK


# -- doctor ---------------------------------------------------------------------------------------
def _doctor_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "doctor",
        help="which of each hop's two conditions fails, and the statement that fixes it",
        description="For each hop: does the caller's identity policy allow sts:AssumeRole on the role, and does "
        "the role's trust policy allow the caller? Both read and decided locally where the policies can be read, "
        "then confirmed by a real AssumeRole. Give the hops with --via, or a JOB with --config to examine the "
        "chains its run would take (to --accounts, or --sample N of its targets).",
    )
    p.add_argument("job", nargs="?", help="job name in --config: examine the chain to each of its targets")
    p.add_argument("--config", help="YAML job file (with JOB)")
    p.add_argument("--accounts", type=_csv, help="with JOB: only these of its accounts (comma-separated)")
    p.add_argument(
        "--sample", type=int, metavar="N", help="with JOB: N of its accounts, spread evenly (first and last among them)"
    )
    p.add_argument(
        "--via",
        action="append",
        default=[],
        metavar="ROLE_ARN",
        help="role to assume (repeatable); with JOB, hops before the job's own",
    )
    p.add_argument("--external-id", help="ExternalId for the last hop (not with JOB: the job file has it)")
    p.add_argument(
        "--inspect-via",
        action="append",
        default=[],
        metavar="ROLE_ARN",
        help="a role (reached from the base credentials) allowed iam:GetRole in another account, to read its "
        "trust policies; with JOB, {account} in it stands for each target account",
    )
    p.add_argument(
        "--org-via",
        metavar="ROLE_ARN",
        help="a role (reached from the base credentials) in the management account or a delegated administrator, "
        "to read the service control policies over each caller's account (default: the base credentials)",
    )
    add_source_identity_flag(p)
    add_mfa_flags(p)
    add_aws_flags(p)
    p.add_argument(
        "--json", action="store_true", help='print {"hops": [...], "ok": bool} (with JOB: {"targets": [...], "ok"})'
    )
    static = p.add_argument_group(
        "static mode", "--templates: decide the chain from template.yaml and target-role.yaml alone, no AWS call"
    )
    static.add_argument("--templates", action="store_true", help="check the templates instead of live roles")
    static.add_argument("--operator", metavar="ARN", help="an operator's user or role ARN to check against R1's trust")
    static.add_argument("--template", default="template.yaml", metavar="PATH", help="the hub stack's template")
    static.add_argument("--target-template", default="target-role.yaml", metavar="PATH", help="the member role's")
    static.add_argument(
        "--parameter",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a template parameter's value instead of its default (repeatable; either template's)",
    )
    p.set_defaults(command=cmd_doctor)


def _verdict(value: bool | None) -> str:
    return {True: "allows", False: "DENIES", None: "unknown"}[value]


def cmd_doctor(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from rolechain import doctor

    if args.templates:
        return cmd_doctor_templates(args, out, err)
    if args.operator is not None or args.parameter:
        raise ConfigError("--operator" if args.operator is not None else "--parameter", "goes with --templates")
    if args.job or args.config:
        return _doctor_job(args, out)
    for flag in ("accounts", "sample"):
        if getattr(args, flag) is not None:
            raise ConfigError(f"--{flag}", "goes with JOB --config FILE")
    if not args.via:
        raise ConfigError("--via", "give at least one ROLE_ARN to examine, or JOB --config FILE")
    mfa = mfa_of(args)
    sessions = ChainSessions(base_session(args))
    name = default_session_name("doctor", new_run_id())
    chain = Chain.build(
        args.via,
        external_id=args.external_id,
        session_name=name,
        source_identity=source_identity(args, sessions),
        mfa=mfa,
    )
    inspect = [Chain.build([arn], session_name=name) for arn in args.inspect_via]
    reports = doctor.examine(sessions, chain, inspect=inspect, org=_org_reader(sessions, args, name))
    ok = all(r.ok for r in reports)
    if args.json:
        out.write(json.dumps({"hops": [r.to_dict() for r in reports], "ok": ok}) + "\n")
        return EXIT_OK if ok else EXIT_FAILED

    rows = [
        (r.hop, r.caller_arn or "", r.role_arn, _verdict(r.identity_policy_allows), _verdict(r.trust_policy_allows),
         "yes" if r.assumed else "NO")
        for r in reports
    ]  # fmt: skip
    out.write(
        render_table(
            ("hop", "caller", "role", "(1) identity policy", "(2) trust policy", "assumed"),
            rows,
            terminal=Terminal.of(out),
        )
        + "\n"
    )
    for r in reports:
        for note in r.notes:
            out.write(f"hop {r.hop}: {note}\n")
        _write_fix(out, f"hop {r.hop}", r.fix)
    out.write("every hop works\n" if ok else "the chain is broken: see the fix above\n")
    return EXIT_OK if ok else EXIT_FAILED


def _org_reader(sessions: ChainSessions, args: argparse.Namespace, session_name: str) -> doctor.OrgReader:
    from rolechain import doctor

    if args.org_via is None:
        return doctor.OrgReader(sessions)
    via = Chain.build([check("role_arn", args.org_via, "--org-via")], session_name=session_name)
    return doctor.OrgReader(sessions, via)


def _write_fix(out: TextIO, where: str, fix: doctor.Fix | None) -> None:
    if fix is None:
        return
    out.write(f"{where} fix: {fix.say}\n")
    if fix.remove is not None:
        out.write("remove:\n" + json.dumps(fix.remove, indent=2) + "\n")
    if fix.statement is not None:
        out.write(json.dumps(fix.statement, indent=2) + "\n")


def cmd_doctor_templates(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``doctor --templates``: the chain's conditions decided from the templates, without AWS."""
    from rolechain import static_doctor
    from rolechain.templates import parse_parameters

    live = (
        ("JOB", args.job),
        ("--config", args.config),
        ("--via", args.via),
        ("--inspect-via", args.inspect_via),
        ("--external-id", args.external_id),
        ("--org-via", args.org_via),
    )
    for flag, value in live:
        if value:
            raise ConfigError(flag, "goes with the live doctor, not --templates")
    load_plugins()  # the registry's permissions include the plugins' actions
    report = static_doctor.examine_templates(
        args.template, args.target_template, operator=args.operator, parameters=parse_parameters(args.parameter)
    )
    if args.json:
        out.write(json.dumps(report.to_dict()) + "\n")
        return EXIT_OK if report.ok else EXIT_FAILED
    verdicts = {True: "allows", False: "DENIES", None: "not in the templates"}
    rows = [
        (r.hop, r.caller_arn or "", r.role_arn, verdicts[r.identity_policy_allows], verdicts[r.trust_policy_allows])
        for r in report.hops
    ]
    out.write(
        render_table(("hop", "caller", "role", "identity policy", "trust policy"), rows, terminal=Terminal.of(out))
        + "\n"
    )
    for note in report.notes:
        out.write(f"note: {note}\n")
    for r in report.hops:
        for note in r.notes:
            out.write(f"hop {r.hop}: {note}\n")
        _write_fix(out, f"hop {r.hop}", r.fix)
    for finding in report.checks:
        out.write(f"check {finding.check}: {'ok' if finding.ok else 'FAILS'}: {finding.say}\n")
        _write_fix(out, f"check {finding.check}", finding.fix)
    out.write(
        "the templates make a working chain\n" if report.ok else "the templates break the chain: see the fix above\n"
    )
    return EXIT_OK if report.ok else EXIT_FAILED


def _doctor_job(args: argparse.Namespace, out: TextIO) -> int:
    from rolechain import doctor

    if not (args.job and args.config):
        raise ConfigError("doctor", "give JOB with --config FILE (or --via ROLE_ARN ... without a job)")
    if args.external_id is not None:
        raise ConfigError("--external-id", "comes from the job file with JOB")
    if args.sample is not None and args.sample < 1:
        raise ConfigError("--sample", "must be at least 1")
    for arn in args.inspect_via:
        try:
            check("role_arn", arn.format(account="123456789012"), "--inspect-via")
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigError("--inspect-via", f"{arn!r}: only {{account}} may stand in it") from exc
    sessions = ChainSessions(base_session(args))
    request = PlanRequest(
        accounts=args.accounts or (),
        extra_via=args.via,
        source_identity=source_identity(args, sessions),
        mfa=mfa_of(args, via_required=False),
    )
    plan = plan_job(sessions, load_job_file(args.config), args.job, request)
    accounts = doctor.sample(list(dict.fromkeys(t.account for t in plan.targets)), args.sample)
    name = default_session_name(f"doctor-{plan.action.name}", new_run_id())
    org = _org_reader(sessions, args, name)
    reports = doctor.examine_job(
        sessions, plan, session_name=name, accounts=accounts, inspect=args.inspect_via, org=org
    )
    ok = all(r.ok for r in reports)
    total = len({t.account for t in plan.targets})
    if args.json:
        body = {"job": args.job, "targets": [r.to_dict() for r in reports], "examined": len(reports), "of": total}
        out.write(json.dumps({**body, "ok": ok}) + "\n")
        return EXIT_OK if ok else EXIT_FAILED
    rows = []
    fixes: dict[str, tuple[doctor.Fix, list[str]]] = {}
    for r in reports:
        broken = next((h for h in r.hops if not h.ok), None)
        if broken is None:
            rows.append((r.account, "ok", "", "", ""))
            continue
        rows.append(
            (r.account, f"hop {broken.hop}", broken.role_arn, _verdict(broken.identity_policy_allows),
             _verdict(broken.trust_policy_allows))
        )  # fmt: skip
        if broken.fix is not None:  # one fix shared by many accounts is printed once
            key = json.dumps(broken.fix.to_dict(), sort_keys=True)
            fixes.setdefault(key, (broken.fix, []))[1].append(r.account)
    out.write(f"job {args.job}: {len(reports)} of {total} account(s) examined\n")
    out.write(
        render_table(
            ("account", "breaks at", "role", "(1) identity policy", "(2) trust policy"), rows, terminal=Terminal.of(out)
        )
        + "\n"
    )
    for fix, where in fixes.values():
        _write_fix(out, ", ".join(where), fix)
    failed = sum(not r.ok for r in reports)
    out.write("every chain works\n" if ok else f"{failed} chain(s) broken: see the fixes above\n")
    return EXIT_OK if ok else EXIT_FAILED


# -- actions / policy / validate -----------------------------------------------------------------
def _actions_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "actions",
        help="list the registered actions",
        description="Lists the registered actions (the built-in ones and the plugins'): whether each changes "
        "anything, and the IAM actions it needs.",
    )
    p.add_argument("--json", action="store_true", help="print name, description, params schema and IAM actions")
    p.set_defaults(command=cmd_actions, uses_actions=True)


def cmd_actions(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    described = [REGISTRY[name].describe() for name in sorted(REGISTRY)]
    if args.json:
        out.write(json.dumps({"actions": described}, indent=2) + "\n")
    else:
        rows = [
            (a["name"], "yes" if a["changes"] else "no", ", ".join(a["iam_actions"]), a["description"])
            for a in described
        ]
        out.write(
            render_table(("action", "changes", "iam actions", "description"), rows, terminal=Terminal.of(out)) + "\n"
        )
    return EXIT_OK


def _policy_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "policy",
        help="print IAM policies derived from the action registry",
        description="Prints the IAM policy derived from the action registry: with target, the permissions the "
        "target role (R2) needs for every registered action, or for --actions.",
    )
    p.add_argument("which", choices=["target"], help="target: the permissions R2 needs for the actions")
    p.add_argument("--actions", type=_csv, help="only these actions (comma-separated; default: all)")
    p.set_defaults(command=cmd_policy, uses_actions=True)


def cmd_policy(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    out.write(json.dumps(target_role_policy(args.actions), indent=2) + "\n")
    return EXIT_OK


def _validate_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "validate",
        help="validate a job file",
        description="Checks a job file: its jobs, remediation rules and api rules. An error names the job, the "
        "field and the rule it breaks.",
    )
    p.add_argument("file", help="YAML job file")
    p.set_defaults(command=cmd_validate, uses_actions=True)


def cmd_validate(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    job_file = load_job_file(args.file)
    out.write(
        f"{args.file}: ok: {len(job_file.jobs)} job(s) ({', '.join(job_file.jobs) or 'none'}), "
        f"{len(job_file.remediations)} remediation rule(s)\n"
    )
    return EXIT_OK


# -- targets --------------------------------------------------------------------------------------
def _targets_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "targets",
        help="the accounts and regions a job would run in, and the accounts left out and why",
        description="Resolves a job's targets (explicit accounts, and AWS Organizations' for organization "
        "targets) as a run would, without running anything.",
    )
    p.add_argument("job", help="job name in --config")
    p.add_argument("--config", required=True, help="YAML job file")
    p.add_argument("--exclude", type=_csv, metavar="A,B", help="accounts to leave out")
    add_aws_flags(p)
    p.add_argument(
        "--json", action="store_true", help='print {"targets": [{"account", "region", "ou"}], "excluded": [...]}'
    )
    p.set_defaults(command=cmd_targets, uses_actions=True)


def cmd_targets(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    job = load_job_file(args.config).job(args.job)
    for account in args.exclude or ():
        check("account", account, "--exclude")
    sessions = ChainSessions(base_session(args))
    resolved = resolve_accounts(sessions, job.targets, where=f"jobs.{args.job}.targets", via=job.via)
    unwanted = set(args.exclude or ())
    excluded = resolved.excluded + [Excluded(a, "left out with --exclude") for a in resolved.accounts if a in unwanted]
    accounts = [a for a in resolved.accounts if a not in unwanted]
    if args.json:
        body = {
            "targets": [
                {"account": a, "region": r, "ou": resolved.ou_of.get(a, "")} for a in accounts for r in job.regions
            ],
            "excluded": [e.to_dict() for e in excluded],
        }
        out.write(json.dumps(body) + "\n")
        return EXIT_OK
    by_ou: dict[str, list[str]] = {}
    for account in accounts:
        by_ou.setdefault(resolved.ou_of.get(account, ""), []).append(account)
    rows = [
        (ou or "(listed)", account, ", ".join(job.regions))
        for ou, members in sorted(by_ou.items())
        for account in members
    ]
    out.write(render_table(("ou", "account", "regions"), rows, terminal=Terminal.of(out)) + "\n")
    if excluded:
        out.write(
            "left out:\n"
            + render_table(("account", "why"), [(e.account, e.why) for e in excluded], terminal=Terminal.of(out))
            + "\n"
        )
    out.write(
        f"{len(accounts)} account(s) x {len(job.regions)} region(s) = {len(accounts) * len(job.regions)} target(s)\n"
    )
    return EXIT_OK


# -- run ------------------------------------------------------------------------------------------
def _csv(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _service_caps(value: str) -> dict[str, int]:
    caps: dict[str, int] = {}
    for item in _csv(value):
        service, sep, count = item.partition("=")
        if not sep or not count.isdigit():
            raise argparse.ArgumentTypeError(f"{item!r} is not SERVICE=N (e.g. s3=4)")
        caps[service.strip()] = int(count)
    try:
        return check_service_caps(caps)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _param(value: str) -> tuple[str, Any]:
    key, sep, raw = value.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{value!r} is not KEY=VALUE")
    try:
        return key, json.loads(raw)  # numbers, booleans, lists and objects as JSON
    except json.JSONDecodeError:
        return key, raw


def _run_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "run",
        help="run a job from a job file, or one action over accounts",
        description="Runs a job from a job file (rolechain run JOB --config FILE) or one action over accounts "
        "(rolechain run --action NAME --accounts A,B), then prints each target's result in the --format asked for.",
    )
    p.add_argument("job", nargs="?", help="job name in --config")
    p.add_argument("--config", help="YAML job file")
    p.add_argument("--action", help="action to run (instead of a job)")
    p.add_argument("--accounts", type=_csv, help="comma-separated 12-digit account ids")
    p.add_argument("--role-name", help="target role name (default: rolechain-target)")
    add_organization_flags(p)
    p.add_argument("--via", action="append", default=[], metavar="ROLE_ARN", help="hop before the target role")
    p.add_argument("--external-id", help="ExternalId for the target role")
    p.add_argument(
        "--param",
        action="append",
        default=[],
        type=_param,
        metavar="KEY=VALUE",
        help="action parameter (VALUE parsed as JSON when it is)",
    )
    p.add_argument("--params-json", help="action parameters as a JSON object")
    p.add_argument(
        "--region",
        action="append",
        dest="regions",
        metavar="R",
        help="target region (repeatable); all: every region enabled in each account",
    )
    p.add_argument("--exclude-region", action="append", default=[], metavar="R", help="region left out of --region all")
    p.add_argument("--dry-run", action="store_true", default=None, help="report what would change, change nothing")
    p.add_argument("--concurrency", type=int, help="targets in flight at once")
    p.add_argument(
        "--service-concurrency",
        type=_service_caps,
        metavar="SERVICE=N,...",
        help="at most N requests in flight per target account to each service named, e.g. s3=4,ec2=2",
    )
    p.add_argument("--profile", help="AWS profile of the base credentials")
    add_source_identity_flag(p)
    add_mfa_flags(p)
    p.add_argument("--json", action="store_true", help="print the run as JSON (--format json)")
    p.add_argument(
        "--format",
        choices=FORMATS,
        help="table (default), json (the whole run), jsonl (one result a line, as they finish), csv, html (one "
        "self-contained page: counts, failures by cause, the targets with a filter box)",
    )
    p.add_argument(
        "--output",
        metavar="DIR",
        type=Path,
        help="also write DIR/<run_id>/results.jsonl (each result as it finishes), summary.json and report.html",
    )
    p.set_defaults(command=cmd_run, uses_actions=True)


def add_organization_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--org", action="store_true", help="every ACTIVE account of the organisation (not the hub)")
    parser.add_argument(
        "--ou", action="append", default=[], metavar="OU_ID", help="every account in this OU and below (repeatable)"
    )
    parser.add_argument(
        "--org-role", metavar="ROLE_ARN", help="read Organizations through this role (default: the base credentials)"
    )
    parser.add_argument("--exclude", type=_csv, metavar="A,B", help="accounts to leave out")


def _adhoc_accounts(sessions: ChainSessions, args: argparse.Namespace, err: TextIO) -> list[str]:
    """--accounts, plus the organisation's with --org/--ou, minus --exclude."""
    live = args.org or args.ou
    if not args.accounts and not live:
        raise ConfigError("--accounts", "required with --action (or --org / --ou)")
    if args.org_role and not live:
        raise ConfigError("--org-role", "goes with --org or --ou")
    for account in args.accounts or ():
        check("account", account, "accounts")
    for account in args.exclude or ():
        check("account", account, "--exclude")
    try:
        organization = OrganizationTargets(root=args.org, ous=args.ou, role=args.org_role) if live else None
        targets = Targets(accounts=args.accounts or [], organization=organization, exclude_accounts=args.exclude or [])
    except ValidationError as exc:
        error = config_error(exc)
        flag = {"ous": "--ou", "role": "--org-role", "exclude_accounts": "--exclude", "root": "--org"}
        raise ConfigError(flag.get(error.field.rsplit(".", 1)[-1].split("[")[0], "--org"), error.rule) from exc
    resolved = resolve_accounts(sessions, targets, where="--org", via=args.via)
    if not resolved.accounts:
        raise ConfigError("--org", "resolves to no account (`rolechain targets` shows why)")
    return resolved.accounts


def _adhoc_params(args: argparse.Namespace) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if args.params_json:
        try:
            loaded = json.loads(args.params_json)
        except json.JSONDecodeError as exc:
            raise ConfigError("--params-json", f"is not valid JSON: {exc.msg}") from exc
        if not isinstance(loaded, dict):
            raise ConfigError("--params-json", "must be a JSON object")
        params.update(loaded)
    params.update(dict(args.param))
    return params


def cmd_run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if args.concurrency is not None and not 1 <= args.concurrency <= MAX_CONCURRENCY:
        raise ConfigError("--concurrency", f"must be between 1 and {MAX_CONCURRENCY}")
    region = args.regions[0] if args.regions and args.regions[0] != ALL_REGIONS else None
    sessions = ChainSessions(base_session(argparse.Namespace(profile=args.profile, region=region)))
    if args.job:
        if args.action or not args.config:
            raise ConfigError("run", "give either JOB with --config FILE, or --action NAME with --accounts")
        if args.param or args.params_json or args.role_name or args.external_id:
            raise ConfigError("run", "--param/--params-json/--role-name/--external-id go with --action, not a job")
        if args.org or args.ou or args.org_role or args.exclude_region:
            raise ConfigError(
                "run", "--org/--ou/--org-role/--exclude-region go with --action; a job's are in its job file"
            )
        narrowing = PlanRequest(
            exclude=args.exclude or (),
            accounts=args.accounts or (),
            regions=args.regions,
            dry_run=args.dry_run,
            concurrency=args.concurrency,
            service_concurrency=args.service_concurrency,
            extra_via=args.via,
            source_identity=source_identity(args, sessions),
            mfa=mfa_of(args, via_required=False),
        )
        plan = plan_job(sessions, load_job_file(args.config), args.job, narrowing)
    else:
        if not args.action:
            raise ConfigError("run", "give a JOB (with --config) or --action NAME")
        accounts = _adhoc_accounts(sessions, args, err)
        try:
            settings = RoleSettings(
                role_name=args.role_name or DEFAULT_ROLE_NAME,
                external_id=args.external_id,
                exclude_regions=args.exclude_region,
            )
        except ValidationError as exc:
            error = config_error(exc)
            raise ConfigError("--" + error.field.replace("_", "-"), error.rule) from exc
        request = PlanRequest(
            action=args.action,
            params=_adhoc_params(args),
            accounts=accounts,
            regions=args.regions,
            dry_run=args.dry_run,
            concurrency=args.concurrency,
            service_concurrency=args.service_concurrency,
            extra_via=args.via,
            source_identity=source_identity(args, sessions),
            mfa=mfa_of(args, via_required=False),
        )
        plan = plan_run(sessions, settings, request)
    fmt = _format_of(args)
    run_id = new_run_id()
    sinks: list[Callable[[TargetResult, int, int], None]] = []
    progress = Progress(err) if err.isatty() and fmt == "table" else None
    if progress:
        sinks.append(progress.update)
    if fmt == "jsonl":
        sinks.append(lambda result, done, total: _write_line(out, {"run_id": run_id, **result.to_dict()}))
    folder = _RunFolder(args.output, run_id) if args.output else None
    if folder:
        sinks.append(folder.add)

    def on_result(result: TargetResult, done: int, total: int) -> None:
        for sink in sinks:
            sink(result, done, total)

    try:
        with _stopped_by_signals(err) as stop:
            report = run_plan(sessions, plan, run_id=run_id, on_result=on_result, stop=stop)
    finally:
        if progress:
            progress.close()
        if folder:
            folder.close()
    if fmt == "json":
        out.write(json.dumps(report.to_dict(), default=str) + "\n")
    elif fmt == "csv":
        out.write(render_csv(report))
    elif fmt == "html":
        out.write(render_html(report))
    elif fmt == "table":
        out.write(render_report(report, terminal=Terminal.of(out)) + "\n")
    if folder:
        err.write(f"rolechain: results in {folder.finish(report)}\n")
    if report.interrupted:
        saved = _save_interrupted(report)
        err.write(f"rolechain: the interrupted run's report is saved in {saved}\n" if saved else "")
        return EXIT_INTERRUPTED
    return report.exit_code


FORMATS = ("table", "json", "jsonl", "csv", "html")


def _format_of(args: argparse.Namespace) -> str:
    if args.json and args.format not in (None, "json"):
        raise ConfigError("--json", f"is --format json; it cannot go with --format {args.format}")
    return "json" if args.json else args.format or "table"


def _write_line(stream: TextIO, data: dict[str, Any]) -> None:
    stream.write(json.dumps(data, default=str, separators=(",", ":")) + "\n")
    stream.flush()


class _RunFolder:
    """``DIR/<run_id>/``: results.jsonl written as each target finishes (nothing kept in memory for
    it), summary.json and report.html (``--format html``'s page) when the run is over. Refuses a DIR that
    cannot be written, before the run starts."""

    def __init__(self, root: Path, run_id: str) -> None:
        self.path = root / run_id
        try:
            self.path.mkdir(parents=True, exist_ok=False)
            self._results = (self.path / "results.jsonl").open("w", encoding="utf-8")
        except OSError as exc:
            raise ConfigError("--output", f"cannot write {self.path}: {exc.strerror or exc}") from exc
        self._lock = threading.Lock()

    def add(self, result: TargetResult, done: int, total: int) -> None:
        with self._lock:
            _write_line(self._results, result.to_dict())

    def close(self) -> None:
        with self._lock:
            self._results.close()

    def finish(self, report: RunReport) -> Path:
        summary = {k: v for k, v in report.to_dict().items() if k != "results"}
        (self.path / "summary.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
        (self.path / "report.html").write_text(render_html(report), encoding="utf-8")
        return self.path


def _save_interrupted(report: RunReport) -> Path | None:
    """Keep an interrupted run's report (what changed where) in $XDG_STATE_HOME/rolechain/runs (default
    ~/.local/state/rolechain/runs), so an operator can tell what a stopped tagging run did. None when the
    folder cannot be written: the report was printed anyway."""
    state = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    path = state / "rolechain" / "runs" / f"{report.run_id}.json"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report.to_dict(), default=str, indent=1) + "\n", encoding="utf-8")
    except OSError:
        return None
    return path


@contextlib.contextmanager
def _stopped_by_signals(err: TextIO) -> Iterator[threading.Event]:
    """An event SIGINT (Ctrl-C) and SIGTERM set instead of ending the process, while the block runs: the
    run then starts no new target, waits for those in flight and reports the rest skipped, so an
    operator sees what changed. Outside the main thread (where handlers cannot be set) it is never set."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():  # the second one: the operator will not wait for the targets in flight
            err.write("\nrolechain: quitting without waiting: the targets in flight are not reported\n")
            err.flush()
            os._exit(EXIT_INTERRUPTED)  # worker threads would keep a normal exit waiting for them
        err.write(
            f"\nrolechain: {signal.Signals(signum).name}: starting no more targets, waiting for those running "
            "(again to quit at once)\n"
        )
        stop.set()

    previous = {number: signal.signal(number, on_signal) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _runs_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from rolechain.runs_cli import runs_parser  # imported here: it uses this module's renderers

    runs_parser(sub)


# -- entry point ----------------------------------------------------------------------------------
PARSER_BUILDERS: list[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]] = [
    _whoami_parser,
    _doctor_parser,
    _actions_parser,
    _targets_parser,
    _run_parser,
    _validate_parser,
    _policy_parser,
    events_parser,
    schedules_parser,
    _runs_parser,
]


def version() -> str:
    """The installed package's version (its metadata), else the source tree's."""
    try:
        return metadata.version("rolechain")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return rolechain.__version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rolechain",
        description="Run automation across many AWS accounts through IAM role chaining.",
        epilog="Exit codes: 0 ok, 1 a hop or a target failed, 2 bad input, 130 interrupted (Ctrl-C or SIGTERM).",
    )
    parser.add_argument("--version", action="version", version=f"rolechain {version()}")
    sub = parser.add_subparsers(dest="command_name", required=True, metavar="COMMAND")
    for build in PARSER_BUILDERS:
        build(sub)
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 failure at a hop or target, 2 bad input)."""
    out = out or sys.stdout
    err = err or sys.stderr
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed the usage error
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    command: Command = args.command
    try:
        if getattr(args, "uses_actions", False):  # whoami works even when a plugin is broken
            load_plugins()
        return command(args, out, err)
    except ConfigError as exc:
        err.write(f"rolechain: error: {exc.field}: {exc.rule}\n")
        return EXIT_USAGE
    except AssumeRoleError as exc:
        f = exc.failure
        err.write(
            f"rolechain: hop {f.hop} failed: {f.caller_arn} -> {f.role_arn}\n"
            f"  AWS said: {f.code}: {f.message}\n"
            f"  hint: {f.hint}\n"
        )
        return EXIT_FAILED
    except (BaseCredentialsError, BotoCoreError, RolechainError) as exc:
        err.write(f"rolechain: error: {exc}\n")
        return EXIT_FAILED
    except KeyboardInterrupt:  # Ctrl-C outside a run (a run reports what it did instead)
        err.write("rolechain: interrupted\n")
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
