"""The HTML report of a run (``--format html``, ``report.html`` with ``--output``): self-contained, the
counts by status, the failures grouped by cause (hop, condition, AWS error code), every target in a table,
and every value escaped: an account or a message carrying markup shows as text."""

from __future__ import annotations

import base64
import hashlib
import re

from rolechain.render import failure_groups, render_html
from rolechain.runner import RunReport, Status, TargetResult

from tests.html_page import read_page

INJECTED = "<script>document.body.setAttribute('data-injected', 'yes')</script>"
ONE_BUCKET = {"buckets": [{"name": "b1"}], "count": 1}
INTERRUPTED = {"type": "skipped", "message": "interrupted: not started before the run was stopped"}
TRUST_HINT = "likely condition (2): the trust policy of arn:aws:iam::{0}:role/rolechain-target does not allow it"


def hop_failure(account: str, cause: str = "trust_policy") -> TargetResult:
    error = {"type": "assume_role", "hop": 2, "code": "AccessDenied", "likely_cause": cause,
             "role_arn": f"arn:aws:iam::{account}:role/rolechain-target", "message": "denied",
             "hint": TRUST_HINT.format(account)}  # fmt: skip
    return TargetResult(account, "us-east-1", "list_buckets", Status.FAILED, error=error)


def hostile_report() -> RunReport:
    aws = {"type": "aws", "code": "AccessDenied", "operation": "ListBuckets", "message": f"no {INJECTED}"}
    return RunReport(
        run_id="r-html",
        action="list_buckets",
        dry_run=False,
        started_at="2024-01-01T00:00:00Z",
        duration_s=1.25,
        results=[
            TargetResult("200000000001", "us-east-1", "list_buckets", Status.OK, output=ONE_BUCKET),
            hop_failure("200000000002"),
            hop_failure("200000000003"),
            hop_failure("200000000004", cause="caller_permission"),
            TargetResult(f"2000{INJECTED}", "eu-west-1", "list_buckets", Status.FAILED, error=aws),
            TargetResult("200000000006", "us-east-1", "list_buckets", Status.SKIPPED, error=INTERRUPTED),
        ],
    )


def test_failures_are_grouped_by_hop_condition_and_code() -> None:
    groups = {g.cause: [r.account for r in g.results] for g in failure_groups(hostile_report())}

    assert groups == {
        "hop 2 · condition (2): the role's trust policy · AccessDenied": ["200000000002", "200000000003"],
        "hop 2 · condition (1): the caller's identity policy · AccessDenied": ["200000000004"],
        "aws · AccessDenied · on ListBuckets": [f"2000{INJECTED}"],
        "skipped": ["200000000006"],
    }


def test_the_page_shows_the_counts_the_groups_and_every_target() -> None:
    page = read_page(render_html(hostile_report()))

    assert page.counts == {"ok": 1, "failed": 4, "skipped": 1, "dry_run": 0}
    assert page.causes[0] == "2 failed: hop 2 · condition (2): the role's trust policy · AccessDenied"
    assert len(page.causes) == 4
    assert [r.cells[0] for r in page.rows][:2] == ["200000000001", "200000000002"]
    assert page.rows[1].cells[3] == "hop 2 AccessDenied: " + TRUST_HINT.format("200000000002")  # whole, not cut
    assert page.rows[0].cells[3] == "1 bucket(s): b1"  # the action's own summary
    assert page.shown == "6 of 6 shown" and not any(r.hidden for r in page.rows)


def test_markup_in_an_account_or_a_message_is_escaped() -> None:
    text = render_html(hostile_report())

    assert INJECTED not in text
    assert "&lt;script&gt;document.body.setAttribute(&#x27;data-injected&#x27;" in text
    page = read_page(text)
    assert page.scripts == 1  # the page's own filter, nothing else
    assert page.rows[4].cells[0] == f"2000{INJECTED}"  # shown as the text it is


def test_the_page_is_self_contained_and_allows_only_its_own_script_and_style() -> None:
    text = render_html(hostile_report())

    assert not re.search(r"\b(src|href)=|url\(|@import|https?://", text)
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', text)
    assert csp is not None and "default-src &#x27;none&#x27;" in csp.group(1)
    for tag in ("script", "style"):
        body = re.search(f"<{tag}>(.*?)</{tag}>", text, re.S)
        assert body is not None
        digest = base64.b64encode(hashlib.sha256(body.group(1).encode()).digest()).decode()
        assert f"sha256-{digest}" in csp.group(1)  # the browser runs this one script and applies this style
