"""The address containers use to reach the host, from recorded `docker network inspect` / `ip` outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rolechain_dev.local import HostAddressError, host_address_from

RECORDED = Path(__file__).parent / "recorded"
DOCKER_20 = (RECORDED / "docker-20.10-network-inspect-bridge.json").read_text()
DOCKER_28 = (RECORDED / "docker-28-network-inspect-bridge.json").read_text()
IP_DOCKER0 = (RECORDED / "ip-4-o-addr-show-docker0.txt").read_text()


def with_ipam(configs: list[dict[str, str]]) -> str:
    networks = json.loads(DOCKER_20)
    networks[0]["IPAM"]["Config"] = configs
    return json.dumps(networks)


def test_docker_28_gateway_wins() -> None:
    # Given Docker 23+, which reports the bridge's Gateway, and an interface with another address
    other = IP_DOCKER0.replace("172.17.0.1/16", "10.9.0.1/16")
    # Then the Gateway is the answer
    assert host_address_from(DOCKER_28, other) == "172.17.0.1"


def test_docker_20_10_without_gateway_uses_the_docker0_address() -> None:
    # Given Docker 20.10 (subnet, no Gateway) and docker0's recorded `ip -4 -o addr show`
    assert "Gateway" not in DOCKER_20
    # Then docker0's IPv4 address is the answer
    assert host_address_from(DOCKER_20, IP_DOCKER0) == "172.17.0.1"


def test_interface_address_is_read_not_assumed() -> None:
    moved = IP_DOCKER0.replace("172.17.0.1/16", "192.168.77.1/24")
    assert host_address_from(DOCKER_20, moved) == "192.168.77.1"


def test_first_host_of_the_subnet_when_the_interface_is_absent() -> None:
    inspect = with_ipam([{"Subnet": "10.200.0.0/24"}])
    assert host_address_from(inspect, None) == "10.200.0.1"
    assert host_address_from(inspect, "") == "10.200.0.1"


def test_ipv6_entries_are_passed_over() -> None:
    inspect = with_ipam([{"Subnet": "fd00::/64", "Gateway": "fd00::1"}, {"Subnet": "172.18.0.0/16"}])
    assert host_address_from(inspect, None) == "172.18.0.1"


def test_nothing_found_names_every_source_tried() -> None:
    with pytest.raises(HostAddressError) as raised:
        host_address_from(with_ipam([]), None)
    message = str(raised.value)
    assert "no IPv4 Gateway" in message
    assert "bridge interface is absent" in message
    assert "no IPv4 subnet" in message


def test_failed_inspect_and_garbage_are_errors_not_crashes() -> None:
    with pytest.raises(HostAddressError, match="docker network inspect bridge` failed"):
        host_address_from(None, None)
    with pytest.raises(HostAddressError, match="printed no network"):
        host_address_from("not json", None)
    # the interface still answers when Docker's inspect output is unusable
    assert host_address_from("[]", IP_DOCKER0) == "172.17.0.1"


def test_interface_without_ipv4_falls_back_to_the_subnet() -> None:
    assert host_address_from(DOCKER_20, "5: docker0    inet6 fe80::1/64 scope link") == "172.17.0.1"
