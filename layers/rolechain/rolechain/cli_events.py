"""``rolechain events pattern``: the EventBridge patterns of a job file's remediation rules, as the
templates hold them (target-role.yaml's forwarding rule, template.yaml's remediation rule). Wired into
the CLI through ``rolechain.cli.PARSER_BUILDERS``; errors reach the CLI's edge as ConfigError (exit 2)."""

from __future__ import annotations

import argparse
import json
from typing import Any, TextIO

from rolechain.event_patterns import AUDIENCES, event_pattern, event_patterns
from rolechain.jobs import load_job_file


def events_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "events",
        help="EventBridge patterns derived from the job file's remediation rules",
        description="Print the EventBridge pattern of the job file's remediation rules: what member accounts "
        "forward to the hub (--for member) and what the hub remediates (--for hub). Both templates hold it; a "
        "test fails when they differ from it.",
    )
    p.add_argument("which", choices=["pattern"], help="pattern: what member accounts forward and the hub remediates")
    p.add_argument("--config", required=True, help="YAML job file (the one the stacks ship)")
    p.add_argument(
        "--for",
        dest="audience",
        choices=AUDIENCES,
        help="member: target-role.yaml's forwarding rule; hub: template.yaml's remediation rule (default: both)",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of the templates' YAML")
    p.set_defaults(command=cmd_events, uses_actions=True)  # the job file names actions, plugins' too


def cmd_events(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    job_file = load_job_file(args.config)
    shown: Any = event_pattern(job_file, args.audience) if args.audience else event_patterns(job_file)
    if args.json:
        out.write(json.dumps(shown, indent=2) + "\n")
    else:
        import yaml  # only this command prints YAML; the CLI's start does not pay for it

        out.write(yaml.safe_dump(shown, sort_keys=False, default_flow_style=None, width=200))
    return 0
