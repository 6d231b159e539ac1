"""Fixtures of the integration tier: real boto3 over HTTP to the in-process multi-account emulator.

moto's state is process-global, so one :class:`Emulator` serves a whole module (``emulator``) and is
stopped before the next module starts its own; ``mock_aws`` is never active meanwhile. ``landscape`` is
the standard seeded landscape, shared by the tests that only read it; a test that changes it is marked
``@pytest.mark.mutates`` and gets its own, and ``seed_landscape(...)`` seeds a different one. The
process-wide credential cache is emptied around every test, so AssumeRole counts start at zero.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import botocore.retries.standard
import pytest
from rolechain import CACHE, ChainSessions, CredentialCache
from rolechain.actions import target_role_policy
from rolechain_dev.emulator import Emulator, Seed

from tests.helpers import Clock
from tests.integration.support import CliResult, run_cli
from tests.secrets_guard import GUARD

TARGETS = 5  # the example job file's 200000000001..200000000005
BUCKETS = 3


@pytest.fixture(autouse=True)
def _empty_credential_cache() -> Iterator[None]:
    CACHE.clear()
    yield
    GUARD.learn_cache(CACHE)  # what the test's chains obtained: no output may show it
    CACHE.clear()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Fail a test whose captured stdout, stderr or log, or whose DynamoDB/SQS writes, show a seeded
    secret (ExternalId, access key id, secret key, session token). Tests that print the emulator's
    seed on purpose are marked ``shows_secrets``."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if report.when != "teardown" or item.get_closest_marker("shows_secrets"):
        return
    emulator = getattr(item, "funcargs", {}).get("emulator")
    if emulator is not None:
        GUARD.add(*(secret for creds in emulator._admin_creds.values() for secret in creds))
    leaks = {name: GUARD.leaks(text) for name, text in report.sections}
    if emulator is not None:
        leaks["DynamoDB/SQS writes"] = GUARD.stored_leaks(emulator)
    found = {name: secrets for name, secrets in leaks.items() if secrets}
    if found and report.outcome != "failed":
        report.outcome = "failed"
        report.longrepr = "seeded secrets disclosed: " + "; ".join(f"{n}: {', '.join(s)}" for n, s in found.items())


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    GUARD.clear()  # the last module's secrets died with its emulator
    with Emulator() as emu:
        yield emu


READ_ONLY_PREFIXES = ("Get", "List", "Head", "Describe")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "mutates: the test changes the seeded landscape, so it gets one of its own")
    config.addinivalue_line("markers", "shows_secrets: the test prints the emulator's seeded secrets on purpose")


class Landscapes:
    """Seeds the emulator, and lets tests that leave the standard landscape as they found it share one.

    Seeding costs ~0.25 s (more on a busy machine); most tests only read, so they reuse the standard
    landscape with the recorded requests, faults and latency cleared. A test marked ``mutates`` or
    calling ``seed_landscape`` gets a fresh one, and the next reader seeds the standard one again.
    """

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self._standard: Seed | None = None

    def fresh(self, **kwargs: Any) -> Seed:
        """Reset the emulator and seed it; ``kwargs`` go to :meth:`Emulator.seed`."""
        self._standard = None
        emulator = self.emulator
        emulator.reset()
        options: dict[str, Any] = {
            "targets": TARGETS,
            "buckets_per_account": BUCKETS,
            "target_policy": target_role_policy(),
        }
        options.update(kwargs)
        seed = emulator.seed(**options)
        GUARD.learn_seed(seed)
        self._restore_settings()
        return seed

    def standard(self, *, shared: bool) -> Seed:
        if shared and self._standard is not None:
            self.emulator.clear_faults()
            self._restore_settings()
            return self._standard
        seed = self.fresh()
        self._standard = seed if shared else None
        return seed

    def invalidate(self) -> None:
        self._standard = None

    def changes_recorded(self) -> list[str]:
        """Changing requests recorded since the last clear (admin ones included)."""
        return [
            f"{r.service}:{r.action}"
            for r in self.emulator.calls(include_admin=True)
            if r.service != "sts" and not r.action.startswith(READ_ONLY_PREFIXES)
        ]

    def _restore_settings(self) -> None:
        self.emulator.enforce = True
        self.emulator.detailed_denials = True
        self.emulator.latency = 0.0
        self.emulator.clear_requests()  # only what the test itself sends is counted


@pytest.fixture(scope="module")
def landscapes(emulator: Emulator) -> Landscapes:
    return Landscapes(emulator)


@pytest.fixture
def seed_landscape(landscapes: Landscapes) -> Callable[..., Seed]:
    """``seed_landscape(**kwargs)``: reset the emulator and seed it (kwargs go to :meth:`Emulator.seed`).
    R2's permissions are the registry's union (what ``rolechain policy target`` prints), as deployed."""
    return landscapes.fresh


@pytest.fixture
def landscape(landscapes: Landscapes, request: pytest.FixtureRequest) -> Iterator[Seed]:
    """The standard landscape: U1 -> R1, and R2 in five target accounts with three buckets each.

    Shared with other tests unless the test is marked ``mutates``; a shared test that changed it fails
    (and the landscape is seeded again for the next one).
    """
    shared = request.node.get_closest_marker("mutates") is None
    yield landscapes.standard(shared=shared)
    if not shared:
        return
    changes = landscapes.changes_recorded()
    if changes:
        landscapes.invalidate()
        pytest.fail(f"changed the shared landscape ({', '.join(sorted(set(changes)))}): mark it @pytest.mark.mutates")


@pytest.fixture
def admin_s3(emulator: Emulator) -> Callable[[str], Any]:
    """``admin_s3(account)``: an S3 client with admin rights in ``account`` (made once per test), to check
    what an action changed without being counted."""
    clients: dict[str, Any] = {}

    def client(account: str) -> Any:
        if account not in clients:
            clients[account] = emulator.admin_session(account).client("s3")
        return clients[account]

    return client


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def credential_cache() -> CredentialCache:
    return CredentialCache()


@pytest.fixture
def operator_sessions_for(
    emulator: Emulator, clock: Clock, credential_cache: CredentialCache
) -> Callable[[Seed], ChainSessions]:
    """``operator_sessions_for(seed)``: ChainSessions from U1's credentials (the operator on a laptop),
    with a private credential cache and the hand-moved ``clock``."""

    def make(seed: Seed) -> ChainSessions:
        base = emulator.session(seed.user_access_key_id, seed.user_secret_access_key)
        return ChainSessions(base, endpoint_url=seed.endpoint_url, clock=clock, cache=credential_cache)

    return make


@pytest.fixture
def operator_sessions(operator_sessions_for: Callable[[Seed], ChainSessions], landscape: Seed) -> ChainSessions:
    return operator_sessions_for(landscape)


@pytest.fixture
def as_operator(monkeypatch: pytest.MonkeyPatch) -> Callable[[Seed], Seed]:
    """``as_operator(seed)``: the process environment becomes that of an operator whose credentials are
    U1 of ``seed``, pointed at the emulator (undone after the test)."""

    def apply(seed: Seed) -> Seed:
        for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", seed.user_access_key_id)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", seed.user_secret_access_key)
        monkeypatch.setenv("AWS_DEFAULT_REGION", seed.region)
        monkeypatch.setenv("AWS_ENDPOINT_URL", seed.endpoint_url)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
        return seed

    return apply


@pytest.fixture
def operator_env(as_operator: Callable[[Seed], Seed], landscape: Seed) -> Seed:
    """The standard landscape, with the process environment set up as its operator U1."""
    return as_operator(landscape)


@pytest.fixture
def rolechain(operator_env: Seed) -> Callable[..., CliResult]:
    """``rolechain(*argv)``: the CLI in-process as the operator U1 against the seeded landscape."""
    return lambda *argv: run_cli(argv)


@pytest.fixture
def rolechain_offline(monkeypatch: pytest.MonkeyPatch) -> Callable[..., CliResult]:
    """The CLI for commands that must not reach AWS at all: any request would fail fast on a closed port."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    return lambda *argv: run_cli(argv)


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore retries without sleeping, so exhausting the retries of a throttled call takes milliseconds."""
    monkeypatch.setattr(botocore.retries.standard.ExponentialBackoff, "delay_amount", lambda self, context: 0)
