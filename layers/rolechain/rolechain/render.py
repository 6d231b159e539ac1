"""How the CLI shows things: its tables, a run's report (table and CSV) and the progress bar of a run.
Only the CLI imports this module."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any, TextIO

from rolechain.actions import Action, get_action
from rolechain.runner import RunReport, TargetResult

CSV_COLUMNS = ("account", "region", "action", "status", "code", "message", "hint", "duration_ms", "output")


def render_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain fixed-width table (no colours, so it survives logs and pipes)."""
    cells = [[str(h) for h in headers]] + [[("" if c is None else str(c)) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def render_report(report: RunReport) -> str:
    """The run as a table: one row per target (the action's own summary of each), then the summary line."""
    action = get_action(report.action)
    rows = []
    for r in report.results:
        rows.append((r.account, r.region, str(r.status), _brief(r, action)))
    summary = ", ".join(f"{n} {status}" for status, n in report.summary.items())
    header = f"run {report.run_id}: {report.action}{' (dry run)' if report.dry_run else ''}"
    if report.interrupted:
        header += " (interrupted: targets not started are skipped)"
    if report.waves:
        header += "\nwaves: " + "; ".join(
            f"{w['wave']}: {w['targets']} target(s), {w['failed']} failed" for w in report.waves
        )
    if report.stopped:
        header += f"\nstopped: {report.stopped}"
    # The table keeps one line a target; what a failure says in full (the hint with its fix) follows it.
    details = [
        f"{r.account} {r.region}: {_full(r)}" for r in report.results if r.error and len(_full(r)) > DETAIL_WIDTH
    ]
    more = ("\ndetails:\n" + "\n".join(details)) if details else ""
    return (
        f"{header}\n{render_table(('account', 'region', 'status', 'detail'), rows)}{more}\n"
        f"{summary} in {report.duration_s:.2f}s"
    )


DETAIL_WIDTH = 160


def _full(result: TargetResult) -> str:
    error = result.error or {}
    if error.get("type") == "assume_role":
        return f"hop {error['hop']} {error['code']}: {error['hint']}"
    return f"{error.get('code') or error.get('type')}: {error.get('message')}"


def _brief(result: TargetResult, action: Action[Any]) -> str:
    """One line about a target's result, for the table: its error, else what the action says of its output."""
    if result.error:
        full = _full(result)
        return full if len(full) <= DETAIL_WIDTH else full[: DETAIL_WIDTH - 14] + "... (details)"
    return action.summarize(result.output or {})


class Progress:
    """A one-line progress bar on a terminal's stderr."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def update(self, result: TargetResult, done: int, total: int) -> None:
        width = 30
        filled = int(width * done / max(total, 1))
        self.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {result.account}")
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\r" + " " * 70 + "\r")
        self.stream.flush()


def render_csv(report: RunReport) -> str:
    """One row per target: the error's code, message and hint in their own columns, the output as JSON."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in report.results:
        error = r.error or {}
        writer.writerow(
            (
                r.account,
                r.region,
                r.action,
                str(r.status),
                error.get("code") or error.get("type") or "",
                error.get("message") or "",
                error.get("hint") or "",
                r.duration_ms,
                json.dumps(r.output, default=str, separators=(",", ":")) if r.output is not None else "",
            )
        )
    return buffer.getvalue()
