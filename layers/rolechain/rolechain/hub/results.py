"""Every target's result in the results bucket, as JSON Lines: the aws-access side of "results you can
find" (DynamoDB keeps run state, counters and summaries; S3 keeps every output, however large).

Layout: ``runs/<job or action>/<yyyy-mm-dd>/<run_id>/<account>-<region>.jsonl``, the date the run was
created (UTC), one object per target holding one line per result (a target of ``regions: all`` has one
per enabled region). The key is the target's own, so a message SQS delivers again overwrites its object
with the same lines instead of adding them: a target is never in the bucket twice.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from rolechain.runner import TargetResult

CONTENT_TYPE = "application/x-ndjson"


def results_prefix(record: Mapping[str, Any]) -> str:
    """The key prefix of a run's results, from its record (``job`` or ``action``, ``created_at``, ``run_id``)."""
    name = record.get("job") or record["action"]  # JobName / ActionName: safe in a key
    return f"runs/{name}/{str(record['created_at'])[:10]}/{record['run_id']}/"


def target_key(record: Mapping[str, Any], account: str, region: str) -> str:
    """The one object of a target of the run."""
    return f"{results_prefix(record)}{account}-{region}.jsonl"


def result_line(record: Mapping[str, Any], result: TargetResult) -> dict[str, Any]:
    """One result as the bucket (and its Athena table) holds it: the output and error as JSON text,
    so one string column reads any action's output (``json_extract``)."""
    return {
        "run_id": record["run_id"],
        "job": record.get("job"),
        "action": result.action,
        "account": result.account,
        "region": result.region,
        "status": str(result.status),
        "dry_run": bool(record.get("dry_run")),
        "requested_by": record.get("requested_by"),
        "created_at": record.get("created_at"),
        "duration_ms": result.duration_ms,
        "output_json": None if result.output is None else json.dumps(result.output, default=str),
        "error_json": None if result.error is None else json.dumps(result.error, default=str),
    }


class ResultsBucket:
    """Writes a run's per-target results to the results bucket (owned by the hub account)."""

    def __init__(self, client: Any, bucket: str, owner: str) -> None:
        self._client = client
        self.bucket = bucket
        self._owner = owner

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def put_target(self, record: Mapping[str, Any], account: str, region: str, results: Sequence[TargetResult]) -> str:
        """Write the target's object (all its results, one line each) and return its ``s3://`` URI."""
        key = target_key(record, account, region)
        lines = [json.dumps(result_line(record, r), default=str, separators=(",", ":")) for r in results]
        self._client.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=("\n".join(lines) + "\n").encode(),
            ContentType=CONTENT_TYPE,
            ExpectedBucketOwner=self._owner,
        )
        return self.uri(key)
