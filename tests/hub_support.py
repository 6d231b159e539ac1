"""Shared by the handler tests (in-process) and the e2e tests (sam local): the hub's emulated
resources built from template.yaml's own definitions, R1's credentials, fixtures and handlers."""

from __future__ import annotations

import copy
import importlib.util
import json
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
from cfnlint.decode import cfn_yaml
from rolechain.emulator import Emulator, Seed

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "events"
JOB_FILE = ROOT / "layers" / "rolechain" / "rolechain" / "examples" / "jobs.yaml"


def load_template(name: str = "template.yaml") -> dict[str, Any]:
    """A CloudFormation template with its short-form tags (!Ref, !Sub...) as plain dicts."""
    return dict(cfn_yaml.load(str(ROOT / name)))


def load_event(name: str, **replace: str) -> dict[str, Any]:
    """A fixture from events/, with ``{"RUN_ID": "abc"}``-style text replacements."""
    text = (EVENTS / name).read_text()
    for old, new in replace.items():
        text = text.replace(old, new)
    event: dict[str, Any] = json.loads(text)
    return event


@dataclass
class HubResources:
    table: str
    queue_url: str
    dlq_url: str
    r1_credentials: dict[str, str]

    def env(self, endpoint_url: str, region: str, **extra: str) -> dict[str, str]:
        """The functions' environment: Globals variables with the emulated resources, R1 as credentials."""
        env = {
            "AWS_ACCESS_KEY_ID": self.r1_credentials["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": self.r1_credentials["SecretAccessKey"],
            "AWS_SESSION_TOKEN": self.r1_credentials["SessionToken"],
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_ENDPOINT_URL": endpoint_url,
            "RUNS_TABLE": self.table,
            "TARGET_QUEUE_URL": self.queue_url,
            "JOB_FILE": str(JOB_FILE),
            "INLINE_TARGET_LIMIT": "10",
            "MAX_RECEIVE_COUNT": "3",
            "AWS_MAX_ATTEMPTS": "2",  # fail fast under injected throttling
            "POWERTOOLS_SERVICE_NAME": "rolechain",
            "POWERTOOLS_METRICS_NAMESPACE": "Rolechain",
            "POWERTOOLS_TRACE_DISABLED": "true",
        }
        env.update(extra)
        return env


def create_hub_resources(emulator: Emulator, seed: Seed) -> HubResources:
    """The runs table and the queues in the hub account, from template.yaml's definitions."""
    resources = load_template()["Resources"]
    admin = emulator.admin_session(seed.hub_account, seed.region)
    table = f"rolechain-runs-{uuid.uuid4().hex[:8]}"
    props = resources["RunsTable"]["Properties"]
    dynamodb = admin.client("dynamodb")
    dynamodb.create_table(
        TableName=table,
        AttributeDefinitions=[dict(a) for a in props["AttributeDefinitions"]],
        KeySchema=[dict(k) for k in props["KeySchema"]],
        BillingMode=props["BillingMode"],
    )
    dynamodb.update_time_to_live(TableName=table, TimeToLiveSpecification=dict(props["TimeToLiveSpecification"]))
    sqs = admin.client("sqs")
    dlq_url = sqs.create_queue(QueueName=f"rolechain-dlq-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue_props = resources["TargetQueue"]["Properties"]
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(queue_props["RedrivePolicy"]["maxReceiveCount"])}
    queue_url = sqs.create_queue(
        QueueName=f"rolechain-targets-{uuid.uuid4().hex[:8]}",
        Attributes={"VisibilityTimeout": str(queue_props["VisibilityTimeout"]), "RedrivePolicy": json.dumps(redrive)},
    )["QueueUrl"]
    # R1's own credentials, as the functions' execution role gives them
    user = boto3.Session(
        aws_access_key_id=seed.user_access_key_id,
        aws_secret_access_key=seed.user_secret_access_key,
        region_name=seed.region,
    )
    r1 = user.client("sts", endpoint_url=seed.endpoint_url).assume_role(
        RoleArn=seed.hub_role_arn, RoleSessionName="rolechain-lambda"
    )["Credentials"]
    return HubResources(table, queue_url, dlq_url, {k: str(v) for k, v in r1.items()})


def load_handler(function: str, alias: str | None = None) -> ModuleType:
    """Import functions/<function>/app.py as a fresh module (its module scope builds the hub)."""
    name = alias or f"rolechain_fn_{function}_{uuid.uuid4().hex[:6]}"
    spec = importlib.util.spec_from_file_location(name, ROOT / "functions" / function / "app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


class FakeContext:
    """The Lambda context attributes Powertools reads."""

    def __init__(self, function: str = "rolechain-fn", remaining_ms: int = 300_000) -> None:
        self.function_name = function
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 512
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:111111111111:function:{function}"
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/rolechain/test/{function}"
        self.log_stream_name = "test"
        self._remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self._remaining_ms


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
