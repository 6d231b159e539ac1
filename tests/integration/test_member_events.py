"""Member-account events forwarded to the hub: the remediation handler acts in the member account the
event comes from, and only when the job file's scope holds it; and the two templates' rules, built in the
emulator from their own definitions, carry a member's CloudTrail event to the hub."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from rolechain_dev.emulator import Emulator, Seed

from tests.hub_support import FakeContext, load_event, load_template
from tests.integration import test_handlers
from tests.integration.test_handlers import Hub

hub = test_handlers.hub  # the in-process hub fixture of the handler tests

FORWARDED = "remediation-forwarded-put-bucket-policy.json"  # a PutBucketPolicy in member 200000000004


def remediate(hub: Hub, event: dict[str, Any]) -> dict[str, Any]:
    outcome: dict[str, Any] = hub.load("remediation").lambda_handler(event, FakeContext("remediation"))
    return outcome


def test_a_forwarded_event_acts_in_the_member_account_it_names(hub: Hub) -> None:
    # Given a member's PutBucketPolicy, as the member's forwarding rule delivers it to the hub's bus
    outcome = remediate(hub, load_event(FORWARDED))
    # Then the block rule ran once, in that member account, on its bucket, and nowhere else
    (rule,) = outcome["rules"]
    assert rule["rule"] == "block-public-bucket" and rule["summary"]["ok"] == 1
    assert [(r["account"], r["status"]) for r in rule["results"]] == [("200000000004", "ok")]
    block = hub.admin("200000000004").client("s3").get_public_access_block(Bucket="rc-200000000004-02")
    assert all(block["PublicAccessBlockConfiguration"].values())
    assumed = {r.params["RoleArn"] for r in hub.emulator.calls(action="AssumeRole")}
    assert assumed == {"arn:aws:iam::200000000004:role/rolechain-target"}  # the function runs as R1 already
    puts = hub.emulator.calls(action="PutPublicAccessBlock")
    assert [(c.account, c.params.get("ExpectedBucketOwner")) for c in puts] == [("200000000004", "200000000004")]


@pytest.mark.parametrize(
    "account",
    ["200000000006", "999999999999", "111111111111"],
    ids=["member-out-of-scope", "outside-the-organisation", "hub"],
)
def test_a_forwarded_event_from_an_account_outside_scope_is_refused(hub: Hub, account: str) -> None:
    # Given the same event from an account no job and no rule of the file targets (a member the StackSet
    # reaches but the job file does not list included): the bus accepts it, the handler must not act
    event = load_event(FORWARDED, **{"200000000004": account})
    outcome = remediate(hub, event)
    (rule,) = outcome["rules"]
    (result,) = rule["results"]
    assert (result["account"], result["status"]) == (account, "skipped")
    assert result["error"]["message"].startswith(f"refused: account {account} is not among the accounts")
    assert hub.emulator.calls(action="AssumeRole") == []
    assert hub.changing_calls("PutPublicAccessBlock") == 0


def test_the_templates_rules_carry_a_member_event_to_the_hub_and_nothing_unrelated(
    emulator: Emulator, seed_landscape: Callable[..., Seed]
) -> None:
    seed = seed_landscape(targets=1, buckets_per_account=0)
    member, hub_account, region = seed.target_account_ids[0], seed.hub_account, seed.region
    hub_bus = load_template()["Outputs"]["HubEventBusArn"]["Value"]["Fn::Sub"]
    hub_bus = hub_bus.replace("${AWS::Partition}", "aws").replace("${AWS::Region}", region)
    hub_bus = hub_bus.replace("${AWS::AccountId}", hub_account)
    # Given the hub's remediation rule (template.yaml), with a queue standing in for the function
    hub_session = emulator.admin_session(hub_account, region)
    sqs = hub_session.client("sqs")
    queue_url = sqs.create_queue(QueueName="remediation-stand-in")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    (hub_event,) = load_template()["Resources"]["RemediationFunction"]["Properties"]["Events"].values()
    hub_events = hub_session.client("events")
    hub_events.put_rule(Name="remediation", EventPattern=json.dumps(hub_event["Properties"]["Pattern"]))
    hub_events.put_targets(Rule="remediation", Targets=[{"Id": "function", "Arn": queue_arn}])
    # and the member's forwarding rule (target-role.yaml, ForwardEvents "true") on its default bus
    forwarding = load_template("target-role.yaml")["Resources"]["EventForwardingRule"]["Properties"]
    member_events = emulator.admin_session(member, region).client("events")
    member_events.put_rule(Name=forwarding["Name"], EventPattern=json.dumps(forwarding["EventPattern"]))
    (target,) = forwarding["Targets"]
    role = f"arn:aws:iam::{member}:role/rolechain-event-forwarding"  # moto neither assumes nor checks it
    member_events.put_targets(Rule=forwarding["Name"], Targets=[{"Id": target["Id"], "Arn": hub_bus, "RoleArn": role}])
    # When the member's bus receives a remediated CloudTrail event and an unrelated one (put by the admin
    # standing in for CloudTrail: AWS refuses PutEvents of an aws.* source from anyone else)
    event = load_event(FORWARDED, **{"200000000004": member})
    unrelated = {**event["detail"], "eventName": "GetBucketPolicy"}
    entries = [
        {"Source": event["source"], "DetailType": event["detail-type"], "Detail": json.dumps(detail)}
        for detail in (event["detail"], unrelated)
    ]
    assert member_events.put_events(Entries=entries)["FailedEntryCount"] == 0
    # Then the hub's rule delivered the first, as the member's CloudTrail wrote it, and only that one
    got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    delivered = [json.loads(m["Body"]) for m in got]
    assert [(d["source"], d["detail-type"], d["detail"]) for d in delivered] == [
        (event["source"], event["detail-type"], event["detail"])
    ]
    assert delivered[0]["detail"]["recipientAccountId"] == member
    # moto (5.2) stamps a forwarded event with the receiving bus's account, id, region and time; AWS keeps
    # the member's account, which test_a_forwarded_event_acts_in_the_member_account_it_names relies on.
