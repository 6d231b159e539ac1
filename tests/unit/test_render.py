"""The CLI's terminal output (issue #11 point 5): rich tables that fit a terminal's width and wrap without
cutting a word, one line a row without a terminal, colour only on a terminal without NO_COLOR, and the
run's progress bar (count, rate, time left) on stderr."""

from __future__ import annotations

import io
import re
import time

import pytest
from rolechain import render
from rolechain.render import PLAIN, Progress, Terminal, render_report, render_table
from rolechain.runner import RunReport, Status, TargetResult

ANSI = re.compile(r"\x1b\[")
ANSI_SEQUENCE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
HINT = (
    "likely condition (2): the trust policy of arn:aws:iam::200000000002:role/rolechain-target does not allow "
    "arn:aws:sts::111111111111:assumed-role/rolechain-hub/rolechain.run.0123456789ab with the ExternalId it was "
    'given (its AssumeRolePolicyDocument needs Principal {"AWS": "arn:aws:iam::111111111111:role/rolechain-hub"})'
)


class TtyStream(io.StringIO):
    """What a terminal looks like to the CLI: a stream whose isatty() is true."""

    def isatty(self) -> bool:
        return True


def report() -> RunReport:
    return RunReport(
        run_id="r1",
        action="whoami",
        dry_run=False,
        started_at="2024-01-01T00:00:00Z",
        duration_s=0.5,
        results=[
            TargetResult("200000000001", "us-east-1", "whoami", Status.OK, output={"arn": "arn:aws:sts::1:x"}),
            TargetResult(
                "200000000002",
                "us-east-1",
                "whoami",
                Status.FAILED,
                error={"type": "assume_role", "hop": 2, "code": "AccessDenied", "hint": HINT},
            ),
        ],
    )


def words(text: str) -> list[str]:
    return text.split()


def test_a_table_on_a_terminal_fits_its_width_and_wraps_without_cutting() -> None:
    text = render_table(("account", "detail"), [("200000000002", HINT)], terminal=Terminal(width=60))

    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 60
    assert len(lines) > 3  # header, rule and a row folded over several lines
    # every character of the cell is there, in order: folded, never cut or ellipsised
    assert "".join(line[len("200000000002  ") :] for line in lines[2:]).replace(" ", "") == HINT.replace(" ", "")
    assert "…" not in text


def test_without_a_terminal_each_row_is_one_line_without_colour() -> None:
    text = render_table(("account", "detail"), [("200000000002", HINT), ("200000000003", "ok")])

    assert text.splitlines() == [
        "account" + " " * 7 + "detail",
        "-" * 13 + " " + "-" * len(HINT),
        f"200000000002  {HINT}",
        "200000000003  ok",
    ]
    assert not ANSI.search(text)


def test_a_cell_is_shown_as_text_never_as_markup() -> None:
    text = render_table(("account",), [("[bold red]200000000001[/]",)])
    assert text.splitlines()[2] == "[bold red]200000000001[/]"


def test_a_stream_that_is_not_a_terminal_is_plain(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")  # rich would colour a pipe for it; a report never does
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert Terminal.of(io.StringIO()) == PLAIN
    assert not ANSI.search(render_report(report(), terminal=Terminal.of(io.StringIO())))


def test_a_terminal_gets_colour_unless_no_color_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.setenv("COLUMNS", "100")
    monkeypatch.delenv("NO_COLOR", raising=False)
    coloured = Terminal.of(TtyStream())
    assert coloured.width == 100 and coloured.color_system is not None
    assert ANSI.search(render_report(report(), terminal=coloured))

    monkeypatch.setenv("NO_COLOR", "1")
    plain = Terminal.of(TtyStream())
    assert plain.width == 100 and plain.color_system is None
    text = render_report(report(), terminal=plain)
    assert not ANSI.search(text)
    assert max(len(line) for line in text.split("\ndetails:\n")[0].splitlines()) <= 100


def test_the_report_on_a_narrow_terminal_keeps_the_full_failure_below_the_table() -> None:
    text = render_report(report(), terminal=Terminal(width=70))

    table, _, rest = text.partition("\ndetails:\n")
    assert max(len(line) for line in table.splitlines()[1:]) <= 70
    assert "... (details)" in table
    assert rest.splitlines()[0] == f"200000000002 us-east-1: hop 2 AccessDenied: {HINT}"  # whole, on one line


def test_the_progress_bar_shows_the_count_the_rate_and_the_time_left(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "150")
    stream = TtyStream()
    progress = Progress(stream)
    result = TargetResult("200000000001", "us-east-1", "whoami", Status.OK)
    for done in (1, 2):
        progress.update(result, done, 4)
        time.sleep(0.05)
    progress._progress.refresh()  # what its refresh thread does a few times a second
    drawn = ANSI_SEQUENCE.sub("", stream.getvalue())
    progress.close()

    assert "2/4" in drawn
    assert re.search(r"[0-9.]+ targets/s", drawn)
    assert re.search(r"ETA \d+:\d\d:\d\d", drawn)
    assert "200000000001 us-east-1" in drawn
    assert not progress._progress.live.is_started  # its refresh thread is gone


def test_the_module_is_the_only_one_of_the_package_that_imports_rich() -> None:
    # the Lambda layer does not ship rich: nothing the handlers import may need it
    from pathlib import Path

    package = Path(render.__file__).parent
    importers = sorted(
        str(p.relative_to(package))
        for p in package.rglob("*.py")
        if re.search(r"^\s*(from|import) rich\b", p.read_text(encoding="utf-8"), re.M)
    )
    assert importers == ["render.py"]
