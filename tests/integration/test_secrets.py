"""No seeded secret in any output of a run that fails at the target role (issue 10, defect 1).

A distinctive ExternalId is seeded; account 200000000006 has no R2, so its hop fails and is explained.
The CLI's output, the API's responses (POST /runs, GET /runs/{id}), every item stored in the runs
table and every log record of rolechain and the handlers are scanned for the ExternalId and for every
key id, secret key and session token seeded or issued.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rolechain import CACHE
from rolechain_dev.emulator import Emulator, Seed

from tests.hub_support import (
    FakeContext,
    create_hub_resources,
    edited_demo_job_file,
    load_event,
    load_handler,
    test_env,
)
from tests.integration.support import run_cli
from tests.secrets_guard import GUARD

NO_R2 = "200000000006"
WITH_R2 = "200000000001"


@pytest.fixture
def leaky_landscape(
    emulator: Emulator, seed_landscape: Callable[..., Seed], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Seed, Path]:
    """Six targets (the sixth without R2) behind a distinctive ExternalId, and a job file using it."""
    external_id = f"xid-{secrets.token_hex(12)}"
    seed = seed_landscape(targets=6, missing_role_accounts=[NO_R2], external_id=external_id)

    def use_it(job_file: dict[str, Any]) -> None:
        job_file["defaults"]["external_id"] = external_id
        job_file["jobs"]["inventory"]["targets"]["accounts"].append(NO_R2)

    path = edited_demo_job_file(tmp_path, use_it)
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "DEBUG")
    return seed, path


def test_no_output_of_a_failed_hop_shows_a_secret(
    leaky_landscape: tuple[Seed, Path],
    emulator: Emulator,
    as_operator: Callable[[Seed], Seed],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    seed, job_file = leaky_landscape
    caplog.set_level(logging.DEBUG, logger="rolechain")
    outputs: dict[str, str] = {}

    # Given the operator's CLI, and the hub's API handler with R1's credentials and that job file
    as_operator(seed)
    for fmt in ([], ["--json"]):
        cli = run_cli(["run", "inventory", "--config", str(job_file), "--via", seed.hub_role_arn, *fmt])
        assert cli.code != 0 and NO_R2 in cli.out  # the hop failed and was reported, the others ran
        if fmt:
            assert cli.json["summary"] == {"ok": 5, "failed": 1, "skipped": 0, "dry_run": 0}
        outputs[f"rolechain run {fmt}"] = cli.out + cli.err
    resources = create_hub_resources(emulator, seed)
    for key, value in test_env(resources, seed, JOB_FILE=str(job_file), AWS_LAMBDA_FUNCTION_NAME="api").items():
        monkeypatch.setenv(key, value)
    api = load_handler("api")

    # When a caller runs whoami on an account without R2 and reads the run back
    event = load_event("api-post-run-action.json")
    event["body"] = json.dumps({"action": "whoami", "accounts": [NO_R2, WITH_R2]})
    posted = api.lambda_handler(event, FakeContext("api"))
    run = json.loads(posted["body"])
    assert posted["statusCode"] == 200, run
    failed = next(r for r in run["results"] if r["account"] == NO_R2)
    assert "ExternalId" in failed["error"]["hint"]  # it says one was sent...
    got = api.lambda_handler(load_event("api-get-run.json", RUN_ID=run["run_id"]), FakeContext("api"))
    outputs["POST /runs"], outputs["GET /runs/{id}"] = posted["body"], got["body"]

    # Then no response, stored item, log record or printed line shows a secret
    table = emulator.admin_session(seed.hub_account, seed.region).client("dynamodb")
    outputs["runs table"] = json.dumps(table.scan(TableName=resources.table)["Items"])
    GUARD.learn_cache(CACHE)  # the R2 credentials of 200000000001, issued during the run
    outputs["log records"] = "\n".join(r.getMessage() + str(r.args) for r in caplog.records)
    captured = capsys.readouterr()
    outputs["stdout/stderr"] = captured.out + captured.err  # Powertools' JSON log lines
    assert len(outputs["stdout/stderr"]) > 0
    leaks = {where: GUARD.leaks(text) for where, text in outputs.items()}
    assert {where: found for where, found in leaks.items() if found} == {}
    assert seed.external_id not in json.dumps(outputs)  # the seeded one above all


def test_the_guard_sees_a_seeded_secret(leaky_landscape: tuple[Seed, Path]) -> None:
    seed, _ = leaky_landscape
    assert GUARD.leaks(f"hint: with ExternalId {seed.external_id!r}") == [seed.external_id[:4] + "..."]
    with pytest.raises(AssertionError, match="shows seeded secret"):
        GUARD.check(seed.user_secret_access_key, "a line")
