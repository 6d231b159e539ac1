"""How the CLI shows things: its tables, a run's report (table, CSV) and the progress bar of a run.

Tables are drawn by rich: on a terminal they fit its width and wrap (a cell folds, it is never cut), in
colour unless NO_COLOR is set or the terminal is dumb; into a pipe, a file or a log each row stays on one
line, without colour. Only the CLI imports this module: the Lambda handlers never load rich.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from rich import box
from rich.console import Console, ConsoleRenderable
from rich.progress import BarColumn, MofNCompleteColumn, ProgressColumn, Task, TextColumn, TimeRemainingColumn
from rich.progress import Progress as RichProgress
from rich.table import Table
from rich.text import Text

from rolechain.actions import Action, get_action
from rolechain.runner import RunReport, Status, TargetResult

CSV_COLUMNS = ("account", "region", "action", "status", "code", "message", "hint", "duration_ms", "output")
# Wide enough for any row: without a terminal a table is as wide as its widest row needs (one line a row).
UNLIMITED_WIDTH = 1_000_000
# A rule of dashes under the header, one space between columns: what survives logs, pipes and copy-paste.
RULE = box.Box("    \n    \n -  \n    \n    \n    \n    \n    \n", ascii=True)
STATUS_STYLES = {Status.OK: "green", Status.FAILED: "bold red", Status.SKIPPED: "yellow", Status.DRY_RUN: "cyan"}


@dataclass(frozen=True)
class Terminal:
    """How text is laid out for a stream. ``width`` None: no wrapping, each row on one line (a pipe, a file,
    a log); ``color_system`` None: no colour (else rich's name of what the terminal shows)."""

    width: int | None = None
    color_system: str | None = None

    @classmethod
    def of(cls, stream: TextIO) -> Terminal:
        """The layout ``stream`` takes: a terminal's width (COLUMNS overrides it, as rich reads it) and colours
        (none with NO_COLOR or TERM=dumb); plain for anything that is not a terminal."""
        isatty = getattr(stream, "isatty", None)
        if not (callable(isatty) and isatty()):
            return PLAIN
        console = Console(file=stream)
        return cls(width=console.width, color_system=None if console.no_color else console.color_system)


PLAIN = Terminal()


def render(renderable: ConsoleRenderable, terminal: Terminal = PLAIN) -> str:
    """``renderable`` as text laid out for ``terminal``, trailing spaces and the last newline dropped."""
    color = terminal.color_system is not None
    console = Console(
        file=io.StringIO(),
        width=terminal.width or UNLIMITED_WIDTH,
        color_system=terminal.color_system if color else None,  # type: ignore[arg-type]
        force_terminal=color,  # never decided by FORCE_COLOR / TTY_COMPATIBLE from the environment
        no_color=not color,
        highlight=False,
        markup=False,
        emoji=False,
        legacy_windows=False,
    )
    console.print(renderable)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    return "\n".join(line.rstrip() for line in str(text).splitlines())


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> Table:
    """A rich table of ``rows`` under ``headers``: a cell that is too wide wraps at words, or folds; it is
    never cut. A cell may be a rich ``Text`` (a styled one); anything else is shown as ``str``, never as markup."""
    drawn = Table(box=RULE, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0), header_style="bold")
    for header in headers:
        drawn.add_column(str(header), overflow="fold")
    for row in rows:
        drawn.add_row(*(c if isinstance(c, Text) else Text("" if c is None else str(c)) for c in row))
    return drawn


def render_table(headers: Sequence[str], rows: Sequence[Sequence[object]], *, terminal: Terminal = PLAIN) -> str:
    """``rows`` under ``headers`` as text for ``terminal`` (default: plain, one line a row, no colour)."""
    return render(table(headers, rows), terminal)


def render_report(report: RunReport, *, terminal: Terminal = PLAIN) -> str:
    """The run as a table for ``terminal`` (default plain): one row per target (the action's own summary of
    each, or its error), a failure's full text under ``details:`` when the row shows only its start, then the
    summary line."""
    action = get_action(report.action)
    rows = []
    for r in report.results:
        rows.append((r.account, r.region, Text(str(r.status), style=STATUS_STYLES[r.status]), _brief(r, action)))
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
    # A row keeps a failure's first DETAIL_WIDTH characters; the whole of it (the hint with its fix) follows
    # the table on one line, whatever the terminal's width, so it is copied whole.
    details = [
        f"{r.account} {r.region}: {_full(r)}" for r in report.results if r.error and len(_full(r)) > DETAIL_WIDTH
    ]
    more = ("\ndetails:\n" + "\n".join(details)) if details else ""
    return (
        f"{header}\n{render_table(('account', 'region', 'status', 'detail'), rows, terminal=terminal)}{more}\n"
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


class _Rate(ProgressColumn):
    """Targets finished per second, over the last half minute."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("- targets/s" if speed is None else f"{speed:.1f} targets/s")


class Progress:
    """A run's progress bar on a terminal's stderr (rich, redrawn in place): targets done of all, their rate,
    the time left, the last target done; gone once the run ends (``close``)."""

    def __init__(self, stream: TextIO) -> None:
        console = Console(file=stream, highlight=False, markup=False, emoji=False)
        self._progress = RichProgress(
            TextColumn("run"),
            BarColumn(),
            MofNCompleteColumn(),
            _Rate(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[account]}", markup=False),
            console=console,
            transient=True,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._task = self._progress.add_task("run", total=None, account="")
        self._progress.start()

    def update(self, result: TargetResult, done: int, total: int) -> None:
        self._progress.update(self._task, completed=done, total=total, account=f"{result.account} {result.region}")

    def close(self) -> None:
        self._progress.stop()


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
