"""`personabot dashboard` and `personabot moderators ...`: serve the dashboard, manage its accounts.

Kept light: FastAPI and uvicorn are imported only when the dashboard actually starts.
"""

from __future__ import annotations

import getpass
import ipaddress
import json
import socket
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from adapters.web.security import RedisThrottleStore, SignInThrottle
from bot.errors import PersonabotError
from bot.settings import first_use_notice, load_settings
from bot.storage import InvalidInputError, SqlConversationLog, open_log
from bot.storage.accounts import ModeratorAccounts
from bot.storage.models import ExchangeRow

moderators_app = typer.Typer(
    help="Dashboard accounts: add, list, remove, passwd.", no_args_is_help=True
)
console = Console()
errors = Console(stderr=True)

PasswordStdin = Annotated[
    bool,
    typer.Option("--password-stdin", help="Read the password from the first line of stdin."),
]


def _open_log() -> SqlConversationLog:
    """The log the bot writes; the first time the default folder is made, says where it is."""
    settings = load_settings()
    notice = first_use_notice(settings)
    if notice:
        errors.print(notice, style="dim", markup=False, highlight=False, soft_wrap=True)
    return open_log(settings, require_database=True)


@contextmanager
def _accounts() -> Iterator[ModeratorAccounts]:
    log = _open_log()
    try:
        yield ModeratorAccounts(log.engine, sealer=log.sealer)
    finally:
        log.close()


def _password(from_stdin: bool) -> str:
    """From stdin (scripts), else a hidden prompt typed twice. Without a terminal getpass would
    warn and echo the password, so that is refused with the option to use instead."""
    if from_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise InvalidInputError("No password on stdin.")
        return line
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", getpass.GetPassWarning)
            entered: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    except getpass.GetPassWarning:
        raise InvalidInputError(
            "No terminal to type a password in: send it on stdin with --password-stdin."
        ) from None
    except typer.Abort:
        raise PersonabotError("No password given.") from None
    return entered


_PLATFORMS = {"local": "terminal"}


def _tenants_in_log(engine: Engine) -> list[tuple[str, str, int]]:
    """(platform, tenant, exchanges) for every tenant the log holds, so the person creating an
    account sees which names exist (terminal traffic is tenant `local`)."""
    tenant, platform = col(ExchangeRow.tenant), col(ExchangeRow.platform)
    with Session(engine) as session:
        rows = session.exec(
            select(platform, tenant, func.count()).group_by(platform, tenant).order_by(tenant)
        ).all()
    return [(p, t, n) for p, t, n in rows]


def _describe_tenants(engine: Engine, chosen: list[str]) -> list[str]:
    found = _tenants_in_log(engine)
    if not found:
        return [
            "the log has no exchanges yet: the terminal logs under tenant 'local', Discord "
            "under the server (guild) id, Slack under the workspace (team) id"
        ]
    listed = ", ".join(
        f"{t} ({_PLATFORMS.get(p, p)}, {n} exchange{'s' if n != 1 else ''})" for p, t, n in found
    )
    lines = [f"tenants in the log: {listed}"]
    missing = sorted(set(chosen) - {t for _, t, _ in found})
    if missing:
        lines.append(f"no exchanges yet under: {', '.join(missing)}")
    return lines


@moderators_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Sign-in name.")],
    tenant: Annotated[
        list[str] | None,
        typer.Option("--tenant", help="A tenant (guild / workspace) they moderate; repeatable."),
    ] = None,
    admin: Annotated[bool, typer.Option("--admin", help="Sees and acts on every tenant.")] = False,
    password_stdin: PasswordStdin = False,
) -> None:
    """Create a moderator account (the password is stored only as an argon2 hash)."""
    if not tenant and not admin:
        raise InvalidInputError("Give at least one --tenant, or --admin.")
    password = _password(password_stdin)
    log = _open_log()
    try:
        created = ModeratorAccounts(log.engine, sealer=log.sealer).add(
            name, password, tenant or [], admin, getpass.getuser()
        )
        notes = _describe_tenants(log.engine, created.tenants)
    finally:
        log.close()
    scope = "all tenants" if created.admin else ", ".join(created.tenants)
    console.print(f"moderator {created.name} added ({scope})", markup=False)
    for note in notes:
        console.print(note, markup=False, style="dim")


@moderators_app.command("list")
def list_(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List moderator accounts and their tenants."""
    with _accounts() as accounts:
        found = accounts.list()
    if as_json:
        print(json.dumps([m.model_dump(mode="json") for m in found], indent=2))
        return
    table = Table()
    for column in ("name", "scope", "created"):
        table.add_column(column)
    for moderator in found:
        scope = "admin (all tenants)" if moderator.admin else ", ".join(moderator.tenants)
        table.add_row(moderator.name, scope, f"{moderator.created:%Y-%m-%d %H:%M}")
    console.print(table)


@moderators_app.command("remove")
def remove(name: Annotated[str, typer.Argument(help="Sign-in name.")]) -> None:
    """Delete an account and end its sessions."""
    with _accounts() as accounts:
        accounts.remove(name, getpass.getuser())
    console.print(f"moderator {name} removed", markup=False)


@moderators_app.command("passwd")
def passwd(
    name: Annotated[str, typer.Argument(help="Sign-in name.")],
    password_stdin: PasswordStdin = False,
) -> None:
    """Set a new password; the account is signed out everywhere."""
    with _accounts() as accounts:
        accounts.get(name)
        accounts.set_password(name, _password(password_stdin), getpass.getuser())
    console.print(f"password of {name} changed", markup=False)


def _check_bind(host: str, port: int) -> None:
    """A busy port or unknown host is one clear line here, not uvicorn's log and exit."""
    try:
        family, _kind, _proto, _name, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM
        )[0]
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as exc:
        raise PersonabotError(f"Cannot serve on {host}:{port}: {exc.strerror or exc}.") from None


def _loopback(host: str) -> bool:
    name = host.strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _wildcard(host: str) -> bool:
    return host.strip("[]") in {"0.0.0.0", "::", ""}


def _throttle(redis_url: str | None) -> SignInThrottle:
    """Shared by every dashboard process through Redis when REDIS_URL is set."""
    if not redis_url:
        return SignInThrottle()
    from bot.serving.redis_state import connect

    forget = SignInThrottle().forget_after_s
    return SignInThrottle(store=RedisThrottleStore(connect(redis_url), forget))


def dashboard(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.", min=0, max=65535)] = 8080,
    secure_cookies: Annotated[
        bool, typer.Option("--secure-cookies", help="Mark cookies Secure (serve over HTTPS).")
    ] = False,
    session_hours: Annotated[
        float, typer.Option(help="A sign-in lasts at most this long.", min=0.1, max=720)
    ] = 8.0,
    idle_minutes: Annotated[
        float, typer.Option(help="Sign out after this long without a request.", min=1, max=1440)
    ] = 30.0,
    allowed_host: Annotated[
        list[str] | None,
        typer.Option(
            "--allowed-host",
            help="A host name the dashboard is reached by (repeatable); loopback names always.",
        ),
    ] = None,
    tls_cert: Annotated[
        Path | None, typer.Option(help="Serve HTTPS with this certificate (PEM).")
    ] = None,
    tls_key: Annotated[
        Path | None, typer.Option(help="The certificate's private key (PEM).")
    ] = None,
    behind_proxy: Annotated[
        bool,
        typer.Option(
            "--behind-tls-proxy",
            help="A TLS-terminating reverse proxy is in front: cookies are marked Secure.",
        ),
    ] = False,
) -> None:
    """Serve the moderators' web dashboard (docs/dashboard.md)."""
    import uvicorn

    from adapters.stopping import exit_cleanly_on_sigterm
    from adapters.web.app import DashboardConfig, create_app

    if (tls_cert is None) != (tls_key is None):
        raise InvalidInputError("Give both --tls-cert and --tls-key, or neither.")
    tls = tls_cert is not None
    if not _loopback(host) and not (tls or behind_proxy):
        raise InvalidInputError(
            f"Refusing to serve the dashboard on {host} over plain HTTP: passwords and session "
            "cookies would cross the network readable. Serve HTTPS (--tls-cert/--tls-key), or "
            "put a TLS proxy in front and say so (--behind-tls-proxy), or listen on 127.0.0.1."
        )
    hosts = {"localhost", "127.0.0.1", "::1", *(h.lower() for h in allowed_host or [])}
    if not _wildcard(host):
        hosts.add(host.lower().strip("[]"))
    elif not allowed_host:
        console.print(
            f"listening on {host}: only requests naming localhost or 127.0.0.1 are answered "
            "until you add the dashboard's real host name with --allowed-host",
            markup=False,
            style="yellow",
        )
    settings = load_settings()
    log = _open_log()
    try:
        accounts = ModeratorAccounts(log.engine, sealer=log.sealer)
        if not accounts.list():
            console.print(
                "no moderator accounts yet: create one with "
                "`personabot moderators add NAME --tenant local` (terminal traffic; or a guild "
                "or workspace id, or --admin; --password-stdin reads the password from a pipe)",
                markup=False,
                style="yellow",
            )
        config = DashboardConfig(
            session_lifetime=timedelta(hours=session_hours),
            idle_timeout=timedelta(minutes=idle_minutes),
            secure_cookies=secure_cookies or tls or behind_proxy,
            allowed_hosts=frozenset(hosts),
            throttle=_throttle(settings.redis_url),
        )
        _check_bind(host, port)
        scheme = "https" if tls else "http"
        console.print(f"dashboard on {scheme}://{host}:{port}/", markup=False)
        with exit_cleanly_on_sigterm():  # so that the log below is closed on SIGTERM too
            uvicorn.run(
                create_app(log, accounts, config),
                host=host,
                port=port,
                log_level="info",
                ssl_certfile=str(tls_cert) if tls_cert else None,
                ssl_keyfile=str(tls_key) if tls_key else None,
            )
    finally:
        log.close()
