"""A repeated account or region is one target: planned once, acted on once, stored once."""

from __future__ import annotations

from typing import Any

from rolechain.hub import RunStore
from rolechain.jobs import RoleSettings
from rolechain.planning import PlanRequest, Target, plan_run
from rolechain.runner import Status, TargetResult


def test_duplicate_accounts_and_regions_are_planned_once() -> None:
    request = PlanRequest(
        action="whoami",
        accounts=["200000000001", "200000000002", "200000000001"],
        regions=["us-east-1", "eu-west-1", "us-east-1"],
    )
    plan = plan_run(None, RoleSettings(), request)  # type: ignore[arg-type]  # a literal-free plan calls no AWS
    assert plan.targets == [
        Target("200000000001", "us-east-1"),
        Target("200000000001", "eu-west-1"),
        Target("200000000002", "us-east-1"),
        Target("200000000002", "eu-west-1"),
    ]


class StrictDynamoDB:
    """Refuses a BatchWriteItem naming one key twice, as DynamoDB does."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], dict[str, Any]] = {}

    def batch_write_item(self, RequestItems: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
        (requests,) = RequestItems.values()
        keys = [(r["PutRequest"]["Item"]["pk"]["S"], r["PutRequest"]["Item"]["sk"]["S"]) for r in requests]
        if len(keys) != len(set(keys)):
            raise AssertionError("ValidationException: Provided list of item keys contains duplicates")
        self.items.update(zip(keys, (r["PutRequest"]["Item"] for r in requests), strict=True))
        return {}


def test_the_store_never_writes_one_key_twice_in_a_batch() -> None:
    client = StrictDynamoDB()
    first = TargetResult("200000000001", "us-east-1", "whoami", Status.FAILED)
    last = TargetResult("200000000001", "us-east-1", "whoami", Status.OK)
    RunStore(client, "runs", 1).put_results("run1", [first, last])
    assert list(client.items) == [("run#run1", "target#200000000001#us-east-1")]
    assert client.items[("run#run1", "target#200000000001#us-east-1")]["status"] == {"S": "ok"}
