"""Cold start: each handler's module import (Lambda's Init phase) against a bare ``import boto3``.

For each function (scheduler, worker, remediation, api) a fresh interpreter imports its handler module
``app`` the way the Lambda runtime does (the function's folder, the layer's ``python/``, then the runtime's
folder on ``sys.path``; nothing compiled is written: /opt and /var/task are read-only in Lambda), with the
environment the template gives it (``Globals.Environment`` with the parameters' defaults, resource names
standing in for ``!Ref``s, plus what Lambda itself sets: function name, region, ``LAMBDA_TASK_ROOT``...).
A fresh interpreter doing only ``import boto3`` from the same ``sys.path`` is the reference. Floors are the
second: handlers of the same libraries with none of rolechain (``cold_start_floor/``), so the table shows
what rolechain's own code adds above what its stack costs. All runs are
interleaved (one round = every subject once, in a shuffled order) and the table gives medians of the
rounds and the ratio to boto3 of the same layer variant, so machine load hits both alike.

Where:
* ``host``: the python3.13 ``sam build`` uses (``rolechain_dev.local.find_python313``);
* ``container``: the Lambda image's own python3 (``docker run`` of public.ecr.aws/lambda/python:3.13, the
  layer and the function folders mounted read-only), this same script running in it as the probe.

Variants: ``built`` is the layer as ``sam build`` makes it; ``no-pyc`` a copy without any ``__pycache__``,
as Lambda would get it without precompiled bytecode; ``--build LABEL=DIR`` adds another ``sam build``
output (its layer and its function folders), e.g. of an earlier commit, measured in the same rounds.
Tracing: ``on`` is the deployed function (Tracing: Active, so Powertools' Tracer is enabled), ``off`` is
``POWERTOOLS_TRACE_DISABLED=true`` (what ``sam local`` gets too, through ``AWS_SAM_LOCAL``).

    python benchmarks/bench_cold_start.py [--repeats 9] [--where host,container] [--no-build]
                                          [--importtime] [--variants built,no-pyc] [--tracing on,off]
                                          [--build LABEL=BUILD_DIR ...]

The build goes to .aws-sam/cold-start/ (run from there, as bench_sam_local.py does, so it never races
another build). ``--importtime`` adds a ``python -X importtime`` run of each handler (layer as built,
tracing on) and prints the heaviest packages and modules by self time.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

# The probe half of this script runs inside the Lambda image too: only the standard library at module scope.
ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS = {
    "scheduler": "SchedulerFunction",
    "worker": "WorkerFunction",
    "remediation": "RemediationFunction",
    "api": "ApiFunction",
    "schedules": "SchedulesFunction",
}
IMAGE = "public.ecr.aws/lambda/python:3.13-x86_64"
LAYER = "RolechainLayer"
CONTAINER_LABEL = "rolechain.bench-cold-start"
BASELINE = "boto3"
# Floors: handlers of the same libraries with none of rolechain (benchmarks/cold_start_floor/), what a
# handler's import cannot go below on this stack; each function's import is also given as a ratio to its own.
FLOORS = {"floor-lean": "floor_lean", "floor": "floor_pydantic", "floor-api": "floor_api"}
FLOOR_OF = {"api": "floor-api"}  # the others': "floor"
FLOOR_DIR = "cold_start_floor"
# Stand-ins for what the template's !Ref / !GetAtt resolve to in a deployed stack.
RESOURCE_VALUES = {  # what a !Ref or !GetAtt of a resource of template.yaml gives a deployed function
    "RunsTable": "rolechain-RunsTable-0123456789AB",
    "TargetQueue": "https://sqs.us-east-1.amazonaws.com/111111111111/rolechain-TargetQueue-0123456789AB",
    "ResultsBucket": "rolechain-resultsbucket-0123456789ab",
    "PageTokenKey.Arn": "arn:aws:kms:us-east-1:111111111111:key/00000000-0000-4000-8000-000000000000",
}
CHILD = (
    "import time; _t, _c = time.perf_counter(), time.process_time(); import {module}; "
    "_d, _e = time.perf_counter() - _t, time.process_time() - _c; "
    "import sys; print('BENCH', _d * 1000, _e * 1000, len(sys.modules))"
)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- the probe: runs where the interpreter under test is (host or container) --------------------------


def lambda_env(base: dict[str, str], function: str, fn_dir: str, layer: str, tracing: bool) -> dict[str, str]:
    """What a fresh runtime process sees: the template's variables (``base``), Lambda's own, the layer."""
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        **base,
        "JOB_FILE": f"{layer}/python/rolechain-config/jobs.yaml",
        "AWS_LAMBDA_FUNCTION_NAME": f"rolechain-{FUNCTIONS[function]}-0123456789AB",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/rolechain/rolechain/{function}",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "LAMBDA_TASK_ROOT": fn_dir,
        "_HANDLER": "app.lambda_handler",
        "AWS_ACCESS_KEY_ID": "ASIABENCHCOLDSTART00",
        "AWS_SECRET_ACCESS_KEY": "bench-secret",
        "AWS_SESSION_TOKEN": "bench-token",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_XRAY_DAEMON_ADDRESS": "169.254.79.129:2000",
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        "PYTHONDONTWRITEBYTECODE": "1",  # Lambda's /opt and /var/task are read-only: nothing compiled is kept
        "PYTHONPATH": os.pathsep.join([fn_dir, f"{layer}/python", "/var/runtime"]),
    }
    if not tracing:
        env["POWERTOOLS_TRACE_DISABLED"] = "true"
    return env


def run_child(python: str, module: str, cwd: str, env: dict[str, str], importtime: bool = False) -> dict[str, Any]:
    args = [python, "-s", *(["-X", "importtime"] if importtime else []), "-c", CHILD.format(module=module)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    wall = (time.perf_counter() - started) * 1000
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # children run one at a time: the delta is this one's
    cpu = (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000
    if done.returncode != 0:
        raise RuntimeError(f"import {module} in {cwd} failed: {done.stderr[-3000:]}")
    line = next(entry for entry in done.stdout.splitlines() if entry.startswith("BENCH "))
    _, import_ms, import_cpu_ms, modules = line.split()
    result: dict[str, Any] = {
        "wall": wall,
        "cpu": cpu,
        "import": float(import_ms),
        "import_cpu": float(import_cpu_ms),
        "modules": int(modules),
    }
    if importtime:
        result["importtime"] = done.stderr
    return result


def probe(spec: dict[str, Any]) -> dict[str, Any]:
    """Interleaved rounds over every (subject, variant, tracing); one -X importtime run per handler."""
    python, base = spec["python"], spec["env"]
    subjects: list[tuple[str, str, str]] = []  # (subject, variant, tracing)
    for variant in spec["variants"]:
        subjects.append((BASELINE, variant, "-"))
        subjects += [(floor, variant, "-") for floor in FLOORS]
        subjects += [(f, variant, t) for f in spec["functions"] for t in spec["tracing"]]

    def one(subject: str, variant: str, tracing: str, importtime: bool = False) -> dict[str, Any]:
        layer, functions = spec["variants"][variant]["layer"], spec["variants"][variant]["functions"]
        function = subject if subject in functions else spec["functions"][0]
        env = lambda_env(base, function, functions[function], layer, tracing == "on")
        if subject == BASELINE:
            fn_dir, module, env["PYTHONPATH"] = "/tmp", "boto3", f"{layer}/python"
        elif subject in FLOORS:
            fn_dir, module = str(Path(__file__).resolve().parent / FLOOR_DIR), FLOORS[subject]
            env["LAMBDA_TASK_ROOT"], env["PYTHONPATH"] = fn_dir, os.pathsep.join([fn_dir, f"{layer}/python"])
        else:
            fn_dir, module = functions[function], "app"
        return run_child(python, module, fn_dir, env, importtime)

    startup = []
    runs: dict[str, list[dict[str, Any]]] = {"|".join(s): [] for s in subjects}
    for _ in range(spec["repeats"]):
        started = time.perf_counter()
        subprocess.run([python, "-s", "-c", "pass"], check=True, env={"PYTHONDONTWRITEBYTECODE": "1"})
        startup.append((time.perf_counter() - started) * 1000)
        for subject in random.sample(subjects, len(subjects)):
            runs["|".join(subject)].append(one(*subject))
    version = subprocess.run(
        [python, "-c", "import sys; print(sys.version.split()[0])"], capture_output=True, text=True, check=True
    )
    out: dict[str, Any] = {"python": version.stdout.strip(), "startup": startup, "runs": runs}
    if spec["importtime"]:
        variant = next(iter(spec["variants"]))
        out["importtime"] = {
            f: {t: one(f, variant, t, importtime=True)["importtime"] for t in spec["tracing"]}
            for f in spec["functions"]
        }
    out["pyc_files"] = {
        v: sum(1 for _ in Path(paths["layer"], "python").rglob("*.pyc")) for v, paths in spec["variants"].items()
    }
    return out


# -- the driver: build, layer variants, host and container runs ------------------------------------


def template_env() -> dict[str, str]:
    """``Globals.Function.Environment.Variables`` of template.yaml, as a stack deployed with the defaults gets
    them (a parameter's default for its !Ref, a stand-in name for a resource's)."""
    from rolechain_dev.local import load_template, resolve_default

    template = load_template(ROOT)
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    env = {}
    for name, value in variables.items():
        if isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"] in template["Resources"]:
            reference = value["Ref"]
        elif isinstance(value, dict) and set(value) == {"Fn::GetAtt"}:
            attribute = value["Fn::GetAtt"]  # [Resource, Attribute], or "Resource.Attribute" in long form
            reference = attribute if isinstance(attribute, str) else ".".join(attribute)
        else:
            env[name] = str(resolve_default(value, template))
            continue
        if reference not in RESOURCE_VALUES:
            raise SystemExit(f"template.yaml: {name} refers to {reference}; give it a stand-in in RESOURCE_VALUES")
        env[name] = RESOURCE_VALUES[reference]
    return env


def build(bench_dir: Path) -> Path:
    from rolechain_dev.local import find_sam
    from rolechain_dev.local import sam_build as local_sam_build

    sam = find_sam(ROOT)
    if sam is None:
        raise SystemExit("needs SAM CLI (make sam) to build the layer, or --no-build with a build in --build-dir")
    bench_dir.mkdir(parents=True, exist_ok=True)
    build_dir = bench_dir / "build"
    started = time.perf_counter()
    result = local_sam_build(sam, build_dir, cache_dir=bench_dir / "cache", cwd=bench_dir)
    if result.returncode != 0:
        raise SystemExit(f"sam build failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}")
    log(f"sam build --cached: {time.perf_counter() - started:.1f} s")
    return build_dir


def variants_of(build_dir: Path, bench_dir: Path, wanted: list[str], extra: list[str]) -> dict[str, Path]:
    """label -> a build directory (its RolechainLayer and function folders). ``built``: the build as is;
    ``no-pyc``: the same with a copy of its layer without any __pycache__ folder; ``extra``: LABEL=DIR."""
    variants: dict[str, Path] = {}
    if "built" in wanted:
        variants["built"] = build_dir
    if "no-pyc" in wanted:
        copy = bench_dir / "no-pyc"
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(build_dir / LAYER, copy / LAYER, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        for directory in FUNCTIONS.values():
            shutil.copytree(build_dir / directory, copy / directory)
        variants["no-pyc"] = copy
    for item in extra:
        label, _, directory = item.partition("=")
        variants[label] = Path(directory).resolve()
    return variants


def run_host(spec: dict[str, Any], variants: dict[str, Path]) -> dict[str, Any]:
    from rolechain_dev.local import find_python313

    paths = {
        label: {"layer": str(d / LAYER), "functions": {f: str(d / FUNCTIONS[f]) for f in spec["functions"]}}
        for label, d in variants.items()
    }
    # The interpreter itself, not a pyenv shim: the probe runs it with a bare environment (no PYENV_VERSION).
    found = subprocess.run(
        [find_python313(), "-c", "import sys; print(sys.executable)"], capture_output=True, text=True, check=True
    )
    python = found.stdout.strip()
    # The floors' bytecode, as the layer has its own (the container reads it too: the same Python 3.13).
    floors = Path(__file__).resolve().parent / FLOOR_DIR
    subprocess.run([python, "-m", "compileall", "-q", str(floors)], check=True)
    return probe({**spec, "python": python, "variants": paths})


def run_container(spec: dict[str, Any], variants: dict[str, Path]) -> dict[str, Any]:
    name = f"rolechain-bench-cold-{os.getpid()}"
    args = ["docker", "run", "--rm", "--pull", "never", "--name", name, "--label", f"{CONTAINER_LABEL}=probe"]
    args += ["--network", "none", "--entrypoint", "/usr/bin/python3", "-v", f"{Path(__file__).parent}:/bench:ro"]
    paths = {}
    for index, (label, directory) in enumerate(variants.items()):
        mount = f"/builds/{index}"  # read-only, as /opt and /var/task are in Lambda
        args += ["-v", f"{directory}:{mount}:ro"]
        paths[label] = {
            "layer": f"{mount}/{LAYER}",
            "functions": {f: f"{mount}/{FUNCTIONS[f]}" for f in spec["functions"]},
        }
    inner = {**spec, "python": "/usr/bin/python3", "variants": paths}
    args += [IMAGE, "/bench/bench_cold_start.py", "--probe", json.dumps(inner)]
    try:
        done = subprocess.run(args, capture_output=True, text=True, check=False, timeout=3600)
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the probe in the container failed: {done.stderr[-3000:]}")
    measured: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return measured


# -- report -----------------------------------------------------------------------------------------


def med(runs: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(r[key] for r in runs))


def importtime_table(text: str) -> tuple[dict[str, int], dict[str, tuple[int, int]]]:
    """``-X importtime`` output -> self us by top-level package, and (self, cumulative) us by module."""
    packages: dict[str, int] = {}
    modules: dict[str, tuple[int, int]] = {}
    for line in text.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cumulative, name = line[len("import time:") :].split("|")
        name = name.strip()
        packages[name.split(".")[0]] = packages.get(name.split(".")[0], 0) + int(self_us)
        modules[name] = (int(self_us), int(cumulative))
    return packages, modules


def print_report(where: str, out: dict[str, Any], spec: dict[str, Any]) -> None:
    runs = out["runs"]
    print(
        f"\n{where.upper()}: Python {out['python']}, {spec['repeats']} interleaved rounds, medians; "
        f"interpreter start (python -c pass) {statistics.median(out['startup']):.0f} ms; "
        f".pyc files in the layer: {', '.join(f'{v} {n}' for v, n in out['pyc_files'].items())}"
    )
    keys = ("wall", "cpu", "import", "import_cpu")
    header = "".join(f" {name:>9} {'x boto3':>7}" for name in ("wall ms", "CPU ms", "import ms", "imp CPU"))
    print(f"{'subject':12} {'build':10} {'tracing':7}{header} {'modules':>7} {'imp x floor':>11}")
    for variant in spec["variants"]:
        base = runs[f"{BASELINE}|{variant}|-"]
        reference = {key: med(base, key) for key in keys}
        rows = [("import boto3", "-", base)] + [(floor, "-", runs[f"{floor}|{variant}|-"]) for floor in FLOORS]
        rows += [(f, t, runs[f"{f}|{variant}|{t}"]) for f in spec["functions"] for t in spec["tracing"]]
        for subject, tracing, row in rows:
            cells = "".join(f" {med(row, key):>9.0f} {med(row, key) / reference[key]:>7.2f}" for key in keys)
            floor = FLOOR_OF.get(subject, "floor") if subject in spec["functions"] else None
            versus = f"{med(row, 'import') / med(runs[f'{floor}|{variant}|-'], 'import'):>11.2f}" if floor else ""
            print(f"{subject:12} {variant:10} {tracing:7}{cells} {med(row, 'modules'):>7.0f} {versus}")
    for function, by_tracing in out.get("importtime", {}).items():
        for tracing, text in by_tracing.items():
            packages, modules = importtime_table(text)
            total = sum(packages.values()) / 1000
            heavy = sorted(packages.items(), key=lambda kv: -kv[1])[:8]
            print(f"-X importtime {function} (tracing {tracing}, {total:.0f} ms of imports), self ms by package:")
            print("   " + ", ".join(f"{name} {us / 1000:.0f}" for name, us in heavy))
            top = sorted(modules.items(), key=lambda kv: -kv[1][0])[:8]
            print("   heaviest modules (self ms): " + ", ".join(f"{name} {s / 1000:.0f}" for name, (s, _) in top))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=9, help="interleaved rounds")
    parser.add_argument("--where", default="host,container", help="host, container or both")
    parser.add_argument("--variants", default="built,no-pyc", help="built, no-pyc")
    parser.add_argument("--build", action="append", default=[], help="LABEL=DIR: another sam build to measure")
    parser.add_argument("--tracing", default="on,off", help="on (as deployed), off (POWERTOOLS_TRACE_DISABLED)")
    parser.add_argument("--functions", default=",".join(FUNCTIONS))
    parser.add_argument("--importtime", action="store_true", help="also a -X importtime run per handler")
    parser.add_argument("--no-build", action="store_true", help="use the build in --build-dir as it is")
    parser.add_argument("--bench-dir", type=Path, default=ROOT / ".aws-sam" / "cold-start")
    parser.add_argument("--probe", help=argparse.SUPPRESS)  # the in-container half
    args = parser.parse_args()
    if args.probe:
        print(json.dumps(probe(json.loads(args.probe))))
        return 0

    args.bench_dir = args.bench_dir.resolve()  # sam build runs from there
    build_dir = args.bench_dir / "build" if args.no_build else build(args.bench_dir)
    variants = variants_of(build_dir, args.bench_dir, [v for v in args.variants.split(",") if v], args.build)
    spec = {
        "env": template_env(),
        "repeats": args.repeats,
        "tracing": args.tracing.split(","),
        "functions": args.functions.split(","),
        "importtime": args.importtime,
    }
    load = os.getloadavg()[0]
    results: dict[str, dict[str, Any]] = {}
    for where in args.where.split(","):
        log(f"{where}: {args.repeats} rounds")
        results[where] = run_host(spec, variants) if where == "host" else run_container(spec, variants)
    print(
        f"\ncold start: handler import against `import boto3`; {os.cpu_count()} CPUs, load average {load:.1f} at "
        f"the start, {os.getloadavg()[0]:.1f} at the end. wall / CPU = the whole fresh process's wall-clock "
        "and CPU (user + system) time, interpreter start included; import / imp CPU = `import app` alone, timed "
        "inside it; x boto3 = divided by the same column of `import boto3` from the same build in the same rounds; "
        "imp x floor = import divided by its floor's (floor-api for the API, floor for the others). Floors "
        "(benchmarks/cold_start_floor/) use the same libraries with none of rolechain: floor-lean boto3 with a "
        "session and Powertools' Logger and Metrics; floor that plus pydantic (a validated settings model, a "
        "deferred event model); floor-api that plus Powertools' REST resolver with OpenAPI validation"
    )
    for where, out in results.items():
        print_report(where, out, {**spec, "variants": variants})
    return 0


if __name__ == "__main__":
    sys.exit(main())
