"""Sign-in throttling, the Host allow-list, CSRF checks and the headers every page carries."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol
from urllib.parse import urlsplit

import redis

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


class ThrottleStore(Protocol):
    """Where failure counts live: this process's memory, or Redis for several processes."""

    def failures(self, key: str, now: float) -> tuple[int, float]:
        """(failures so far, blocked until) for a key; (0, 0) when it is unknown or forgotten."""
        ...

    def add_failure(self, key: str, now: float, block_for: Callable[[int], float]) -> None: ...

    def clear(self, key: str) -> None: ...


class MemoryThrottleStore:
    """At most `max_keys` keys (least recently failed forgotten first), so a flood of made-up
    names cannot grow the dashboard's memory without bound."""

    def __init__(self, forget_after_s: float, max_keys: int = 10_000) -> None:
        self.forget_after_s = forget_after_s
        self.max_keys = max_keys
        self._keys: OrderedDict[str, tuple[int, float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._keys)

    def failures(self, key: str, now: float) -> tuple[int, float]:
        with self._lock:
            count, until, last = self._keys.get(key, (0, 0.0, now))
            if now - last >= self.forget_after_s:
                self._keys.pop(key, None)
                return 0, 0.0
            return count, until

    def add_failure(self, key: str, now: float, block_for: Callable[[int], float]) -> None:
        count, _until = self.failures(key, now)
        with self._lock:
            self._keys[key] = (count + 1, now + block_for(count + 1), now)
            self._keys.move_to_end(key)
            while len(self._keys) > self.max_keys:
                self._keys.popitem(last=False)

    def clear(self, key: str) -> None:
        with self._lock:
            self._keys.pop(key, None)


class RedisThrottleStore:
    """Failure counts shared by every dashboard process through Redis; each key expires once
    it has been quiet for `forget_after_s`. Keys are digests: no account name is stored."""

    def __init__(self, client: redis.Redis, forget_after_s: float) -> None:
        self.client = client
        self.forget_after_s = forget_after_s

    def _name(self, key: str) -> str:
        return "personabot:signin:" + hashlib.sha256(key.encode()).hexdigest()[:40]

    def failures(self, key: str, now: float) -> tuple[int, float]:
        count, until = self.client.hmget(self._name(key), ["count", "until"])
        return int(count or 0), float(until or 0.0)

    def add_failure(self, key: str, now: float, block_for: Callable[[int], float]) -> None:
        name = self._name(key)
        count = int(self.client.hincrby(name, "count", 1))
        pipe = self.client.pipeline()
        pipe.hset(name, "until", str(now + block_for(count)))
        pipe.expire(name, int(self.forget_after_s) + 1)
        pipe.execute()

    def clear(self, key: str) -> None:
        self.client.delete(self._name(key))


class SignInThrottle:
    """Failed sign-ins are counted per account *and* address together, and per address alone.
    After `free` failures a pair must wait, doubling from `base_s` up to `max_s` with each
    further failure; an address that fails `per_address_free` times (across any accounts) backs
    off the same way. Nobody can lock an account for its owner: a correct password from
    another address is never held back by someone else's failures. Names count exactly as
    typed, as accounts are case-sensitive. Counts are forgotten after `forget_after_s` quiet."""

    def __init__(
        self,
        free: int = 3,
        per_address_free: int = 20,
        base_s: float = 1.0,
        max_s: float = 300.0,
        forget_after_s: float = 3600.0,
        clock: Callable[[], float] = time.time,
        store: ThrottleStore | None = None,
    ) -> None:
        self.free, self.per_address_free = free, per_address_free
        self.base_s, self.max_s = base_s, max_s
        self._clock = clock
        self.forget_after_s = forget_after_s
        self.store: ThrottleStore = store or MemoryThrottleStore(forget_after_s)

    def _keys(self, account: str, address: str) -> list[tuple[str, int]]:
        return [
            (f"pair\0{account[:128]}\0{address}", self.free),
            (f"addr\0{address}", self.per_address_free),
        ]

    def _backoff(self, free: int) -> Callable[[int], float]:
        def block_for(failures: int) -> float:
            over = failures - free  # the `free`-th failure already costs base_s
            return 0.0 if over < 0 else min(self.max_s, self.base_s * 2 ** min(over, 32))

        return block_for

    def retry_after(self, account: str, address: str) -> float:
        """Seconds until this account may be tried from this address; 0 when allowed now."""
        now = self._clock()
        waits = [
            self.store.failures(key, now)[1] - now for key, _free in self._keys(account, address)
        ]
        return max(0.0, *waits)

    def failed(self, account: str, address: str) -> None:
        now = self._clock()
        for key, free in self._keys(account, address):
            self.store.add_failure(key, now, self._backoff(free))

    def succeeded(self, account: str, address: str) -> None:
        """Clears the pair; the address's own count decays on its own, so one valid account
        cannot be used to reset guessing at others."""
        self.store.clear(self._keys(account, address)[0][0])


def allowed_host(host: str | None, allowed: frozenset[str]) -> bool:
    """True when the Host header names this dashboard: a DNS-rebinding page reaching the
    loopback address still sends its own name, which is not on the list."""
    if not host:
        return False
    name = host.strip().lower()
    if name.startswith("["):  # [::1]:8080
        name = name[1 : name.find("]")] if "]" in name else name
    elif name.count(":") == 1:
        name = name.rsplit(":", 1)[0]
    return name in allowed


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
