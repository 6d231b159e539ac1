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

import copy
import hashlib
import importlib.util
import ipaddress
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

from rolechain_dev.emulator import Emulator, Seed

FUNCTIONS = {
    "scheduler": "SchedulerFunction",
    "worker": "WorkerFunction",
    "remediation": "RemediationFunction",
    "api": "ApiFunction",
    "schedules": "SchedulesFunction",
}
LAMBDA_IMAGE = "public.ecr.aws/lambda/python:3.13-x86_64"  # the template's runtime and architecture
LAYER_IMAGE_PREFIX = "rolechain-local-layer-"
REPORT_RE = re.compile(
    r"REPORT RequestId: \S+\s+(?:Init Duration: (?P<init>[\d.]+) ms\s+)?Duration: (?P<dur>[\d.]+) ms"
)


# The demo's job file (demo accounts, a literal ExternalId): never in the deployable layer. SamLocal adds
# it to its own build's layer folder at LOCAL_JOB_FILE, outside the layer's python/ package tree.
DEMO_JOB_FILE = Path(__file__).resolve().parent / "examples" / "jobs.yaml"
LOCAL_JOB_DIR = "rolechain-local"
LOCAL_JOB_FILE = f"/opt/{LOCAL_JOB_DIR}/jobs.yaml"


def project_root() -> Path:
    """The repository this package is installed from (editable install), where template.yaml lives."""
    return Path(__file__).resolve().parents[2]


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
    results_bucket: str = ""
    page_token_key: str = ""

    def function_env(self, endpoint_url: str, region: str) -> dict[str, str]:
        """The functions' own variables (what the template's Globals set, pointed at the emulator)."""
        return {
            "RUNS_TABLE": self.table,
            "TARGET_QUEUE_URL": self.queue_url,
            "JOB_FILE": self.job_file,
            "INLINE_TARGET_LIMIT": "10",
            "MAX_RECEIVE_COUNT": "3",
            "RESULTS_BUCKET": self.results_bucket,
            "PAGE_TOKEN_KEY_ID": self.page_token_key,
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


def resolve_default(value: Any, template: Mapping[str, Any]) -> Any:
    """``value``, or the default of the parameter a ``{"Ref": NAME}`` names (what a deploy with no
    overrides gets)."""
    if isinstance(value, Mapping) and set(value) == {"Ref"}:
        return template["Parameters"][value["Ref"]]["Default"]
    return value


def resolve_intrinsics(
    value: Any, template: Mapping[str, Any], arns: Mapping[str, str], region: str, account: str
) -> Any:
    """``value`` (a policy document of the template) with its intrinsics resolved for the emulator by
    :class:`rolechain.templates.Stack` (the static doctor's reader): ``GetAtt X.Arn`` from ``arns`` ("*" for
    a resource the emulator does not make), ``Ref``/``Sub`` of pseudo parameters and of parameters (their
    defaults), ``If`` by the conditions' values with the defaults (which leave the optional parts out),
    ``AWS::NoValue`` dropped."""
    from rolechain.templates import Stack

    return Stack(template, account=account, region=region, arns=arns, unknown_arn="*").resolve(value)


def create_hub_resources(emulator: Emulator, seed: Seed, root: Path | None = None) -> HubResources:
    """The runs table and the queues in the hub account, built from template.yaml's own definitions,
    and R1's credentials (U1 assumes R1, as the Lambda service would give them to a function)."""
    root = root or project_root()
    template = load_template(root)
    resources = template["Resources"]
    admin = emulator.admin_session(seed.hub_account, seed.region)
    suffix = uuid.uuid4().hex[:8]
    table = f"rolechain-runs-{suffix}"
    props = resources["RunsTable"]["Properties"]
    dynamodb: Any = admin.client("dynamodb")
    dynamodb.create_table(
        TableName=table,
        AttributeDefinitions=[dict(a) for a in props["AttributeDefinitions"]],
        KeySchema=[dict(k) for k in props["KeySchema"]],
        GlobalSecondaryIndexes=[
            {
                "IndexName": index["IndexName"],
                "KeySchema": [dict(k) for k in index["KeySchema"]],
                "Projection": dict(index["Projection"]),
            }
            for index in props.get("GlobalSecondaryIndexes", [])
        ],
        BillingMode=props["BillingMode"],
    )
    dynamodb.update_time_to_live(TableName=table, TimeToLiveSpecification=dict(props["TimeToLiveSpecification"]))
    sqs = admin.client("sqs")
    dlq_url = sqs.create_queue(QueueName=f"rolechain-dlq-{suffix}")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue = resources["TargetQueue"]["Properties"]
    max_receive = resolve_default(queue["RedrivePolicy"]["maxReceiveCount"], template)
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive)}
    queue_url = sqs.create_queue(
        QueueName=f"rolechain-targets-{suffix}",
        Attributes={"VisibilityTimeout": str(queue["VisibilityTimeout"]), "RedrivePolicy": json.dumps(redrive)},
    )["QueueUrl"]
    # R1's own permissions as template.yaml grants them, on these emulated resources: the emulator
    # enforces IAM, so a function needing more than its role allows fails here as it would in AWS.
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    arns = {
        "RunsTable": f"arn:aws:dynamodb:{seed.region}:{seed.hub_account}:table/{table}",
        "TargetQueue": queue_arn,
        "TargetDeadLetterQueue": dlq_arn,
        "EventDeadLetterQueue": dlq_arn,
    }
    # The results bucket and the page-token key, as the template configures them.
    bucket = f"rolechain-results-{suffix}"
    bucket_props = resources["ResultsBucket"]["Properties"]
    s3: Any = admin.client("s3")
    s3.create_bucket(Bucket=bucket, **({} if seed.region == "us-east-1" else {
        "CreateBucketConfiguration": {"LocationConstraint": seed.region}}))  # fmt: skip
    encryption = bucket_props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    rules = [  # CloudFormation's ServerSideEncryptionByDefault is the API's ApplyServerSideEncryptionByDefault
        {("Apply" + k if k == "ServerSideEncryptionByDefault" else k): copy.deepcopy(v) for k, v in rule.items()}
        for rule in encryption
    ]
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": rules})
    s3.put_public_access_block(
        Bucket=bucket, PublicAccessBlockConfiguration=dict(bucket_props["PublicAccessBlockConfiguration"])
    )
    key_props = resources["PageTokenKey"]["Properties"]
    token_key = admin.client("kms").create_key(KeySpec=key_props["KeySpec"], KeyUsage=key_props["KeyUsage"])
    arns["ResultsBucket"] = f"arn:aws:s3:::{bucket}"
    arns["PageTokenKey"] = token_key["KeyMetadata"]["Arn"]
    arns["HubRole"] = seed.hub_role_arn
    hub_role = resources["HubRole"]["Properties"]
    attached = [  # AWS::IAM::RolePolicy resources of R1 (its policies that name R1 itself)
        r["Properties"]
        for r in resources.values()
        if r.get("Type") == "AWS::IAM::RolePolicy" and r["Properties"].get("RoleName") == {"Ref": "HubRole"}
    ]
    for policy in [*hub_role["Policies"], *attached]:
        document = resolve_intrinsics(policy["PolicyDocument"], template, arns, seed.region, seed.hub_account)
        admin.client("iam").put_role_policy(
            RoleName=seed.hub_role_arn.rsplit("/", 1)[-1],
            PolicyName=str(policy["PolicyName"]),
            PolicyDocument=json.dumps(document),
        )
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
        job_file=str(DEMO_JOB_FILE),
        results_bucket=bucket,
        page_token_key=arns["PageTokenKey"],
    )


@dataclass
class ScheduleResources:
    """The stack's schedule group, the schedule role, the scheduler function's ARN (the schedules' target;
    the emulator does not run it) and the schedules function's credentials (its own role, SchedulesRole)."""

    group: str
    group_arn: str
    schedule_role_arn: str
    function_arn: str
    credentials: dict[str, str]

    def credential_env(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": self.credentials["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": self.credentials["SecretAccessKey"],
            "AWS_SESSION_TOKEN": self.credentials["SessionToken"],
        }


def create_schedule_resources(emulator: Emulator, seed: Seed, root: Path | None = None) -> ScheduleResources:
    """The hub's ScheduleGroup, ScheduleRole and SchedulesRole, built from template.yaml's own definitions
    (trust and permissions as the template writes them), and SchedulesRole's session credentials as Lambda
    would give them to the schedules function (U1 assumes it here: the emulator's stand-in for Lambda)."""
    from rolechain.templates import Stack

    template = load_template(root)
    resources = template["Resources"]
    admin = emulator.admin_session(seed.hub_account, seed.region)
    iam: Any = admin.client("iam")
    suffix = uuid.uuid4().hex[:8]
    group = f"rolechain-ScheduleGroup-{suffix}"
    group_arn = str(admin.client("scheduler").create_schedule_group(Name=group)["ScheduleGroupArn"])
    account, region = seed.hub_account, seed.region
    function_arn = f"arn:aws:lambda:{region}:{account}:function:rolechain-SchedulerFunction-{suffix}"
    arns = {"ScheduleGroup": group_arn, "SchedulerFunction": function_arn}
    made: dict[str, str] = {}
    for logical_id in ("ScheduleRole", "SchedulesRole"):
        stack = Stack(template, account=account, region=region, arns={**arns, **made}, refs={"ScheduleGroup": group})
        props = resources[logical_id]["Properties"]
        trust = stack.resolve(props["AssumeRolePolicyDocument"])
        if logical_id == "SchedulesRole":  # U1 stands in for Lambda, which assumes the function's role
            trust["Statement"].append(
                {"Effect": "Allow", "Principal": {"AWS": seed.user_arn}, "Action": "sts:AssumeRole"}
            )
        name = f"rolechain-{logical_id}-{suffix}"
        made[logical_id] = str(
            iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
        )
        for policy in props["Policies"]:
            document = Stack(
                template, account=account, region=region, arns={**arns, **made}, refs={"ScheduleGroup": group},
                unknown_arn="*",
            ).resolve(policy["PolicyDocument"])  # fmt: skip
            iam.put_role_policy(
                RoleName=name, PolicyName=str(policy["PolicyName"]), PolicyDocument=json.dumps(document)
            )
    iam.put_user_policy(
        UserName=seed.user_arn.rsplit("/", 1)[-1],
        PolicyName=f"assume-schedules-role-{suffix}",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                     "Resource": made["SchedulesRole"]}]}
        ),
    )  # fmt: skip
    user = boto3.Session(
        aws_access_key_id=seed.user_access_key_id, aws_secret_access_key=seed.user_secret_access_key, region_name=region
    )
    credentials = user.client("sts", endpoint_url=seed.endpoint_url).assume_role(
        RoleArn=made["SchedulesRole"], RoleSessionName="rolechain-schedules-lambda"
    )["Credentials"]
    return ScheduleResources(
        group=group,
        group_arn=group_arn,
        schedule_role_arn=made["ScheduleRole"],
        function_arn=function_arn,
        credentials={k: str(v) for k, v in credentials.items()},
    )


def apply_hub_trust(
    emulator: Emulator, seed: Seed, parameters: Mapping[str, str] | None = None, root: Path | None = None
) -> dict[str, Any]:
    """Give the seed's R1 the trust policy template.yaml's HubRole gets with ``parameters`` (template
    parameter overrides, e.g. ``OperatorPrincipals``; the defaults otherwise), and return it: the emulator
    then decides U1 -> R1 by the template's own trust statements."""
    from rolechain.templates import Stack

    template = load_template(root)
    stack = Stack(template, overrides=dict(parameters or {}), account=seed.hub_account, region=seed.region)
    trust: dict[str, Any] = stack.resolve(template["Resources"]["HubRole"]["Properties"]["AssumeRolePolicyDocument"])
    emulator.admin_session(seed.hub_account, seed.region).client("iam").update_assume_role_policy(
        RoleName=seed.hub_role_arn.rsplit("/", 1)[-1], PolicyDocument=json.dumps(trust)
    )
    return trust


def record_queued_run(emulator: Emulator, seed: Seed, table: str, run_id: str, job: str = "inventory") -> None:
    """The record the scheduler writes before it queues a job's targets: the worker checks every
    message against it (and refuses a message of a run nobody recorded)."""
    from rolechain.hub import RunStore
    from rolechain.hub.models import QueuedPlan
    from rolechain.hub.runs import run_record
    from rolechain.jobs import RoleRef, load_job_file

    spec = load_job_file(DEMO_JOB_FILE).job(job)
    accounts = spec.targets.resolve()
    record = run_record(run_id, job, spec.action, spec.dry_run, None, len(accounts) * len(spec.regions))
    queued = QueuedPlan(
        params=spec.params,
        account_count=len(accounts),
        regions=spec.regions,
        role=RoleRef.model_validate(spec.model_dump(include=set(RoleRef.model_fields))),
    )
    dynamodb = emulator.admin_session(seed.hub_account, seed.region).client("dynamodb")
    store = RunStore(dynamodb, table, 1)
    buckets = store.put_plan(run_id, [(account, region) for account in accounts for region in spec.regions])
    store.put_run({**record, "mode": "queued", "queued": queued.model_dump(mode="json"), "plan_buckets": buckets})


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


def docker_engine_problem() -> str | None:
    """Why no Docker engine answers (None when ``docker info`` succeeds)."""
    docker = shutil.which("docker")
    if docker is None:
        return "the docker command is not on PATH"
    try:
        result = subprocess.run([docker, "info"], capture_output=True, text=True, check=False, timeout=30)
    except subprocess.TimeoutExpired:
        return "`docker info` did not answer within 30 s"
    if result.returncode == 0:
        return None
    said = next((line.strip() for line in result.stderr.splitlines() if line.strip()), "no message")
    return f"no Docker engine answers (`docker info`: {said[:200]})"


def docker_answers() -> bool:
    return docker_engine_problem() is None


class HostAddressError(RuntimeError):
    """No address was found where containers reach this host; the message names what was tried."""


def host_address_from(inspect_output: str | None, ip_addr_output: str | None = None) -> str:
    """The host's address on Docker's default bridge, from recorded command outputs.

    ``inspect_output`` is ``docker network inspect bridge`` (JSON), ``ip_addr_output`` is ``ip -4 -o addr
    show <bridge interface>``. In that order: the bridge network's IPv4 Gateway when Docker reports one
    (Docker 23+), else the bridge interface's IPv4 address (Docker 20.10 reports only the subnet), else
    the first host of the bridge's IPv4 subnet (what Docker gives the bridge interface by default).

    Raises HostAddressError naming each source tried and what it lacked.
    """
    tried: list[str] = []
    subnet: ipaddress.IPv4Network | None = None
    if inspect_output is None:
        tried.append("`docker network inspect bridge` failed")
    else:
        try:
            networks = json.loads(inspect_output)
            configs = (networks[0].get("IPAM") or {}).get("Config") or []
        except (ValueError, LookupError, AttributeError, TypeError):
            configs = None
            tried.append("`docker network inspect bridge` printed no network")
        for config in configs or []:
            gateway, network = _ipv4(config.get("Gateway")), _ipv4_network(config.get("Subnet"))
            if gateway is not None:
                return str(gateway)
            subnet = subnet or network
        if configs is not None:
            tried.append("`docker network inspect bridge` reports no IPv4 Gateway")
    if ip_addr_output:
        for line in ip_addr_output.splitlines():
            fields = line.split()
            if "inet" in fields and fields.index("inet") + 1 < len(fields):
                address = _ipv4(fields[fields.index("inet") + 1].split("/")[0])
                if address is not None:
                    return str(address)
        tried.append("`ip -4 addr show` of the bridge interface has no IPv4 address")
    else:
        tried.append("the bridge interface is absent (`ip -4 addr show` printed nothing)")
    if subnet is not None and subnet.num_addresses > 2:
        return str(subnet.network_address + 1)
    tried.append("no IPv4 subnet is configured on the bridge network")
    raise HostAddressError("no address where containers reach this host: " + "; ".join(tried))


def _ipv4(text: object) -> ipaddress.IPv4Address | None:
    try:
        address = ipaddress.ip_address(str(text)) if text else None
    except ValueError:
        return None
    return address if isinstance(address, ipaddress.IPv4Address) else None


def _ipv4_network(text: object) -> ipaddress.IPv4Network | None:
    try:
        network = ipaddress.ip_network(str(text), strict=False) if text else None
    except ValueError:
        return None
    return network if isinstance(network, ipaddress.IPv4Network) else None


def container_host_address() -> str:
    """The address containers on Docker's default bridge use to reach this host (the emulator binds
    there and they call it as host.docker.internal): see :func:`host_address_from`.

    Raises HostAddressError when Docker and the bridge interface give none.
    """
    docker = shutil.which("docker")
    if docker is None:
        raise HostAddressError("no address where containers reach this host: the docker command is not on PATH")
    inspected = _output([docker, "network", "inspect", "bridge"])
    interface = "docker0"
    try:  # Docker names the bridge interface in the network's options (docker0 unless configured)
        options = json.loads(inspected or "[{}]")[0].get("Options") or {}
        interface = options.get("com.docker.network.bridge.name") or interface
    except (ValueError, LookupError, AttributeError, TypeError):
        pass
    ip = shutil.which("ip") or next((p for p in ("/usr/sbin/ip", "/sbin/ip") if Path(p).exists()), None)
    addr = _output([ip, "-4", "-o", "addr", "show", "dev", interface]) if ip else None
    return host_address_from(inspected, addr)


def _output(command: list[str]) -> str | None:
    """A command's standard output, or None when it fails or cannot run."""
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout if result.returncode == 0 else None


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


RUNNER_VARIABLE = "ROLECHAIN_LAMBDA_RUNNER"


@dataclass(frozen=True)
class SamReadiness:
    """Whether ``sam local`` can run here: SAM CLI's path and the emulator's bind address, or why not."""

    sam: str | None = None
    host_address: str | None = None
    problem: str | None = None


def sam_local_readiness(root: Path | None = None) -> SamReadiness:
    """Check, in order, what ``sam local`` needs: SAM CLI, a Docker engine, an address where containers
    reach this host, and a Lambda image SAM will use (present, or pullable when pulls are allowed)."""
    sam = find_sam(root)
    if sam is None:
        return SamReadiness(problem="SAM CLI is not installed (`make sam` installs it into .venv-sam)")
    engine = docker_engine_problem()
    if engine is not None:
        return SamReadiness(sam=sam, problem=engine)
    try:
        find_python313()
        address = container_host_address()
    except (FileNotFoundError, HostAddressError) as exc:
        return SamReadiness(sam=sam, problem=str(exc))
    if skip_pull_image() and not lambda_image_present():
        return SamReadiness(
            sam=sam,
            host_address=address,
            problem=f"the Lambda image {LAMBDA_IMAGE} is not present and ROLECHAIN_SAM_SKIP_PULL=1 forbids "
            "pulling it (offline hosts: ../shared/tools/lambda-runtime-image ensure builds a stand-in)",
        )
    return SamReadiness(sam=sam, host_address=address)


def lambda_runner_choice(environ: Mapping[str, str] | None = None) -> str:
    """``sam``, ``in-process`` or ``auto`` from $ROLECHAIN_LAMBDA_RUNNER (default auto).

    Raises ValueError naming the variable and the values it takes.
    """
    value = (environ if environ is not None else os.environ).get(RUNNER_VARIABLE, "auto").strip().lower() or "auto"
    if value not in ("sam", "in-process", "auto"):
        raise ValueError(f"{RUNNER_VARIABLE}={value!r}: expected sam, in-process or auto")
    return value


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


PYTHON313_HELP = (
    "sam build needs a python3.13 interpreter (the template's Runtime) and none was found on PATH or among "
    "pyenv's versions: install one (`pyenv install 3.13`, or Debian 13's `apt-get install python3.13`), "
    "or point ROLECHAIN_PYTHON313 at one"
)


def find_python313(environ: Mapping[str, str] | None = None) -> str:
    """A python3.13 that runs: $ROLECHAIN_PYTHON313, then python3.13 on PATH, then pyenv's 3.13 versions
    (newest first). A pyenv shim on PATH counts only when it runs (pyenv lists 3.13 in PYENV_VERSION).

    Raises FileNotFoundError saying what to install.
    """
    env = environ if environ is not None else os.environ
    pyenv_root = Path(env.get("PYENV_ROOT") or Path.home() / ".pyenv")
    installed = sorted(
        pyenv_root.glob("versions/3.13*/bin/python3.13"),
        key=lambda p: [int(n) if n.isdigit() else 0 for n in re.split(r"[.-]", p.parents[1].name)],
        reverse=True,
    )
    candidates = [
        env.get("ROLECHAIN_PYTHON313"),
        shutil.which("python3.13", path=env.get("PATH")),
        *map(str, installed),
    ]
    for candidate in candidates:
        if not candidate:
            continue
        try:
            ran = subprocess.run(
                [candidate, "-c", "import sys; sys.exit(sys.version_info[:2] != (3, 13))"],
                capture_output=True,
                check=False,
                timeout=30,
                env={k: v for k, v in env.items() if k != "PYTHONPATH"},
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if ran.returncode == 0:
            return candidate
    raise FileNotFoundError(PYTHON313_HELP)


def sam_environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for SAM CLI: no telemetry, and a python3.13 first on PATH for `sam build` (SAM
    looks the runtime up by name; a pyenv shim for an inactive version fails its binary validation)."""
    env = dict(base if base is not None else os.environ)
    env["SAM_CLI_TELEMETRY"] = "0"
    try:
        python313 = find_python313(env)
    except FileNotFoundError:
        return env  # `sam build` will fail; SamLocal.build and sam_local_readiness say why first
    env["PATH"] = os.pathsep.join([str(Path(python313).parent), env.get("PATH", "")])
    return env


def sam_build(
    sam: str,
    build_dir: Path,
    *,
    cache_dir: Path | None = None,
    cwd: Path | None = None,
    timeout: float = 900,
) -> subprocess.CompletedProcess[str]:
    """``sam build --cached --parallel`` of the project's template.yaml into ``build_dir`` (output
    captured, not checked). Raises FileNotFoundError when no python3.13 is found (see find_python313)."""
    find_python313()
    args = [sam, "build", "--cached", "--parallel", "--template-file", str(project_root() / "template.yaml")]
    args += ["--build-dir", str(build_dir), *(["--cache-dir", str(cache_dir)] if cache_dir else [])]
    return subprocess.run(
        args,
        cwd=cwd or project_root(),
        env=sam_environment(),
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


@dataclass
class Invocation:
    payload: Any
    init_ms: float | None = None
    duration_ms: float | None = None
    logs: str = ""


@dataclass
class SamLocal:
    """``sam build`` and ``sam local invoke`` of this project's template, pointed at the emulator.

    ``host_address`` is the address the emulator listens on (the host's docker0 address, which the
    containers reach as ``host.docker.internal``); None: :func:`container_host_address`.
    """

    emulator_port: int
    hub: HubResources
    region: str
    host_address: str | None = None
    root: Path = field(default_factory=project_root)
    sam: str | None = None
    build_dir: Path | None = None
    # The layer baked into an image of our own, once per layer content, instead of SAM rebuilding its
    # layer image on every invoke (SAM always rebuilds for a layer defined in the template).
    prebuilt_layer: bool = True

    def __post_init__(self) -> None:
        self.sam = self.sam or find_sam(self.root)
        if self.sam is None:
            raise FileNotFoundError("SAM CLI not found (make sam installs it into .venv-sam)")
        self.build_path: Path = self.build_dir or self.root / ".aws-sam" / "build"
        self._workdir = Path(tempfile.mkdtemp(prefix="rolechain-sam-"))
        endpoint = f"http://host.docker.internal:{self.emulator_port}"
        variables = self.hub.function_env(endpoint, self.region)
        variables["JOB_FILE"] = LOCAL_JOB_FILE  # the demo's job file, added to this build's layer
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

    def stage_job_file(self) -> Path:
        """Copy the demo's job file into this build's layer folder (as ``LOCAL_JOB_FILE`` in the
        container): the deployable layer never holds it, a local build gets it before every run. An
        unchanged file is left alone, so the layer's content (and its image) stays the same."""
        staged = self.build_path / "RolechainLayer" / LOCAL_JOB_DIR / "jobs.yaml"
        staged.parent.mkdir(parents=True, exist_ok=True)
        if not staged.exists() or staged.read_bytes() != DEMO_JOB_FILE.read_bytes():
            shutil.copyfile(DEMO_JOB_FILE, staged)
        return staged

    def layer_image(self) -> str:
        """An image of the Lambda base image with this build's layer at /opt, tagged by the layer's
        content (names, sizes, mtimes): built once per content, older ones of this kind removed."""
        layer = self.build_path / "RolechainLayer"
        digest = hashlib.sha256()
        for path in sorted(p for p in layer.rglob("*") if p.is_file()):
            stat = path.stat()
            digest.update(f"{path.relative_to(layer)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        # a repository per content: SAM names its own runtime image after the repository
        image = f"{LAYER_IMAGE_PREFIX}{digest.hexdigest()[:16]}"
        if _output(["docker", "image", "inspect", image]) is None:
            dockerfile = self._workdir / "Dockerfile.layer"
            dockerfile.write_text(f"FROM {LAMBDA_IMAGE}\nCOPY . /opt/\n")
            subprocess.run(
                ["docker", "build", "--quiet", "--tag", image, "--file", str(dockerfile), str(layer)],
                capture_output=True,
                text=True,
                check=True,
                timeout=600,
            )
            stale = (_output(["docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}"]) or "").split()
            old = [i for i in stale if i.startswith(LAYER_IMAGE_PREFIX) and not i.startswith(image)]
            if old:
                subprocess.run(["docker", "image", "rm", "--force", *old], capture_output=True, check=False)
        return image

    def local_template(self) -> Path:
        """The built template without the layer (its content is in :meth:`layer_image`)."""
        template = load_template(self.build_path, "template.yaml")
        template["Globals"]["Function"].pop("Layers", None)
        for resource in template["Resources"].values():
            if resource.get("Type") == "AWS::Serverless::Function":
                resource.get("Properties", {}).pop("Layers", None)
        local = self.build_path / "template.local.json"
        local.write_text(json.dumps(template, indent=1))
        return local

    def command_args(self) -> list[str]:
        """What every ``sam local`` command of this build takes: the env file, the gateway host, and the
        template (with :attr:`prebuilt_layer`, the one without the layer and the layer's own image)."""
        self.stage_job_file()
        args = ["--env-vars", str(self.env_file), "--add-host", "host.docker.internal:host-gateway"]
        if self.prebuilt_layer:
            return [*args, "--template", str(self.local_template()), "--invoke-image", self.layer_image(),
                    "--skip-pull-image"]  # fmt: skip
        args += ["--template", str(self.build_path / "template.yaml")]
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
        # Before every invoke SAM asks STS for the account (AWS::AccountId): the emulator answers, instead
        # of the real STS, which is never sent R1's keys and offline cost 10 s of timeouts per invoke.
        # SAM does not pass endpoint variables into the containers.
        env["AWS_ENDPOINT_URL_STS"] = f"http://{self.host_address or container_host_address()}:{self.emulator_port}"
        return env

    def build(self, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """``sam build`` into ``build_path``. Raises FileNotFoundError when no python3.13 is found,
        subprocess.CalledProcessError when the build fails."""
        assert self.sam is not None
        result = sam_build(self.sam, self.build_path, cwd=self.root, timeout=timeout)
        result.check_returncode()
        return result

    def invoke(self, function: str, event: Mapping[str, Any], timeout: float = 300) -> Invocation:
        """``sam local invoke`` of ``function`` (scheduler, worker, remediation, api) with ``event``.

        Raises RuntimeError when the invocation fails or the handler raised (SAM itself exits 0 then).
        """
        assert self.sam is not None
        event_file = self._workdir / f"event-{uuid.uuid4().hex[:8]}.json"
        event_file.write_text(json.dumps(event))
        result = subprocess.run(
            [self.sam, "local", "invoke", FUNCTIONS[function], "--event", str(event_file), *self.command_args()],
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


def main(argv: list[str] | None = None) -> int:
    """``python -m rolechain_dev.local python313|build``: the interpreter `sam build` needs, or the build."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m rolechain_dev.local", description=main.__doc__)
    parser.add_argument("command", choices=["python313", "build"])
    args = parser.parse_args(argv)
    try:
        python313 = find_python313()
    except FileNotFoundError as exc:
        print(exc, file=sys.stderr)
        return 1
    if args.command == "python313":
        print(python313)
        return 0
    sam = find_sam()
    if sam is None:
        print("SAM CLI not found (make sam installs it into .venv-sam)", file=sys.stderr)
        return 1
    result = sam_build(sam, project_root() / ".aws-sam" / "build")
    print(result.stdout[-3000:], result.stderr[-3000:], sep="\n")
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
