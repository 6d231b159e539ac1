"""The ``rolechain`` command line: the operator's edge. Exit codes: 0 ok, 1 a hop/target failed,
2 bad input. Each command parses its flags into domain objects and calls the library."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import TextIO

import boto3
from botocore.exceptions import BotoCoreError, ProfileNotFound

from rolechain.chain import Chain, default_session_name, new_run_id
from rolechain.errors import AssumeRoleError, BaseCredentialsError, ConfigError
from rolechain.sessions import ChainSessions, Identity

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

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


def render_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain fixed-width table (no colours, so it survives logs and pipes)."""
    cells = [[str(h) for h in headers]] + [[("" if c is None else str(c)) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


# -- whoami ---------------------------------------------------------------------------------------
def _whoami_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("whoami", help="assume each --via role in turn and print the identity at every hop")
    p.add_argument("--via", action="append", default=[], metavar="ROLE_ARN", help="role to assume (repeatable)")
    p.add_argument("--external-id", help="ExternalId for the last hop")
    p.add_argument("--session-name", help="RoleSessionName for every hop")
    add_aws_flags(p)
    p.add_argument("--json", action="store_true", help='print {"hops": [{"arn", "account", "user_id"}, ...]}')
    p.set_defaults(command=cmd_whoami)


def cmd_whoami(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    sessions = ChainSessions(base_session(args))
    identities: list[Identity] = [sessions.identity(None)]
    if args.via:
        chain = Chain.build(
            args.via,
            external_id=args.external_id,
            session_name=args.session_name or default_session_name("whoami", new_run_id()),
        )
        identities = sessions.identities(chain)
    if args.json:
        out.write(json.dumps({"hops": [i.to_dict() for i in identities]}) + "\n")
    else:
        rows = [("base" if n == 0 else n, i.account, i.arn, i.user_id) for n, i in enumerate(identities)]
        out.write(render_table(("hop", "account", "arn", "user_id"), rows) + "\n")
    return EXIT_OK


# -- entry point ----------------------------------------------------------------------------------
PARSER_BUILDERS: list[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]] = [_whoami_parser]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rolechain", description=__doc__.split("\n")[0] if __doc__ else None)
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
    except (BaseCredentialsError, BotoCoreError) as exc:
        err.write(f"rolechain: error: {exc}\n")
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
