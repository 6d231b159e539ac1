"""sam local: cold and warm invocations of the four functions, their import and first-call cost, sizes.

For each function (scheduler, worker, remediation, api, with its fixture from events/) against a seeded
emulator (5 target accounts, 3 buckets each) bound to Docker's bridge gateway:

* cold: one ``sam local invoke`` each; its wall time split by the time SAM's output lines arrived (SAM
  CLI start, the layer image SAM rebuilds on every invoke of a template-local layer, the container until
  its REPORT line), and the REPORT line's figures;
* warm: ``sam local start-lambda --warm-containers LAZY`` (or EAGER), then through boto3's Lambda client a
  first call per function and ``--warm`` more; REPORT lines read from start-lambda's output;
* in the container: a separate ``docker run`` of the same image with the built layer at /opt (read-only)
  where fresh interpreters import each handler module and call the handler twice: import time as built (no
  .pyc) and precompiled, ``-X importtime`` by package, first and second call;
* sizes: the ``sam build`` output (bytes on disk, zipped as ``sam package`` would), the layer's biggest parts.

The stand-in image's REPORT "Init Duration" is meaningless, and a cold call's import lands inside its
Duration: the in-container figures are the honest split. The build goes to .aws-sam/bench/ and runs from
there, so it neither replaces nor races another build of the project (SAM keeps dependency folders in
./.aws-sam/deps of its working directory and deletes those of other builds). Every process and container
started here is stopped before exit.

    python benchmarks/bench_sam_local.py [--warm 5] [--warm-containers LAZY|EAGER] [--repeats 3]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

# Only loopback and the bridge gateway: no proxies, no developer AWS config.
os.environ.update(
    SAM_CLI_TELEMETRY="0",
    AWS_CONFIG_FILE=os.devnull,
    AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    AWS_EC2_METADATA_DISABLED="true",
    NO_PROXY="127.0.0.1,localhost,172.17.0.1",
    no_proxy="127.0.0.1,localhost,172.17.0.1",
)
os.environ.setdefault("ROLECHAIN_SAM_SKIP_PULL", "1")  # the local Lambda image; pulling is no part of a cold start

import boto3
from botocore.config import Config
from rolechain import CACHE
from rolechain.actions import target_role_policy
from rolechain_dev.emulator import Emulator
from rolechain_dev.local import (
    FUNCTIONS as ALL_FUNCTIONS,
)
from rolechain_dev.local import (
    REPORT_RE,
    HostAddressError,
    HubResources,
    SamLocal,
    container_host_address,
    create_hub_resources,
    docker_answers,
    find_sam,
    project_root,
    record_queued_run,
    sam_containers,
)
from rolechain_dev.local import (
    sam_build as local_sam_build,
)

ROOT = project_root()
EVENTS = {
    "scheduler": "scheduler-inventory.json",
    "worker": "worker-sqs-batch.json",
    "remediation": "remediation-create-bucket.json",
    "api": "api-get-actions.json",
}
# Every function with a fixture here. The schedules function is not benched: it answers CloudFormation at
# the fixture's ResponseURL, which no benchmark serves (tests/integration/test_schedules_resource.py does).
FUNCTIONS = {function: name for function, name in ALL_FUNCTIONS.items() if function in EVENTS}
IMAGE = "public.ecr.aws/lambda/python:3.13-x86_64"
LAYER = "RolechainLayer"
CONTAINER_LABEL = "rolechain.bench"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def load_event(function: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((ROOT / "events" / EVENTS[function]).read_text())
    return event


def fresh_event(function: str) -> dict[str, Any]:
    """The fixture, with a new event id where the function is idempotent on it (remediation), so a
    repeated call does the work again instead of returning the stored result."""
    event = load_event(function)
    if function == "remediation":
        event["id"] = event["detail"]["eventID"] = str(uuid.uuid4())
    return event


# -- processes whose output lines are timestamped as they arrive ------------------------------------


class Lines:
    """Reads a stream in a thread; keeps each line with the perf_counter time it arrived."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.lines: list[tuple[float, str]] = []
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[bytes]) -> None:
        for raw in iter(stream.readline, b""):
            with self._cond:
                self.lines.append((time.perf_counter(), raw.decode(errors="replace").rstrip("\n")))
                self._cond.notify_all()
        with self._cond:
            self.lines.append((time.perf_counter(), "\0EOF"))
            self._cond.notify_all()

    def wait_for(self, pattern: str | re.Pattern[str], start: int = 0, timeout: float = 120) -> int:
        """Index of the first line at or after ``start`` matching ``pattern``."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for index in range(start, len(self.lines)):
                    line = self.lines[index][1]
                    if line == "\0EOF":
                        raise RuntimeError(f"output ended before {regex.pattern!r}:\n{self.text()[-3000:]}")
                    if regex.search(line):
                        return index
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no {regex.pattern!r} within {timeout} s:\n{self.text()[-3000:]}")
                self._cond.wait(left)

    def first(self, pattern: str, start: int = 0, end: int | None = None) -> tuple[float, str] | None:
        regex = re.compile(pattern)
        with self._cond:
            return next((entry for entry in self.lines[start:end] if regex.search(entry[1])), None)

    def text(self, since: float | None = None) -> str:
        """The lines; with ``since``, each prefixed by its arrival in seconds after it."""
        with self._cond:
            lines = [(at, line) for at, line in self.lines if line != "\0EOF"]
        if since is None:
            return "\n".join(line for _, line in lines)
        return "\n".join(f"{at - since:8.2f} {line}" for at, line in lines)

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


def sam_args(local: SamLocal, *, prebuilt: bool = False) -> list[str]:
    """What SamLocal passes to every `sam local` command (env file with the hub's variables, the
    gateway host, the built template), and --skip-pull-image. ``prebuilt``: SamLocal's own arguments, the
    dev loop's (the layer baked once into an image of its own, a template without it)."""
    if prebuilt:
        return local.command_args()
    args = ["--env-vars", str(local.env_file), "--add-host", "host.docker.internal:host-gateway"]
    args += ["--template", str(local.build_path / "template.yaml")]
    if os.environ.get("ROLECHAIN_SAM_SKIP_PULL") == "1":
        args.append("--skip-pull-image")
    return args


def stop(process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """SIGTERM (SAM stops its containers on it; SIGINT is ignored by a backgrounded job), then SIGKILL."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            log(f"pid {process.pid} ignored SIGTERM for {timeout} s; killing it")
            process.kill()
            process.wait(10)


# -- build and sizes --------------------------------------------------------------------------------


def sam_build(sam: str, bench_dir: Path) -> tuple[Path, float]:
    """`sam build --cached` of template.yaml into ``bench_dir``/build, run from ``bench_dir``."""
    bench_dir.mkdir(parents=True, exist_ok=True)
    build_dir = bench_dir / "build"
    started = time.perf_counter()
    result = local_sam_build(sam, build_dir, cache_dir=bench_dir / "cache", cwd=bench_dir)
    if result.returncode != 0:
        raise RuntimeError(f"sam build failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}")
    return build_dir, time.perf_counter() - started


@dataclass
class Size:
    files: int = 0
    raw: int = 0  # bytes of the files
    zipped: int = 0  # bytes of their deflated entries (without the zip's headers)
    parts: dict[str, list[int]] = field(default_factory=dict)  # top-level name -> [raw, zipped]
    zip_file: int = 0  # size of the whole zip file


def measure_size(directory: Path) -> Size:
    """Files and zip of ``directory`` the way `sam package` zips it (deflate, level 6 default)."""
    size = Size()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(directory.rglob("*")):
            if not path.is_file():
                continue
            relative = path.relative_to(directory)
            archive.write(path, relative.as_posix())
            info = archive.getinfo(relative.as_posix())
            size.files += 1
            size.raw += info.file_size
            size.zipped += info.compress_size
            # the layer's parts are what is under python/: a package, module or dist-info
            parts = relative.parts[1:] if relative.parts[0] == "python" and len(relative.parts) > 1 else relative.parts
            name = re.sub(r"-[\w.]+\.(dist-info|data)$", "", parts[0]).lower().removesuffix(".py")
            entry = size.parts.setdefault(name, [0, 0])
            entry[0] += info.file_size
            entry[1] += info.compress_size
    size.zip_file = buffer.getbuffer().nbytes
    return size


def dir_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


# -- import and first calls inside the container --------------------------------------------------

# Runs in the Lambda image's own Python: for each function and variant, `repeats` fresh interpreters, each
# importing the handler module as the runtime does, then calling the handler twice with the fixture.
PROBE = r"""
import io, json, os, pathlib, shutil, subprocess, sys, time, zipfile
functions, events, repeats = json.loads(sys.argv[1]), json.loads(sys.argv[2]), int(sys.argv[3])
CALLS = '''
import json, os, sys, time, uuid
started = time.perf_counter()
import app
imported = time.perf_counter()
print("BENCH-IMPORTED", file=sys.stderr, flush=True)

class Context:
    function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:111111111111:function:" + function_name
    log_group_name, log_stream_name = "/rolechain/bench", "bench"
    def __init__(self):
        self.aws_request_id = str(uuid.uuid4())
    def get_remaining_time_in_millis(self):
        return 300_000

calls = []
for _ in range(2):
    event = json.loads(os.environ["BENCH_EVENT"])
    if os.environ.get("BENCH_FRESH_ID"):  # idempotent on the event id: a new one, so the work is done again
        event["id"] = event["detail"]["eventID"] = str(uuid.uuid4())
    before = time.perf_counter()
    result = app.lambda_handler(event, Context())
    calls.append((time.perf_counter() - before) * 1000)
    if not isinstance(result, dict) or result.get("statusCode", 200) >= 400 or result.get("batchItemFailures"):
        sys.exit(f"handler answered {str(result)[:500]}")
print("BENCH " + json.dumps({"import": (imported - started) * 1000, "first": calls[0], "second": calls[1]}))
'''
IMPORT_ONLY = "import time; t = time.perf_counter(); import {module}; print('BENCH', (time.perf_counter() - t) * 1000)"

def run(fn_dir, opt, code, extra_env=None):
    # as Lambda: handler dir, layer, runtime on the path; /opt read-only, so nothing compiled is kept
    env = dict(os.environ, PYTHONPATH=f"{fn_dir}:{opt}/python:/var/runtime", PYTHONDONTWRITEBYTECODE="1")
    env.update(JOB_FILE=f"{opt}/rolechain-local/jobs.yaml", **(extra_env or {}))
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", code], cwd=fn_dir, env=env,
                          capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{fn_dir}: {done.stdout[-1000:]} {done.stderr[-3000:]}")
    result = json.loads([l for l in done.stdout.splitlines() if l.startswith("BENCH ")][-1][6:])
    if not isinstance(result, dict):
        return result
    # "import time: self [us] | cumulative | name": self time is exclusive, so it adds up per package
    roots, own, lazy, imported = {}, {}, 0, False
    for line in done.stderr.splitlines():
        if line == "BENCH-IMPORTED":
            imported = True
        elif line.startswith("import time:") and "self [us]" not in line:
            self_us, _, name = line[len("import time:"):].split("|")
            name = name.strip()
            if imported:  # imported while the handler ran
                lazy += int(self_us)
                continue
            roots[name.split(".")[0]] = roots.get(name.split(".")[0], 0) + int(self_us)
            if name == "app" or name.startswith("rolechain"):
                own[name] = int(self_us)
    return {**result, "lazy": lazy / 1000, "roots": roots, "own": own}

out = {"python": sys.version.split()[0]}
def startup():
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return (time.perf_counter() - started) * 1000

out["startup"] = [startup() for _ in range(repeats)]
# the stand-in image's runtime client, which its bootstrap imports before the handler (no .pyc either)
out["runtime"] = [run("/tmp", "/opt", IMPORT_ONLY.format(module="awslambdaric.__main__")) for _ in range(repeats)]
out["layer_pyc_files"] = sum(1 for _ in pathlib.Path("/opt/python").rglob("*.pyc"))
# a precompiled copy: the layer and the functions with .pyc beside their sources
started = time.perf_counter()
shutil.copytree("/opt", "/tmp/pyc/opt")
shutil.copytree("/fn", "/tmp/pyc/fn")
subprocess.run([sys.executable, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash",
                "/tmp/pyc/opt/python", "/tmp/pyc/fn"], check=True)
out["compile_s"] = time.perf_counter() - started
pyc = list(pathlib.Path("/tmp/pyc/opt/python").rglob("*.pyc"))
out["pyc_bytes"] = sum(p.stat().st_size for p in pyc)
buffer = io.BytesIO()
with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
    for path in pyc:
        archive.write(path, str(path))
out["pyc_zipped"] = sum(i.compress_size for i in archive.infolist())
out["functions"] = {}
for name, directory in functions.items():
    env = {"BENCH_EVENT": json.dumps(events[name]), "AWS_LAMBDA_FUNCTION_NAME": directory}
    if name == "remediation":
        env["BENCH_FRESH_ID"] = "1"
    out["functions"][name] = {
        "source": [run(f"/fn/{directory}", "/opt", CALLS, env) for _ in range(repeats)],
        "pyc": [run(f"/tmp/pyc/fn/{directory}", "/tmp/pyc/opt", CALLS, env) for _ in range(repeats)],
    }
print(json.dumps(out))
"""


def measure_in_container(build_dir: Path, hub: HubResources, port: int, region: str, repeats: int) -> dict[str, Any]:
    """Import and first calls of each handler in the Lambda image's Python, with the built layer at /opt
    (read-only, as in Lambda), the function's environment, R1's credentials and the emulator."""
    name = f"rolechain-bench-probe-{uuid.uuid4().hex[:8]}"
    env = {**hub.function_env(f"http://host.docker.internal:{port}", region), **hub.credential_env()}
    env["AWS_DEFAULT_REGION"] = region
    args = ["docker", "run", "--rm", "--pull", "never", "--name", name, "--label", f"{CONTAINER_LABEL}=probe"]
    args += ["--add-host", "host.docker.internal:host-gateway", "--entrypoint", "/usr/bin/python3"]
    args += ["-v", f"{build_dir / LAYER}:/opt:ro"]
    for directory in FUNCTIONS.values():
        args += ["-v", f"{build_dir / directory}:/fn/{directory}:ro"]
    for key, value in env.items():
        args += ["-e", f"{key}={value}"]
    events = {function: load_event(function) for function in FUNCTIONS}
    args += [IMAGE, "-c", PROBE, json.dumps(FUNCTIONS), json.dumps(events), str(repeats)]
    try:
        result = subprocess.run(args, capture_output=True, text=True, check=False, timeout=300)
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"the probe in the container failed: {result.stderr[-3000:]}")
    measured: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return measured


# -- cold: sam local invoke -------------------------------------------------------------------------


@dataclass
class Cold:
    wall: float
    sam_start: float  # process start -> "Invoking ..." (SAM CLI imported, template read)
    image: float  # the layer image (re)build: "... is a local Layer" -> "Building image....." complete
    container: float  # image ready -> REPORT line (container created, runtime started, invocation)
    init_ms: float | None
    duration_ms: float | None
    payload: Any


def cold_invoke(
    local: SamLocal, function: str, event: dict[str, Any], workdir: Path, *, prebuilt: bool = False
) -> Cold:
    assert local.sam is not None
    event_file = workdir / f"event-{function}.json"
    event_file.write_text(json.dumps(event))
    args = [local.sam, "local", "invoke", FUNCTIONS[function], "--event", str(event_file)]
    args += sam_args(local, prebuilt=prebuilt)
    env = {**local.process_env(), "PYTHONUNBUFFERED": "1"}
    started = time.perf_counter()
    process = subprocess.Popen(
        args, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    watchdog = threading.Timer(300, process.kill)  # a hung invoke must not hang the benchmark
    watchdog.start()
    try:
        assert process.stderr is not None and process.stdout is not None
        logs = Lines(process.stderr)
        stdout = process.stdout.read().decode()
        process.wait(60)
    finally:
        watchdog.cancel()
        stop(process)
    wall = time.perf_counter() - started
    logs.join(10)
    text = logs.text()
    lines = stdout.strip().splitlines()
    payload = json.loads(lines[-1]) if lines else None
    if process.returncode != 0 or not isinstance(payload, dict | list) or "errorType" in str(payload)[:200]:
        raise RuntimeError(f"sam local invoke {function} failed ({process.returncode}): {payload}\n{text[-3000:]}")
    invoking = logs.first(r"^Invoking ")
    local_layer = logs.first(r"is a local Layer in the template")
    built = logs.first(r"^Building image")
    report = logs.first(r"^REPORT RequestId")
    match = REPORT_RE.search(report[1]) if report else None
    t_invoking = invoking[0] if invoking else started
    t_image_from = local_layer[0] if local_layer else t_invoking
    t_image_to = built[0] if built else t_image_from
    return Cold(
        wall=wall,
        sam_start=t_invoking - started,
        image=t_image_to - t_image_from,
        container=(report[0] if report else started + wall) - t_image_to,
        init_ms=float(match["init"]) if match and match["init"] else None,
        duration_ms=float(match["dur"]) if match else None,
        payload=payload,
    )


# -- warm: sam local start-lambda -------------------------------------------------------------------


@dataclass
class Call:
    wall_ms: float  # boto3 invoke, request to response
    duration_ms: float  # REPORT Duration
    init_ms: float | None
    new_container: bool  # SAM made a container for this call (LAZY: the first call; EAGER: none)


@dataclass
class Warm:
    ready_s: float  # start-lambda launched -> serving (EAGER: after every function's container was made)
    calls: dict[str, list[Call]]
    errors: dict[str, str] = field(default_factory=dict)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def start_lambda(local: SamLocal, mode: str, workdir: Path) -> Iterator[tuple[int, Lines, float]]:
    assert local.sam is not None
    port = free_port()
    args = [local.sam, "local", "start-lambda", "--host", "127.0.0.1", "--port", str(port)]
    args += ["--warm-containers", mode, *sam_args(local)]
    env = {**local.process_env(), "PYTHONUNBUFFERED": "1"}
    log_file = workdir / "start-lambda.log"
    started = time.perf_counter()
    process = subprocess.Popen(
        args,
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    assert process.stdout is not None
    lines = Lines(process.stdout)
    try:
        lines.wait_for(r"Running on http://127\.0\.0\.1:\d+", timeout=180)
        yield port, lines, time.perf_counter() - started
    finally:
        stop(process)
        lines.join(10)
        log_file.write_text(lines.text(since=started))


def warm_invocations(local: SamLocal, mode: str, warm: int, workdir: Path) -> Warm:
    result = Warm(0.0, {})
    with start_lambda(local, mode, workdir) as (port, lines, ready):
        result.ready_s = ready
        client: Any = boto3.client(
            "lambda",
            endpoint_url=f"http://127.0.0.1:{port}",
            region_name=local.region,
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
            config=Config(read_timeout=300, connect_timeout=10, retries={"max_attempts": 0}),
        )
        seen = len(lines.lines)
        for function, name in FUNCTIONS.items():
            calls = result.calls[function] = []
            try:
                for _ in range(1 + warm):
                    before = seen
                    started = time.perf_counter()
                    response = client.invoke(FunctionName=name, Payload=json.dumps(fresh_event(function)).encode())
                    wall_ms = (time.perf_counter() - started) * 1000
                    payload = response["Payload"].read()
                    # the REPORT line may follow the response: it tells which line belongs to this call
                    index = lines.wait_for(r"^REPORT RequestId", start=seen, timeout=30)
                    seen = index + 1
                    if response.get("FunctionError"):
                        raise RuntimeError(f"function error: {payload[:300]!r}")
                    match = REPORT_RE.search(lines.lines[index][1])
                    assert match is not None
                    created = lines.first(r"^SAM_CONTAINER_ID", before, index) is not None
                    init = float(match["init"]) if match["init"] else None
                    calls.append(Call(wall_ms, float(match["dur"]), init, created))
            except Exception as exc:  # report it in the table, measure the other functions
                result.errors[function] = str(exc).splitlines()[0][:300]
                calls.clear()
                seen = len(lines.lines)
                log(f"warm {function} failed: {exc}")
                continue
            log(f"warm {function}: REPORT Duration {[round(c.duration_ms) for c in calls]} ms")
    return result


# -- containers -------------------------------------------------------------------------------------


def my_containers(hub: HubResources) -> list[str]:
    """Containers of this run: SAM's (their environment has this run's table) and the import probe."""
    mine = [
        c["Id"][:12] for c in sam_containers() if f"RUNS_TABLE={hub.table}" in (c.get("Config", {}).get("Env") or [])
    ]
    probe = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label={CONTAINER_LABEL}"], capture_output=True, text=True, check=False
    ).stdout.split()
    return mine + probe


# -- report -----------------------------------------------------------------------------------------


def mb(n: float) -> str:
    return f"{n / 1e6:.1f}"


def human(n: float) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB"


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def per_key_median(runs: Sequence[dict[str, int]]) -> dict[str, float]:
    keys = {key for run in runs for key in run}
    return {key: median([run.get(key, 0) for run in runs]) for key in keys}


def top(values: dict[str, float], n: int, scale: float = 1000) -> str:
    return ", ".join(f"{name} {value / scale:.0f}" for name, value in sorted(values.items(), key=lambda kv: -kv[1])[:n])


def print_report(
    build_s: float,
    sizes: dict[str, Size],
    probe: dict[str, Any],
    cold: dict[str, Cold | str],
    warm: Warm,
    args: argparse.Namespace,
    load: tuple[float, float],
    loop: tuple[dict[str, Cold | str], float],
) -> None:
    functions = probe["functions"]

    def least(function: str, variant: str, key: str) -> float:
        return float(min(r[key] for r in functions[function][variant]))

    def least_med(function: str, variant: str, key: str) -> str:
        values = [r[key] for r in functions[function][variant]]
        return f"{min(values):>6.0f} ({median(values):>5.0f})"

    runtime_ms = min(probe["runtime"])
    print(
        f"\nsam local: SAM CLI, stand-in Lambda image {IMAGE} (Python {probe['python']}); "
        f"{os.cpu_count()} CPUs, load average {load[0]:.1f} at the start, {load[1]:.1f} at the end"
    )
    print(f"sam build --cached: {build_s:.1f} s\n")

    print("COLD: one `sam local invoke` per function (s: wall-clock seconds; ms: the REPORT line, but est. ms)")
    print(
        f"{'function':12} {'wall s':>7} {'SAM CLI s':>9} {'image s':>8} {'container s':>11} "
        f"{'Init ms*':>8} {'Duration ms':>11} {'est. ms':>8}"
    )

    def cold_rows(results: dict[str, Cold | str]) -> None:
        for function, c in results.items():
            if isinstance(c, str):
                print(f"{function:12} failed: {c}")
                continue
            init = f"{c.init_ms:.2f}" if c.init_ms is not None else "-"
            duration = c.duration_ms if c.duration_ms is not None else float("nan")
            estimate = runtime_ms + least(function, "source", "import") + least(function, "source", "first")
            print(
                f"{function:12} {c.wall:>7.1f} {c.sam_start:>9.1f} {c.image:>8.1f} {c.container:>11.1f} "
                f"{init:>8} {duration:>11.0f} {estimate:>8.0f}"
            )

    cold_rows(cold)
    print(
        f"\nTHE DEV LOOP: the same through SamLocal (the layer baked into an image of its own once per content, "
        f"{loop[1]:.1f} s here, then --invoke-image and a template without the layer: SAM builds no image)"
    )
    cold_rows(loop[0])

    print(
        f"\nWARM: `sam local start-lambda --warm-containers {args.warm_containers}` "
        f"(serving after {warm.ready_s:.1f} s), boto3 invoke; first = the first call into each function, "
        f"warm = the {args.warm} calls after it: median [min-max]; new = calls for which SAM made a container"
    )
    print(
        f"{'function':12} {'first wall ms':>13} {'first Duration':>14} {'warm wall ms':>13} {'warm Duration ms':>20}"
        f" {'new':>4}"
    )
    for function, calls in warm.calls.items():
        if not calls:
            print(f"{function:12} failed: {warm.errors.get(function, 'no calls')}")
            continue
        first, rest = calls[0], calls[1:]
        durations = [c.duration_ms for c in rest]
        spread = f"[{min(durations):.0f}-{max(durations):.0f}]" if durations else ""
        print(
            f"{function:12} {first.wall_ms:>13.0f} {first.duration_ms:>14.0f} "
            f"{median([c.wall_ms for c in rest]):>13.0f} {median(durations):>9.0f} {spread:>10}"
            f" {sum(c.new_container for c in calls):>4}"
        )

    print(
        f"\nIN THE CONTAINER: the same image and layer, the handler imported and called twice by a fresh Python "
        f"(under -X importtime), {args.repeats} runs each: least (median) ms.\nInterpreter start "
        f"{min(probe['startup']):.0f} ms; the stand-in's runtime client (awslambdaric), imported before the "
        f"handler: {runtime_ms:.0f} ms"
    )
    print(
        f"{'function':12} {'import as built':>15} {'import .pyc':>14} {'1st call as built':>17} "
        f"{'1st call .pyc':>14} {'2nd call':>14} {'imports in 1st':>14}"
    )
    for function in functions:
        lazy = median([r["lazy"] for r in functions[function]["source"]])
        print(
            f"{function:12} {least_med(function, 'source', 'import'):>15} {least_med(function, 'pyc', 'import'):>14}"
            f" {least_med(function, 'source', 'first'):>17} {least_med(function, 'pyc', 'first'):>14}"
            f" {least_med(function, 'source', 'second'):>14} {lazy:>14.0f}"
        )
    print("import as built, by package (median self ms):")
    for function, row in functions.items():
        print(f"  {function:11} {top(per_key_median([r['roots'] for r in row['source']]), 7)}")
    print("import with .pyc, by package and the project's own modules (median self ms):")
    for function, row in functions.items():
        roots = per_key_median([r["roots"] for r in row["pyc"]])
        own = per_key_median([r["own"] for r in row["pyc"]])
        print(f"  {function:11} {top(roots, 5)}\n  {'':11} {top(own, 5)}")
    print(
        f"the built layer has {probe['layer_pyc_files']} .pyc files; precompiling it (compileall -j0, "
        f"unchecked-hash) took {probe['compile_s']:.1f} s in the container and adds {mb(probe['pyc_bytes'])} MB "
        f"({mb(probe['pyc_zipped'])} MB zipped)"
    )

    print(f"\nSIZES: the sam build output ({args.build_dir}); MB = 10^6 bytes; zip = deflate, as sam package")
    print(f"{'artifact':22} {'files':>6} {'on disk':>10} {'zip file':>10}")
    for name, size in sizes.items():
        print(f"{name:22} {size.files:>6} {human(size.raw):>10} {human(size.zip_file):>10}")
    layer = sizes[LAYER]
    print(f"\nlayer, biggest parts (a package with its dist-info; of {mb(layer.raw)} MB on disk):")
    print(f"{'part':22} {'MB on disk':>10} {'%':>4} {'MB zipped':>9}")
    for name, (raw, zipped) in sorted(layer.parts.items(), key=lambda kv: -kv[1][0])[:10]:
        print(f"{name:22} {mb(raw):>10} {100 * raw / layer.raw:>4.0f} {mb(zipped):>9}")
    data = args.build_dir / LAYER / "python" / "botocore" / "data"
    if data.is_dir():
        services = sum(1 for p in data.iterdir() if p.is_dir())
        print(f"  of which botocore/data, the models of all {services} services: {mb(dir_bytes(data))} MB")

    print(
        "\n* Init ms is what the stand-in image's REPORT line prints, not an init phase: the import lands inside a"
        " cold call's Duration.\nwall s = the whole `sam local invoke`; SAM CLI s = until SAM prints 'Invoking'"
        " (CLI start, template); image s = SAM rebuilding the layer's image, which it does on every invoke of a"
        " layer defined in the template; container s = image ready -> REPORT line. est. ms = runtime client +"
        " import as built + 1st call as built, from IN THE CONTAINER (least of the runs): the same work as a cold"
        " Duration, measured apart (one cold invoke is one sample: compare the two with the load in mind)."
        " imports in 1st = modules first imported while the first call ran (part of 1st call)."
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--warm", type=int, default=5, help="warm calls per function after the first")
    parser.add_argument(
        "--warm-containers",
        choices=["LAZY", "EAGER"],
        default="LAZY",
        help="LAZY: a function's container is made by its first call; EAGER: all at start-lambda's start "
        "(SAM 1.170 then sometimes loses track of a container it built concurrently: it makes another on the "
        "first call and leaves the lost one running; this script removes it)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="in-container runs per function and variant")
    parser.add_argument("--bench-dir", type=Path, default=ROOT / ".aws-sam" / "bench", help="build and logs")
    args = parser.parse_args()

    sam = find_sam(ROOT)
    if sam is None or not docker_answers():
        print("needs SAM CLI (make sam) and a Docker engine (/work/shared/tools/lambda-runtime-image ensure)")
        return 2
    try:
        gateway = container_host_address()
    except HostAddressError as exc:
        print(exc)
        return 2
    total, load_start = time.perf_counter(), os.getloadavg()[0]

    log("sam build")
    args.build_dir, build_s = sam_build(sam, args.bench_dir)
    sizes = {LAYER: measure_size(args.build_dir / LAYER)}
    for name in FUNCTIONS.values():
        sizes[name] = measure_size(args.build_dir / name)

    workdir = args.bench_dir / "run"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    hub: HubResources | None = None
    local: SamLocal | None = None
    try:
        with Emulator(host=gateway) as emulator:
            CACHE.clear()
            seed = emulator.seed(targets=5, buckets_per_account=3, target_policy=target_role_policy())
            hub = create_hub_resources(emulator, seed)
            port = int(seed.endpoint_url.rsplit(":", 1)[1])
            local = SamLocal(
                emulator_port=port, hub=hub, region=seed.region, host_address=gateway, sam=sam, build_dir=args.build_dir
            )
            local.stage_job_file()  # the in-container measurement reads the demo's job file too
            # the worker fixture's run, recorded as the scheduler would (the worker refuses messages of no run)
            record_queued_run(emulator, seed, hub.table, "queuedrun0001")

            log("import and first calls in the container")
            imports = measure_in_container(args.build_dir, hub, port, seed.region, args.repeats)

            cold: dict[str, Cold | str] = {}
            loop: dict[str, Cold | str] = {}
            started = time.perf_counter()
            local.layer_image()  # the dev loop's image: built once per layer content, before any timing
            image_s = time.perf_counter() - started
            for results, prebuilt in ((cold, False), (loop, True)):
                for function in FUNCTIONS:
                    log(f"cold sam local invoke {function}" + (" (prebuilt layer image)" if prebuilt else ""))
                    try:
                        event = fresh_event(function) if prebuilt else load_event(function)
                        results[function] = cold_invoke(local, function, event, workdir, prebuilt=prebuilt)
                    except (RuntimeError, OSError) as exc:  # report it in the table, measure the others
                        log(str(exc))
                        results[function] = str(exc).splitlines()[0][:300]

            log(f"sam local start-lambda --warm-containers {args.warm_containers}")
            warm = warm_invocations(local, args.warm_containers, args.warm, workdir)
    finally:
        if hub is not None:
            left = my_containers(hub)
            if left:
                log(f"removing containers left behind: {left}")
                subprocess.run(["docker", "rm", "-f", *left], capture_output=True, check=False)
            left = my_containers(hub)
            log(f"containers of this run still present: {left or 'none'}")
        if local is not None:  # SamLocal's temporary directory (its env file holds R1's session keys)
            shutil.rmtree(local.env_file.parent, ignore_errors=True)

    print_report(build_s, sizes, imports, cold, warm, args, (load_start, os.getloadavg()[0]), (loop, image_s))
    print(f"\n(whole benchmark: {time.perf_counter() - total:.0f} s; start-lambda's log: {workdir}/start-lambda.log)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
