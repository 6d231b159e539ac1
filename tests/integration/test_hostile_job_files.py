"""Issue #10 defect 7, the operator's edge: job files and flags that used to crash now fail with a
ConfigError naming what was wrong (exit 2, no traceback), before any AWS call. Job files that used to
pass are among test_jobs_cli's BAD_JOB_FILES."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from rolechain.actions.tag_resources import MAX_ARNS
from rolechain.errors import ConfigError
from rolechain.jobs import MAX_NESTING, load_job_file

from tests.integration.support import CliResult
from tests.integration.test_jobs_cli import ACCOUNT, ARABIC_ACCOUNT, job_yaml, write

pytestmark = pytest.mark.integration

Rolechain = Callable[..., CliResult]
UNREADABLE = {
    "invalid UTF-8": (b"version: 1\njobs: {}\n# caf\xe9\n", "is not UTF-8 text (byte 25 cannot be decoded)"),
    "20,000-deep list": (b"jobs: " + b"[" * 20_000 + b"]" * 20_000 + b"\n", "levels deep"),
    "20,000-deep mapping": (b"jobs: " + b"{a: " * 20_000 + b"1" + b"}" * 20_000 + b"\n", "levels deep"),
    "just over the nesting limit": (
        b"jobs: {j1: {params: " + b"[" * MAX_NESTING + b"]" * MAX_NESTING + b"}}\n",
        f"more than {MAX_NESTING} levels deep",
    ),
}


@pytest.mark.parametrize(("content", "message"), list(UNREADABLE.values()), ids=list(UNREADABLE))
def test_a_job_file_that_used_to_crash_gives_a_config_error_naming_the_file(
    tmp_path: Path, rolechain_offline: Rolechain, content: bytes, message: str
) -> None:
    path = tmp_path / "jobs.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as excinfo:
        load_job_file(path)
    assert excinfo.value.field == str(path) and message in excinfo.value.rule
    result = rolechain_offline("validate", str(path))
    assert result.code == 2 and result.out == ""
    assert result.err == f"rolechain: error: {path}: {excinfo.value.rule}\n"
    assert "Traceback" not in result.err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--region", "us-esat-1"], "regions: 'us-esat-1' is not a known AWS region (did you mean 'us-east-1'?)"),
        (["--accounts", ARABIC_ACCOUNT], f"accounts: {ARABIC_ACCOUNT} not among the targets of job 'j1'"),
    ],
)
def test_run_job_checks_its_flags(tmp_path: Path, rolechain_offline: Rolechain, argv: list[str], message: str) -> None:
    path = write(tmp_path, job_yaml(f"action: list_buckets\n{ACCOUNT}"))
    result = rolechain_offline("run", "j1", "--config", path, *argv)
    assert (result.code, result.out) == (2, "")
    assert result.err == f"rolechain: error: {message}\n"


def test_the_cli_refuses_an_unknown_region_non_ascii_digits_and_too_many_arns(rolechain_offline: Rolechain) -> None:
    result = rolechain_offline("run", "--action", "whoami", "--accounts", "200000000001", "--region", "us-esat-1")
    assert (result.code, result.err) == (
        2,
        "rolechain: error: regions: 'us-esat-1' is not a known AWS region (did you mean 'us-east-1'?)\n",
    )
    arns = ",".join(f'"arn:aws:s3:::b{i}"' for i in range(MAX_ARNS + 1))
    result = rolechain_offline(
        "run",
        "--action",
        "tag_resources",
        "--accounts",
        "200000000001",
        "--params-json",
        f'{{"tags": {{"a": "b"}}, "arns": [{arns}]}}',
    )
    assert result.code == 2 and f"at most {MAX_ARNS} per target" in result.err
    result = rolechain_offline("whoami", "--region", "eu-wset-1")
    assert (result.code, result.err) == (
        2,
        "rolechain: error: --region: 'eu-wset-1' is not a known AWS region (did you mean 'eu-west-1'?)\n",
    )
    result = rolechain_offline("run", "--action", "whoami", "--accounts", ARABIC_ACCOUNT)
    assert result.err == f"rolechain: error: accounts: '{ARABIC_ACCOUNT}' is not a 12-digit AWS account id\n"
