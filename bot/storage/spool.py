"""A durable local queue of exchanges that could not reach the database, replayed when it is back.

Each process appends to its own JSONL file and fsyncs every line, so a crash loses nothing that
`append` returned for. Replaying first claims a file by renaming it, so two processes never
replay the same file; a claim left by a dead process is taken over.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

from pydantic import ValidationError

from bot.messages import Exchange

logger = logging.getLogger(__name__)
_CLAIMED = ".claimed-"


class Spool:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self._own = directory / f"spool-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"

    def append(self, exchange: Exchange) -> None:
        with self._lock:
            self._append(self._own, exchange.model_dump_json() + "\n")

    def _append(self, path: Path, line: str) -> None:
        """Appends durably; spool files hold conversations, so only their owner may read them."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(descriptor, "a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())

    def forget(self, matches: Callable[[Exchange], bool]) -> int:
        """Drops the matching exchanges from the rejected spool (erasure); returns how many."""
        rejected = self.directory / "rejected.jsonl"
        with self._lock:
            if not rejected.is_file():
                return 0
            kept, dropped = [], 0
            for line in rejected.read_text(encoding="utf-8").splitlines():
                try:
                    gone = matches(Exchange.model_validate_json(line))
                except ValidationError:
                    gone = False
                if gone:
                    dropped += 1
                else:
                    kept.append(line)
            if dropped:
                temporary = rejected.with_name(f".rejected.{os.getpid()}.tmp")
                descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                    handle.write("".join(line + "\n" for line in kept))
                    handle.flush()
                    os.fsync(handle.fileno())
                temporary.replace(rejected)
        return dropped

    def pending(self) -> int:
        """How many spooled exchanges wait for the database (claimed files included)."""
        if not self.directory.is_dir():
            return 0
        total = 0
        for path in self.directory.glob("spool-*"):
            try:
                with path.open("rb") as handle:
                    total += sum(1 for line in handle if line.strip())
            except FileNotFoundError:
                continue
        return total

    def replay(
        self, write: Callable[[Exchange], None], transient: Callable[[Exception], bool]
    ) -> int:
        """Writes every spooled exchange with `write`; stops at the first transient failure,
        keeping the rest. An exchange the database rejects for good goes to `rejected.jsonl`,
        so it cannot block the ones behind it.

        `write` must be idempotent (the log skips ids it already holds), because a crash between
        a write and the removal of its file replays that exchange again.
        """
        written = 0
        with self._lock:
            for path in self._claim():
                lines = path.read_text(encoding="utf-8").splitlines()
                for index, line in enumerate(lines):
                    if not line.strip():
                        continue
                    try:
                        exchange = Exchange.model_validate_json(line)
                    except ValidationError:
                        # A torn last line from a crash mid-write; nothing was acknowledged for it.
                        logger.warning("skipping unreadable spool line in %s", path.name)
                        continue
                    try:
                        write(exchange)
                    except Exception as exc:
                        if transient(exc):
                            self._keep(path, lines[index:])
                            raise
                        logger.error("database rejected spooled exchange %s: %s", exchange.id, exc)
                        self._append(self.directory / "rejected.jsonl", line + "\n")
                        continue
                    written += 1
                path.unlink()
        return written

    def _claim(self) -> list[Path]:
        """This process's files, and those of processes that died; a live writer keeps its own."""
        if not self.directory.is_dir():
            return []
        claimed = []
        me = os.getpid()
        for path in sorted(self.directory.glob("spool-*")):
            base = path.name.split(_CLAIMED, 1)[0]
            owners = (
                {_pid(base), _pid(path.name.rsplit(_CLAIMED, 1)[1])}
                if _CLAIMED in path.name
                else {_pid(base)}
            )
            if any(owner not in (None, me) and _alive(owner) for owner in owners):
                continue
            target = path.with_name(f"{base}{_CLAIMED}{me}")
            try:
                path.rename(target)
            except FileNotFoundError:  # another process claimed it first
                continue
            claimed.append(target)
        return claimed

    def _keep(self, path: Path, rest: list[str]) -> None:
        """Puts back what was not written, under its unclaimed name, durably."""
        base = path.name.split(_CLAIMED, 1)[0]
        temporary = path.with_name(f".{base}.{os.getpid()}.tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write("\n".join(rest) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(path.with_name(base))
        path.unlink()


def _pid(name: str) -> int | None:
    """The writer's pid from `spool-<pid>-<random>.jsonl` (or a claim suffix)."""
    parts = name.split("-")
    digits = parts[1] if len(parts) > 1 and name.startswith("spool-") else parts[0]
    return int(digits) if digits.isdigit() else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
