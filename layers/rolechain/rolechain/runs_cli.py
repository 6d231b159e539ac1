"""``rolechain runs``: the CLI as a client of the deployed API (list, show, start and rerun runs).

Each command resolves the API's URL (``--api-url``, ``$ROLECHAIN_API_URL`` or the ``--stack``'s
``ApiUrl`` output), signs its requests with the caller's usual AWS credentials and prints with the
renderers ``rolechain run`` uses. Exit codes as the CLI's: 0 ok, 1 a target failed or was skipped (a run
started and completed) or the API failed, 2 bad input (a flag, or a request the API refused as such).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
from collections.abc import Mapping
from datetime import datetime
from typing import Any, TextIO

from rolechain import cli
from rolechain.actions import REGISTRY
from rolechain.client import ApiClient, ApiError, cloudformation_output, resolve_api_url, run_body, run_path
from rolechain.errors import ConfigError
from rolechain.runner import RunReport, Status, TargetResult
from rolechain.types import check

RUN_STATUSES = ("queued", "running", "completed")
RESULT_STATUSES = ("ok", "failed", "skipped", "dry-run")  # the API's spelling of the filter
LIST_COLUMNS = ("run_id", "created_at", "job", "action", "status", "mode", "dry_run", "targets", "counts")
DEFAULT_LIST_LIMIT = 20


def runs_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``rolechain runs list|show|start|rerun``; registered in ``cli.PARSER_BUILDERS``."""
    p = sub.add_parser(
        "runs",
        help="list, show, start and rerun runs through the deployed API",
        description="A client of the hub's API (SigV4-signed with your AWS credentials). The API's URL: "
        "--api-url, else $ROLECHAIN_API_URL, else the ApiUrl output of the hub stack --stack NAME.",
    )
    commands = p.add_subparsers(dest="runs_command", required=True, metavar="RUNS_COMMAND")

    listing = commands.add_parser("list", help="the runs you may read, newest first")
    listing.add_argument("--job", help="only this job's runs")
    listing.add_argument("--status", choices=RUN_STATUSES, help="only runs in this state")
    listing.add_argument(
        "--limit", type=int, default=DEFAULT_LIST_LIMIT, help=f"at most N runs (default {DEFAULT_LIST_LIMIT})"
    )
    _common(listing)
    listing.set_defaults(command=cmd_list)

    show = commands.add_parser("show", help="one run with all its results (every page)")
    show.add_argument("run_id", metavar="RUN_ID")
    show.add_argument("--status", help=f"only results of this status ({', '.join(RESULT_STATUSES)})")
    _common(show)
    show.set_defaults(command=cmd_show, uses_actions=True)

    start = commands.add_parser(
        "start",
        help="start a run of a job, or of one action over accounts",
        description="rolechain runs start JOB  |  rolechain runs start --action NAME --accounts A,B [--param K=V]",
    )
    start.add_argument("job", nargs="?", help="a job of the hub's job file")
    start.add_argument("--action", help="action to run (instead of a job)")
    start.add_argument(
        "--param",
        action="append",
        default=[],
        type=cli._param,
        metavar="KEY=VALUE",
        help="action parameter (VALUE parsed as JSON when it is)",
    )
    start.add_argument("--accounts", type=cli._csv, metavar="A,B", help="comma-separated 12-digit account ids")
    start.add_argument(
        "--target-region",
        action="append",
        dest="regions",
        metavar="R",
        help="target region of an --action run (repeatable)",
    )
    start.add_argument("--role-name", help="target role name of an --action run (one the job file configures)")
    _starting(start)
    start.set_defaults(command=cmd_start, uses_actions=True)

    rerun = commands.add_parser("rerun", help="a new run over only the failed (and/or skipped) targets of a run")
    rerun.add_argument("run_id", metavar="RUN_ID")
    rerun.add_argument("--failed", action="store_true", help="its failed targets")
    rerun.add_argument("--skipped", action="store_true", help="its skipped targets")
    _starting(rerun)
    rerun.set_defaults(command=cmd_rerun, uses_actions=True)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--api-url", metavar="URL", help="the API's base URL (the hub stack's ApiUrl output)")
    p.add_argument("--stack", metavar="NAME", help="the hub stack: its ApiUrl output is the API's URL")
    cli.add_aws_flags(p)
    p.add_argument("--json", action="store_true", help="--format json")
    p.add_argument("--format", choices=cli.FORMATS, help="table (default), json, jsonl (one result a line), csv")


def _starting(p: argparse.ArgumentParser) -> None:
    """The flags of a command that starts a run (start, rerun)."""
    p.add_argument(
        "--dry-run",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="report what would change, change nothing; --no-dry-run turns off a dry run the job sets "
        "(default: as the job, or the run rerun, says)",
    )
    p.add_argument("--wait", action="store_true", help="poll until the run completes; exit 1 when a target failed")
    p.add_argument("--poll-interval", type=float, default=2.0, metavar="SECONDS", help="with --wait (default 2)")
    p.add_argument("--timeout", type=float, default=900.0, metavar="SECONDS", help="with --wait (default 900)")
    p.add_argument(
        "--idempotency-key",
        metavar="KEY",
        help="the same key makes a repeated start return the first run instead of starting another "
        "(default: a new key, kept across this command's retries)",
    )
    _common(p)


def api_client(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> ApiClient:
    """The client the flags (and ``env``, default the process environment) point at: ``--region`` is the
    signing region (default: the URL's, else the profile's) and the stack's."""
    if args.region is not None:
        check("region", args.region, "--region")
    session = cli.base_session(args)
    url = resolve_api_url(args.api_url, os.environ if env is None else env, args.stack, cloudformation_output(session))
    return ApiClient(url, session, region=args.region)


# -- list -----------------------------------------------------------------------------------------
def cmd_list(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if args.limit < 1:
        raise ConfigError("--limit", "must be at least 1")
    fmt = cli._format_of(args)
    runs = api_client(args).list_runs(job=args.job, status=args.status, limit=args.limit)
    if fmt == "jsonl":
        for run in runs:
            cli._write_line(out, run)
        return cli.EXIT_OK
    listed = list(runs)
    if fmt == "json":
        out.write(json.dumps({"runs": listed}, default=str) + "\n")
    elif fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(LIST_COLUMNS)
        writer.writerows(_list_row(run) for run in listed)
        out.write(buffer.getvalue())
    else:
        out.write(cli.render_table(LIST_COLUMNS, [_list_row(run) for run in listed]) + "\n")
        out.write(f"{len(listed)} run(s)\n")
    return cli.EXIT_OK


def _list_row(run: Mapping[str, Any]) -> tuple[object, ...]:
    counts = run.get("counts") or {}
    brief = " ".join(f"{k}={v}" for k, v in counts.items() if v) if isinstance(counts, dict) else str(counts)
    return (
        run.get("run_id"),
        run.get("created_at"),
        run.get("job") or "",
        run.get("action"),
        run.get("status"),
        run.get("mode") or "",
        "yes" if run.get("dry_run") else "no",
        run.get("target_count"),
        brief,
    )


# -- show -----------------------------------------------------------------------------------------
def cmd_show(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    run_path(args.run_id)
    status = _result_status(args.status)
    fmt = cli._format_of(args)
    client = api_client(args)
    if fmt == "jsonl":  # each page's results as it arrives
        for page in client.run_pages(args.run_id, status=status):
            for result in page.get("results") or []:
                cli._write_line(out, {"run_id": page.get("run_id"), **result})
        return cli.EXIT_OK
    write_run(out, client.get_run(args.run_id, status=status), fmt)
    return cli.EXIT_OK


def _result_status(value: str | None) -> str | None:
    if value is None:
        return None
    spelled = value.replace("_", "-")
    if spelled not in RESULT_STATUSES:
        raise ConfigError("--status", f"{value!r} is not one of {', '.join(RESULT_STATUSES)}")
    return spelled


# -- start / rerun --------------------------------------------------------------------------------
def cmd_start(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if (args.job is None) == (args.action is None):
        raise ConfigError("runs start", "give either JOB or --action NAME (with --accounts)")
    if args.job is not None and (args.param or args.regions or args.role_name):
        raise ConfigError("runs start", "--param/--target-region/--role-name go with --action, not a job")
    if args.action is not None and not args.accounts:
        raise ConfigError("--accounts", "required with --action")
    for account in args.accounts or ():
        check("account", account, "--accounts")
    for region in args.regions or ():
        check("region", region, "--target-region")
    body = run_body(
        job=args.job,
        action=args.action,
        params=dict(args.param),
        accounts=args.accounts,
        regions=args.regions,
        role_name=args.role_name,
        dry_run=args.dry_run,
    )
    return _started(args, body, out, err)


def cmd_rerun(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    statuses = [s for s, given in (("failed", args.failed), ("skipped", args.skipped)) if given]
    if not statuses:
        raise ConfigError("runs rerun", "give --failed and/or --skipped: which of the run's targets to run again")
    body: dict[str, Any] = {"rerun": {"run_id": run_path(args.run_id), "statuses": statuses}}
    if args.dry_run is not None:
        body["dry_run"] = args.dry_run  # beside "rerun", as RunRequest has it
    return _started(args, body, out, err)


def _started(args: argparse.Namespace, body: Mapping[str, Any], out: TextIO, err: TextIO) -> int:
    if args.poll_interval <= 0 or args.timeout <= 0:
        raise ConfigError("--poll-interval" if args.poll_interval <= 0 else "--timeout", "must be more than 0 seconds")
    fmt = cli._format_of(args)
    client = api_client(args)
    try:
        _, run = client.start_run(body, idempotency_key=args.idempotency_key)
    except ApiError as exc:
        raise _as_usage(exc) from exc
    if run.get("status") != "completed":
        if not args.wait:
            write_queued(out, run, fmt)
            return cli.EXIT_OK
        err.write(f"rolechain: run {run['run_id']} {run.get('status')}: waiting for it to complete\n")
        run = client.wait(run["run_id"], interval_seconds=args.poll_interval, timeout_seconds=args.timeout)
    report = write_run(out, run, fmt)
    return report.exit_code


def _as_usage(exc: ApiError) -> Exception:
    """A start the API refused as malformed (400, 404 unknown job, 422) is bad input: exit 2 naming the field."""
    if exc.status in (400, 404, 422):
        return ConfigError(exc.field or "request", f"the API answered {exc.status}: {exc.message}")
    return exc


# -- output ---------------------------------------------------------------------------------------
def report_of(run: Mapping[str, Any]) -> RunReport:
    """The API's run (with its results) as the runner's report, for the CLI's renderers.
    Raises ApiError when the run or a result is not what the API promises."""
    where = f"/runs/{run.get('run_id')}"
    listed = run.get("results") or []
    if not isinstance(listed, list):
        raise ApiError("GET", where, 200, "the run is malformed: its results are not a list")
    results = []
    for n, r in enumerate(listed):
        try:
            output, error = r.get("output"), r.get("error")
            if not isinstance(output, dict | None) or not isinstance(error, dict | None):
                raise TypeError("output and error must be objects or null")
            results.append(
                TargetResult(
                    account=str(r["account"]),
                    region=str(r["region"]),
                    action=str(r.get("action") or run.get("action")),
                    status=Status(str(r["status"]).replace("-", "_")),
                    output=output,
                    error=error,
                    duration_ms=int(r.get("duration_ms") or 0),
                )
            )
        except (AttributeError, KeyError, ValueError, TypeError) as exc:
            raise ApiError("GET", where, 200, f"result {n} is malformed: {exc!r}") from exc
    waves = run.get("waves") or []
    if not isinstance(waves, list) or not all(isinstance(w, dict) for w in waves):
        raise ApiError("GET", where, 200, "the run is malformed: its waves are not a list of objects")
    stopped = run.get("stopped")
    return RunReport(
        run_id=str(run.get("run_id")),
        action=str(run.get("action")),
        dry_run=bool(run.get("dry_run")),
        started_at=str(run.get("created_at") or run.get("started_at") or ""),
        duration_s=_duration(run),
        results=results,
        waves=waves,
        stopped=stopped if isinstance(stopped, str) else None,
    )


def _duration(run: Mapping[str, Any]) -> float:
    """Seconds from created_at to completed_at, else the run's duration_s, else 0."""
    try:
        started = datetime.fromisoformat(str(run["created_at"]))
        ended = datetime.fromisoformat(str(run["completed_at"]))
        return max((ended - started).total_seconds(), 0.0)
    except (KeyError, ValueError, TypeError):
        pass
    seconds = run.get("duration_s")
    return float(seconds) if isinstance(seconds, int | float) and not isinstance(seconds, bool) else 0.0


def write_run(out: TextIO, run: dict[str, Any], fmt: str) -> RunReport:
    """Print ``run`` in ``fmt`` with the renderers of ``rolechain run``; returns it as a report."""
    report = report_of(run)
    if fmt == "json":
        out.write(json.dumps(run, default=str) + "\n")
    elif fmt == "jsonl":
        for result in run.get("results") or []:
            cli._write_line(out, {"run_id": run.get("run_id"), **result})
    elif fmt == "csv":
        out.write(cli.render_csv(report))
    else:
        out.write(_status_line(run) + "\n")
        if report.action in REGISTRY:
            out.write(cli.render_report(report) + "\n")
        else:  # a plugin the hub has and this machine does not: no summary of its output
            rows = [(r.account, r.region, str(r.status), (r.error or {}).get("message", "")) for r in report.results]
            out.write(cli.render_table(("account", "region", "status", "detail"), rows) + "\n")
    return report


def _status_line(run: Mapping[str, Any]) -> str:
    """The run's state and, from its own counters, every target's (the table may show some only)."""
    who = f", requested by {run['requested_by']}" if run.get("requested_by") else ""
    counts = run.get("summary") or run.get("counts")
    line = f"status: {run.get('status')} ({run.get('mode') or 'run'}, {run.get('target_count')} target(s){who})"
    if isinstance(counts, dict):
        line += "; the run: " + ", ".join(f"{n} {status}" for status, n in counts.items())
    return line


def write_queued(out: TextIO, run: dict[str, Any], fmt: str) -> None:
    if fmt in ("json", "jsonl"):
        cli._write_line(out, run)
        return
    out.write(
        f"run {run['run_id']} {run.get('status')}: {run.get('target_count')} target(s); follow it with "
        f"`rolechain runs show {run['run_id']}` (or start with --wait)\n"
    )
