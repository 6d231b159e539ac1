"""The JobSchedules use case's failures, without AWS: what CloudFormation is told, and what the log's
traceback shows (a job file's values never; an unexpected error's cause, for the operator)."""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Any

import pytest
from rolechain.hub.job_schedules import JobSchedules, ResourceFailure
from rolechain_dev.local import DEMO_JOB_FILE

from tests.hub_support import load_event

SECRET = "an ExternalId with spaces 0f3c9a"


def create_event() -> dict[str, Any]:
    return load_event(
        "schedules-create.json",
        SCHEDULE_GROUP="rolechain-ScheduleGroup-TEST",
        SCHEDULER_FUNCTION="rolechain-SchedulerFunction-TEST",
        SCHEDULE_ROLE="rolechain-ScheduleRole-TEST",
    )


def never_called() -> Any:
    raise AssertionError("no client may be made for a job file that does not validate")


def test_a_bad_job_file_is_told_by_field_and_its_value_stays_out_of_the_traceback(tmp_path: Path) -> None:
    # Given a job file whose literal ExternalId breaks the rule (pydantic's own error would quote it)
    bad = tmp_path / "jobs.yaml"
    bad.write_text(
        DEMO_JOB_FILE.read_text().replace("external_id: rolechain-demo-external-id", f"external_id: {SECRET}")
    )
    assert SECRET in bad.read_text()
    # When the resource is created
    with pytest.raises(ResourceFailure) as raised:
        JobSchedules({"JOB_FILE": str(bad)}, never_called).sync(create_event())
    # Then the reason names the field and the rule, and neither it nor the logged traceback has the value
    assert str(raised.value).startswith("defaults.external_id: must be 2-1224 characters")
    logged = "".join(traceback.format_exception(raised.value))
    assert SECRET not in logged and raised.value.__cause__ is None


def test_an_unexpected_error_is_told_by_type_and_keeps_its_cause_for_the_log() -> None:
    def broken() -> Any:
        raise RuntimeError("the client could not be made: details for the log")

    with pytest.raises(ResourceFailure) as raised:
        JobSchedules({"JOB_FILE": str(DEMO_JOB_FILE)}, broken).sync(create_event())
    assert str(raised.value) == "unexpected RuntimeError: see the function's log"
    assert "details for the log" in "".join(traceback.format_exception(raised.value))


def test_a_delete_whose_properties_name_no_group_touches_nothing_and_succeeds() -> None:
    event = load_event("schedules-delete.json", SCHEDULE_GROUP="default")
    physical, plan = JobSchedules({}, never_called).remove(event)
    assert (physical, plan) == ("default", None)
