"""The demo's Lambda part: which way it runs the functions, and why (subprocesses: one emulator each)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.html_page import read_page

ROOT = Path(__file__).resolve().parents[2]


def demo(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    # a PATH with Python but no docker client: sam local cannot run, for a reason the demo must name
    (tmp_path / "bin").mkdir(exist_ok=True)
    environ = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    environ.update(PATH=str(tmp_path / "bin"), ROLECHAIN_SAM=sys.executable, **env)
    return subprocess.run(
        [sys.executable, "-m", "rolechain_dev.demo", "--part", "lambda", "--targets", "1", "--buckets", "1"],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


@pytest.mark.integration
def test_demo_falls_back_in_process_naming_the_true_reason(tmp_path: Path) -> None:
    result = demo(tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "in-process, because the docker command is not on PATH" in result.stdout
    assert "every step behaved as expected" in result.stdout


@pytest.mark.integration
def test_demo_forced_to_sam_fails_loudly_instead_of_falling_back(tmp_path: Path) -> None:
    result = demo(tmp_path, ROLECHAIN_LAMBDA_RUNNER="sam")
    assert result.returncode == 1
    assert "ROLECHAIN_LAMBDA_RUNNER=sam, but `sam local` cannot run here: the docker command is not on PATH" in (
        result.stdout
    )
    assert "in-process" not in result.stdout


@pytest.mark.integration
def test_demo_forced_in_process_says_so(tmp_path: Path) -> None:
    result = demo(tmp_path, ROLECHAIN_LAMBDA_RUNNER="in-process")
    assert result.returncode == 0, result.stdout[-2000:]
    assert "in-process, because ROLECHAIN_LAMBDA_RUNNER=in-process" in result.stdout


@pytest.mark.integration
def test_demo_rejects_an_unknown_runner_choice(tmp_path: Path) -> None:
    result = demo(tmp_path, ROLECHAIN_LAMBDA_RUNNER="docker")
    assert result.returncode == 2
    assert "ROLECHAIN_LAMBDA_RUNNER='docker': expected sam, in-process or auto" in result.stderr


@pytest.mark.integration
def test_demo_keeps_the_html_report_of_its_main_run_and_prints_where(tmp_path: Path) -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    environ["TMPDIR"] = str(tmp_path)  # the demo's output folder goes here
    result = subprocess.run(
        [sys.executable, "-m", "rolechain_dev.demo", "--part", "cli", "--targets", "2", "--buckets", "1"],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )

    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    said = re.search(r"^the run's HTML report \(.*\): (\S+)$", result.stdout, re.M)
    assert said is not None, result.stdout[-2000:]
    report = Path(said.group(1))
    assert report.is_relative_to(tmp_path) and report.name == "report.html"
    assert (report.parent / "summary.json").exists()
    page = read_page(report.read_text(encoding="utf-8"))
    assert page.counts == {"ok": 2, "failed": 0, "skipped": 0, "dry_run": 0}  # the inventory of both accounts
    assert page.title.endswith(": list_buckets")
