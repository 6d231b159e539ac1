"""Runs and their per-target results in DynamoDB (``pk = run#<id>``; ``sk = meta`` for the run,
``sk = target#<account>#<region>`` for each target's result).

A run's record (``meta``) is also in two sparse indexes, newest first by ``created_key``
(``<created_at>#<run_id>``): :data:`RUNS_INDEX` holds every run (partition ``list_pk = run``) and
:data:`REQUESTER_INDEX` the runs someone requested, partitioned by ``requested_by``.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from rolechain.errors import RolechainError
from rolechain.runner import Status, TargetResult

MAX_RESULT_BYTES = 300_000  # DynamoDB items stop at 400 KB
PLAN_BUCKET = 100  # accounts per item of a queued run's plan (about 2 KB: one read unit)
DONE_PAGE = 1000  # markers a page when completion counts them (a page of their counts, not a 1 MB page)
# what a run's progress is read as: its counters and the state of its guardrails
PROGRESS_FIELDS = (
    "target_count", "targets_done", "count_failed", "wave_ends", "wave", "waves",
    "max_failures_count", "max_failures", "rollout", "stopped", "enqueued",
)  # fmt: skip
RUNS_INDEX = "runs-by-created"
REQUESTER_INDEX = "runs-by-requester"
RUNS_PARTITION = "run"  # list_pk of every run record: the partition of RUNS_INDEX


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
        keys = {
            "pk": f"run#{run['run_id']}",
            "sk": "meta",
            "list_pk": RUNS_PARTITION,
            "created_key": f"{run['created_at']}#{run['run_id']}",
        }
        self._client.put_item(TableName=self._table, Item=self._item({**run, **keys, "ttl": self._ttl()}))

    def query_runs(
        self,
        *,
        requested_by: str | None,
        job: str | None,
        start_key: Mapping[str, Any] | None,
        page_size: int = 100,
    ) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
        """Run records newest first, each with its index key (a page's ``ExclusiveStartKey`` to go on
        after it): those ``requested_by`` requested (:data:`REQUESTER_INDEX`), or every run (None,
        :data:`RUNS_INDEX`); only job ``job``'s when given; ``page_size`` items read a call. A Query
        of an index, never a Scan."""
        partition, value = ("requested_by", requested_by) if requested_by else ("list_pk", RUNS_PARTITION)
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": REQUESTER_INDEX if requested_by else RUNS_INDEX,
            "KeyConditionExpression": "#p = :p",
            "ExpressionAttributeNames": {"#p": partition},
            "ExpressionAttributeValues": {":p": {"S": value}},
            "ScanIndexForward": False,
            "Limit": page_size,
        }
        if job is not None:
            kwargs["FilterExpression"] = "#job = :job"
            kwargs["ExpressionAttributeNames"]["#job"] = "job"
            kwargs["ExpressionAttributeValues"][":job"] = {"S": job}
        if start_key is not None:
            kwargs["ExclusiveStartKey"] = dict(start_key)
        while True:
            page = self._client.query(**kwargs)
            for item in page["Items"]:
                key = {name: item[name] for name in ("pk", "sk", partition, "created_key")}
                record = _plain({k: self._deserializer.deserialize(v) for k, v in item.items()})
                yield _public(record), key
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def query_results(
        self, run_id: str, *, status: str | None, start_key: Mapping[str, Any] | None, page_size: int = 1000
    ) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
        """The run's stored target results in (account, region) order, each with its key (to go on
        after it); only those of ``status`` when given."""
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :target)",
            "ExpressionAttributeValues": {":pk": {"S": f"run#{run_id}"}, ":target": {"S": "target#"}},
            "Limit": page_size,
        }
        if status is not None:
            kwargs["FilterExpression"] = "#status = :status"
            kwargs["ExpressionAttributeNames"] = {"#status": "status"}
            kwargs["ExpressionAttributeValues"][":status"] = {"S": status}
        if start_key is not None:
            kwargs["ExclusiveStartKey"] = dict(start_key)
        while True:
            page = self._client.query(**kwargs)
            for item in page["Items"]:
                key = {name: item[name] for name in ("pk", "sk")}
                yield _public(_plain({k: self._deserializer.deserialize(v) for k, v in item.items()})), key
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def put_results(
        self, run_id: str, results: Iterable[TargetResult], uris: Mapping[tuple[str, str], str] | None = None
    ) -> None:
        """Store one item per target; a target given twice keeps its last result, since DynamoDB
        refuses a BatchWriteItem that names one key twice. ``uris``: where each result (by account and
        region) is kept in full, the pointer an output too large for an item leaves."""
        uris = uris or {}
        items = [self._result_item(run_id, r, uris.get((r.account, r.region))) for r in _last_per_key(results)]
        self._batch_put(run_id, items)

    def _batch_put(self, run_id: str, items: Sequence[dict[str, Any]]) -> None:
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

    def _result_item(self, run_id: str, result: TargetResult, uri: str | None) -> dict[str, Any]:
        data = result.to_dict()
        size = len(json.dumps(data.get("output"), default=str).encode())
        if size > MAX_RESULT_BYTES:
            # the item keeps a pointer; the results bucket keeps the output whole
            data["output"] = None
            data["output_bytes"] = size
            data["output_uri"] = uri
            if uri is None:
                data["output_note"] = f"output of {size} bytes, over {MAX_RESULT_BYTES}: the results bucket kept none"
        return self._item(
            {**data, "pk": f"run#{run_id}", "sk": f"target#{result.account}#{result.region}", "ttl": self._ttl()}
        )

    def record_target(
        self,
        run_id: str,
        account: str,
        region: str,
        results: Sequence[TargetResult],
        *,
        archive: Callable[[], str] | None = None,
    ) -> dict[str, Any] | None:
        """Store a queued target's results and count it on the run, once; returns the run's counters
        (``targets_done``, ``count_<status>``) as counting it left them (None: counted before, nothing
        written).

        A marker item ``done#<account>#<region>`` claims the target (a conditional put): a message
        delivered again after its target was counted writes nothing (False). Then the results, then the
        run's counters grow by DynamoDB ``ADD`` (one item, no transaction: workers never conflict), then
        the marker says it was counted. A delivery whose earlier attempt stopped between the claim and
        the count (a Lambda timeout) finds the marker uncounted and finishes the count. The counters
        decide when to look; completion itself is decided from the markers (:meth:`done_targets`).

        ``archive`` (writing the results bucket; returns the object's URI) runs once the target is
        claimed, before anything is counted: only the delivery that counts the target writes its object,
        and one that fails there leaves the claim uncounted for the next delivery to finish."""
        counts = _counts(results)
        marker = self._item(
            {
                "pk": f"run#{run_id}",
                "sk": f"done#{account}#{region}",
                "counted": False,
                **_prefixed(counts),
                "ttl": self._ttl(),
            }
        )
        try:
            self._client.put_item(TableName=self._table, Item=marker, ConditionExpression="attribute_not_exists(pk)")
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            existing = self._marker(run_id, account, region) or {}
            if existing.get("counted", {}).get("BOOL", True):
                return None  # counted before: a message delivered again
        uri = archive() if archive is not None else None
        self.put_results(run_id, results, {(r.account, r.region): uri for r in results} if uri else None)
        # counted, with the counts of these results (a delivery finishing an earlier attempt's claim has
        # results of its own)
        return self._count(run_id, account, region, counts)

    def finish_claim(self, run_id: str, account: str, region: str) -> dict[str, Any] | None:
        """Count a target an earlier attempt claimed and stored the results of but died before counting,
        with the counts its marker kept at the claim: what that attempt's own count would have added.
        Returns the run's counters as counting left them (None: no such claim, or counted already)."""
        marker = self._marker(run_id, account, region)
        if marker is None or marker.get("counted", {}).get("BOOL", True):
            return None
        counts = {str(s): int(marker.get(f"count_{s}", {}).get("N", "0")) for s in Status}
        return self._count(run_id, account, region, counts)

    def _marker(self, run_id: str, account: str, region: str) -> dict[str, Any] | None:
        """The target's marker item as stored (read consistently), or None when no attempt claimed it."""
        key = self._key(run_id, f"done#{account}#{region}")
        response = self._client.get_item(TableName=self._table, Key=key, ConsistentRead=True)
        item: dict[str, Any] | None = response.get("Item")
        return item

    def _count(self, run_id: str, account: str, region: str, counts: Mapping[str, int]) -> dict[str, Any]:
        """The run's counters grown by ``counts`` (one target), then the target's marker set counted with
        them; returns the counters as that count left them."""
        counted = self._client.update_item(**self._count_update(run_id, counts, targets=1), ReturnValues="UPDATED_NEW")
        names = {f"#c_{k}": f"count_{k}" for k in counts}
        values: dict[str, Any] = {":yes": {"BOOL": True}, **{f":c_{k}": {"N": str(v)} for k, v in counts.items()}}
        self._client.update_item(
            TableName=self._table,
            Key=self._key(run_id, f"done#{account}#{region}"),
            UpdateExpression="SET counted = :yes, " + ", ".join(f"#c_{k} = :c_{k}" for k in counts),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )
        attributes = counted.get("Attributes", {})
        progress: dict[str, Any] = _plain(
            {k: self._deserializer.deserialize(v) for k, v in attributes.items() if k in PROGRESS_FIELDS}
        )
        return progress

    def record_inline(
        self,
        run_id: str,
        results: Sequence[TargetResult],
        targets: Sequence[tuple[str, str]],
        uris: Mapping[tuple[str, str], str] | None = None,
    ) -> None:
        """Store an inline run's results, a counted marker per target and the run's counters; ``uris``
        as for :meth:`put_results`."""
        self.put_results(run_id, results, uris)
        markers = [
            self._item({"pk": f"run#{run_id}", "sk": f"done#{a}#{r}", "counted": True, **_prefixed(_counts(found)),
                        "ttl": self._ttl()})
            for (a, r), found in results_by_target(results, targets).items()
        ]  # fmt: skip
        self._batch_put(run_id, markers)
        self._client.update_item(**self._count_update(run_id, _counts(results), targets=len(targets)))

    def record_skipped(
        self,
        run_id: str,
        results: Sequence[TargetResult],
        archive: Callable[[Sequence[TargetResult]], Mapping[tuple[str, str], str]] | None = None,
    ) -> int:
        """Record targets a stopped run never started (one result each) skipped and count them, each only
        if no attempt claimed it: a target some delivery ran (or is running) keeps its own result. The
        claims are conditional puts of the targets' markers, eight at once; ``archive`` writes the claimed
        targets' results to the results bucket (their URIs by target). Returns how many were recorded."""

        def claim(result: TargetResult) -> TargetResult | None:
            marker = self._item(
                {"pk": f"run#{run_id}", "sk": f"done#{result.account}#{result.region}", "counted": False,
                 "ttl": self._ttl()}
            )  # fmt: skip
            try:
                self._client.put_item(
                    TableName=self._table, Item=marker, ConditionExpression="attribute_not_exists(pk)"
                )
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                    return None  # claimed by an attempt: not this caller's to record
                raise
            return result

        def counted(result: TargetResult) -> None:
            self._client.update_item(
                TableName=self._table,
                Key=self._key(run_id, f"done#{result.account}#{result.region}"),
                UpdateExpression="SET counted = :yes, count_skipped = :one",
                ExpressionAttributeValues={":yes": {"BOOL": True}, ":one": {"N": "1"}},
            )

        with ThreadPoolExecutor(max_workers=8, thread_name_prefix="rolechain-skip") as pool:
            claimed = [r for r in pool.map(claim, results) if r is not None]
            if not claimed:
                return 0
            uris = archive(claimed) if archive is not None else None
            self.put_results(run_id, claimed, uris)
            self._client.update_item(**self._count_update(run_id, _counts(claimed), targets=len(claimed)))
            list(pool.map(counted, claimed))
        return len(claimed)

    def done_targets(self, run_id: str) -> tuple[int, dict[str, int]]:
        """How many targets of the run are done and counted (their markers, read consistently; a claim
        whose attempt is still running, or stopped before counting, is not done) and their results'
        summary: the facts completion is decided on, whatever the counters say. Only the counts are read,
        :data:`DONE_PAGE` markers a page: what the completing worker holds does not grow with the run."""
        done, summary = 0, {str(s): 0 for s in Status}
        names = {f"#c_{s}": f"count_{s}" for s in summary}
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :done)",
            "FilterExpression": "counted = :yes",
            "ProjectionExpression": ", ".join(names),
            "ExpressionAttributeNames": names,
            "Limit": DONE_PAGE,
            "ExpressionAttributeValues": {
                ":pk": {"S": f"run#{run_id}"},
                ":done": {"S": "done#"},
                ":yes": {"BOOL": True},
            },
            "ConsistentRead": True,
        }
        for page in self._client.get_paginator("query").paginate(**kwargs):
            for item in page["Items"]:
                done += 1
                for status in summary:
                    summary[status] += int(item.get(f"count_{status}", {}).get("N", "0"))
        return done, summary

    def _count_update(self, run_id: str, counts: Mapping[str, int], *, targets: int) -> dict[str, Any]:
        names = {f"#c_{k}": f"count_{k}" for k in counts}
        values: dict[str, Any] = {":targets": {"N": str(targets)}}
        values.update({f":c_{k}": {"N": str(v)} for k, v in counts.items()})
        adds = ", ".join(["targets_done :targets", *(f"#c_{k} :c_{k}" for k in counts)])
        return {
            "TableName": self._table,
            "Key": {"pk": {"S": f"run#{run_id}"}, "sk": {"S": "meta"}},
            "UpdateExpression": f"ADD {adds}",
            "ConditionExpression": "attribute_exists(pk)",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }

    def claim_completion(self, run_id: str, now: str) -> dict[str, Any] | None:
        """Mark the run completed if every target is counted and nobody marked it before: the run's
        record (with its counters) for the one caller that did, None for everybody else."""
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": f"run#{run_id}"}, "sk": {"S": "meta"}},
                UpdateExpression="SET completed_at = :now",
                ConditionExpression="attribute_exists(pk) AND attribute_not_exists(completed_at)",
                ExpressionAttributeValues={":now": {"S": now}},
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return None
            raise
        record: dict[str, Any] = _plain(
            {k: self._deserializer.deserialize(v) for k, v in response["Attributes"].items()}
        )
        return record

    def release_completion(self, run_id: str) -> None:
        """Undo :meth:`claim_completion` (its event could not be sent: the next worker tries again)."""
        self._client.update_item(
            TableName=self._table,
            Key={"pk": {"S": f"run#{run_id}"}, "sk": {"S": "meta"}},
            UpdateExpression="REMOVE completed_at",
        )

    def set_enqueued(self, run_id: str, upto: int) -> None:
        """How many of the run's target messages are queued (a continuation starts there); it only grows,
        so a sender that records late never takes back what a later wave's sender recorded."""
        self._update_if(
            run_id,
            UpdateExpression="SET enqueued = :upto",
            ConditionExpression="attribute_not_exists(enqueued) OR enqueued < :upto",
            ExpressionAttributeValues={":upto": {"N": str(upto)}},
        )

    def progress(self, run_id: str) -> dict[str, Any]:
        """The run's counters and guardrail state (one consistent read of its record, no results)."""
        fields = PROGRESS_FIELDS
        item = self._client.get_item(
            TableName=self._table,
            Key={"pk": {"S": f"run#{run_id}"}, "sk": {"S": "meta"}},
            ProjectionExpression=", ".join(f"#f{i}" for i in range(len(fields))),
            ExpressionAttributeNames={f"#f{i}": name for i, name in enumerate(fields)},
            ConsistentRead=True,
        ).get("Item", {})
        progress: dict[str, Any] = _plain({k: self._deserializer.deserialize(v) for k, v in item.items()})
        return progress

    def end_wave(self, run_id: str, wave: int, stats: Mapping[str, int], *, stopped: str | None = None) -> bool:
        """End wave ``wave`` of the run (the next one runs, or with ``stopped`` none does), keeping its
        stats; True for the one caller that did (the conditional update lets one through)."""
        values: dict[str, Any] = {
            ":wave": {"N": str(wave)},
            ":next": {"N": str(wave + 1)},
            ":stats": {"L": [{"M": {k: {"N": str(v)} for k, v in stats.items()}}]},
            ":none": {"L": []},
        }
        update = "SET wave = :next, waves = list_append(if_not_exists(waves, :none), :stats)"
        if stopped is not None:
            update += ", stopped = :why"
            values[":why"] = {"S": stopped}
        return self._update_if(
            run_id,
            UpdateExpression=update,
            ConditionExpression="wave = :wave AND attribute_not_exists(stopped)",
            ExpressionAttributeValues=values,
        )

    def stop_run(self, run_id: str, why: str) -> bool:
        """Stop the run (no target of it starts any more); True for the one caller that did."""
        return self._update_if(
            run_id,
            UpdateExpression="SET stopped = :why",
            ConditionExpression="attribute_exists(pk) AND attribute_not_exists(stopped)",
            ExpressionAttributeValues={":why": {"S": why}},
        )

    def claim_enqueueing(self, run_id: str, start: int) -> bool:
        """Whether this caller may enqueue the part from ``start``: the run's messages are queued up to
        there, and nobody took that part before (a continuation delivered twice enqueues it once)."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": f"run#{run_id}"}, "sk": {"S": "meta"}},
                UpdateExpression="SET continuing = :start",
                ConditionExpression="enqueued = :start AND (attribute_not_exists(continuing) OR continuing < :start)",
                ExpressionAttributeValues={":start": {"N": str(start)}},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def release_enqueueing(self, run_id: str, start: int) -> None:
        """Give back the part from ``start`` (nothing of it was queued): its continue message may take it."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": f"run#{run_id}"}, "sk": {"S": "meta"}},
                UpdateExpression="REMOVE continuing",
                ConditionExpression="continuing = :start",
                ExpressionAttributeValues={":start": {"N": str(start)}},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise

    # -- a queued run's plan: its accounts, in buckets of about PLAN_BUCKET ----------------------------
    def put_plan(self, run_id: str, targets: Sequence[tuple[str, str]]) -> int:
        """Store a queued run's targets, (account, region) in their order, in buckets by a hash of the
        account, so a worker checks its message's target with one small read however large the run.
        Returns the number of buckets (kept on the run's record)."""
        buckets = max(1, -(-len(targets) // PLAN_BUCKET))
        grouped: dict[int, list[tuple[int, str]]] = {}
        for slot, (account, region) in enumerate(targets):
            grouped.setdefault(plan_bucket(account, buckets), []).append((slot, f"{account}:{region}"))
        items = [
            self._item(
                {
                    "pk": f"run#{run_id}",
                    "sk": f"plan#{bucket:06d}",
                    # one string each, not lists: an item of two attributes is cheap to read and parse
                    "targets": ",".join(t for _, t in members),
                    "slots": ",".join(str(s) for s, _ in members),
                    "ttl": self._ttl(),
                }
            )
            for bucket, members in sorted(grouped.items())
        ]
        self._batch_put(run_id, items)
        return buckets

    def plan_targets(self, run_id: str, buckets: int) -> list[tuple[str, str]]:
        """Every target (account, region) of a queued run's plan, in their order."""
        keys = [self._key(run_id, f"plan#{b:06d}") for b in range(buckets)]
        found: list[tuple[int, tuple[str, str]]] = []
        for item in self._batch_get(keys).values():
            slots, targets = item["slots"]["S"].split(","), item["targets"]["S"].split(",")
            found += [(int(s), _pair(t)) for s, t in zip(slots, targets, strict=True)]
        return [target for _, target in sorted(found)]

    def worker_view(
        self, run_id: str, account: str, region: str, buckets: int | None
    ) -> tuple[bool, dict[str, Any] | None, bool, bool]:
        """What a worker needs of a target before it runs it, in one read: whether the target is counted
        already, the run's record, whether (account, region) is a target of the run's plan (its bucket of
        ``buckets``, the message's hint; without it, or with a wrong one, the record's number is read
        first), and whether an attempt claimed it (its marker exists, counted or not)."""
        meta, done = self._key(run_id, "meta"), self._key(run_id, f"done#{account}#{region}")
        keys = [meta, done]
        if buckets:
            keys.append(self._key(run_id, f"plan#{plan_bucket(account, buckets):06d}"))
        items = self._batch_get(keys)
        record = items.get("meta")
        plain = None if record is None else _plain({k: self._deserializer.deserialize(v) for k, v in record.items()})
        marker = items.get(f"done#{account}#{region}")
        counted = bool((marker or {}).get("counted", {}).get("BOOL", False))
        actual = int(plain["plan_buckets"]) if plain is not None and plain.get("plan_buckets") else None
        if actual is not None and buckets != actual:  # a message without the hint (or a wrong one)
            return self.worker_view(run_id, account, region, actual)
        bucket = next((v for k, v in items.items() if k.startswith("plan#")), None)
        planned = bucket is not None and f"{account}:{region}" in bucket.get("targets", {}).get("S", "").split(",")
        return counted, plain, planned, marker is not None

    def _update_if(self, run_id: str, **update: Any) -> bool:
        """A conditional UpdateItem of the run's record: False when its condition does not hold."""
        try:
            self._client.update_item(TableName=self._table, Key=self._key(run_id, "meta"), **update)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def _key(self, run_id: str, sk: str) -> dict[str, Any]:
        return {"pk": {"S": f"run#{run_id}"}, "sk": {"S": sk}}

    def _batch_get(self, keys: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """The items of ``keys`` that exist (consistent reads, 100 keys a call), by sort key."""
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(keys), 100):  # BatchGetItem takes 100 keys a call
            request: dict[str, Any] = {self._table: {"Keys": list(keys[start : start + 100]), "ConsistentRead": True}}
            for _ in range(8):
                response = self._client.batch_get_item(RequestItems=request)
                for item in response.get("Responses", {}).get(self._table, []):
                    found[item["sk"]["S"]] = item
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
                time.sleep(0.1)
            else:
                raise RolechainError(f"DynamoDB left {len(request[self._table]['Keys'])} key(s) unread")
        return found

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


INTERNAL_KEYS = ("pk", "sk", "ttl", "list_pk", "created_key")


def _public(item: dict[str, Any]) -> dict[str, Any]:
    """An item without the table's own keys."""
    return {k: v for k, v in item.items() if k not in INTERNAL_KEYS}


def results_by_target(
    results: Iterable[TargetResult], targets: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], list[TargetResult]]:
    """Each planned target (account, region) with its results: a result of region "all" expanded is
    its account's target; a result of no planned target is left out."""
    by_target: dict[tuple[str, str], list[TargetResult]] = {key: [] for key in targets}
    for result in results:
        key = (result.account, result.region) if (result.account, result.region) in by_target else None
        key = key or next((k for k in by_target if k[0] == result.account and k[1] == "all"), None)
        if key is not None:
            by_target[key].append(result)
    return by_target


def _pair(target: str) -> tuple[str, str]:
    account, _, region = target.partition(":")
    return account, region


def plan_bucket(account: str, buckets: int) -> int:
    """The bucket of ``account`` among ``buckets`` of a run's plan (a stable hash: every process agrees)."""
    return int.from_bytes(hashlib.sha256(account.encode()).digest()[:8], "big") % buckets


def _counts(results: Iterable[TargetResult]) -> dict[str, int]:
    counts = {str(s): 0 for s in Status}
    for result in _last_per_key(results):
        counts[str(result.status)] += 1
    return counts


def _prefixed(counts: Mapping[str, int]) -> dict[str, int]:
    return {f"count_{k}": v for k, v in counts.items()}


def _last_per_key(results: Iterable[TargetResult]) -> list[TargetResult]:
    """One result per (account, region), the last given: DynamoDB refuses a batch naming a key twice."""
    return list({(r.account, r.region): r for r in results}.values())


def _plain(value: Any) -> Any:
    """DynamoDB's Decimals back to ints/floats, recursively."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
