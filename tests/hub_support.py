"""Shared by the handler tests (in-process) and the e2e tests (sam local): fixtures from events/,
and the hub's emulated resources (built by rolechain_dev.local from template.yaml's own definitions)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from rolechain_dev.emulator import Emulator, Seed
from rolechain_dev.local import (
    DEMO_JOB_FILE,
    FakeContext,
    HubResources,
    load_handler,
    project_root,
    record_queued_run,
)
from rolechain_dev.local import create_hub_resources as _create
from rolechain_dev.local import load_template as _load_template

from tests.secrets_guard import GUARD

ROOT = project_root()
EVENTS = ROOT / "events"

__all__ = [
    "ROOT",
    "FakeContext",
    "HubResources",
    "create_hub_resources",
    "load_event",
    "load_handler",
    "load_template",
    "record_queued_run",
    "sqs_event",
    "test_env",
]


def load_template(name: str = "template.yaml") -> dict[str, Any]:
    return _load_template(ROOT, name)


def create_hub_resources(emulator: Emulator, seed: Seed) -> HubResources:
    resources = _create(emulator, seed, ROOT)
    GUARD.learn_credentials(resources.r1_credentials)  # R1's, as Lambda would give them: never to be shown
    return resources


def test_env(hub: HubResources, seed: Seed, **extra: str) -> dict[str, str]:
    """The environment a function sees in Lambda, pointed at the emulator, R1 as its credentials."""
    env = {
        **hub.function_env(seed.endpoint_url, seed.region),
        **hub.credential_env(),
        "AWS_DEFAULT_REGION": seed.region,
    }
    env.update(extra)
    return env


test_env.__test__ = False  # type: ignore[attr-defined]  # not a test, despite its name


def stored_results(emulator: Emulator, seed: Seed, table: str, run_id: str) -> dict[str, str]:
    """sort key -> status of every target result the hub stored for ``run_id``."""
    dynamodb = emulator.admin_session(seed.hub_account, seed.region).client("dynamodb")
    items = dynamodb.query(
        TableName=table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"run#{run_id}"}},
    )["Items"]
    return {i["sk"]["S"]: i["status"]["S"] for i in items if i["sk"]["S"].startswith("target#")}


def results_objects(
    emulator: Emulator, seed: Seed, bucket: str, prefix: str = "runs/"
) -> dict[str, list[dict[str, Any]]]:
    """key -> its JSON lines, of every object under ``prefix`` in the hub's results bucket; each
    checked to disclose no seeded secret (ExternalId, key, token)."""
    s3 = emulator.admin_session(seed.hub_account, seed.region).client("s3")
    objects = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for entry in page.get("Contents", []):
            text = s3.get_object(Bucket=bucket, Key=entry["Key"])["Body"].read().decode()
            assert GUARD.leaks(text) == [], entry["Key"]
            objects[entry["Key"]] = [json.loads(line) for line in text.splitlines()]
    return objects


def edited_demo_job_file(directory: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    """A copy of the demo's job file in ``directory``, changed by ``edit`` (which gets the parsed YAML)."""
    data = yaml.safe_load(DEMO_JOB_FILE.read_text())
    edit(data)
    path = directory / "jobs.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def load_event(name: str, **replace: str) -> dict[str, Any]:
    """A fixture from events/, with ``RUN_ID="abc"``-style text replacements."""
    text = (EVENTS / name).read_text()
    for old, new in replace.items():
        text = text.replace(old, new)
    event: dict[str, Any] = json.loads(text)
    return event


def sqs_event(messages: list[dict[str, Any]], template: str = "worker-sqs-batch.json") -> dict[str, Any]:
    """An SQS batch event shaped like the fixture, one record per (message id, body, receive count)."""
    base = load_event(template)["Records"][0]
    records = []
    for message in messages:
        record = copy.deepcopy(base)
        record["messageId"] = message["id"]
        record["receiptHandle"] = message.get("receipt", "handle-" + message["id"])
        record["body"] = message["body"]
        record["attributes"]["ApproximateReceiveCount"] = str(message.get("receive_count", 1))
        records.append(record)
    return {"Records": records}
