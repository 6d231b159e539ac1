"""What sam local needs, and the reasons given when something is missing (no Docker engine needed)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from rolechain_dev import local


def executable(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_python313_found_among_pyenv_versions_newest_first(tmp_path: Path) -> None:
    # Given a pyenv shim on PATH that fails (3.13 not active) and two installed 3.13 versions
    shims = tmp_path / "shims"
    executable(shims / "python3.13", "exit 127")
    root = tmp_path / "pyenv"
    executable(root / "versions/3.13.0/bin/python3.13", "exit 0")
    newest = executable(root / "versions/3.13.10/bin/python3.13", "exit 0")
    env = {"PATH": str(shims), "PYENV_ROOT": str(root)}
    # Then the newest installed version that runs is chosen, and SAM gets its folder first on PATH
    assert local.find_python313(env) == str(newest)
    assert local.sam_environment(env)["PATH"].split(os.pathsep)[0] == str(newest.parent)


def test_python313_explicit_choice_wins(tmp_path: Path) -> None:
    chosen = executable(tmp_path / "mine/python3.13", "exit 0")
    executable(tmp_path / "path/python3.13", "exit 0")
    env = {"PATH": str(tmp_path / "path"), "PYENV_ROOT": str(tmp_path), "ROLECHAIN_PYTHON313": str(chosen)}
    assert local.find_python313(env) == str(chosen)


def test_python313_missing_says_what_to_install(tmp_path: Path) -> None:
    env = {"PATH": str(tmp_path), "PYENV_ROOT": str(tmp_path / "none")}
    with pytest.raises(FileNotFoundError, match=r"pyenv install 3\.13.*apt-get install python3\.13"):
        local.find_python313(env)
    assert local.sam_environment(env)["PATH"] == str(tmp_path)  # unchanged; the build says why


@pytest.mark.parametrize(
    ("value", "choice"), [(None, "auto"), ("", "auto"), ("sam", "sam"), ("In-Process", "in-process"), ("auto", "auto")]
)
def test_runner_choice(value: str | None, choice: str) -> None:
    env = {} if value is None else {local.RUNNER_VARIABLE: value}
    assert local.lambda_runner_choice(env) == choice


def test_runner_choice_rejects_other_values_naming_the_variable() -> None:
    with pytest.raises(ValueError, match="ROLECHAIN_LAMBDA_RUNNER='docker': expected sam, in-process or auto"):
        local.lambda_runner_choice({local.RUNNER_VARIABLE: "docker"})


def test_readiness_names_the_missing_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given SAM CLI but a docker client whose engine does not answer
    sam = executable(tmp_path / "sam", "exit 0")
    refusal = "Cannot connect to the Docker daemon at unix:///var/run/docker.sock."
    executable(tmp_path / "docker", f"echo '{refusal}' >&2; exit 1")
    monkeypatch.setenv("ROLECHAIN_SAM", str(sam))
    monkeypatch.setenv("PATH", str(tmp_path))
    readiness = local.sam_local_readiness()
    assert readiness.host_address is None
    assert readiness.problem == (
        "no Docker engine answers (`docker info`: Cannot connect to the Docker daemon at unix:///var/run/docker.sock.)"
    )


def test_readiness_names_missing_sam(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROLECHAIN_SAM", str(tmp_path / "absent"))
    monkeypatch.setenv("PATH", str(tmp_path))
    assert local.sam_local_readiness(root=tmp_path).problem == (
        "SAM CLI is not installed (`make sam` installs it into .venv-sam)"
    )


def test_sam_asks_the_emulator_for_the_account_never_the_real_sts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SAM calls sts:GetCallerIdentity before every invoke: with R1's emulated keys it must reach the
    # emulator (offline the real endpoint cost 10 s of timeouts per invoke), and no other endpoint leaks in
    monkeypatch.setenv("AWS_ENDPOINT_URL", "https://example.invalid")
    monkeypatch.setenv("AWS_PROFILE", "someone")
    keys = {"AccessKeyId": "ASIAEMULATED", "SecretAccessKey": "s", "SessionToken": "t"}
    hub = local.HubResources("runs", "q", "dlq", keys, "/opt/jobs.yaml")
    sam = local.SamLocal(emulator_port=4566, hub=hub, region="eu-west-1", host_address="172.17.0.1", sam="/bin/true")
    try:
        env = sam.process_env()
    finally:
        sam.close()
    assert env["AWS_ENDPOINT_URL_STS"] == "http://172.17.0.1:4566"
    assert "AWS_ENDPOINT_URL" not in env and "AWS_PROFILE" not in env
    assert (env["AWS_ACCESS_KEY_ID"], env["AWS_REGION"]) == ("ASIAEMULATED", "eu-west-1")
