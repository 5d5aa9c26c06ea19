"""Moderator accounts and their browser sessions, for the dashboard (adapters/web).

Passwords are kept only as argon2id hashes. A session cookie carries a random token; the
database holds its SHA-256, its CSRF token, and when it expires (absolute lifetime and idle
timeout). Account changes are written to the audit trail (tenant None: visible to admins).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta
from functools import cached_property

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import BaseModel
from sqlalchemy import Engine, delete
from sqlmodel import Session, col, select

from bot.storage.api import InvalidInputError, NotFoundError, UtcDatetime
from bot.storage.chain import Sealer, writing
from bot.storage.engine import writer
from bot.storage.integrity import append_audit as _audit
from bot.storage.models import Moderator, ModeratorSession, utcnow

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
_TENANT = re.compile(r"^[^\s]{1,128}$")
MIN_PASSWORD = 10
_RUNS = ("01234567890123456789", "abcdefghijklmnopqrstuvwxyz", "qwertyuiopasdfghjklzxcvbnm")
_COMMON = frozenset(
    {"password", "passwort", "letmein", "welcome", "qwerty", "admin", "moderator", "personabot"}
)
# Rewriting last_seen on every request would make every page view a write.
_TOUCH_EVERY = timedelta(seconds=60)


class ModeratorInfo(BaseModel):
    id: int
    name: str
    admin: bool
    tenants: list[str]
    created: UtcDatetime


class SessionInfo(BaseModel):
    moderator: ModeratorInfo
    csrf_token: str
    expires: UtcDatetime


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_password(password: str) -> str:
    """At least 10 characters, not a repeated pattern, a keyboard or alphabet run, or a
    common word padded with digits: the guesses an attacker tries first."""
    if len(password) < MIN_PASSWORD:
        raise InvalidInputError(f"The password must have at least {MIN_PASSWORD} characters.")
    lowered = password.lower()
    letters = "".join(c for c in lowered if c.isalpha())
    if len(set(password)) < 5:
        raise InvalidInputError(
            "The password repeats too few characters: use at least 5 different ones."
        )
    if any(lowered in run for run in _RUNS) or letters in _COMMON:
        raise InvalidInputError("The password is among the first ones guessed: choose another.")
    return password


class ModeratorAccounts:
    """Creates, checks and signs in moderator accounts stored next to the conversation log."""

    def __init__(
        self, engine: Engine, hasher: PasswordHasher | None = None, sealer: Sealer | None = None
    ) -> None:
        self.engine = engine
        self._writer = writer(engine)
        self.hasher = hasher or PasswordHasher()
        self.sealer = sealer or Sealer()

    def _session(self) -> Session:
        """A session for changes; the audit entries it writes are sealed with the log's key."""
        return writing(Session(self._writer), self.sealer)

    @cached_property
    def _dummy_hash(self) -> str:
        """Verified against for unknown names, so a sign-in takes as long either way."""
        return self.hasher.hash(secrets.token_urlsafe(16))

    # -- accounts ------------------------------------------------------------------------------

    def add(
        self, name: str, password: str, tenants: Iterable[str], admin: bool, actor: str
    ) -> ModeratorInfo:
        if not _NAME.match(name):
            raise InvalidInputError(
                f"Bad moderator name {name!r}: 1-64 letters, digits, '.', '_', '@' or '-'."
            )
        scope = sorted(set(tenants))
        if not scope and not admin:
            raise InvalidInputError("Give at least one --tenant, or --admin.")
        bad = [tenant for tenant in scope if not _TENANT.match(tenant)]
        if bad:
            raise InvalidInputError(f"Bad tenant id {bad[0]!r}.")
        hashed = self.hasher.hash(check_password(password))
        now = utcnow()
        with self._session() as session, session.begin():
            if session.exec(select(Moderator.id).where(Moderator.name == name)).first():
                raise InvalidInputError(f"A moderator named {name!r} already exists.")
            account = Moderator(
                name=name,
                password_hash=hashed,
                admin=admin,
                tenants=scope,
                created=now,
                password_changed=now,
            )
            session.add(account)
            session.flush()
            _audit(session, actor, "moderator-add", None, name, {"admin": admin, "tenants": scope})
            return _info(account)

    def list(self) -> list[ModeratorInfo]:
        with Session(self.engine) as session:
            rows = session.exec(select(Moderator).order_by(col(Moderator.name))).all()
            return [_info(row) for row in rows]

    def get(self, name: str) -> ModeratorInfo:
        with Session(self.engine) as session:
            return _info(self._account(session, name))

    def remove(self, name: str, actor: str) -> None:
        with self._session() as session, session.begin():
            account = self._account(session, name)
            session.exec(
                delete(ModeratorSession).where(col(ModeratorSession.moderator_id) == account.id)
            )
            session.delete(account)
            _audit(session, actor, "moderator-remove", None, name, {})

    def set_password(self, name: str, password: str, actor: str) -> None:
        """Changes the password and signs the account out everywhere."""
        hashed = self.hasher.hash(check_password(password))
        with self._session() as session, session.begin():
            account = self._account(session, name)
            account.password_hash = hashed
            account.password_changed = utcnow()
            session.add(account)
            session.exec(
                delete(ModeratorSession).where(col(ModeratorSession.moderator_id) == account.id)
            )
            _audit(session, actor, "moderator-passwd", None, name, {})

    def authenticate(self, name: str, password: str) -> ModeratorInfo | None:
        """The account if the password matches, else None (unknown names cost the same time)."""
        with Session(self.engine) as session:
            account = session.exec(select(Moderator).where(Moderator.name == name)).first()
        try:
            self.hasher.verify(account.password_hash if account else self._dummy_hash, password)
        except (VerificationError, InvalidHashError):
            return None
        if account is None:
            return None
        if self.hasher.check_needs_rehash(account.password_hash):
            with self._session() as session, session.begin():
                stored = session.get(Moderator, account.id)
                if stored is not None:
                    stored.password_hash = self.hasher.hash(password)
                    session.add(stored)
        return _info(account)

    def record_sign_in(self, name: str, address: str, ok: bool) -> None:
        """Audits a sign-in or a failed one; a name that is no account is not written down
        (it is often a password typed in the wrong field)."""
        with self._session() as session, session.begin():
            known = session.exec(select(Moderator.id).where(Moderator.name == name)).first()
            _audit(
                session,
                name if known is not None else "(unknown name)",
                "sign-in" if ok else "sign-in-failed",
                None,
                name if known is not None else "",
                {"address": address},
            )

    # -- sessions ------------------------------------------------------------------------------

    def start_session(self, moderator: ModeratorInfo, lifetime: timedelta) -> tuple[str, str]:
        """A new session: (cookie token, CSRF token). Expired sessions are swept on the way."""
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = utcnow()
        with self._session() as session, session.begin():
            session.exec(delete(ModeratorSession).where(col(ModeratorSession.expires) <= now))
            session.add(
                ModeratorSession(
                    token_hash=token_hash(token),
                    moderator_id=moderator.id,
                    csrf_token=csrf,
                    created=now,
                    last_seen=now,
                    expires=now + lifetime,
                )
            )
        return token, csrf

    def session(self, token: str, idle_timeout: timedelta) -> SessionInfo | None:
        """The live session for a cookie token; None when unknown, expired or idle too long."""
        now = utcnow()
        with Session(self.engine) as session:
            found = session.get(ModeratorSession, token_hash(token))
            account = session.get(Moderator, found.moderator_id) if found else None
        if found is None or account is None:
            return None
        if found.expires <= now or found.last_seen + idle_timeout <= now:
            self.end_session(token)
            return None
        if now - found.last_seen >= _TOUCH_EVERY:
            self._touch(found.token_hash, now)
        return SessionInfo(
            moderator=_info(account), csrf_token=found.csrf_token, expires=found.expires
        )

    def end_session(self, token: str) -> None:
        with self._session() as session, session.begin():
            session.exec(
                delete(ModeratorSession).where(
                    col(ModeratorSession.token_hash) == token_hash(token)
                )
            )

    def _touch(self, key: str, now: datetime) -> None:
        with self._session() as session, session.begin():
            found = session.get(ModeratorSession, key)
            if found is not None:
                found.last_seen = now
                session.add(found)

    def _account(self, session: Session, name: str) -> Moderator:
        account = session.exec(select(Moderator).where(Moderator.name == name)).first()
        if account is None:
            raise NotFoundError(f"No moderator named {name!r}.")
        return account


def _info(account: Moderator) -> ModeratorInfo:
    assert account.id is not None
    return ModeratorInfo(
        id=account.id,
        name=account.name,
        admin=account.admin,
        tenants=list(account.tenants),
        created=account.created,
    )
