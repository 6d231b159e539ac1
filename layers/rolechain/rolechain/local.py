"""Run the hub's functions locally against the emulator, as Lambda runs them.

Two ways, same inputs and outputs: through ``sam local invoke`` (a container from the Lambda image,
R1's session credentials as the function's credentials) when a Docker engine answers, or in this
process (the handler module imported and called) when none does. Used by ``make demo`` and the
end-to-end tests; it is development tooling and is never imported in Lambda.

The Lambda image: SAM pulls it unless it is already present locally, then it is used as is
(``--skip-pull-image``). ``ROLECHAIN_SAM_SKIP_PULL=1`` always uses the local image (offline hosts with
a stand-in built under the same tag), ``ROLECHAIN_SAM_SKIP_PULL=0`` always pulls.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3

from rolechain.emulator import Emulator, Seed

FUNCTIONS = {
    "scheduler": "SchedulerFunction",
    "worker": "WorkerFunction",
    "remediation": "RemediationFunction",
    "api": "ApiFunction",
}
LAMBDA_IMAGE = "public.ecr.aws/lambda/python:3.13-x86_64"  # the template's runtime and architecture
REPORT_RE = re.compile(
    r"REPORT RequestId: \S+\s+(?:Init Duration: (?P<init>[\d.]+) ms\s+)?Duration: (?P<dur>[\d.]+) ms"
)


def project_root() -> Path:
    """The repository this package is installed from (editable install), where template.yaml lives."""
    return Path(__file__).resolve().parents[3]


def load_template(root: Path | None = None, name: str = "template.yaml") -> dict[str, Any]:
    """A CloudFormation template with its short-form tags (!Ref, !Sub...) as plain dicts."""
    from cfnlint.decode import cfn_yaml  # dev dependency, like moto

    return dict(cfn_yaml.load(str((root or project_root()) / name)))


@dataclass
class HubResources:
    """The hub's emulated table and queues, and R1's session credentials."""

    table: str
    queue_url: str
    dlq_url: str
    r1_credentials: dict[str, str]
    job_file: str

    def function_env(self, endpoint_url: str, region: str) -> dict[str, str]:
        """The functions' own variables (what the template's Globals set, pointed at the emulator)."""
        return {
            "RUNS_TABLE": self.table,
            "TARGET_QUEUE_URL": self.queue_url,
            "JOB_FILE": self.job_file,
            "INLINE_TARGET_LIMIT": "10",
            "MAX_RECEIVE_COUNT": "3",
            "AWS_MAX_ATTEMPTS": "2",
            "AWS_ENDPOINT_URL": endpoint_url,
            "AWS_REGION": region,
            "POWERTOOLS_SERVICE_NAME": "rolechain",
            "POWERTOOLS_METRICS_NAMESPACE": "Rolechain",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
        }

    def credential_env(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": self.r1_credentials["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": self.r1_credentials["SecretAccessKey"],
            "AWS_SESSION_TOKEN": self.r1_credentials["SessionToken"],
        }


def create_hub_resources(emulator: Emulator, seed: Seed, root: Path | None = None) -> HubResources:
    """The runs table and the queues in the hub account, built from template.yaml's own definitions,
    and R1's credentials (U1 assumes R1, as the Lambda service would give them to a function)."""
    root = root or project_root()
    resources = load_template(root)["Resources"]
    admin = emulator.admin_session(seed.hub_account, seed.region)
    suffix = uuid.uuid4().hex[:8]
    table = f"rolechain-runs-{suffix}"
    props = resources["RunsTable"]["Properties"]
    dynamodb: Any = admin.client("dynamodb")
    dynamodb.create_table(
        TableName=table,
        AttributeDefinitions=[dict(a) for a in props["AttributeDefinitions"]],
        KeySchema=[dict(k) for k in props["KeySchema"]],
        BillingMode=props["BillingMode"],
    )
    dynamodb.update_time_to_live(TableName=table, TimeToLiveSpecification=dict(props["TimeToLiveSpecification"]))
    sqs = admin.client("sqs")
    dlq_url = sqs.create_queue(QueueName=f"rolechain-dlq-{suffix}")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue = resources["TargetQueue"]["Properties"]
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(queue["RedrivePolicy"]["maxReceiveCount"])}
    queue_url = sqs.create_queue(
        QueueName=f"rolechain-targets-{suffix}",
        Attributes={"VisibilityTimeout": str(queue["VisibilityTimeout"]), "RedrivePolicy": json.dumps(redrive)},
    )["QueueUrl"]
    user = boto3.Session(
        aws_access_key_id=seed.user_access_key_id,
        aws_secret_access_key=seed.user_secret_access_key,
        region_name=seed.region,
    )
    r1 = user.client("sts", endpoint_url=seed.endpoint_url).assume_role(
        RoleArn=seed.hub_role_arn, RoleSessionName="rolechain-lambda"
    )["Credentials"]
    return HubResources(
        table=table,
        queue_url=queue_url,
        dlq_url=dlq_url,
        r1_credentials={k: str(v) for k, v in r1.items()},
        job_file=str(root / "layers" / "rolechain" / "rolechain" / "examples" / "jobs.yaml"),
    )


def load_handler(function: str, root: Path | None = None) -> ModuleType:
    """Import functions/<function>/app.py as a fresh module (its module scope builds the hub)."""
    name = f"rolechain_fn_{function}_{uuid.uuid4().hex[:6]}"
    spec = importlib.util.spec_from_file_location(name, (root or project_root()) / "functions" / function / "app.py")
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"no handler for function {function!r}")
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
        self.log_group_name = f"/rolechain/local/{function}"
        self.log_stream_name = "local"
        self._remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self._remaining_ms


def docker_answers() -> bool:
    docker = shutil.which("docker")
    if docker is None:
        return False
    return subprocess.run([docker, "info"], capture_output=True, check=False, timeout=30).returncode == 0


def docker_bridge_gateway() -> str | None:
    """The host's address on Docker's default bridge: where containers reach a host service."""
    docker = shutil.which("docker")
    if docker is None:
        return None
    result = subprocess.run(
        [docker, "network", "inspect", "bridge", "--format", "{{(index .IPAM.Config 0).Gateway}}"],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    address = result.stdout.strip()
    return address if result.returncode == 0 and address else None


def lambda_image_present() -> bool:
    docker = shutil.which("docker")
    if docker is None:
        return False
    result = subprocess.run([docker, "image", "inspect", LAMBDA_IMAGE], capture_output=True, check=False, timeout=30)
    return result.returncode == 0


def skip_pull_image() -> bool:
    """Whether SAM should use the local Lambda image instead of pulling it (see the module doc)."""
    choice = os.environ.get("ROLECHAIN_SAM_SKIP_PULL")
    if choice in ("0", "1"):
        return choice == "1"
    return lambda_image_present()


def sam_containers() -> list[dict[str, Any]]:
    """``docker inspect`` of every Lambda container SAM CLI started (running or not)."""
    docker = shutil.which("docker")
    if docker is None:
        return []
    listed = subprocess.run(
        [docker, "ps", "-aq", "--filter", "label=sam.cli.container.type=lambda"],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    ).stdout.split()
    if not listed:
        return []
    inspected = subprocess.run([docker, "inspect", *listed], capture_output=True, text=True, check=False, timeout=30)
    containers: list[dict[str, Any]] = json.loads(inspected.stdout or "[]")
    return containers


def find_sam(root: Path | None = None) -> str | None:
    """SAM CLI: $ROLECHAIN_SAM, the project's .venv-sam, or PATH."""
    candidates = [os.environ.get("ROLECHAIN_SAM"), str((root or project_root()) / ".venv-sam" / "bin" / "sam")]
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            return candidate
    return shutil.which("sam")


def sam_environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for SAM CLI: no telemetry, and python3.13 on PATH for `sam build` where pyenv
    provides it but it is not the active version."""
    env = dict(base if base is not None else os.environ)
    env["SAM_CLI_TELEMETRY"] = "0"
    if shutil.which("python3.13", path=env.get("PATH")) is None or "PYENV_VERSION" not in env:
        pyenv = shutil.which("pyenv", path=env.get("PATH"))
        if pyenv:
            listed = subprocess.run([pyenv, "versions", "--bare"], capture_output=True, text=True, check=False)
            current = subprocess.run([pyenv, "version-name"], capture_output=True, text=True, check=False)
            versions = listed.stdout.split()
            wanted = [v for v in versions if v.startswith("3.13")]
            if wanted and current.returncode == 0:
                env["PYENV_VERSION"] = ":".join(dict.fromkeys([*current.stdout.strip().split(":"), wanted[-1]]))
    return env


@dataclass
class Invocation:
    payload: Any
    init_ms: float | None = None
    duration_ms: float | None = None
    logs: str = ""


@dataclass
class SamLocal:
    """``sam build`` and ``sam local invoke`` of this project's template, pointed at the emulator.

    ``host_address`` is the address the emulator listens on as the containers see it (they reach the
    host as ``host.docker.internal``).
    """

    emulator_port: int
    hub: HubResources
    region: str
    root: Path = field(default_factory=project_root)
    sam: str | None = None
    build_dir: Path | None = None

    def __post_init__(self) -> None:
        self.sam = self.sam or find_sam(self.root)
        if self.sam is None:
            raise FileNotFoundError("SAM CLI not found (make sam installs it into .venv-sam)")
        self.build_path: Path = self.build_dir or self.root / ".aws-sam" / "build"
        self._workdir = Path(tempfile.mkdtemp(prefix="rolechain-sam-"))
        endpoint = f"http://host.docker.internal:{self.emulator_port}"
        variables = self.hub.function_env(endpoint, self.region)
        del variables["JOB_FILE"]  # in the container, the template's default: the layer's copy
        env = {"Parameters": variables}
        self.env_file = self._workdir / "env.json"
        self.env_file.write_text(json.dumps(env))
        self.skip_pull = skip_pull_image()

    def close(self) -> None:
        """Remove the working directory (its env file carries R1's session credentials)."""
        shutil.rmtree(self._workdir, ignore_errors=True)

    def __enter__(self) -> SamLocal:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _base_args(self) -> list[str]:
        args = [
            "--env-vars",
            str(self.env_file),
            "--add-host",
            "host.docker.internal:host-gateway",
            "--template",
            str(self.build_path / "template.yaml"),
        ]
        if self.skip_pull:
            args.append("--skip-pull-image")
        return args

    def process_env(self) -> dict[str, str]:
        """SAM passes the caller's AWS credentials into the container: make them R1's."""
        env = sam_environment()
        for key in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL"):
            env.pop(key, None)
        env.update(self.hub.credential_env())
        env["AWS_DEFAULT_REGION"] = env["AWS_REGION"] = self.region
        return env

    def build(self, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        assert self.sam is not None
        return subprocess.run(
            [self.sam, "build", "--cached", "--parallel", "--build-dir", str(self.build_path)],
            cwd=self.root,
            env=sam_environment(),
            capture_output=True,
            text=True,
            check=True,
            timeout=timeout,
        )

    def invoke(self, function: str, event: Mapping[str, Any], timeout: float = 300) -> Invocation:
        """``sam local invoke`` of ``function`` (scheduler, worker, remediation, api) with ``event``.

        Raises RuntimeError when the invocation fails or the handler raised (SAM itself exits 0 then).
        """
        assert self.sam is not None
        event_file = self._workdir / f"event-{uuid.uuid4().hex[:8]}.json"
        event_file.write_text(json.dumps(event))
        result = subprocess.run(
            [self.sam, "local", "invoke", FUNCTIONS[function], "--event", str(event_file), *self._base_args()],
            cwd=self.root,
            env=self.process_env(),
            capture_output=True,
            text=True,
            check=False,
            stdin=subprocess.DEVNULL,
            timeout=timeout,
        )
        stdout = result.stdout.strip().splitlines()
        payload = json.loads(stdout[-1]) if stdout else None
        if result.returncode != 0 or payload is None or (isinstance(payload, dict) and "errorType" in payload):
            raise RuntimeError(
                f"sam local invoke {function} failed ({result.returncode}): {payload}\n{result.stderr[-3000:]}"
            )
        match = REPORT_RE.search(result.stderr)
        return Invocation(
            payload=payload,
            init_ms=float(match["init"]) if match and match["init"] else None,
            duration_ms=float(match["dur"]) if match else None,
            logs=result.stderr,
        )


class InProcess:
    """The same invocations in this process: the handler modules imported and called."""

    def __init__(self, hub: HubResources, endpoint_url: str, region: str, root: Path | None = None) -> None:
        self.root = root or project_root()
        env = {**hub.function_env(endpoint_url, region), **hub.credential_env(), "AWS_DEFAULT_REGION": region}
        env["AWS_LAMBDA_FUNCTION_NAME"] = "rolechain-local"
        env["POWERTOOLS_METRICS_DISABLED"] = "true"  # EMF lines would interleave with the caller's output
        os.environ.update(env)  # the handlers read their environment at import, as in Lambda
        for key in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
            os.environ.pop(key, None)
        self._modules: dict[str, ModuleType] = {}

    def invoke(self, function: str, event: Mapping[str, Any]) -> Invocation:
        module = self._modules.get(function)
        if module is None:
            module = self._modules[function] = load_handler(function, self.root)
        return Invocation(payload=module.lambda_handler(dict(event), FakeContext(FUNCTIONS[function])))
