"""Chained sessions: caching, concurrency, prefix sharing, refresh with a controlled clock, fail-closed.

moto runs in-process here (no network); the credential cache counts the AssumeRole calls rolechain makes.
"""

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
import rolechain.sessions
from botocore.config import Config
from botocore.exceptions import NoCredentialsError
from botocore.stub import Stubber
from hypothesis import given
from hypothesis import strategies as st
from moto import mock_aws
from rolechain import AssumeRoleError, Chain, ChainSessions, CredentialCache
from rolechain.jobs import MAX_CONCURRENCY
from rolechain.sessions import ServiceLimits

from tests.helpers import Clock

HUB = "arn:aws:iam::111111111111:role/rolechain-hub"
JUMP = "arn:aws:iam::111111111111:role/jump"


def target(n: int) -> str:
    return f"arn:aws:iam::2000000000{n:02d}:role/rolechain-target"


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cache() -> CredentialCache:
    return CredentialCache()


@pytest.fixture
def sessions(aws: None, clock: Clock, cache: CredentialCache) -> ChainSessions:
    base = boto3.Session(aws_access_key_id="AKIAUNITTEST", aws_secret_access_key="x", region_name="eu-west-1")
    return ChainSessions(base, clock=clock, cache=cache, refresh_window=300)


def test_chain_walks_every_hop_and_lands_in_target_account(sessions: ChainSessions) -> None:
    chain = Chain.build([HUB, target(1)], external_id="ext-1")
    identities = sessions.identities(chain)
    assert [i.account for i in identities[1:]] == ["111111111111", "200000000001"]
    assert identities[2].arn.startswith("arn:aws:sts::200000000001:assumed-role/rolechain-target/")


def test_valid_chain_asked_again_costs_no_sts_call(sessions: ChainSessions, cache: CredentialCache) -> None:
    chain = Chain.build([HUB, target(1)])
    sessions.client(chain, "s3").list_buckets()
    assert cache.assume_role_calls == 2
    for _ in range(5):
        sessions.client(chain, "s3").list_buckets()
        sessions.session(chain).client("sts")
        # an equal chain built anew is the same cache entry
        sessions.credentials(Chain.build([HUB, target(1)])).get_frozen_credentials()
    assert cache.assume_role_calls == 2


def test_32_threads_at_once_cost_one_assume_role_per_hop(sessions: ChainSessions, cache: CredentialCache) -> None:
    chain = Chain.build([HUB, target(1)])
    barrier = threading.Barrier(32)
    errors: list[BaseException] = []

    def use() -> None:
        try:
            barrier.wait()
            sessions.client(chain, "s3").list_buckets()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=use) for _ in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert cache.assume_role_calls == 2


def test_chains_sharing_a_prefix_assume_shared_hops_once(sessions: ChainSessions, cache: CredentialCache) -> None:
    a, b = Chain.build([HUB, JUMP, target(1)]), Chain.build([HUB, JUMP, target(2)])
    assert sessions.identity(a).account == "200000000001"
    assert sessions.identity(b).account == "200000000002"
    assert cache.assume_role_calls == 4  # hub, jump, A, B


class Ticks:
    """Monotonic seconds for a credential cache, moved by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def bounded(aws: None, clock: Clock, cache: CredentialCache) -> ChainSessions:
    base = boto3.Session(aws_access_key_id="AKIAUNITTEST", aws_secret_access_key="x", region_name="eu-west-1")
    return ChainSessions(base, clock=clock, cache=cache)


def test_a_warm_run_within_the_bound_sends_no_assume_role_and_memory_stops_at_the_bound(
    aws: None, clock: Clock
) -> None:
    cache = CredentialCache(max_entries=6)  # the hub's role and 5 targets
    sessions = bounded(aws, clock, cache)
    for _ in range(2):
        for n in range(1, 6):
            sessions.client(Chain.build([HUB, target(n)]), "s3").list_buckets()
    assert cache.assume_role_calls == 6  # the second pass: none
    assert (len(cache), cache.evictions) == (6, 0)
    for n in range(6, 16):  # ten more targets: the least recently used go, the hub's role stays
        sessions.client(Chain.build([HUB, target(n)]), "s3").list_buckets()
    assert (len(cache), cache.evictions, cache.assume_role_calls) == (6, 10, 16)
    assert cache.get((sessions._base_key(), Chain.build([HUB, target(1)]).hops[:1])) is not None  # the hub's
    sessions.client(Chain.build([HUB, target(15)]), "s3").list_buckets()  # recent: still there
    assert cache.assume_role_calls == 16
    sessions.client(Chain.build([HUB, target(1)]), "s3").list_buckets()  # evicted: assumed again, hub not
    assert cache.assume_role_calls == 17


def test_an_entry_unused_for_max_idle_is_assumed_again_and_dropped(aws: None, clock: Clock) -> None:
    ticks = Ticks()
    cache = CredentialCache(max_idle=600, clock=ticks)
    sessions = bounded(aws, clock, cache)
    a, b = Chain.build([HUB, target(1)]), Chain.build([HUB, target(2)])
    sessions.client(a, "s3").list_buckets()
    ticks.now = 300
    sessions.client(b, "s3").list_buckets()  # the hub's role used again here
    assert cache.assume_role_calls == 3
    ticks.now = 700  # A unused for 700 s, B and the hub for 400 s
    sessions.client(b, "s3").list_buckets()
    assert (len(cache), cache.evictions, cache.assume_role_calls) == (2, 1, 3)  # A went, unasked
    sessions.client(a, "s3").list_buckets()
    assert cache.assume_role_calls == 4
    ticks.now = 1400  # everything idle for 600 s or more: each is assumed again
    sessions.client(a, "s3").list_buckets()
    assert cache.assume_role_calls == 6


def test_a_client_handed_out_before_its_entry_is_evicted_keeps_working(aws: None, clock: Clock) -> None:
    cache = CredentialCache(max_entries=2)
    sessions = bounded(aws, clock, cache)
    early = sessions.client(Chain.build([HUB, target(1)]), "sts")
    sessions.client(Chain.build([HUB, target(2)]), "s3").list_buckets()  # target 1 is evicted
    assert cache.evictions == 1
    assert early.get_caller_identity()["Account"] == "200000000001"


@pytest.mark.parametrize("bounds", [{"max_entries": 0}, {"max_idle": 0}, {"max_idle": -1.0}])
def test_a_cache_bound_below_one_is_refused(bounds: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="at least 1 entry"):
        CredentialCache(**bounds)  # type: ignore[arg-type]


def test_refresh_walks_the_chain_again_before_expiry(
    sessions: ChainSessions, cache: CredentialCache, clock: Clock
) -> None:
    chain = Chain.build([HUB, target(1)])  # both hops last 3600 s
    first = sessions.credentials(chain).get_frozen_credentials()
    assert cache.assume_role_calls == 2
    clock.advance(3600 - 301)  # just outside the 5-minute window: still reused
    assert sessions.credentials(chain).get_frozen_credentials() == first
    assert cache.assume_role_calls == 2
    clock.advance(2)  # inside the window: renew the target, which renews the hub first
    renewed = sessions.credentials(chain).get_frozen_credentials()
    assert renewed.access_key != first.access_key
    assert cache.assume_role_calls == 4
    # moto dates the new credentials from the real time; bring the clock back to it
    clock.now = datetime.now(UTC)
    # the boto3 session signs with the renewed credentials too, without another call
    assert sessions.session(chain).get_credentials().get_frozen_credentials().access_key == renewed.access_key
    assert cache.assume_role_calls == 4


def test_session_credentials_refresh_themselves(sessions: ChainSessions, clock: Clock) -> None:
    chain = Chain.build([HUB, target(1)], duration_seconds=900)
    session = sessions.session(chain)
    creds = session.get_credentials()
    assert creds is not None and creds.method == "rolechain-assume-role"
    before = creds.get_frozen_credentials().access_key
    clock.advance(900)
    assert creds.get_frozen_credentials().access_key != before


def test_clients_cached_per_chain_service_region(sessions: ChainSessions) -> None:
    chain = Chain.build([HUB, target(1)])
    assert sessions.client(chain, "s3") is sessions.client(chain, "s3")
    assert sessions.client(chain, "s3", "eu-west-2") is not sessions.client(chain, "s3")
    assert sessions.client(chain, "s3", "eu-west-2").meta.region_name == "eu-west-2"


def test_all_chains_share_one_loader(sessions: ChainSessions) -> None:
    s1 = sessions.session(Chain.build([HUB, target(1)]))
    s2 = sessions.session(Chain.build([HUB, target(2)]))
    assert s1 is not s2
    assert s1._session.get_component("data_loader") is s2._session.get_component("data_loader")


def test_sts_endpoint_is_regional(clock: Clock, cache: CredentialCache) -> None:
    base = boto3.Session(aws_access_key_id="AKIAUNITTEST", aws_secret_access_key="x", region_name="ap-southeast-2")
    sessions = ChainSessions(base, clock=clock, cache=cache)
    assert sessions.client(None, "sts").meta.endpoint_url == "https://sts.ap-southeast-2.amazonaws.com"


def test_failed_hop_raises_and_never_falls_back(sessions: ChainSessions, cache: CredentialCache) -> None:
    chain = Chain.build([HUB, target(1)], external_id="ext-1")
    base_sts = sessions.client(None, "sts")
    with Stubber(base_sts) as stub:
        stub.add_client_error(
            "assume_role",
            service_error_code="AccessDenied",
            http_status_code=403,
            service_message=f"User: arn:aws:iam::111111111111:user/u1 is not authorized to "
            f"perform: sts:AssumeRole on resource: {HUB}",
        )
        stub.add_response(
            "get_caller_identity",
            {"Arn": "arn:aws:iam::111111111111:user/u1", "Account": "111111111111", "UserId": "AIDA1"},
        )
        with pytest.raises(AssumeRoleError) as err:
            sessions.client(chain, "s3")
    failure = err.value.failure
    assert (failure.hop, failure.role_arn, failure.code) == (1, HUB, "AccessDenied")
    assert failure.caller_arn == "arn:aws:iam::111111111111:user/u1"
    assert "condition (1)" in failure.hint
    assert cache.assume_role_calls == 0
    # asking again tries STS again (no cached failure, no fallback to the base credentials)
    with Stubber(base_sts) as stub:
        stub.add_client_error("assume_role", service_error_code="AccessDenied", http_status_code=403)
        stub.add_response(
            "get_caller_identity",
            {"Arn": "arn:aws:iam::111111111111:user/u1", "Account": "111111111111", "UserId": "AIDA1"},
        )
        with pytest.raises(AssumeRoleError):
            sessions.session(chain)


def test_assume_role_request_carries_hop_options(sessions: ChainSessions) -> None:
    chain = Chain.build(
        [HUB],
        external_id="ext-9",
        session_name="rolechain.test.r1",
        source_identity="alice",
        tags={"run": "r1"},
        duration_seconds=1800,
    )
    base_sts = sessions.client(None, "sts")
    expected = {
        "RoleArn": HUB,
        "RoleSessionName": "rolechain.test.r1",
        "DurationSeconds": 1800,
        "ExternalId": "ext-9",
        "SourceIdentity": "alice",
        "Tags": [{"Key": "run", "Value": "r1"}],
    }
    expiry = datetime.now(UTC) + timedelta(hours=1)
    with Stubber(base_sts) as stub:
        stub.add_response(
            "assume_role",
            {
                "Credentials": {
                    "AccessKeyId": "ASIAXXXXXXXXXXXXXXXX",
                    "SecretAccessKey": "s",
                    "SessionToken": "t",
                    "Expiration": expiry,
                },
                "AssumedRoleUser": {"AssumedRoleId": "AROA:x", "Arn": "arn:aws:sts::111111111111:assumed-role/h/x"},
            },
            expected,
        )
        assert sessions.credentials(chain).access_key == "ASIAXXXXXXXXXXXXXXXX"


# -- targets' clients: clones of one prototype ----------------------------------------------------------
def test_targets_clients_are_clones_of_one_prototype_with_their_own_credentials(sessions: ChainSessions) -> None:
    first, second = (sessions.client(Chain.build([HUB, target(n)]), "s3") for n in (1, 2))
    assert first is not second
    prototype = sessions.prototype("s3", "eu-west-1")
    assert isinstance(prototype, rolechain.sessions._TargetClient)
    assert type(first) is type(second) is type(prototype)
    assert first._endpoint is second._endpoint is prototype._endpoint  # one connection pool
    assert first.rolechain_credentials is not second.rolechain_credentials
    assert first.rolechain_retry[0] != second.rolechain_retry[0]  # each its own retry handler and quota
    # the base's clients stay clients of their own
    assert not isinstance(sessions.client(None, "s3"), rolechain.sessions._TargetClient)


def test_a_presigned_url_carries_its_own_targets_key(sessions: ChainSessions) -> None:
    chains = [Chain.build([HUB, target(n)]) for n in (1, 2)]
    for chain in chains:
        key = sessions.credentials(chain).access_key
        url = sessions.client(chain, "s3").generate_presigned_url("get_object", Params={"Bucket": "b", "Key": "k"})
        query = parse_qs(urlsplit(url).query)
        signed_by = (query.get("AWSAccessKeyId") or query["X-Amz-Credential"])[0].split("/")[0]  # SigV2 or SigV4
        assert signed_by == key
    assert len({sessions.credentials(chain).access_key for chain in chains}) == 2


def test_the_prototype_alone_signs_for_nobody(sessions: ChainSessions) -> None:
    sessions.client(Chain.build([HUB, target(1)]), "s3").list_buckets()  # a target's call works
    prototype = sessions.prototype("s3", "eu-west-1")
    assert prototype is not None
    with pytest.raises(NoCredentialsError):
        prototype.list_buckets()


def test_an_s3_express_session_comes_from_the_requesting_targets_cache(sessions: ChainSessions) -> None:
    first, second = (sessions.client(Chain.build([HUB, target(n)]), "s3") for n in (1, 2))
    shared_cache = object()  # what botocore's resolver of the prototype put there
    caches = []
    for client in (first, second, first):
        request = SimpleNamespace(
            context={"signing": {"identity_cache": shared_cache, "cache_key": "b--use1-az4--x-s3"}}
        )
        token = rolechain.sessions._CURRENT_TARGET.set(client)
        try:
            rolechain.sessions._own_express_cache(request)
        finally:
            rolechain.sessions._CURRENT_TARGET.reset(token)
        caches.append(request.context["signing"]["identity_cache"])
    assert caches[0] is caches[2] is first.rolechain_express_cache
    assert caches[1] is second.rolechain_express_cache is not caches[0]
    assert caches[0]._client is first and caches[1]._client is second  # CreateSession signed by its own target


def test_another_retry_mode_falls_back_to_a_client_per_target(
    sessions: ChainSessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rolechain.sessions, "CLIENT_CONFIG", Config(retries={"mode": "legacy"}))
    client = sessions.client(Chain.build([HUB, target(1)]), "s3")
    assert sessions.prototype("s3", "eu-west-1") is None
    assert not isinstance(client, rolechain.sessions._TargetClient)
    assert client.list_buckets()["Buckets"] == []


def test_a_service_with_endpoint_discovery_keeps_a_client_per_target(sessions: ChainSessions) -> None:
    # discovered endpoints are cached per client, and in AWS they are per account
    client = sessions.client(Chain.build([HUB, target(1)]), "timestream-write")
    assert sessions.prototype("timestream-write", "eu-west-1") is None
    assert not isinstance(client, rolechain.sessions._TargetClient)
    assert sessions.client(Chain.build([HUB, target(2)]), "timestream-write") is not client


def test_the_paginator_models_load_once_when_the_first_clones_paginate_at_once(
    sessions: ChainSessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    # botocore's loader caches without a lock: 20 threads whose first clones paginate at once would each
    # list botocore's data directories (slow here too: the recorder sleeps). The first load is serialised,
    # the clones share its result, and making the prototype loads nothing a run may never use.
    asked: list[tuple[str, str]] = []
    loader = rolechain.sessions._FACTORY._get_template().get_component("data_loader")
    load = loader.load_service_model

    def recording(service: str, type_name: str, api_version: str | None = None) -> Any:
        asked.append((service, type_name))
        if type_name == "paginators-1":
            time.sleep(0.05)
        return load(service, type_name, api_version)

    monkeypatch.setattr(loader, "load_service_model", recording)
    assert sessions.prototype("s3", "eu-west-1") is not None
    assert ("s3", "paginators-1") not in asked
    clones = [sessions.client(Chain.build([HUB, target(n)]), "s3") for n in range(1, 21)]
    start = threading.Barrier(len(clones))

    def paginate(clone: Any) -> Any:
        start.wait()
        return clone.get_paginator("list_objects_v2")

    with ThreadPoolExecutor(len(clones)) as pool:
        paginators = list(pool.map(paginate, clones))
    assert asked.count(("s3", "paginators-1")) == 1
    assert all(p._model.name == "ListObjectsV2" for p in paginators)
    assert clones[0].can_paginate("list_objects_v2") and not clones[0].can_paginate("put_object")


def test_timestamps_in_iso_8601_utc_parse_to_the_instant_botocore_reads() -> None:
    from botocore.utils import parse_timestamp

    for value in (
        "2026-12-03T14:05:06Z",
        "2026-12-03T14:05:06.123Z",
        "2026-12-03T14:05:06.123456Z",
        "2026-12-03T14:05:06.1234567Z",  # more than microseconds: both truncate
        "2026-12-03T14:05:06+00:00",
    ):
        fast = rolechain.sessions.fast_timestamp(value)
        assert fast == parse_timestamp(value), value
        assert fast.tzinfo is UTC and fast.isoformat() == parse_timestamp(value).isoformat()
    # every other form is botocore's own answer
    for other in ("Thu, 03 Dec 2026 14:05:06 GMT", "1764770706", 1764770706.5, "2026-12-03T16:05:06+02:00"):
        assert rolechain.sessions.fast_timestamp(other) == parse_timestamp(other), other
    with pytest.raises(ValueError, match="Invalid timestamp"):
        rolechain.sessions.fast_timestamp("2026-12-03Z")  # neither reads it: botocore's error


def test_a_targets_response_timestamps_come_from_the_fast_parser(sessions: ChainSessions) -> None:
    chain = Chain.build([HUB, target(1)])
    for name, client in (("target-bucket", sessions.client(chain, "s3")), ("base-bucket", sessions.client(None, "s3"))):
        client.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        created = client.list_buckets()["Buckets"]
        assert created and all(bucket["CreationDate"].tzinfo is UTC for bucket in created)


def test_the_shared_connection_pool_serves_a_runs_every_thread(sessions: ChainSessions) -> None:
    prototype = sessions.prototype("s3", "eu-west-1")
    assert prototype is not None
    assert prototype.meta.config.max_pool_connections == rolechain.sessions.SHARED_POOL_CONNECTIONS >= MAX_CONCURRENCY


def test_a_service_slot_taken_again_by_the_same_thread_does_not_wait_for_itself() -> None:
    # An S3 Express session is made by the target's own client while it signs a call: a nested call of
    # the same account and service must not wait for the slot its own thread holds (a cap of 1 would hang)
    limits = ServiceLimits({"s3": 1})
    with limits.slot("200000000001", "s3"), limits.slot("200000000001", "s3"):
        pass
    # while another thread does wait for it, and gets it once it is released
    got = threading.Event()
    with limits.slot("200000000001", "s3"):

        def take() -> None:
            with limits.slot("200000000001", "s3"):
                got.set()

        worker = threading.Thread(target=take)
        worker.start()
        assert not got.wait(0.2)
    assert got.wait(2)
    worker.join()
    assert limits.waits == 1
    # a service that is not capped never waits
    with limits.slot("200000000001", "ec2"), limits.slot("200000000001", "ec2"):
        pass


@given(
    moment=st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9998, 12, 31)),
    form=st.sampled_from(
        ["%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S.%fZ", "millis", "%Y-%m-%dT%H:%M:%S+00:00", "%Y%m%dT%H%M%SZ"]
    ),
)
def test_any_utc_instant_in_the_forms_aws_writes_parses_as_botocore_reads_it(moment: datetime, form: str) -> None:
    from botocore.utils import parse_timestamp

    if form == "millis":  # what most services write: milliseconds, always three digits
        text = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    else:
        text = moment.strftime(form)
    fast = rolechain.sessions.fast_timestamp(text)
    assert fast == parse_timestamp(text)
    assert fast.tzinfo is UTC
