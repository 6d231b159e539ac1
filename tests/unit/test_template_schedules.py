"""template.yaml's job schedules: the stack's own group, a schedule role that may only invoke the scheduler
function, the schedules function's least privilege, and a custom resource that re-runs when the job file
changes. Decided on the template's own documents with rolechain.iam (IAM's evaluation), no AWS call."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from rolechain import iam
from rolechain.templates import Stack
from rolechain_dev.local import find_sam

from tests.hub_support import ROOT, load_template
from tests.unit.test_templates import statements

ACCOUNT, REGION = "111111111111", "us-east-1"
GROUP = "rolechain-ScheduleGroup-EXAMPLE"
ARNS = {
    "ScheduleGroup": f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule-group/{GROUP}",
    "SchedulerFunction": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:rolechain-SchedulerFunction-EXAMPLE",
    "WorkerFunction": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:rolechain-WorkerFunction-EXAMPLE",
    "ScheduleRole": f"arn:aws:iam::{ACCOUNT}:role/rolechain-ScheduleRole-EXAMPLE",
    "HubRole": f"arn:aws:iam::{ACCOUNT}:role/rolechain-HubRole-EXAMPLE",
}
SCHEDULE = f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/{GROUP}/inventory"
OTHER_SCHEDULE = f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/default/inventory"


def resolved(logical_id: str, part: str) -> Any:
    """A resource's property as a deploy with the defaults makes it (the ARNs above, the group's name)."""
    template = load_template()
    stack = Stack(template, account=ACCOUNT, region=REGION, arns=ARNS, refs={"ScheduleGroup": GROUP})
    return stack.resolve(template["Resources"][logical_id]["Properties"][part])


def permissions(logical_id: str) -> list[dict[str, Any]]:
    return [p["PolicyDocument"] for p in resolved(logical_id, "Policies")]


def allows(logical_id: str, action: str, resource: str, context: dict[str, Any] | None = None) -> bool:
    return iam.evaluate(permissions(logical_id), action, resource, context or {}).allowed


def test_the_group_is_the_stacks_own_and_the_custom_resource_keeps_that_one() -> None:
    resources = load_template()["Resources"]
    group = resources["ScheduleGroup"]
    # no Name: CloudFormation makes a name of the stack's own (never the account's shared "default")
    assert group["Type"] == "AWS::Scheduler::ScheduleGroup" and "Name" not in group.get("Properties", {})
    props = resources["JobSchedules"]["Properties"]
    assert props["ServiceToken"] == {"Fn::GetAtt": ["SchedulesFunction", "Arn"]}
    assert props["ScheduleGroup"] == {"Ref": "ScheduleGroup"}
    assert props["FunctionArn"] == {"Fn::GetAtt": ["SchedulerFunction", "Arn"]}
    assert props["RoleArn"] == {"Fn::GetAtt": ["ScheduleRole", "Arn"]}
    # the function's scheduler rights are on that group's schedules, nothing of another group
    assert allows("SchedulesRole", "scheduler:CreateSchedule", SCHEDULE)
    for action in ("scheduler:CreateSchedule", "scheduler:UpdateSchedule", "scheduler:DeleteSchedule"):
        assert not allows("SchedulesRole", action, OTHER_SCHEDULE), action
    assert allows("SchedulesRole", "scheduler:GetScheduleGroup", ARNS["ScheduleGroup"])
    assert not allows("SchedulesRole", "scheduler:DeleteScheduleGroup", ARNS["ScheduleGroup"])
    assert not allows("SchedulesRole", "scheduler:CreateScheduleGroup", "*")


def test_the_schedule_role_is_trusted_by_scheduler_of_this_account_only() -> None:
    trust = resolved("ScheduleRole", "AssumeRolePolicyDocument")
    (statement,) = trust["Statement"]
    assert statement["Principal"] == {"Service": "scheduler.amazonaws.com"} and statement["Action"] == "sts:AssumeRole"
    assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}
    # IAM's evaluation agrees: Scheduler of this account yes, of another account (or another service) no
    role = ARNS["ScheduleRole"]
    scheduler = iam.Principal("scheduler.amazonaws.com", service="scheduler.amazonaws.com")
    assert iam.evaluate([trust], "sts:AssumeRole", role, {"aws:SourceAccount": ACCOUNT}, principal=scheduler).allowed
    other = {"aws:SourceAccount": "999999999999"}
    assert not iam.evaluate([trust], "sts:AssumeRole", role, other, principal=scheduler).allowed
    events = iam.Principal("events.amazonaws.com", service="events.amazonaws.com")
    assert not iam.evaluate([trust], "sts:AssumeRole", role, {"aws:SourceAccount": ACCOUNT}, principal=events).allowed


def test_the_schedule_role_may_invoke_the_scheduler_function_and_nothing_else() -> None:
    props = load_template()["Resources"]["ScheduleRole"]["Properties"]
    assert "ManagedPolicyArns" not in props and "PermissionsBoundary" not in props
    (document,) = permissions("ScheduleRole")
    (statement,) = document["Statement"]
    assert (statement["Effect"], statement["Action"], statement["Resource"]) == (
        "Allow",
        "lambda:InvokeFunction",
        ARNS["SchedulerFunction"],
    )
    assert allows("ScheduleRole", "lambda:InvokeFunction", ARNS["SchedulerFunction"])
    assert not allows("ScheduleRole", "lambda:InvokeFunction", ARNS["WorkerFunction"])
    assert not allows("ScheduleRole", "sqs:SendMessage", "*")
    # and no other policy of the template is attached to it
    template = load_template()
    attached = [
        rid
        for rid, r in template["Resources"].items()
        if r["Type"] in ("AWS::IAM::Policy", "AWS::IAM::RolePolicy", "AWS::IAM::ManagedPolicy")
        and "ScheduleRole" in json.dumps(r["Properties"])
    ]
    assert attached == []


def test_the_schedules_function_may_pass_only_the_schedule_role_and_only_to_scheduler() -> None:
    to_scheduler = {"iam:PassedToService": "scheduler.amazonaws.com"}
    assert allows("SchedulesRole", "iam:PassRole", ARNS["ScheduleRole"], to_scheduler)
    assert not allows("SchedulesRole", "iam:PassRole", ARNS["HubRole"], to_scheduler)
    assert not allows(
        "SchedulesRole", "iam:PassRole", ARNS["ScheduleRole"], {"iam:PassedToService": "ec2.amazonaws.com"}
    )
    # no other IAM, STS or Lambda right
    for action, resource in (("sts:AssumeRole", ARNS["HubRole"]), ("lambda:InvokeFunction", ARNS["SchedulerFunction"])):
        assert not allows("SchedulesRole", action, resource)
    # and only the schedules function's role has scheduler rights
    holders = {rid for rid, s in statements(load_template()) if "scheduler:" in json.dumps(s.get("Action"))}
    assert holders == {"SchedulesRole"}


def test_the_custom_resource_re_runs_when_the_job_file_may_have_changed() -> None:
    template = load_template()
    props = template["Resources"]["JobSchedules"]["Properties"]
    # The job file ships in the layer: the layer's version ARN (a new one whenever its content changes) is a
    # property, so CloudFormation sends an Update on every deploy that changes the job file; so is the path.
    assert props["LayerVersion"] == {"Ref": "RolechainLayer"}
    assert template["Resources"]["RolechainLayer"]["Type"] == "AWS::Serverless::LayerVersion"
    assert template["Resources"]["RolechainLayer"]["Properties"]["ContentUri"] == "layers/rolechain/"
    assert props["JobFile"] == {"Ref": "JobFile"}
    assert str(template["Parameters"]["JobFile"]["Default"]).startswith("/opt/")  # in the layer
    # and the function reads the job file the property names (the same parameter, through Globals)
    assert template["Globals"]["Function"]["Environment"]["Variables"]["JOB_FILE"] == {"Ref": "JobFile"}
    # and a deploy never waits on it longer than the function may run, plus its answer
    timeout = template["Resources"]["SchedulesFunction"]["Properties"]["Timeout"]
    assert timeout < props["ServiceTimeout"] <= 3600


def test_the_single_schedule_and_its_parameters_are_gone() -> None:
    template = load_template()
    assert not {"ScheduledJob", "ScheduleExpression"} & set(template["Parameters"])
    events = [
        e
        for r in template["Resources"].values()
        for e in (r.get("Properties", {}).get("Events") or {}).values()
        if e["Type"] in ("Schedule", "ScheduleV2")
    ]
    assert events == []


@pytest.mark.parametrize("output", ["ScheduleGroupName", "ScheduleRoleArn", "SchedulerFunctionArn"])
def test_outputs_name_what_rolechain_schedules_needs(output: str) -> None:
    assert output in load_template()["Outputs"]


# SAM's own translation of template.yaml (what `sam deploy` hands CloudFormation), with the layer's content at
# sys.argv[2] (`sam deploy` uploads each content under a key of its hash): what JobSchedules' LayerVersion
# property becomes, and the layer version resources the translation made.
TRANSLATE = """
import json, sys
from cfnlint.decode import cfn_yaml
from samtranslator.translator.transform import transform

class NoManagedPolicies:
    def load(self):
        return {}

template = dict(cfn_yaml.load(sys.argv[1]))
for resource in template["Resources"].values():
    props = resource.get("Properties", {})
    if resource["Type"] == "AWS::Serverless::LayerVersion":
        props["ContentUri"] = sys.argv[2]
    if resource["Type"] == "AWS::Serverless::Function":
        props["CodeUri"] = "s3://rolechain-artifacts/functions.zip"
out = transform(json.loads(json.dumps(template)), {}, NoManagedPolicies())
layers = [rid for rid, r in out["Resources"].items() if r["Type"] == "AWS::Lambda::LayerVersion"]
print(json.dumps({"property": out["Resources"]["JobSchedules"]["Properties"]["LayerVersion"], "layers": layers}))
"""


def test_sam_gives_the_custom_resource_a_new_layer_version_when_the_layer_content_changes() -> None:
    sam = find_sam(ROOT)
    if sam is None:
        if os.environ.get("CI") == "true":
            pytest.fail("SAM CLI is not installed (make sam)")
        pytest.skip("SAM CLI is not installed (make sam)")
    python = Path(sam).read_text(errors="replace").splitlines()[0].removeprefix("#!").strip()  # SAM's interpreter
    seen = []
    for content in ("s3://rolechain-artifacts/layer-aaaa.zip", "s3://rolechain-artifacts/layer-bbbb.zip"):
        done = subprocess.run(
            [python, "-c", TRANSLATE, str(ROOT / "template.yaml"), content],
            env={**os.environ, "AWS_DEFAULT_REGION": "us-east-1"},
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        seen.append(json.loads(done.stdout.strip().splitlines()[-1]))
    # Then each translation's property names that translation's one layer version, and they differ: a deploy
    # with another job file (another layer) changes a property of JobSchedules, so CloudFormation updates it
    for translated in seen:
        assert translated["property"] == {"Ref": translated["layers"][0]} and len(translated["layers"]) == 1
    assert seen[0]["property"] != seen[1]["property"]
