"""The schedule reconciler (rolechain.schedules, `rolechain schedules plan|sync`) against the emulator's
EventBridge Scheduler, as the schedules function's own role (template.yaml's SchedulesRole, enforced)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from rolechain.errors import ConfigError
from rolechain.hub.lambda_support import ScheduleInput
from rolechain.jobs import load_job_file
from rolechain.schedules import (
    ScheduleError,
    ScheduleGroup,
    ScheduleTarget,
    desired_schedules,
    plan,
    remove_all,
    sync,
)
from rolechain_dev.emulator import Emulator, Seed
from rolechain_dev.local import DEMO_JOB_FILE, ScheduleResources, create_schedule_resources

from tests.hub_support import edited_demo_job_file
from tests.integration.support import run_cli

CHANGING = {"CreateSchedule", "UpdateSchedule", "DeleteSchedule"}


@pytest.fixture
def stack(emulator: Emulator, seed_landscape: Callable[..., Seed]) -> Iterator[tuple[Seed, ScheduleResources]]:
    seed = seed_landscape(targets=1, buckets_per_account=0)
    resources = create_schedule_resources(emulator, seed)
    emulator.clear_requests()
    yield seed, resources


def as_function(emulator: Emulator, resources: ScheduleResources, group: str | None = None, **kw: Any) -> ScheduleGroup:
    """The group as the schedules function sees it: its own role's credentials (SchedulesRole)."""
    creds = resources.credentials
    session = emulator.session(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    return ScheduleGroup(session.client("scheduler"), group or resources.group, **kw)


def target(resources: ScheduleResources) -> ScheduleTarget:
    return ScheduleTarget(function_arn=resources.function_arn, role_arn=resources.schedule_role_arn)


def admin_scheduler(emulator: Emulator, seed: Seed) -> Any:
    return emulator.admin_session(seed.hub_account, seed.region).client("scheduler")


def schedules_in(emulator: Emulator, seed: Seed, group: str) -> dict[str, dict[str, Any]]:
    admin = admin_scheduler(emulator, seed)
    listed = admin.list_schedules(GroupName=group)["Schedules"]
    found = {s["Name"]: admin.get_schedule(Name=s["Name"], GroupName=group) for s in listed}
    return {name: {k: v for k, v in s.items() if k != "ResponseMetadata"} for name, s in found.items()}


def outside_schedules(emulator: Emulator, seed: Seed, resources: ScheduleResources) -> dict[str, dict[str, Any]]:
    """A schedule named like a job in another group and in the account's default group: never ours."""
    admin = admin_scheduler(emulator, seed)
    admin.create_schedule_group(Name="someone-elses")
    for group in ("someone-elses", "default"):
        admin.create_schedule(
            Name="inventory",
            GroupName=group,
            ScheduleExpression="rate(5 minutes)",
            FlexibleTimeWindow={"Mode": "OFF"},
            Target={"Arn": resources.function_arn, "RoleArn": resources.schedule_role_arn, "Input": "{}"},
        )
    return {g: schedules_in(emulator, seed, g) for g in ("someone-elses", "default")}


def changing_calls(emulator: Emulator) -> list[Any]:
    return [r for r in emulator.calls(service="scheduler") if r.action in CHANGING]


def test_sync_creates_one_schedule_per_scheduled_job_and_touches_nothing_outside_the_group(
    emulator: Emulator, stack: tuple[Seed, ScheduleResources], tmp_path: Path
) -> None:
    # Given the demo's job file (inventory and tag-owner are scheduled, block-public-access is not), one
    # job with its own time zone and window, and schedules of the same name outside the stack's group
    seed, resources = stack

    def zone(data: dict[str, Any]) -> None:
        data["jobs"]["tag-owner"] |= {"schedule_timezone": "Europe/Paris", "schedule_window_minutes": 30}

    job_file = load_job_file(edited_demo_job_file(tmp_path, zone))
    before = outside_schedules(emulator, seed, resources)
    # When the schedules are synced as the schedules function
    done = sync(as_function(emulator, resources), job_file, target(resources))
    # Then two were created, each running the scheduler function with its job, within a flexible window
    assert [(c.action, c.name) for c in done.changes] == [("create", "inventory"), ("create", "tag-owner")]
    made = schedules_in(emulator, seed, resources.group)
    assert set(made) == {"inventory", "tag-owner"}
    for name, schedule in made.items():
        assert schedule["Target"]["Arn"] == resources.function_arn
        assert schedule["Target"]["RoleArn"] == resources.schedule_role_arn
        assert ScheduleInput.model_validate_json(schedule["Target"]["Input"]).job == name  # what the function takes
        assert schedule["FlexibleTimeWindow"]["Mode"] == "FLEXIBLE"
        assert schedule["State"] == "ENABLED"
    assert made["inventory"]["ScheduleExpression"] == "rate(1 day)"
    assert made["inventory"]["FlexibleTimeWindow"]["MaximumWindowInMinutes"] == 15
    assert made["tag-owner"]["ScheduleExpression"] == "cron(0 6 * * ? *)"
    assert made["tag-owner"]["ScheduleExpressionTimezone"] == "Europe/Paris"
    assert made["tag-owner"]["FlexibleTimeWindow"]["MaximumWindowInMinutes"] == 30
    # and the schedules outside the group are as they were, never named by a changing call
    assert {g: schedules_in(emulator, seed, g) for g in before} == before
    assert {r.body["GroupName"] for r in changing_calls(emulator)} == {resources.group}
    # and a second sync has nothing to do
    emulator.clear_requests()
    again = sync(as_function(emulator, resources), job_file, target(resources))
    assert again.empty and again.unchanged == ("inventory", "tag-owner")
    assert changing_calls(emulator) == []


def test_an_edited_schedule_is_updated_and_a_removed_one_deleted(
    emulator: Emulator, stack: tuple[Seed, ScheduleResources], tmp_path: Path
) -> None:
    seed, resources = stack
    group = as_function(emulator, resources)
    sync(group, load_job_file(DEMO_JOB_FILE), target(resources))

    # Given inventory's schedule edited and tag-owner's removed from the job file
    def edit(data: dict[str, Any]) -> None:
        data["jobs"]["inventory"]["schedule"] = "rate(6 hours)"
        del data["jobs"]["tag-owner"]["schedule"]

    edited = load_job_file(edited_demo_job_file(tmp_path, edit))
    emulator.clear_requests()
    # When planned (which changes nothing), then synced
    planned = plan(group, desired_schedules(edited, target(resources)), target_compared=True)
    assert [c.to_dict() for c in planned.changes] == [
        {"action": "update", "schedule": "inventory", "fields": ["ScheduleExpression"]},
        {"action": "delete", "schedule": "tag-owner", "fields": []},
    ]
    assert changing_calls(emulator) == []
    sync(group, edited, target(resources))
    # Then the group holds inventory's new schedule only
    made = schedules_in(emulator, seed, resources.group)
    assert set(made) == {"inventory"} and made["inventory"]["ScheduleExpression"] == "rate(6 hours)"
    assert sync(group, edited, target(resources)).empty


def test_a_schedule_changed_by_hand_is_set_back(emulator: Emulator, stack: tuple[Seed, ScheduleResources]) -> None:
    seed, resources = stack
    group = as_function(emulator, resources)
    job_file = load_job_file(DEMO_JOB_FILE)
    sync(group, job_file, target(resources))
    # Given someone disabled a schedule and pointed it at another input
    admin = admin_scheduler(emulator, seed)
    current = admin.get_schedule(Name="inventory", GroupName=resources.group)
    admin.update_schedule(
        Name="inventory",
        GroupName=resources.group,
        ScheduleExpression=current["ScheduleExpression"],
        FlexibleTimeWindow=current["FlexibleTimeWindow"],
        Target={**current["Target"], "Input": json.dumps({"job": "tag-owner"})},
        State="DISABLED",
    )
    # Then the next sync names what differs (UpdateSchedule replaces every field: the description went too)
    # and sets it back
    (change,) = sync(group, job_file, target(resources)).changes
    assert (change.action, change.name) == ("update", "inventory")
    assert change.fields == ("Description", "State", "Target.Input")
    restored = admin.get_schedule(Name="inventory", GroupName=resources.group)
    assert restored["State"] == "ENABLED" and json.loads(restored["Target"]["Input"]) == {"job": "inventory"}


def test_every_page_of_the_group_is_read(emulator: Emulator, stack: tuple[Seed, ScheduleResources]) -> None:
    seed, resources = stack
    sync(as_function(emulator, resources), load_job_file(DEMO_JOB_FILE), target(resources))
    emulator.clear_requests()
    # Given one schedule a page, when the group is emptied
    done = remove_all(as_function(emulator, resources, page_size=1))
    # Then both pages were read (and every schedule of the group deleted, nothing else)
    assert len(emulator.calls(service="scheduler", action="ListSchedules")) >= 2
    assert [(c.action, c.name) for c in done.changes] == [("delete", "inventory"), ("delete", "tag-owner")]
    assert schedules_in(emulator, seed, resources.group) == {}


def test_the_function_role_may_not_touch_another_group_nor_pass_another_role(
    emulator: Emulator, stack: tuple[Seed, ScheduleResources]
) -> None:
    # Given the template's SchedulesRole policy, enforced by the emulator
    seed, resources = stack
    outside = outside_schedules(emulator, seed, resources)
    # Then another group's schedules cannot be read or deleted by the function's role...
    with pytest.raises(ScheduleError, match="AccessDenied"):
        remove_all(as_function(emulator, resources, group="someone-elses"))
    assert schedules_in(emulator, seed, "someone-elses") == outside["someone-elses"]
    # ...and a schedule can run only as the schedule role (iam:PassRole is on it alone)
    other_role = ScheduleTarget(function_arn=resources.function_arn, role_arn=seed.hub_role_arn)
    with pytest.raises(ScheduleError, match=r"CreateSchedule|create_schedule.*AccessDenied"):
        sync(as_function(emulator, resources), load_job_file(DEMO_JOB_FILE), other_role)
    assert schedules_in(emulator, seed, resources.group) == {}


def test_the_default_group_is_refused_before_any_call(emulator: Emulator) -> None:
    emulator.clear_requests()
    with pytest.raises(ConfigError, match="default group"):
        ScheduleGroup(object(), "default", field_name="--group")
    with pytest.raises(ConfigError, match="--group"):
        ScheduleGroup(object(), "no spaces allowed", field_name="--group")
    assert emulator.calls(service="scheduler") == []


@pytest.fixture
def operator_with_scheduler(
    emulator: Emulator, stack: tuple[Seed, ScheduleResources], monkeypatch: pytest.MonkeyPatch
) -> tuple[Seed, ScheduleResources]:
    """The process environment as the schedules function's role, pointed at the emulator (for the CLI)."""
    seed, resources = stack
    creds = resources.credentials
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", creds["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", creds["SecretAccessKey"])
    monkeypatch.setenv("AWS_SESSION_TOKEN", creds["SessionToken"])
    monkeypatch.setenv("AWS_DEFAULT_REGION", seed.region)
    monkeypatch.setenv("AWS_ENDPOINT_URL", seed.endpoint_url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    return seed, resources


def test_cli_plan_changes_nothing_and_sync_applies_it(
    emulator: Emulator, operator_with_scheduler: tuple[Seed, ScheduleResources]
) -> None:
    seed, resources = operator_with_scheduler
    where = ["--config", str(DEMO_JOB_FILE), "--group", resources.group]
    arns = ["--function-arn", resources.function_arn, "--role-arn", resources.schedule_role_arn]
    # plan without the target's ARNs: the creates, nothing changed, a note that the target was not compared
    result = run_cli(["schedules", "plan", *where])
    assert result.code == 0, result.err
    assert "2 to create, 0 to update, 0 to delete, 0 unchanged" in result.out and "not compared" in result.out
    assert changing_calls(emulator) == []
    # sync without them is refused, naming the flag
    refused = run_cli(["schedules", "sync", *where])
    assert refused.code == 2 and "--function-arn" in refused.err
    # sync with them creates both; a JSON plan afterwards is empty
    synced = run_cli(["schedules", "sync", *where, *arns, "--json"])
    assert synced.code == 0, synced.err
    assert [c["action"] for c in synced.json["changes"]] == ["create", "create"] and synced.json["applied"]
    after = run_cli(["schedules", "plan", *where, *arns, "--json"])
    assert after.json["changes"] == [] and after.json["unchanged"] == ["inventory", "tag-owner"]
    assert set(schedules_in(emulator, seed, resources.group)) == {"inventory", "tag-owner"}


def test_cli_a_bad_job_file_is_a_clear_error_and_no_call(
    emulator: Emulator, operator_with_scheduler: tuple[Seed, ScheduleResources], tmp_path: Path
) -> None:
    _, resources = operator_with_scheduler
    data = yaml.safe_load(DEMO_JOB_FILE.read_text())
    data["jobs"]["inventory"]["schedule"] = "every day at noon"
    data["jobs"]["tag-owner"]["schedule_window_minutes"] = 5000
    bad = tmp_path / "jobs.yaml"
    bad.write_text(yaml.safe_dump(data))
    arns = ["--function-arn", resources.function_arn, "--role-arn", resources.schedule_role_arn]
    result = run_cli(["schedules", "sync", "--config", str(bad), "--group", resources.group, *arns])
    assert result.code == 2
    assert "jobs.inventory.schedule" in result.err and "EventBridge expression" in result.err
    assert emulator.calls(service="scheduler") == []
    # a window out of range and a time zone without a schedule name their fields too
    del data["jobs"]["inventory"]
    bad.write_text(yaml.safe_dump(data))
    window = run_cli(["schedules", "plan", "--config", str(bad), "--group", resources.group])
    assert window.code == 2 and "jobs.tag-owner.schedule_window_minutes" in window.err
    data["jobs"]["tag-owner"].pop("schedule_window_minutes")
    data["jobs"]["block-public-access"]["schedule_timezone"] = "Europe/Paris"
    bad.write_text(yaml.safe_dump(data))
    zone = run_cli(["schedules", "plan", "--config", str(bad), "--group", resources.group])
    assert zone.code == 2 and "schedule_timezone goes with schedule" in zone.err
    assert emulator.calls(service="scheduler") == []
