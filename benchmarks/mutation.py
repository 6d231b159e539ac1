"""Mutation testing as a benchmark (not in CI): how many planted one-token bugs the unit + integration tiers
kill, per module, with cosmic-ray (`pip install -e .[bench]`).

cosmic-ray mutates a file in place and runs the test command once per mutant, so this works on a scratch
copy of the working tree (the checkout is never touched) whose package shadows the editable install through
PYTHONPATH. Each module is tested with the tiers' test files that exercise it (``--full``: the whole unit +
integration tiers, ~60 s a mutant); a mutant counts as killed when that command fails.

    .venv/bin/python benchmarks/mutation.py planning.py             # ~60 mutants, ~12 min here
    .venv/bin/python benchmarks/mutation.py runner.py hub/ --show   # also print the survivors' diffs
    .venv/bin/python benchmarks/mutation.py --all                   # every module below: hours

(mutmut 2.5.1 was tried first: after 14 of planning.py's mutants its cache could not find a mutant's line
(an AssertionError in cached_mutation_status) and it stopped.)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = Path("layers/rolechain/rolechain")
TIERS = ["tests/unit", "tests/integration"]
# module (relative to the package) -> the test files that exercise it; what --full replaces with TIERS.
TARGETS: dict[str, list[str]] = {
    "chain.py": ["tests/unit/test_chain.py", "tests/integration/test_chain_sessions.py"],
    "sessions.py": ["tests/unit/test_sessions.py", "tests/integration/test_chain_sessions.py"],
    "planning.py": [
        "tests/unit/test_planning_semantics.py",
        "tests/unit/test_failure_kinds.py",
        "tests/integration/test_runner.py",
        "tests/integration/test_jobs_cli.py",
        "tests/integration/test_semantics.py",
    ],
    "runner.py": [
        "tests/unit/test_failure_kinds.py",
        "tests/unit/test_summaries.py",
        "tests/integration/test_runner.py",
        "tests/integration/test_semantics.py",
    ],
    "schedules.py": [
        "tests/unit/test_schedules_properties.py",
        "tests/integration/test_schedules.py",
        "tests/integration/test_schedules_resource.py",
    ],
    "hub/": [
        "tests/integration/test_handlers.py",
        "tests/integration/test_semantics.py",
        "tests/unit/test_job_schedules.py",
        "tests/integration/test_schedules_resource.py",
    ],
    "actions/": [
        "tests/unit/test_block_public_access.py",
        "tests/unit/test_plugins.py",
        "tests/integration/test_actions.py",
    ],
}
# `X | None` annotations would give 11 equivalent mutants each (one operator for another); one stays.
EXCLUDED_OPERATORS = ["core/ReplaceBinaryOperator_BitOr_(?!BitAnd).*"]
CONFIG = """[cosmic-ray]
module-path = "{module}"
timeout = 600.0
excluded-modules = []
test-command = "{command}"
[cosmic-ray.distributor]
name = "local"
[cosmic-ray.filters.operators-filter]
exclude-operators = {excluded}
"""


def scratch_copy() -> Path:
    """The working tree's tracked and new files (not ignored ones) in a temporary directory."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split("\0")
    target = Path(tempfile.mkdtemp(prefix="rolechain-mutation-"))
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def run_module(copy: Path, module: str, full: bool) -> Path:
    """cosmic-ray over one module of the package in ``copy``; returns its session database."""
    tests = TIERS if full else TARGETS[module]
    command = f"{sys.executable} -m pytest -x -q -p no:cacheprovider {' '.join(tests)}"
    name = module.strip("/").replace("/", "-").removesuffix(".py")
    config, session = copy / f"mutation-{name}.toml", copy / f"mutation-{name}.sqlite"
    config.write_text(CONFIG.format(module=PACKAGE / module, command=command, excluded=json.dumps(EXCLUDED_OPERATORS)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(copy / p) for p in ("layers/rolechain", "dev", "."))}
    bin_dir = Path(sys.executable).parent
    for step in (
        [bin_dir / "cosmic-ray", "init", config, session],
        [bin_dir / "cr-filter-operators", session, config],
        [bin_dir / "cosmic-ray", "exec", config, session],
    ):
        subprocess.run([str(arg) for arg in step], cwd=copy, env=env, check=True)
    return session


def counts(sessions: list[Path]) -> dict[str, dict[str, int]]:
    """module file -> outcome (killed, survived, incompetent: the mutant did not even import) -> mutants."""
    table: dict[str, dict[str, int]] = {}
    for session in sessions:
        with sqlite3.connect(session) as db:
            rows = db.execute(
                "SELECT mutation_specs.module_path, work_results.test_outcome, COUNT(*) FROM work_results"
                " JOIN mutation_specs ON mutation_specs.job_id = work_results.job_id"
                " WHERE work_results.worker_outcome = 'NORMAL' GROUP BY 1, 2"
            )
            for path, outcome, number in rows:
                module = str(Path(path).relative_to(PACKAGE))
                table.setdefault(module, {})[outcome.lower()] = number
    return table


def survivors(sessions: list[Path]) -> list[str]:
    diffs: list[str] = []
    for session in sessions:
        with sqlite3.connect(session) as db:
            diffs.extend(row[0] for row in db.execute("SELECT diff FROM work_results WHERE test_outcome = 'SURVIVED'"))
    return diffs


def print_table(table: dict[str, dict[str, int]], seconds: float) -> None:
    print(f"\n{'module':32} {'mutants':>7} {'killed':>6} {'survived':>8} {'incompetent':>11} {'score':>6}")
    totals: dict[str, int] = {}
    for module, outcomes in sorted(table.items()):
        for key, number in outcomes.items():
            totals[key] = totals.get(key, 0) + number
        print_row(module, outcomes)
    print_row("total", totals)
    print(f"({seconds / 60:.1f} min; an incompetent mutant, one that breaks the import, counts as killed)")


def print_row(name: str, outcomes: dict[str, int]) -> None:
    killed = outcomes.get("killed", 0) + outcomes.get("incompetent", 0)
    tested = killed + outcomes.get("survived", 0)
    score = f"{100 * killed / tested:.0f}%" if tested else "-"
    print(
        f"{name:32} {tested:7} {outcomes.get('killed', 0):6} {outcomes.get('survived', 0):8} "
        f"{outcomes.get('incompetent', 0):11} {score:>6}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("modules", nargs="*", help=f"modules of the package, of: {', '.join(TARGETS)}")
    parser.add_argument("--all", action="store_true", help="every module in TARGETS")
    parser.add_argument("--full", action="store_true", help="the whole unit + integration tiers for every mutant")
    parser.add_argument("--show", action="store_true", help="print every surviving mutant's diff")
    parser.add_argument("--keep", action="store_true", help="keep the scratch copy (cr-report on its .sqlite)")
    args = parser.parse_args(argv)
    modules = list(TARGETS) if args.all or not args.modules else args.modules
    unknown = sorted(set(modules) - set(TARGETS))
    if unknown:
        parser.error(f"unknown module(s): {', '.join(unknown)}")
    copy = scratch_copy()
    print(f"scratch copy: {copy}")
    started = time.monotonic()
    try:
        sessions = [run_module(copy, module, args.full) for module in modules]
        print_table(counts(sessions), time.monotonic() - started)
        if args.show:
            print("\n".join(survivors(sessions)))
    finally:
        if not args.keep:
            shutil.rmtree(copy, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
