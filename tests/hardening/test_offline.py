"""The offline guarantee: under pytest (pyproject addopts) only loopback can be reached."""

from __future__ import annotations

import socket

import httpx
import pytest
from pytest_socket import SocketConnectBlockedError


def test_the_suite_runs_with_outbound_connections_restricted(pytestconfig: pytest.Config) -> None:
    allowed = pytestconfig.getoption("allow_hosts")
    assert allowed, "pyproject addopts must pass --allow-hosts"
    assert set(str(allowed).split(",")) <= {"127.0.0.1", "::1", "localhost"}


@pytest.mark.parametrize("address", [("203.0.113.7", 443), ("2001:db8::1", 443)])
def test_a_connection_beyond_loopback_is_refused_before_any_packet(
    address: tuple[str, int],
) -> None:
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    with (
        socket.socket(family, socket.SOCK_STREAM) as sock,
        pytest.raises(SocketConnectBlockedError),
    ):
        sock.connect(address)


def test_an_http_client_cannot_reach_the_internet() -> None:
    with pytest.raises(SocketConnectBlockedError):
        httpx.get("http://198.51.100.9/", timeout=1)


def test_loopback_stays_reachable() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        for host in ("127.0.0.1", "localhost"):
            with socket.create_connection((host, port), timeout=2):
                pass
