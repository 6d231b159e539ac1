"""Mutation testing as a benchmark (not in CI): how many planted one-token bugs the unit + integration tiers
kill, per module, with mutmut 2 (`pip install -e .[bench]`).

mutmut mutates a file in place and runs the test command once per mutant, so this works on a scratch copy
of the working tree (the checkout is never touched) whose package shadows the editable install through
PYTHONPATH. Each module is tested with the tiers' test files that exercise it (``--full``: the whole unit +
integration tiers, ~60 s a mutant); a mutant counts as killed when that command fails.

    .venv/bin/python benchmarks/mutation.py planning.py             # ~70 mutants, ~15 min here
    .venv/bin/python benchmarks/mutation.py runner.py hub/ --show   # also print the survivors' diffs
    .venv/bin/python benchmarks/mutation.py --all                   # every module below: hours
"""

from __future__ import annotations

import argparse
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
        "tests/unit/test_role_spec.py",
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
    "hub/": ["tests/integration/test_handlers.py", "tests/integration/test_semantics.py"],
    "actions/": [
        "tests/unit/test_block_public_access.py",
        "tests/unit/test_plugins.py",
        "tests/integration/test_actions.py",
    ],
}
# mutmut's statuses, as stored in its cache
KILLED, SURVIVED, TIMEOUT, SUSPICIOUS = "ok_killed", "bad_survived", "bad_timeout", "ok_suspicious"


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


def run_module(copy: Path, module: str, full: bool) -> float:
    """mutmut over one module of the package in ``copy``; returns the seconds it took."""
    tests = TIERS if full else TARGETS[module]
    runner = f"{sys.executable} -m pytest -x -q -p no:cacheprovider {' '.join(tests)}"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(str(copy / p) for p in ("layers/rolechain", "dev", ".")),
    }
    started = time.monotonic()
    subprocess.run(
        [
            str(Path(sys.executable).with_name("mutmut")),
            "run",
            "--paths-to-mutate",
            str(PACKAGE / module),
            "--tests-dir",
            "tests",
            "--runner",
            runner,
            "--no-progress",
        ],
        cwd=copy,
        env=env,
        check=False,
    )
    return time.monotonic() - started


def counts(copy: Path) -> dict[str, dict[str, int]]:
    """file -> status -> mutants, from mutmut's cache."""
    table: dict[str, dict[str, int]] = {}
    with sqlite3.connect(copy / ".mutmut-cache") as db:
        rows = db.execute(
            "SELECT SourceFile.filename, Mutant.status, COUNT(*) FROM Mutant"
            " JOIN Line ON Mutant.line = Line.id JOIN SourceFile ON Line.sourcefile = SourceFile.id"
            " GROUP BY SourceFile.filename, Mutant.status"
        )
        for filename, status, number in rows:
            table.setdefault(str(Path(filename).relative_to(PACKAGE)), {})[status] = number
    return table


def survivors(copy: Path) -> list[str]:
    with sqlite3.connect(copy / ".mutmut-cache") as db:
        ids = [str(row[0]) for row in db.execute("SELECT id FROM Mutant WHERE status = ?", (SURVIVED,))]
    mutmut = str(Path(sys.executable).with_name("mutmut"))
    return [
        subprocess.run([mutmut, "show", i], check=False, cwd=copy, capture_output=True, text=True).stdout for i in ids
    ]


def print_table(table: dict[str, dict[str, int]], seconds: float) -> None:
    print(f"\n{'module':32} {'mutants':>7} {'killed':>6} {'survived':>8} {'timeout':>7} {'score':>6}")
    totals = dict.fromkeys((KILLED, SURVIVED, TIMEOUT, SUSPICIOUS), 0)
    for module, statuses in sorted(table.items()):
        for key in totals:
            totals[key] += statuses.get(key, 0)
        print_row(module, statuses)
    print_row("total", totals)
    print(f"({seconds / 60:.1f} min; a timeout or a suspiciously slow run counts as killed)")


def print_row(name: str, statuses: dict[str, int]) -> None:
    killed = statuses.get(KILLED, 0) + statuses.get(TIMEOUT, 0) + statuses.get(SUSPICIOUS, 0)
    tested = killed + statuses.get(SURVIVED, 0)
    score = f"{100 * killed / tested:.0f}%" if tested else "-"
    print(f"{name:32} {tested:7} {killed:6} {statuses.get(SURVIVED, 0):8} {statuses.get(TIMEOUT, 0):7} {score:>6}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("modules", nargs="*", help=f"modules of the package, of: {', '.join(TARGETS)}")
    parser.add_argument("--all", action="store_true", help="every module in TARGETS")
    parser.add_argument("--full", action="store_true", help="the whole unit + integration tiers for every mutant")
    parser.add_argument("--show", action="store_true", help="print every surviving mutant's diff")
    parser.add_argument("--keep", action="store_true", help="keep the scratch copy (its .mutmut-cache)")
    args = parser.parse_args(argv)
    modules = list(TARGETS) if args.all or not args.modules else args.modules
    unknown = sorted(set(modules) - set(TARGETS))
    if unknown:
        parser.error(f"unknown module(s): {', '.join(unknown)}")
    copy = scratch_copy()
    print(f"scratch copy: {copy}")
    started = time.monotonic()
    try:
        for module in modules:
            run_module(copy, module, args.full)
        print_table(counts(copy), time.monotonic() - started)
        if args.show:
            print("\n".join(survivors(copy)))
    finally:
        if not args.keep:
            shutil.rmtree(copy, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
