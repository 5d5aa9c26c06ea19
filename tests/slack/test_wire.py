"""Defects found on the wire: a huge timestamp, a huge body. Malformed requests get a 4xx, never a
5xx or a traceback, and an oversized body is refused without being held in memory."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from slack_sdk.signature import SignatureVerifier

from tests.fakes import MemoryLog
from tests.slack.conftest import QUESTION, SIGNING_SECRET, SlackHarness, mention
from tests.slack.mock_slack import MockSlack

pytestmark = pytest.mark.timeout(120)
MB = 1024 * 1024


@pytest.mark.parametrize("digits", [309, 5000])
@pytest.mark.parametrize("signed", [True, False])
def test_an_absurdly_long_timestamp_is_a_400(
    slack: SlackHarness,
    mock_slack: MockSlack,
    log: MemoryLog,
    caplog: pytest.LogCaptureFixture,
    digits: int,
    signed: bool,
) -> None:
    stamp = "9" * digits

    def send(body: str, content_type: str) -> httpx.Response:
        signature = (
            SignatureVerifier(SIGNING_SECRET).generate_signature(timestamp=stamp, body=body)
            if signed
            else "v0=" + "0" * 64
        )
        headers = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": signature or "",
        }
        return slack.http.post(slack.url, content=body, headers=headers)

    with caplog.at_level(logging.ERROR):
        response = send(slack.event_body(mention(QUESTION)), "application/json")
        command = send("text=hi&command=%2Fask", "application/x-www-form-urlencoded")

    assert (response.status_code, command.status_code) == (400, 400)
    assert "timestamp" in response.json()["error"].lower()
    assert not [r for r in caplog.records if r.exc_info]
    assert not log.exchanges
    assert [c.method for c in mock_slack.calls] == ["auth.test"]


def _rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


class _PeakRss:
    """Samples this process's resident memory (the server runs in it) while a request is sent."""

    def __init__(self) -> None:
        self.baseline = _rss_bytes()
        self.peak = self.baseline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_bytes())
            time.sleep(0.005)

    def __enter__(self) -> _PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(5)

    @property
    def growth(self) -> int:
        return self.peak - self.baseline


def _send_huge(url: str, total: int, chunked: bool) -> bytes:
    """POSTs `total` bytes from one reused 1 MB buffer (so the sender holds no more than that)
    and returns what the server answered, however early it answered."""
    parts = urlsplit(url)
    head = [
        f"POST {parts.path} HTTP/1.1",
        f"Host: {parts.hostname}:{parts.port}",
        "Content-Type: application/json",
        f"X-Slack-Request-Timestamp: {int(time.time())}",
        "X-Slack-Signature: v0=" + "0" * 64,
    ]
    head.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {total}")
    chunk = b"x" * MB
    with socket.create_connection((str(parts.hostname), int(parts.port or 80)), timeout=30) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        sent = 0
        try:
            while sent < total:
                if chunked:
                    sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                else:
                    sock.sendall(chunk)
                sent += len(chunk)
            if chunked:
                sock.sendall(b"0\r\n\r\n")
        except OSError:  # the server answered and closed before the whole body was sent
            pass
        answer = b""
        try:
            while b"\r\n\r\n" not in answer:
                data = sock.recv(65536)
                if not data:
                    break
                answer += data
        except OSError:
            pass
        return answer


@pytest.fixture
def settled(slack: SlackHarness) -> Iterator[SlackHarness]:
    """The endpoint after one ordinary request, so start-up allocations are not counted."""
    slack.post("{}", "application/json")
    yield slack


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_64_mb_body_is_a_413_without_reading_it_into_memory(
    settled: SlackHarness, log: MemoryLog, chunked: bool
) -> None:
    with _PeakRss() as rss:
        answer = _send_huge(settled.url, 64 * MB, chunked)

    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert rss.growth < 10 * MB, f"resident memory grew {rss.growth / MB:.1f} MB"
    assert not log.exchanges
