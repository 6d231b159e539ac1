"""Property tests of the schedules' input edges: the job file's schedule fields, the group name, the custom
resource's properties, and the reason CloudFormation is shown (never a secret)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rolechain.errors import ConfigError, RolechainError
from rolechain.hub.job_schedules import REASON_LIMIT, failure_reason, properties_of
from rolechain.jobs import parse_job_file
from rolechain.schedules import GROUP_RE, ScheduleGroup, ScheduleTarget, desired_schedule, differences

BUDGET = settings(max_examples=100, deadline=None)  # a shared machine: no per-example deadline
TARGET = ScheduleTarget(
    function_arn="arn:aws:lambda:us-east-1:111111111111:function:rolechain-SchedulerFunction-X",
    role_arn="arn:aws:iam::111111111111:role/rolechain-ScheduleRole-X",
)
expressions = st.one_of(
    st.builds(lambda n, u: f"rate({n} {u})", st.integers(1, 1000), st.sampled_from(["minutes", "hours", "days"])),
    st.sampled_from(["cron(0 6 * * ? *)", "cron(15 10 ? * MON-FRI *)", "cron(0/5 8-17 ? * * *)"]),
)
zones = st.sampled_from(["UTC", "Europe/Paris", "America/Argentina/Buenos_Aires", "Asia/Kolkata"])


def job_file(**job: Any) -> Any:
    return parse_job_file(
        {"jobs": {"nightly": {"action": "list_buckets", "targets": {"accounts": ["222222222222"]}, **job}}}
    )


@BUDGET
@given(expression=expressions, zone=zones, window=st.integers(1, 1440), spaced=st.booleans())
def test_a_schedule_as_aws_gives_it_back_differs_in_nothing(
    expression: str, zone: str, window: int, spaced: bool
) -> None:
    job = job_file(schedule=expression, schedule_timezone=zone, schedule_window_minutes=window).job("nightly")
    desired = desired_schedule("nightly", job, TARGET)
    # Given the schedule as GetSchedule answers it (extra fields, the input JSON written another way)
    actual = json.loads(json.dumps(desired))
    actual["Target"]["Input"] = json.dumps(json.loads(actual["Target"]["Input"]), indent=2 if spaced else None)
    actual |= {"Arn": "arn:aws:scheduler:...", "CreationDate": 1, "GroupName": "g"}
    assert differences(desired, actual) == ()
    # and any one field changed is named, alone
    actual["FlexibleTimeWindow"] = {"Mode": "OFF"}
    assert differences(desired, actual) == ("FlexibleTimeWindow",)
    assert json.loads(desired["Target"]["Input"]) == {"job": "nightly"}


@BUDGET
@given(window=st.integers(-5, 3000))
def test_a_window_out_of_range_names_its_field(window: int) -> None:
    if 1 <= window <= 1440:
        assert (
            job_file(schedule="rate(1 day)", schedule_window_minutes=window).job("nightly").schedule_window_minutes
            == window
        )
        return
    with pytest.raises(ConfigError) as raised:
        job_file(schedule="rate(1 day)", schedule_window_minutes=window)
    assert raised.value.field == "jobs.nightly.schedule_window_minutes"


@BUDGET
@given(zone=st.text(max_size=40))
def test_a_time_zone_is_an_iana_name_or_an_error_naming_its_field(zone: str) -> None:
    try:
        job = job_file(schedule="rate(1 day)", schedule_timezone=zone).job("nightly")
    except ConfigError as exc:
        assert exc.field == "jobs.nightly.schedule_timezone"
        return
    assert job.schedule_timezone == zone and zone.isascii()


@BUDGET
@given(name=st.text(max_size=80))
def test_a_group_name_is_checked_and_default_refused_before_any_call(name: str) -> None:
    try:
        group = ScheduleGroup(None, name, field_name="--group")
    except ConfigError as exc:
        assert exc.field == "--group"
        assert name == "default" or not GROUP_RE.match(name)
        return
    assert group.group == name and name != "default" and GROUP_RE.match(name)


properties = st.dictionaries(
    st.sampled_from(["ServiceToken", "ScheduleGroup", "FunctionArn", "RoleArn", "LayerVersion", "Other"]),
    st.one_of(st.text(max_size=30), st.integers(), st.none()),
)


@BUDGET
@given(props=st.one_of(properties, st.none(), st.lists(st.integers())))
def test_bad_properties_are_a_config_error_naming_a_property(props: Any) -> None:
    try:
        properties_of({"ResourceProperties": props})
    except ConfigError as exc:
        assert exc.field.startswith("ResourceProperties")


@BUDGET
@given(
    secret=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=12, max_size=40), size=st.integers(0, 400)
)
def test_a_reason_is_short_and_never_quotes_an_unexpected_error(secret: str, size: int) -> None:
    for error in (KeyError(secret), ValueError("x" * size + secret), RuntimeError(secret)):
        reason = failure_reason(error)
        assert secret not in reason and len(reason) <= REASON_LIMIT
    # rolechain's own errors say what broke, cut to the limit
    assert len(failure_reason(RolechainError("y" * size))) <= REASON_LIMIT
    assert failure_reason(ConfigError("jobs.a.schedule", "must be ...")) == "jobs.a.schedule: must be ..."
