"""Where a CLI run's results go (issue #11): --format table|json|jsonl|csv and --output DIR (results.jsonl
written as targets finish, summary.json at the end); a table never cuts the fix out of an error."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from rolechain import cli
from rolechain_dev.emulator import Emulator, Seed

from tests.integration.support import CliResult, assume_role_requests, run_cli
from tests.secrets_guard import GUARD

pytestmark = pytest.mark.integration

MISSING = "200000000003"


@pytest.fixture
def seed(seed_landscape: Callable[..., Seed], as_operator: Callable[[Seed], Seed]) -> Seed:
    return as_operator(seed_landscape(targets=3, buckets_per_account=2, missing_role_accounts=[MISSING]))


def run(seed: Seed, *extra: str) -> CliResult:
    accounts = ",".join(t.account_id for t in seed.targets)
    return run_cli(["run", "--action", "list_buckets", "--accounts", accounts, "--via", seed.hub_role_arn,
                    "--external-id", seed.external_id, *extra])  # fmt: skip


def test_jsonl_is_one_result_a_line(seed: Seed) -> None:
    result = run(seed, "--format", "jsonl")
    assert result.code == 1  # one target fails
    lines = [json.loads(line) for line in result.out.splitlines()]
    assert sorted(line["account"] for line in lines) == sorted(t.account_id for t in seed.targets)
    assert len({line["run_id"] for line in lines}) == 1
    statuses = {line["account"]: line["status"] for line in lines}
    assert statuses[MISSING] == "failed" and list(statuses.values()).count("ok") == 2


def test_csv_has_the_error_and_its_full_hint_in_columns(seed: Seed) -> None:
    result = run(seed, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(result.out)))
    assert [r["account"] for r in rows] == [t.account_id for t in seed.targets]
    failed = next(r for r in rows if r["account"] == MISSING)
    assert (failed["status"], failed["code"]) == ("failed", "AccessDenied")
    assert "condition (2)" in failed["hint"] and len(failed["hint"]) > 160  # not cut
    ok = next(r for r in rows if r["status"] == "ok")
    assert json.loads(ok["output"])["count"] == 2
    assert seed.external_id not in result.out


def test_output_dir_holds_the_results_and_the_summary(seed: Seed, tmp_path: Path) -> None:
    result = run(seed, "--output", str(tmp_path / "runs"), "--format", "json")
    run_id = result.json["run_id"]
    folder = tmp_path / "runs" / run_id
    assert f"rolechain: results in {folder}" in result.err
    lines = [json.loads(line) for line in (folder / "results.jsonl").read_text().splitlines()]
    assert sorted((r["account"], r["status"]) for r in lines) == sorted(
        (r["account"], r["status"]) for r in result.json["results"]
    )
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["run_id"] == run_id and summary["summary"] == {"ok": 2, "failed": 1, "skipped": 0, "dry_run": 0}
    assert "results" not in summary


def test_a_table_prints_a_long_hint_in_full_below_it(seed: Seed) -> None:
    result = run(seed)
    assert result.code == 1
    table, _, rest = result.out.partition("\ndetails:\n")
    assert "... (details)" in table
    detail = next(line for line in rest.splitlines() if line.startswith(f"{MISSING} us-east-1: "))
    assert "condition (2)" in detail and len(detail) > 160


def test_bad_format_flags_exit_2(seed: Seed, capsys: pytest.CaptureFixture[str]) -> None:
    result = run(seed, "--json", "--format", "csv")
    assert result.code == 2 and "--json: is --format json; it cannot go with --format csv" in result.err
    assert run(seed, "--format", "xml").code == 2
    assert "invalid choice: 'xml'" in capsys.readouterr().err  # argparse's own message


def test_an_output_dir_that_cannot_be_written_is_refused_before_any_request(
    seed: Seed, emulator: Emulator, tmp_path: Path
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    emulator.clear_requests()
    result = run(seed, "--output", str(blocker))
    assert result.code == 2 and f"--output: cannot write {blocker}/" in result.err
    assert assume_role_requests(emulator) == []


class TtyStream(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_table_fits_its_width_and_stderr_shows_the_progress(
    seed: Seed, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a terminal 72 columns wide (COLUMNS, as rich reads it) that does not want colour
    monkeypatch.setenv("COLUMNS", "72")
    monkeypatch.setenv("NO_COLOR", "1")
    out, err = TtyStream(), TtyStream()
    accounts = ",".join(t.account_id for t in seed.targets)

    code = cli.main(["run", "--action", "list_buckets", "--accounts", accounts, "--via", seed.hub_role_arn,
                     "--external-id", seed.external_id], out=out, err=err)  # fmt: skip

    assert code == 1
    table, _, rest = out.getvalue().partition("\ndetails:\n")
    assert max(len(line) for line in table.splitlines()[1:]) <= 72  # the header line may be longer
    assert not re.search("\x1b\\[[0-9;]*m", out.getvalue())  # NO_COLOR: no colour codes
    rows = [line for line in table.splitlines() if line.startswith(MISSING)]
    assert rows and rows[0].split()[:3] == [MISSING, "us-east-1", "failed"]
    assert "condition (2)" in next(line for line in rest.splitlines() if line.startswith(f"{MISSING} us-east-1: "))
    assert f"{len(seed.targets)}/{len(seed.targets)}" in err.getvalue()  # the bar, drawn on stderr
    assert "targets/s" in err.getvalue()
    GUARD.check(out.getvalue() + err.getvalue(), "the CLI's terminal output")
