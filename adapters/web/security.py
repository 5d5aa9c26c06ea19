"""Sign-in throttling, CSRF checks and the response headers every dashboard page carries."""

from __future__ import annotations

import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from urllib.parse import urlsplit

# No third-party anything: plain HTML, one local stylesheet and one local script (the keyboard
# shortcuts; every page works without it). No inline script or style can run.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class SignInThrottle:
    """Counts failed sign-ins per account and per client address in a sliding window; once
    either reaches its limit, further attempts are refused until the oldest failure ages out.
    Kept in memory: the dashboard is one process, and a restart only forgets recent failures."""

    def __init__(
        self,
        per_account: int = 5,
        per_address: int = 20,
        window_s: float = 900.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = {"account": per_account, "address": per_address}
        self.window_s = window_s
        self._clock = clock
        self._failures: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, account: str, address: str) -> float:
        """Seconds until an attempt is allowed again; 0 when it is allowed now."""
        now = self._clock()
        wait = 0.0
        with self._lock:
            for key in (("account", account.lower()), ("address", address)):
                failures = self._recent(key, now)
                if len(failures) >= self.limits[key[0]]:
                    wait = max(wait, failures[0] + self.window_s - now)
        return wait

    def failed(self, account: str, address: str) -> None:
        now = self._clock()
        with self._lock:
            for key in (("account", account.lower()), ("address", address)):
                self._recent(key, now).append(now)

    def succeeded(self, account: str) -> None:
        with self._lock:
            self._failures.pop(("account", account.lower()), None)

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        failures = self._failures.setdefault(key, deque())
        while failures and failures[0] + self.window_s <= now:
            failures.popleft()
        return failures


def same_token(given: str | None, expected: str | None) -> bool:
    """Constant-time comparison that treats a missing token as a mismatch."""
    if not given or not expected:
        return False
    return secrets.compare_digest(given.encode(), expected.encode())


def foreign_origin(origin: str | None, referer: str | None, host: str | None) -> bool:
    """True when the browser says the form came from another site (Origin, else Referer)."""
    source = origin if origin and origin != "null" else referer
    if not source:
        return origin == "null"
    return urlsplit(source).netloc != (host or "")


def local_path(target: str | None, default: str = "/exchanges") -> str:
    """Where to go after signing in: only paths on this site, never another host."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target
