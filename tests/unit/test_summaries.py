"""Each action says its own one-line summary of a target's output; the CLI's table only prints it."""

from __future__ import annotations

from typing import Any

import pytest
from rolechain import cli
from rolechain.actions import REGISTRY, Action, Params
from rolechain.actions.base import SUMMARY_WIDTH
from rolechain.runner import RunReport, Status, TargetResult

BUCKETS = [
    {"name": "rc-1", "region": "us-east-1", "created": "2024-01-01T00:00:00", "tags": {"owner": "alice"}},
    {"name": "rc-2", "region": "us-east-1", "created": "2024-01-01T00:00:00", "tags": {}},
]


@pytest.mark.parametrize(
    ("action", "output", "line"),
    [
        ("list_buckets", {"count": 2, "buckets": BUCKETS}, "2 bucket(s): rc-1, rc-2; tags owner=alice"),
        ("list_buckets", {"count": 0, "buckets": []}, "0 bucket(s):"),
        ("tag_resources", {"tagged": ["a", "b"], "already_tagged": ["c"], "tags": {}}, "tagged 2, already 1"),
        (
            "tag_resources",
            {"would_tag": ["a"], "already_tagged": [], "tags": {}, "changes": {}},
            "would_tag 1, already 0",
        ),
        ("block_s3_public_access", {"changed": [{}], "already_compliant": ["x", "y"]}, "changed 1, already 2"),
        ("block_s3_public_access", {"would_change": [], "already_compliant": ["x"]}, "would_change 0, already 1"),
        (
            "whoami",
            {"arn": "arn:aws:sts::2:assumed-role/r/s", "account": "2", "user_id": "U"},
            "arn:aws:sts::2:assumed-role/r/s",
        ),
    ],
)
def test_builtin_actions_summarize_their_own_outputs(action: str, output: dict[str, Any], line: str) -> None:
    assert REGISTRY[action].summarize(output) == line


class _P(Params):
    pass


def _action(summary: Any = None) -> Action[_P]:
    return Action("acme_thing", "test", _P, (), False, lambda ctx, params: {}, summary=summary)


def test_without_a_summary_the_output_is_compact_json_on_one_line() -> None:
    assert _action().summarize({"note": "two\nlines", "n": 1}) == '{"note": "two\\nlines", "n": 1}'
    assert len(_action().summarize({"big": "x" * 1000})) == SUMMARY_WIDTH


def test_a_summary_is_one_line_and_capped() -> None:
    action = _action(lambda out: f"first\n  second {'y' * 500}")

    line = action.summarize({})

    assert line.startswith("first second yyy") and "\n" not in line and len(line) == SUMMARY_WIDTH


def test_a_summary_that_raises_falls_back_to_the_generic_line() -> None:
    assert _action(lambda out: out["missing"]).summarize({"n": 1}) == '{"n": 1}'


def test_the_cli_table_prints_the_actions_own_summary(isolated_registry: dict[str, Any]) -> None:
    isolated_registry["acme_thing"] = _action(lambda out: f"{out['n']} thing(s)")
    report = RunReport(
        run_id="r1",
        action="acme_thing",
        dry_run=False,
        started_at="2024-01-01T00:00:00Z",
        duration_s=0.5,
        results=[
            TargetResult("200000000001", "us-east-1", "acme_thing", Status.OK, output={"n": 3}),
            TargetResult(
                "200000000002", "us-east-1", "acme_thing", Status.FAILED, error={"type": "action", "message": "boom"}
            ),
        ],
    )

    lines = cli.render_report(report).splitlines()

    assert lines[3].split(maxsplit=3) == ["200000000001", "us-east-1", "ok", "3 thing(s)"]
    assert lines[4].split(maxsplit=3) == ["200000000002", "us-east-1", "failed", "action: boom"]
