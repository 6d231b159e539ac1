"""Runs and their per-target results in DynamoDB (``pk = run#<id>``; ``sk = meta`` for the run,
``sk = target#<account>#<region>`` for each target's result)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from rolechain.errors import RolechainError
from rolechain.hub.errors import NotFound
from rolechain.runner import Status, TargetResult

MAX_RESULT_BYTES = 300_000  # DynamoDB items stop at 400 KB


class RunStore:
    """Runs and their per-target results in DynamoDB (the aws-access side of run records)."""

    def __init__(self, client: Any, table: str, ttl_days: int) -> None:
        self._client = client
        self._table = table
        self._ttl_seconds = ttl_days * 86400
        self._serializer = TypeSerializer()
        self._deserializer = TypeDeserializer()

    def _item(self, data: Mapping[str, Any]) -> dict[str, Any]:
        clean = json.loads(json.dumps(data, default=str), parse_float=Decimal)  # DynamoDB wants Decimal
        return {k: self._serializer.serialize(v) for k, v in clean.items() if v is not None}

    def _ttl(self) -> int:
        return int(time.time()) + self._ttl_seconds

    def put_run(self, run: Mapping[str, Any]) -> None:
        self._client.put_item(
            TableName=self._table,
            Item=self._item({**run, "pk": f"run#{run['run_id']}", "sk": "meta", "ttl": self._ttl()}),
        )

    def put_results(self, run_id: str, results: Iterable[TargetResult]) -> None:
        """Store one item per target; a target given twice keeps its last result, since DynamoDB
        refuses a BatchWriteItem that names one key twice."""
        by_key = {(r.account, r.region): r for r in results}
        items = [self._result_item(run_id, r) for r in by_key.values()]
        for start in range(0, len(items), 25):  # BatchWriteItem takes 25 items a call
            request = {self._table: [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]}
            for _ in range(8):
                response = self._client.batch_write_item(RequestItems=request)
                request = response.get("UnprocessedItems") or {}
                if not request:
                    break
                time.sleep(0.1)
            else:
                raise RolechainError(f"DynamoDB kept {len(request[self._table])} result(s) of run {run_id} unprocessed")

    def _result_item(self, run_id: str, result: TargetResult) -> dict[str, Any]:
        data = result.to_dict()
        if len(json.dumps(data.get("output"), default=str)) > MAX_RESULT_BYTES:
            data["output"] = {"truncated": True, "note": f"output over {MAX_RESULT_BYTES} bytes not stored"}
        return self._item(
            {**data, "pk": f"run#{run_id}", "sk": f"target#{result.account}#{result.region}", "ttl": self._ttl()}
        )

    def has_result(self, run_id: str, account: str, region: str) -> bool:
        """Whether a result of this target is already stored."""
        key = {"pk": {"S": f"run#{run_id}"}, "sk": {"S": f"target#{account}#{region}"}}
        return "Item" in self._client.get_item(TableName=self._table, Key=key, ConsistentRead=True)

    def get_run_record(self, run_id: str) -> dict[str, Any] | None:
        """The run's own record (no results), or None when there is none."""
        item = self._client.get_item(
            TableName=self._table, Key={"pk": {"S": f"run#{run_id}"}, "sk": {"S": "meta"}}, ConsistentRead=True
        ).get("Item")
        if item is None:
            return None
        record: dict[str, Any] = _plain({k: self._deserializer.deserialize(v) for k, v in item.items()})
        return record

    def get_run(self, run_id: str) -> dict[str, Any]:
        """The run with its results and a summary. Raises NotFound."""
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": f"run#{run_id}"}},
        }
        for page in self._client.get_paginator("query").paginate(**kwargs):
            items.extend({k: self._deserializer.deserialize(v) for k, v in item.items()} for item in page["Items"])
        meta = next((i for i in items if i["sk"] == "meta"), None)
        if meta is None:
            raise NotFound(f"no run {run_id!r}")
        results = [_plain(i) for i in items if i["sk"].startswith("target#")]
        for result in results:
            for key in ("pk", "sk", "ttl"):
                result.pop(key, None)
        summary = {str(s): 0 for s in Status}
        for result in results:
            summary[result["status"]] = summary.get(result["status"], 0) + 1
        run = {k: v for k, v in _plain(meta).items() if k not in ("pk", "sk", "ttl")}
        expected = int(run.get("target_count", len(results)))
        run["status"] = "completed" if len(results) >= expected else "running"
        return {**run, "summary": summary, "results": sorted(results, key=lambda r: (r["account"], r["region"]))}


def _plain(value: Any) -> Any:
    """DynamoDB's Decimals back to ints/floats, recursively."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
