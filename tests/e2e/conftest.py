"""End-to-end tier: the built SAM application run by SAM CLI in containers, against the emulator.

Needs SAM CLI (``make sam`` installs it into .venv-sam) and a Docker engine with the Lambda Python
image (offline hosts: ``ROLECHAIN_SAM_SKIP_PULL=1`` and a locally built image). Without them the tests
skip saying why; under ``CI=true`` they must run, so a missing prerequisite fails instead.
The emulator listens on the host's bridge address, which containers reach as host.docker.internal.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from rolechain import CACHE
from rolechain.actions import target_role_policy
from rolechain_dev.emulator import Emulator, Seed
from rolechain_dev.local import (
    HostAddressError,
    HubResources,
    SamLocal,
    container_host_address,
    docker_engine_problem,
    find_python313,
    find_sam,
    sam_build,
)

from tests.hub_support import ROOT, create_hub_resources, stored_results

IN_CI = os.environ.get("CI") == "true"


def require(condition: bool, why: str) -> None:
    if not condition:
        if IN_CI:
            pytest.fail(f"e2e prerequisite missing in CI: {why}")
        pytest.skip(why)


@pytest.fixture(scope="session")
def sam() -> str:
    path = find_sam(ROOT)
    require(path is not None, "SAM CLI not installed (run `make sam`)")
    assert path is not None
    return path


@pytest.fixture(scope="session")
def gateway() -> str:
    """The host's address on Docker's bridge (see rolechain_dev.local.container_host_address)."""
    problem = docker_engine_problem()
    require(problem is None, problem or "")
    try:
        return container_host_address()
    except HostAddressError as exc:
        require(False, str(exc))
        raise


@pytest.fixture(scope="session")
def built(sam: str, gateway: str) -> str:
    """`sam build` once per session; returns the build directory."""
    try:
        find_python313()
    except FileNotFoundError as exc:
        require(False, str(exc))
    build_dir = ROOT / ".aws-sam" / "e2e" / "build"  # apart from a developer's own `sam build`
    cache_dir = ROOT / ".aws-sam" / "e2e" / "cache"
    result = sam_build(sam, build_dir, cache_dir=cache_dir)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return str(build_dir)


@pytest.fixture(scope="module")
def emulator(gateway: str) -> Iterator[Emulator]:
    with Emulator(host=gateway) as emu:
        yield emu


@dataclass
class Stack:
    emulator: Emulator
    seed: Seed
    hub: HubResources
    sam: SamLocal

    @property
    def port(self) -> int:
        return int(self.seed.endpoint_url.rsplit(":", 1)[1])

    def admin(self, account: str) -> Any:
        return self.emulator.admin_session(account, self.seed.region)

    def stored_results(self, run_id: str) -> dict[str, str]:
        return stored_results(self.emulator, self.seed, self.hub.table, run_id)


@pytest.fixture(scope="module")
def stack(emulator: Emulator, built: str, sam: str) -> Iterator[Stack]:
    """One seeded landscape per module (sam local invocations are slow; tests use distinct accounts
    or assert on what their own call changed)."""
    CACHE.clear()
    emulator.reset()
    seed = emulator.seed(targets=5, buckets_per_account=3, target_policy=target_role_policy())
    hub = create_hub_resources(emulator, seed)
    port = int(seed.endpoint_url.rsplit(":", 1)[1])
    host = urlsplit(seed.endpoint_url).hostname
    local = SamLocal(emulator_port=port, hub=hub, region=seed.region, host_address=host, sam=sam, build_dir=Path(built))
    with local:
        yield Stack(emulator, seed, hub, local)
