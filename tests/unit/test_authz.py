"""Who may do what through the API: the job file's ``api`` rules (issue 10, defect 2)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rolechain.errors import ConfigError
from rolechain.hub.authz import RunScope, authorize_run, decide, matching_rules, may_read, refusal
from rolechain.hub.errors import Forbidden
from rolechain.jobs import ApiPolicy, ApiRule, parse_job_file

HUB = "111111111111"
ALICE = f"arn:aws:iam::{HUB}:user/alice"
OPS_SESSION = f"arn:aws:sts::{HUB}:assumed-role/ops/alice"
ACTIONS = {"list_buckets": False, "whoami": False, "tag_resources": True, "block_s3_public_access": True}
ACCOUNTS = ["200000000001", "200000000002", "200000000003"]
REGIONS = ["us-east-1", "eu-west-1"]


def scope(
    *,
    job: str | None = None,
    action: str = "list_buckets",
    accounts: tuple[str, ...] = ("200000000001",),
    regions: tuple[str, ...] = ("us-east-1",),
    dry_run: bool = False,
    dry_run_by_default: bool = False,
) -> RunScope:
    return RunScope(
        job=job,
        action=action,
        changes=ACTIONS[action],
        accounts=frozenset(accounts),
        regions=frozenset(regions),
        dry_run=dry_run,
        dry_run_by_default=dry_run_by_default,
    )


def policy(*rules: dict[str, Any]) -> ApiPolicy:
    return ApiPolicy(rules=[ApiRule(**rule) for rule in rules])


def test_a_caller_no_rule_names_may_run_nothing() -> None:
    refused = decide(policy({"principals": ["arn:aws:iam::*:user/bob"], "adhoc": True}), ALICE, scope())
    assert refused is not None and "no api rule" in refused


def test_adhoc_read_only_actions_are_allowed_by_adhoc_changing_ones_only_by_name() -> None:
    readers = policy({"principals": [ALICE], "adhoc": True})
    assert decide(readers, ALICE, scope(action="whoami")) is None
    assert decide(readers, ALICE, scope(action="tag_resources")) == (
        "the ad-hoc action 'tag_resources', which changes resources"
    )
    taggers = policy({"principals": [ALICE], "actions": ["tag_resources"]})
    assert decide(taggers, ALICE, scope(action="tag_resources")) is None
    assert decide(taggers, ALICE, scope(action="block_s3_public_access")) is not None
    assert decide(taggers, ALICE, scope(action="list_buckets")) is None  # a named grant implies adhoc


def test_jobs_are_allowed_by_name_or_star_and_adhoc_does_not_grant_jobs() -> None:
    rules = policy({"principals": [ALICE], "jobs": ["inventory"], "adhoc": True})
    assert decide(rules, ALICE, scope(job="inventory")) is None
    assert decide(rules, ALICE, scope(job="tag-owner", action="tag_resources")) == "starting job 'tag-owner'"
    assert decide(policy({"principals": [ALICE], "jobs": ["*"]}), ALICE, scope(job="tag-owner")) is None
    assert decide(policy({"principals": [ALICE], "jobs": ["inventory"]}), ALICE, scope()) == "ad-hoc runs"


def test_accounts_and_regions_in_scope() -> None:
    rules = policy({"principals": [ALICE], "adhoc": True, "accounts": ["200000000001"], "regions": ["us-east-1"]})
    assert decide(rules, ALICE, scope()) is None
    assert decide(rules, ALICE, scope(accounts=("200000000001", "200000000002"))) == "runs in account(s) 200000000002"
    assert decide(rules, ALICE, scope(regions=("eu-west-1",))) == "runs in region(s) eu-west-1"


def test_a_dry_run_the_job_sets_stays_on_without_disable_dry_run() -> None:
    # Given the repro of issue 10: {"job": "block-public-access", "dry_run": false} by any caller
    live = scope(job="block-public-access", action="block_s3_public_access", dry_run=False, dry_run_by_default=True)
    rules = policy({"principals": [ALICE], "jobs": ["*"]})
    assert decide(rules, ALICE, live) == "turning off the dry run of job 'block-public-access'"
    assert decide(rules, ALICE, scope(job="block-public-access", dry_run=True, dry_run_by_default=True)) is None
    assert decide(policy({"principals": [ALICE], "jobs": ["*"], "disable_dry_run": True}), ALICE, live) is None


def test_one_rule_must_allow_all_of_a_request_rules_are_not_merged() -> None:
    rules = policy(
        {"principals": [ALICE], "jobs": ["inventory"], "accounts": ["200000000001"]},
        {"principals": [ALICE], "jobs": ["tag-owner"], "accounts": ["200000000002"]},
    )
    assert decide(rules, ALICE, scope(job="inventory", accounts=("200000000001",))) is None
    assert decide(rules, ALICE, scope(job="tag-owner", accounts=("200000000002",))) is None
    assert decide(rules, ALICE, scope(job="inventory", accounts=("200000000002",))) is not None


def test_an_assumed_role_session_matches_by_its_role_and_by_its_own_arn() -> None:
    by_role = policy({"principals": [f"arn:aws:iam::{HUB}:role/ops"], "adhoc": True})
    assert decide(by_role, OPS_SESSION, scope()) is None
    assert decide(by_role, f"arn:aws:sts::{HUB}:assumed-role/ops-other/alice", scope()) is not None
    by_session = policy({"principals": [f"arn:aws:sts::{HUB}:assumed-role/ops/*"], "adhoc": True})
    assert decide(by_session, OPS_SESSION, scope()) is None
    # a user of the same name is not the role's session, nor another account's alice
    assert decide(policy({"principals": [ALICE], "adhoc": True}), OPS_SESSION, scope()) is not None
    assert decide(policy({"principals": [ALICE], "adhoc": True}), "arn:aws:iam::222222222222:user/alice", scope())


def test_forbidden_names_caller_and_refusal_but_not_what_else_is_allowed() -> None:
    rules = policy({"principals": [ALICE], "jobs": ["inventory", "secret-job"], "accounts": ["200000000001"]})
    with pytest.raises(Forbidden) as excinfo:
        authorize_run(rules, ALICE, scope(job="tag-owner"))
    message = str(excinfo.value)
    assert message == f"{ALICE} is not allowed starting job 'tag-owner'"
    assert "secret-job" not in message and "inventory" not in message


def test_runs_are_readable_by_their_requester_and_by_read_all() -> None:
    rules = policy({"principals": [f"arn:aws:iam::{HUB}:role/auditors"], "read_all": True})
    assert may_read(ApiPolicy(), ALICE, ALICE)
    assert not may_read(ApiPolicy(), ALICE, OPS_SESSION)
    assert not may_read(ApiPolicy(), ALICE, None)  # a scheduled run: read_all only
    assert may_read(rules, f"arn:aws:sts::{HUB}:assumed-role/auditors/carol", ALICE)
    assert not may_read(rules, "arn:aws:iam::222222222222:role/auditors", ALICE)


@pytest.mark.parametrize(
    "api,field,words",
    [
        ({"rules": [{"principals": ["bob"]}]}, "api.rules[0].principals", "IAM ARN pattern"),
        ({"rules": [{"principals": []}]}, "api.rules[0].principals", "at least 1"),
        ({"rules": [{"principals": ["*"], "jobs": ["nope"]}]}, "api.rules[0].jobs", "'nope' is not a job"),
        ({"rules": [{"principals": ["*"], "actions": ["nope"]}]}, "api.rules[0].actions", "unknown action"),
        ({"rules": [{"principals": ["*"], "accounts": ["12"]}]}, "api.rules[0].accounts", "12-digit"),
        ({"rules": [{"principals": ["*"], "regions": ["x"]}]}, "api.rules[0].regions", "region name"),
        ({"rules": [{"principals": ["*"], "read-all": True}]}, "api.rules[0].read-all", "Extra inputs"),
        ({"rulez": []}, "api.rulez", "Extra inputs"),
    ],
)
def test_job_file_api_errors_name_the_field(api: dict[str, Any], field: str, words: str) -> None:
    data = {"jobs": {"inventory": {"action": "list_buckets", "targets": {"accounts": ACCOUNTS}}}, "api": api}
    with pytest.raises(ConfigError) as excinfo:
        parse_job_file(data)
    assert excinfo.value.field == field and words in excinfo.value.rule


def test_a_job_file_without_api_section_grants_nothing() -> None:
    job_file = parse_job_file({"jobs": {"inventory": {"action": "list_buckets", "targets": {"accounts": ACCOUNTS}}}})
    assert decide(job_file.api, ALICE, scope(job="inventory")) is not None


# -- properties ----------------------------------------------------------------------------------
PRINCIPALS = st.sampled_from(
    [ALICE, f"arn:aws:iam::{HUB}:user/*", f"arn:aws:iam::{HUB}:role/ops", f"arn:aws:sts::{HUB}:assumed-role/*", "*"]
)
CALLERS = st.sampled_from([ALICE, OPS_SESSION, f"arn:aws:iam::{HUB}:user/bob", f"arn:aws:iam::{HUB}:role/ops"])
RULES = st.builds(
    ApiRule,
    principals=st.lists(PRINCIPALS, min_size=1, max_size=3),
    jobs=st.lists(st.sampled_from(["inventory", "tag-owner", "*"]), max_size=2),
    adhoc=st.booleans(),
    actions=st.lists(st.sampled_from(sorted(ACTIONS)), max_size=3),
    accounts=st.one_of(st.just(["*"]), st.lists(st.sampled_from(ACCOUNTS), min_size=1, max_size=3)),
    regions=st.one_of(st.just(["*"]), st.lists(st.sampled_from(REGIONS), min_size=1, max_size=2)),
    disable_dry_run=st.booleans(),
    read_all=st.booleans(),
)
POLICIES = st.builds(ApiPolicy, rules=st.lists(RULES, max_size=4))
SCOPES = st.builds(
    scope,
    job=st.one_of(st.none(), st.sampled_from(["inventory", "tag-owner"])),
    action=st.sampled_from(sorted(ACTIONS)),
    accounts=st.lists(st.sampled_from(ACCOUNTS), min_size=1, max_size=3, unique=True).map(tuple),
    regions=st.lists(st.sampled_from(REGIONS), min_size=1, max_size=2, unique=True).map(tuple),
    dry_run=st.booleans(),
    dry_run_by_default=st.booleans(),
)
FAST = settings(max_examples=100, deadline=None)


@FAST
@given(POLICIES, CALLERS, SCOPES)
def test_no_changing_adhoc_action_without_a_grant_naming_it(api: ApiPolicy, caller: str, run: RunScope) -> None:
    granted_anywhere = any(run.action in rule.actions for rule in api.rules)
    if run.job is None and run.changes and not granted_anywhere:
        assert decide(api, caller, run) is not None


@FAST
@given(POLICIES, SCOPES, st.sampled_from(["user/alice", "assumed-role/ops/alice", "role/ops", "root"]))
def test_a_caller_of_another_account_gets_nothing_unless_a_rule_names_everyone(
    api: ApiPolicy, run: RunScope, name: str
) -> None:
    stranger = f"arn:aws:{'sts' if name.startswith('assumed') else 'iam'}::999999999999:{name}"
    everyone = any("*" in rule.principals for rule in api.rules)
    if not everyone:
        assert decide(api, stranger, run) is not None
        assert not may_read(api, stranger, ALICE)


@FAST
@given(POLICIES, CALLERS, SCOPES)
def test_an_allowed_run_is_within_one_rule_and_keeps_a_configured_dry_run(
    api: ApiPolicy, caller: str, run: RunScope
) -> None:
    if decide(api, caller, run) is not None:
        return
    rule = next(r for r in matching_rules(api, caller) if refusal(r, run) is None)
    assert "*" in rule.accounts or run.accounts <= set(rule.accounts)
    assert "*" in rule.regions or run.regions <= set(rule.regions)
    assert not (run.dry_run_by_default and not run.dry_run) or rule.disable_dry_run
    assert run.job is None or "*" in rule.jobs or run.job in rule.jobs


@FAST
@given(POLICIES, CALLERS, st.one_of(st.none(), CALLERS))
def test_only_the_requester_or_read_all_reads_a_run(api: ApiPolicy, caller: str, requester: str | None) -> None:
    if requester != caller and not any(rule.read_all for rule in api.rules):
        assert not may_read(api, caller, requester)
    if requester == caller:
        assert may_read(api, caller, requester)
