"""How the CLI shows things: its tables, a run's report (table, CSV, HTML) and the progress bar of a run.

Tables are drawn by rich: on a terminal they fit its width and wrap (a cell folds, it is never cut), in
colour unless NO_COLOR is set or the terminal is dumb; into a pipe, a file or a log each row stays on one
line, without colour. Only the CLI imports this module: the Lambda handlers never load rich.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import html
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from rich import box
from rich.console import Console, ConsoleRenderable
from rich.progress import BarColumn, MofNCompleteColumn, ProgressColumn, Task, TextColumn, TimeRemainingColumn
from rich.progress import Progress as RichProgress
from rich.table import Table
from rich.text import Text

from rolechain.actions import Action, get_action
from rolechain.errors import ConfigError
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


# -- the HTML report -------------------------------------------------------------------------------------
# What a hop's likely_cause (rolechain.diagnose) says about which of its two conditions fails.
CONDITIONS = {
    "caller_permission": "condition (1): the caller's identity policy",
    "trust_policy": "condition (2): the role's trust policy",
    "either": "condition (1) or (2)",
    "caller_credentials": "the caller's credentials",
    "request": "the request itself",
    "transient": "transient: a retry may succeed",
}


@dataclass
class FailureGroup:
    """Targets that did not end ok for one cause: the same status, kind of failure, hop, condition, AWS error
    code and operation (and, for skipped targets, the same reason)."""

    status: str
    kind: str
    hop: int | None = None
    condition: str | None = None
    code: str | None = None
    operation: str | None = None
    results: list[TargetResult] = field(default_factory=list)

    @property
    def cause(self) -> str:
        parts = [f"hop {self.hop}" if self.hop is not None else self.kind.replace("_", " ")]
        parts += [p for p in (self.condition, self.code, self.operation and f"on {self.operation}") if p]
        return " · ".join(parts)

    @property
    def texts(self) -> list[str]:
        """What the group's targets say, each distinct text once, in the order first seen."""
        return list(dict.fromkeys(full_text(r) for r in self.results))


def failure_groups(report: RunReport) -> list[FailureGroup]:
    """The targets of ``report`` that carry an error (failed or skipped), grouped by cause, largest first."""
    groups: dict[tuple[Any, ...], FailureGroup] = {}
    for r in report.results:
        if not r.error:
            continue
        error = r.error
        kind = str(error.get("type", "unknown"))
        likely = error.get("likely_cause")
        group = FailureGroup(
            status=str(r.status),
            kind=kind,
            hop=error.get("hop"),
            condition=CONDITIONS.get(likely, likely) if likely else None,
            code=error.get("code"),
            operation=error.get("operation"),
        )
        key: tuple[Any, ...] = (group.status, kind, group.hop, group.condition, group.code, group.operation)
        if kind == "skipped":
            key += (error.get("message"),)  # why it was not started: out of time, interrupted, a wave's failures
        groups.setdefault(key, group).results.append(r)
    return sorted(groups.values(), key=lambda g: -len(g.results))


def full_text(result: TargetResult) -> str:
    """All a target's error says (a failed hop's hint with its fix), or "" for a target without one."""
    return _full(result) if result.error else ""


def render_html(report: RunReport) -> str:
    """The run as one self-contained HTML page (inline CSS and script, nothing fetched: its Content Security
    Policy allows only its own style and script): counts by status, the failures grouped by cause, and every
    target in a table a filter box narrows (``#filter=TEXT`` in the address fills it). Every value from the run
    is HTML-escaped; nothing in a result carries a secret (hints say an ExternalId was sent, never its value)."""
    e = html.escape
    action = _action_or_none(report.action)
    counts = "".join(
        f'<li class="count status-{e(status)}" data-status="{e(status)}"><span class="n">{n}</span> {e(status)}</li>'
        for status, n in report.summary.items()
    )
    facts = [
        ("action", report.action),
        ("dry run", "yes" if report.dry_run else "no"),
        ("started", report.started_at),
        ("duration", f"{report.duration_s:.2f}s"),
        ("targets", str(len(report.results))),
    ]
    if report.interrupted:
        facts.append(("interrupted", "targets not started are skipped"))
    if report.stopped:
        facts.append(("stopped", report.stopped))
    if report.waves:
        facts.append(
            ("waves", "; ".join(f"{w['wave']}: {w['targets']} target(s), {w['failed']} failed" for w in report.waves))
        )
    dl = "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in facts)
    groups = []
    for g in failure_groups(report):
        where = ", ".join(f"{r.account} {r.region}" for r in g.results)
        texts = "".join(f"<pre>{e(t)}</pre>" for t in g.texts[:MAX_TEXTS])
        if len(g.texts) > MAX_TEXTS:
            texts += f"<p>and {len(g.texts) - MAX_TEXTS} more distinct message(s): see the targets below</p>"
        groups.append(
            f'<details class="group status-{e(g.status)}" open><summary><span class="n">{len(g.results)}</span> '
            f'{e(g.status)}: <span class="cause">{e(g.cause)}</span></summary>'
            f'<p class="where">{e(where)}</p>{texts}</details>'
        )
    causes = "".join(groups) or "<p>No target failed or was skipped.</p>"
    rows = "".join(
        f'<tr class="status-{e(str(r.status))}"><td>{e(r.account)}</td><td>{e(r.region)}</td>'
        f"<td>{e(str(r.status))}</td><td>{e(full_text(r) or _summary(action, r))}</td><td>{r.duration_ms}</td></tr>"
        for r in report.results
    )
    total = len(report.results)
    csp = (
        "default-src 'none'; "
        f"style-src '{_sha256(HTML_STYLE)}'; script-src '{_sha256(HTML_SCRIPT)}'; "
        "base-uri 'none'; form-action 'none'"
    )
    title = f"rolechain run {report.run_id}: {report.action}{' (dry run)' if report.dry_run else ''}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{e(csp)}">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{e(title)}</title>'
        f"<style>{HTML_STYLE}</style></head>\n<body>"
        f"<h1>{e(title)}</h1><dl>{dl}</dl>"
        f'<section id="counts"><h2>Targets by status</h2><ul>{counts}</ul></section>'
        f'<section id="causes"><h2>Failures by cause</h2>{causes}</section>'
        '<section id="targets"><h2>Targets</h2>'
        '<p><input id="filter" type="search" placeholder="filter: account, region, status or any text" '
        f'aria-label="filter the targets" autocomplete="off"> <span id="shown">{total} of {total} shown</span></p>'
        "<table><thead><tr><th>account</th><th>region</th><th>status</th><th>detail</th><th>ms</th></tr></thead>"
        f"<tbody>{rows}</tbody></table></section>"
        f"<script>{HTML_SCRIPT}</script></body></html>\n"
    )


MAX_TEXTS = 5  # distinct messages shown in a failure group; every target's own is in the table anyway

HTML_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#1d1d1f}
h1{font-size:1.3em}h2{font-size:1.1em;margin-top:1.5em}
dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}dt{color:#555}dd{margin:0}
#counts ul{list-style:none;padding:0;display:flex;gap:1em}
.count{padding:.4em .8em;border-radius:4px;background:#eee}.count .n{font-weight:bold;font-size:1.3em}
.status-ok .n,tr.status-ok td:nth-child(3){color:#1a7f37}
.status-failed .n,tr.status-failed td:nth-child(3){color:#cf222e}
.status-skipped .n,tr.status-skipped td:nth-child(3){color:#9a6700}
.status-dry_run .n,tr.status-dry_run td:nth-child(3){color:#0969da}
details.group{border:1px solid #ddd;border-radius:4px;padding:.4em .8em;margin:.5em 0}
.group summary{cursor:pointer}.cause{font-weight:bold}.where{color:#555}
pre{white-space:pre-wrap;overflow-wrap:anywhere;background:#f6f8fa;padding:.5em;margin:.3em 0}
#filter{width:30em;max-width:100%;padding:.3em}
table{border-collapse:collapse;width:100%}th,td{text-align:left;vertical-align:top;padding:.25em .6em}
th{border-bottom:2px solid #ccc}td{border-bottom:1px solid #eee;overflow-wrap:anywhere}
td:nth-child(4){white-space:pre-wrap}
"""

# Filters the rows as the box is typed in: a row stays when it holds every word typed (any case).
HTML_SCRIPT = """
(function () {
  "use strict";
  var box = document.getElementById("filter");
  var shown = document.getElementById("shown");
  var rows = Array.prototype.slice.call(document.querySelectorAll("#targets tbody tr"));
  function apply() {
    var words = box.value.toLowerCase().split(/\\s+/).filter(Boolean);
    var n = 0;
    rows.forEach(function (row) {
      var text = row.textContent.toLowerCase();
      var keep = words.every(function (w) { return text.indexOf(w) !== -1; });
      row.hidden = !keep;
      if (keep) { n += 1; }
    });
    shown.textContent = n + " of " + rows.length + " shown";
  }
  box.addEventListener("input", apply);
  var asked = new URLSearchParams(location.hash.slice(1)).get("filter");
  if (asked) {
    box.value = asked;
    box.dispatchEvent(new Event("input"));
  }
})();
"""


def _sha256(source: str) -> str:
    """A CSP source for exactly this inline style or script."""
    return "sha256-" + base64.b64encode(hashlib.sha256(source.encode("utf-8")).digest()).decode("ascii")


def _action_or_none(name: str) -> Action[Any] | None:
    try:
        return get_action(name)
    except ConfigError:  # a stored run of a plugin's action that is not loaded here
        return None


def _summary(action: Action[Any] | None, result: TargetResult) -> str:
    if action is None:
        return json.dumps(result.output, default=str) if result.output is not None else ""
    return action.summarize(result.output or {})
