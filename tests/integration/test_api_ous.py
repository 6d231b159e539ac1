"""Issue #12.1, the API over OUs: an ad-hoc run over OUs read live from Organizations, or a job narrowed to
OUs, always inside the configured targets."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration import test_handlers
from tests.integration.test_handlers import ALICE, Hub, api_as

pytestmark = pytest.mark.integration
hub = test_handlers.hub  # the in-process hub fixture of the handler tests


@pytest.fixture
def ous(hub: Hub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """The hub is the management account of an organisation: prod (200000000001, -02, and its child
    prod/eu with -03), dev (-04) and sandbox (-05). The job file targets prod and dev only."""
    ids = hub.emulator.create_organization(
        hub.seed.hub_account,
        {
            "200000000001": ["prod"],
            "200000000002": ["prod"],
            "200000000003": ["prod", "eu"],
            "200000000004": ["dev"],
            "200000000005": ["sandbox"],
        },
    )
    jobs = tmp_path / "jobs.yaml"
    jobs.write_text(
        "version: 1\n"
        f"defaults: {{external_id: {hub.seed.external_id}}}\n"
        "jobs:\n"
        f"  prod-inventory: {{action: list_buckets, targets: {{organization: {{ous: [{ids['prod']}]}}}}}}\n"
        f"  dev-inventory: {{action: list_buckets, targets: {{organization: {{ous: [{ids['dev']}]}}}}}}\n"
        "api:\n"
        f"  rules: [{{principals: ['{ALICE}'], jobs: ['*'], adhoc: true}}]\n"
    )
    monkeypatch.setenv("JOB_FILE", str(jobs))
    return ids


def test_an_ad_hoc_run_over_an_ou_runs_in_it_and_every_ou_below(hub: Hub, ous: dict[str, str]) -> None:
    api = hub.load("api")
    status, run = api_as(api, ALICE, "api-post-run-action.json", {"action": "whoami", "ous": [ous["prod"]]})
    assert status == 200, run
    assert sorted(r["account"] for r in run["results"]) == ["200000000001", "200000000002", "200000000003"]
    assert run["summary"]["ok"] == 3


def test_ous_accounts_and_exclusions_combine(hub: Hub, ous: dict[str, str]) -> None:
    api = hub.load("api")
    body = {
        "action": "whoami",
        "accounts": ["200000000004"],
        "ous": [ous["prod"]],
        "exclude_accounts": ["200000000002"],
    }
    status, run = api_as(api, ALICE, "api-post-run-action.json", body)
    assert status == 200, run
    assert sorted(r["account"] for r in run["results"]) == ["200000000001", "200000000003", "200000000004"]


def test_an_ou_reaching_outside_the_configured_targets_is_refused(hub: Hub, ous: dict[str, str]) -> None:
    # sandbox holds 200000000005, which no job targets: the OU cannot widen the scope
    status, body = api_as(
        hub.load("api"), ALICE, "api-post-run-action.json", {"action": "whoami", "ous": [ous["sandbox"]]}
    )
    assert status == 403
    assert body["message"] == "ous reach 1 account(s) outside the configured targets"  # not which
    assumed = [str(c.params.get("RoleArn")) for c in hub.emulator.calls(service="sts", action="AssumeRole")]
    assert not [arn for arn in assumed if ":200000000005:" in arn]  # refused before any chain was walked


def test_a_job_narrowed_to_an_ou_runs_only_its_accounts_there(hub: Hub, ous: dict[str, str]) -> None:
    api = hub.load("api")
    # prod/eu narrows prod-inventory to 200000000003
    status, run = api_as(api, ALICE, "api-post-run-job.json", {"job": "prod-inventory", "ous": [ous["prod/eu"]]})
    assert status == 200, run
    assert [r["account"] for r in run["results"]] == ["200000000003"]
    # dev is configured (dev-inventory) but none of its accounts is a target of prod-inventory
    status, body = api_as(api, ALICE, "api-post-run-job.json", {"job": "prod-inventory", "ous": [ous["dev"]]})
    assert status == 400 and body["field"] == "ous"
    assert body["message"] == "none of the accounts they name is a target of job 'prod-inventory'"


def test_a_malformed_ou_id_is_refused_by_the_body_schema(hub: Hub, ous: dict[str, str]) -> None:
    status, answer = api_as(hub.load("api"), ALICE, "api-post-run-action.json", {"action": "whoami", "ous": ["ou-x"]})
    assert status == 422 and answer["detail"][0]["loc"] == ["body", "ous", 0], answer


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        ({"action": "whoami", "exclude_accounts": ["200000000001"]}, "exclude_accounts", "goes with accounts or ous"),
        (
            {"action": "whoami", "accounts": ["200000000001"], "exclude_accounts": ["200000000001"]},
            "accounts",
            "no account",
        ),
    ],
)
def test_bad_ous_requests_are_400s_naming_the_field(
    hub: Hub, ous: dict[str, str], body: dict[str, object], field: str, says: str
) -> None:
    status, answer = api_as(hub.load("api"), ALICE, "api-post-run-action.json", body)
    assert status == 400 and answer["field"] == field and says in answer["message"], answer
