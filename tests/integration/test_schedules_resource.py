"""The JobSchedules custom resource (functions/schedules) in-process against the emulator, as its own role
(template.yaml's SchedulesRole), answering CloudFormation's ResponseURL: an HTTPS server on loopback with a
certificate made here (crhelper speaks HTTPS only, as CloudFormation's presigned S3 URLs are), trusted through
SSL_CERT_FILE as a CA bundle would be."""

from __future__ import annotations

import datetime
import http.server
import ipaddress
import json
import ssl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from rolechain_dev.emulator import DEFAULT_EXTERNAL_ID, Emulator, Seed
from rolechain_dev.local import DEMO_JOB_FILE, FakeContext, ScheduleResources, create_schedule_resources, load_handler

from tests.hub_support import load_event
from tests.secrets_guard import GUARD


class ResponseServer:
    """CloudFormation's side of the protocol: records the JSON body of every PUT to its URL."""

    def __init__(self, directory: Path) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        self.cert_file = directory / "response-server.pem"
        self.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file = directory / "response-server.key"
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        self.bodies: list[dict[str, Any]] = []
        received = self.bodies

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_file, key_file)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server.server_address[1]}/rolechain-hub/JobSchedules?X-Amz-Signature=abc"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def responses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ResponseServer]:
    server = ResponseServer(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(server.cert_file))  # what crhelper's default SSL context trusts
    yield server
    server.close()


@pytest.fixture
def stack(emulator: Emulator, seed_landscape: Callable[..., Seed]) -> tuple[Seed, ScheduleResources]:
    seed = seed_landscape(targets=1, buckets_per_account=0)
    return seed, create_schedule_resources(emulator, seed)


@pytest.fixture
def function(stack: tuple[Seed, ScheduleResources], monkeypatch: pytest.MonkeyPatch) -> Callable[[Path], ModuleType]:
    """``function(job_file)``: the schedules function's module, imported with the environment Lambda gives it
    (its own role's credentials, the job file, pointed at the emulator)."""
    seed, resources = stack
    GUARD.learn_credentials(resources.credentials)

    def load(job_file: Path) -> ModuleType:
        env = {
            **resources.credential_env(),
            "JOB_FILE": str(job_file),
            "AWS_ENDPOINT_URL": seed.endpoint_url,
            "AWS_REGION": seed.region,
            "AWS_DEFAULT_REGION": seed.region,
            "POWERTOOLS_SERVICE_NAME": "rolechain",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "NO_PROXY": "127.0.0.1,localhost",
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return load_handler("schedules")

    return load


def request(kind: str, resources: ScheduleResources, url: str, **override: Any) -> dict[str, Any]:
    """events/schedules-<kind>.json naming the emulated resources and the response server."""
    event = load_event(
        f"schedules-{kind}.json",
        SCHEDULE_GROUP=resources.group,
        **{
            "arn:aws:lambda:us-east-1:111111111111:function:SCHEDULER_FUNCTION": resources.function_arn,
            "arn:aws:iam::111111111111:role/SCHEDULE_ROLE": resources.schedule_role_arn,
            "https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/RESPONSE_PATH": url,
        },
    )
    event["ResourceProperties"].update(override)
    return event


def group_schedules(emulator: Emulator, seed: Seed, group: str) -> dict[str, dict[str, Any]]:
    admin = emulator.admin_session(seed.hub_account, seed.region).client("scheduler")
    names = [s["Name"] for s in admin.list_schedules(GroupName=group)["Schedules"]]
    return {n: admin.get_schedule(Name=n, GroupName=group) for n in names}


def test_create_update_and_delete_keep_the_group_as_the_job_file_says(
    emulator: Emulator,
    stack: tuple[Seed, ScheduleResources],
    function: Callable[[Path], ModuleType],
    responses: ResponseServer,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    seed, resources = stack
    job_path = tmp_path / "jobs.yaml"
    job_path.write_text(DEMO_JOB_FILE.read_text())
    handler = function(job_path)
    # What the function logs, as it calls its logger (Powertools keeps one handler per service and process,
    # whose stream and level earlier tests may have set: the handler's output is not this test's to read)
    logged_calls: list[str] = []
    log_info = handler.logger.info

    def recording(msg: object, *args: Any, **kwargs: Any) -> None:
        logged_calls.append(json.dumps([str(msg), [str(a) for a in args], kwargs], default=str))
        log_info(msg, *args, **kwargs)

    handler.logger.info = recording
    # Create: the demo's two scheduled jobs become two schedules; SUCCESS with the group as the physical id
    handler.lambda_handler(request("create", resources, responses.url), FakeContext("schedules"))
    (created,) = responses.bodies
    assert created["Status"] == "SUCCESS", created
    assert created["PhysicalResourceId"] == resources.group
    assert (created["LogicalResourceId"], created["RequestId"]) == (
        "JobSchedules",
        "5d478078-13e9-baf0-464a-7ef285ecc786",
    )
    assert set(group_schedules(emulator, seed, resources.group)) == {"inventory", "tag-owner"}
    # Update after a deploy whose job file changed (a new layer version): tag-owner's schedule is gone
    data = yaml.safe_load(job_path.read_text())
    del data["jobs"]["tag-owner"]["schedule"]
    data["jobs"]["inventory"]["schedule"] = "rate(12 hours)"
    job_path.write_text(yaml.safe_dump(data))
    handler.lambda_handler(request("update", resources, responses.url), FakeContext("schedules"))
    assert responses.bodies[-1]["Status"] == "SUCCESS" and responses.bodies[-1]["PhysicalResourceId"] == resources.group
    now = group_schedules(emulator, seed, resources.group)
    assert set(now) == {"inventory"} and now["inventory"]["ScheduleExpression"] == "rate(12 hours)"
    # Delete: every schedule of the group goes
    handler.lambda_handler(request("delete", resources, responses.url), FakeContext("schedules"))
    assert responses.bodies[-1]["Status"] == "SUCCESS"
    assert group_schedules(emulator, seed, resources.group) == {}
    # and a Delete once the group itself is gone succeeds too: there is nothing left to remove
    emulator.admin_session(seed.hub_account, seed.region).client("scheduler").delete_schedule_group(
        Name=resources.group
    )
    handler.lambda_handler(request("delete", resources, responses.url), FakeContext("schedules"))
    assert responses.bodies[-1]["Status"] == "SUCCESS"
    assert len(responses.bodies) == 4
    # and the function's log never shows the presigned response URL (it grants writing the response)
    handler.logger.info = log_info
    logged = capfd.readouterr()
    text = "\n".join(logged_calls) + logged.out + logged.err
    assert "schedules synced" in text
    assert "X-Amz-Signature" not in text


def test_a_bad_job_file_fails_the_resource_with_the_field_and_no_secret(
    emulator: Emulator,
    stack: tuple[Seed, ScheduleResources],
    function: Callable[[Path], ModuleType],
    responses: ResponseServer,
    tmp_path: Path,
) -> None:
    _seed, resources = stack
    # Given a job file with a literal ExternalId (the seeded one) and a schedule EventBridge cannot read
    data = yaml.safe_load(DEMO_JOB_FILE.read_text())
    data["defaults"]["external_id"] = DEFAULT_EXTERNAL_ID
    data["jobs"]["inventory"]["schedule"] = "daily"
    job_path = tmp_path / "jobs.yaml"
    job_path.write_text(yaml.safe_dump(data))
    emulator.clear_requests()
    handler = function(job_path)
    # When CloudFormation creates the resource
    handler.lambda_handler(request("create", resources, responses.url), FakeContext("schedules"))
    # Then it fails with the field and the rule, never the ExternalId, and no schedule call was made
    (answer,) = responses.bodies
    assert answer["Status"] == "FAILED"
    assert answer["Reason"].startswith("jobs.inventory.schedule: must be an EventBridge expression"), answer
    assert DEFAULT_EXTERNAL_ID not in json.dumps(answer)
    assert emulator.calls(service="scheduler") == []


@pytest.mark.parametrize(
    ("override", "reason"),
    [
        ({"ScheduleGroup": "default"}, "ResourceProperties.ScheduleGroup: the default group"),
        ({"RoleArn": "not-a-role"}, "ResourceProperties.RoleArn"),
        ({"Unexpected": "x"}, "ResourceProperties.Unexpected"),
    ],
)
def test_bad_properties_fail_the_resource_naming_the_property(
    emulator: Emulator,
    stack: tuple[Seed, ScheduleResources],
    function: Callable[[Path], ModuleType],
    responses: ResponseServer,
    override: dict[str, str],
    reason: str,
) -> None:
    _, resources = stack
    emulator.clear_requests()
    handler = function(DEMO_JOB_FILE)
    handler.lambda_handler(request("create", resources, responses.url, **override), FakeContext("schedules"))
    (answer,) = responses.bodies
    assert answer["Status"] == "FAILED" and answer["Reason"].startswith(reason), answer
    assert [r.action for r in emulator.calls(service="scheduler") if r.action != "GetScheduleGroup"] == []


def test_a_refused_call_fails_the_resource_with_what_scheduler_said(
    emulator: Emulator,
    stack: tuple[Seed, ScheduleResources],
    function: Callable[[Path], ModuleType],
    responses: ResponseServer,
) -> None:
    # Given a role the function may not pass (IAM, as the emulator enforces it)
    seed, resources = stack
    handler = function(DEMO_JOB_FILE)
    handler.lambda_handler(request("create", resources, responses.url, RoleArn=seed.hub_role_arn), FakeContext("s"))
    (answer,) = responses.bodies
    assert answer["Status"] == "FAILED"
    assert "create_schedule of schedule inventory" in answer["Reason"] and "AccessDenied" in answer["Reason"]
    assert group_schedules(emulator, seed, resources.group) == {}


def test_a_run_out_of_time_answers_failed_before_lambda_stops_it(
    emulator: Emulator,
    stack: tuple[Seed, ScheduleResources],
    function: Callable[[Path], ModuleType],
    responses: ResponseServer,
) -> None:
    # Given every Scheduler call slow and an invocation with 1.5 s left
    _, resources = stack
    handler = function(DEMO_JOB_FILE)
    emulator.latency = 0.5
    try:
        handler.lambda_handler(request("create", resources, responses.url), FakeContext("s", remaining_ms=1500))
    finally:
        emulator.latency = 0.0
    # Then CloudFormation heard FAILED first, half a second before the end: the deploy does not wait an hour
    assert responses.bodies[0]["Status"] == "FAILED" and responses.bodies[0]["Reason"] == "Execution timed out"
