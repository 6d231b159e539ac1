"""``rolechain schedules plan|sync``: the job file's schedules against a schedule group, from a laptop.

The same reconciler as the stack's JobSchedules custom resource (:mod:`rolechain.schedules`): ``plan``
prints the creates, updates and deletes and changes nothing; ``sync`` carries them out. The stack's outputs
name the values: ``ScheduleGroupName``, ``SchedulerFunctionArn``, ``ScheduleRoleArn``.
"""

from __future__ import annotations

import argparse
import json
from typing import TextIO

from rolechain.jobs import load_job_file
from rolechain.schedules import ScheduleGroup, SchedulePlan, apply, desired_schedules, plan, target_of

PLAN_HEADERS = ("action", "schedule", "fields")


def schedules_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``schedules`` command and its ``plan`` and ``sync`` subcommands (a PARSER_BUILDERS entry)."""
    from rolechain.cli import add_aws_flags

    p = sub.add_parser(
        "schedules",
        help="the job file's schedules in an EventBridge Scheduler group: plan, sync",
        description="Keep one EventBridge Scheduler schedule per scheduled job in the stack's schedule group: "
        "plan prints what a sync would create, update and delete; sync does it (the hub stack's JobSchedules "
        "resource runs the same on every deploy).",
    )
    modes = p.add_subparsers(dest="schedules_mode", required=True, metavar="MODE")
    for mode, help_text in (
        ("plan", "print the schedules a sync would create, update and delete (changes nothing)"),
        ("sync", "create, update and delete schedules so the group holds one per scheduled job"),
    ):
        m = modes.add_parser(mode, help=help_text, description=help_text[0].upper() + help_text[1:] + ".")
        m.add_argument("--config", required=True, help="YAML job file")
        m.add_argument("--group", required=True, help="the stack's schedule group (output ScheduleGroupName)")
        m.add_argument("--function-arn", help="the scheduler function (output SchedulerFunctionArn)")
        m.add_argument("--role-arn", help="the role schedules run with (output ScheduleRoleArn)")
        m.add_argument("--json", action="store_true", help='print {"group", "changes": [...], "unchanged", ...}')
        add_aws_flags(m)
        m.set_defaults(command=cmd_schedules, uses_actions=True)


def cmd_schedules(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from rolechain.cli import EXIT_OK, base_session
    from rolechain.errors import ConfigError
    from rolechain.sessions import ChainSessions
    from rolechain.types import check

    target = target_of(args.function_arn, args.role_arn, fields=("--function-arn", "--role-arn"))
    if args.schedules_mode == "sync" and target is None:
        raise ConfigError("--function-arn", "sync needs --function-arn and --role-arn (the stack's outputs)")
    if args.region is not None:
        check("region", args.region, "--region")
    job_file = load_job_file(args.config)  # a bad file stops here, before any AWS call
    client = ChainSessions(base_session(args)).client(None, "scheduler")
    group = ScheduleGroup(client, args.group, field_name="--group")
    planned = plan(group, desired_schedules(job_file, target), target_compared=target is not None)
    if args.schedules_mode == "sync":
        apply(group, planned.changes)
    if args.json:
        out.write(json.dumps({**planned.to_dict(), "applied": args.schedules_mode == "sync"}) + "\n")
    else:
        out.write(render_plan(planned, applied=args.schedules_mode == "sync") + "\n")
    return EXIT_OK


def render_plan(planned: SchedulePlan, *, applied: bool) -> str:
    """The plan as a table and a summary line (what was done, for a sync)."""
    from rolechain.cli import render_table

    counts = {action: sum(c.action == action for c in planned.changes) for action in ("create", "update", "delete")}
    verb = {"create": "created", "update": "updated", "delete": "deleted"} if applied else None
    summary = ", ".join(f"{n} {verb[a] if verb else 'to ' + a}" for a, n in counts.items())
    lines = [f"group {planned.group}: {summary}, {len(planned.unchanged)} unchanged"]
    if planned.changes:
        rows = [(c.action, c.name, ", ".join(c.fields)) for c in planned.changes]
        lines.insert(0, render_table(PLAN_HEADERS, rows))
    if not planned.target_compared:
        lines.append("note: the target's function and role were not compared (give --function-arn and --role-arn)")
    return "\n".join(lines)
