"""The HTML report in a real browser (headless Chromium, `make chromium` installs it): the counts on the page
are the run's, the failures are grouped by cause, the filter box's script filters the rows (``#filter=`` in
the address types into it), and markup injected through a result's values never runs."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import pytest
from rolechain.render import render_html
from rolechain_dev.emulator import Seed

from tests.html_page import dump_dom, read_page
from tests.integration.support import run_cli
from tests.unit.test_html_report import INJECTED, hostile_report

pytestmark = pytest.mark.integration

MISSING = "200000000003"


@pytest.fixture
def seed(seed_landscape: Callable[..., Seed], as_operator: Callable[[Seed], Seed]) -> Seed:
    return as_operator(seed_landscape(targets=3, buckets_per_account=1, missing_role_accounts=[MISSING]))


def test_the_report_of_a_run_in_chromium(seed: Seed, tmp_path: Path) -> None:
    # Given a run whose third account has no target role, written with --format html and --output
    accounts = ",".join(t.account_id for t in seed.targets)
    result = run_cli(["run", "--action", "list_buckets", "--accounts", accounts, "--via", seed.hub_role_arn,
                      "--external-id", seed.external_id, "--format", "html",
                      "--output", str(tmp_path / "runs")])  # fmt: skip
    assert result.code == 1
    (folder,) = (tmp_path / "runs").iterdir()
    report = folder / "report.html"
    assert report.read_text(encoding="utf-8") == result.out  # the page printed is the one kept beside the results
    summary = json.loads((folder / "summary.json").read_text())
    assert seed.external_id not in result.out

    # When Chromium loads it (no filter), then with a filter typed in through the address
    page = read_page(dump_dom(report.as_uri(), tmp_path / "profile"))
    one = read_page(dump_dom(f"{report.as_uri()}#filter={MISSING}", tmp_path / "profile"))
    two_words = read_page(dump_dom(f"{report.as_uri()}#filter={quote('FAILED hop 2')}", tmp_path / "profile"))

    # Then the counts are the run's, the failure is grouped by its hop, condition and code
    assert page.counts == summary["summary"] == {"ok": 2, "failed": 1, "skipped": 0, "dry_run": 0}
    assert page.causes == ["1 failed: hop 2 · condition (2): the role's trust policy · AccessDenied"]
    assert page.shown == "3 of 3 shown" and [r.hidden for r in page.rows] == [False, False, False]
    # and the filter box's script ran: only the rows holding every word typed are left
    assert [cells[0] for cells in one.visible()] == [MISSING] and one.shown == "1 of 3 shown"
    assert [cells[0] for cells in two_words.visible()] == [MISSING] and two_words.shown == "1 of 3 shown"
    assert len(one.rows) == 3  # hidden, not removed


def test_markup_injected_through_a_result_never_runs_in_chromium(tmp_path: Path) -> None:
    page_file = tmp_path / "report.html"
    page_file.write_text(render_html(hostile_report()), encoding="utf-8")

    page = read_page(dump_dom(f"{page_file.as_uri()}#filter=eu-west-1", tmp_path / "profile"))

    assert "data-injected" not in page.body_attrs  # the injected script did not run
    assert page.scripts == 1
    assert [cells[0] for cells in page.visible()] == [f"2000{INJECTED}"]  # shown as text; the page's script ran
    assert INJECTED in page.visible()[0][3]
