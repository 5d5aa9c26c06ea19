"""The dashboard's FastAPI app: server-rendered pages over the tenant-scoped log query layer.

Every page asks `_view(moderator)` for a `LogView`: the whole log for an admin, `log.scoped(...)`
for anyone else, so tenant isolation is the query layer's, never the templates'. Every form
carries the session's CSRF token; every action goes through a `LogView` method that writes the
audit trail under the moderator's name.
"""

from __future__ import annotations

import csv
import io
import json
import math
import secrets
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError

from adapters.web.charts import Series, bar_chart, line_chart
from adapters.web.security import (
    SECURITY_HEADERS,
    SignInThrottle,
    foreign_origin,
    local_path,
    same_token,
)
from bot.storage import (
    ExchangeDetail,
    ExchangeFilter,
    ForbiddenError,
    InvalidInputError,
    LogView,
    NotFoundError,
)
from bot.storage.accounts import ModeratorAccounts, SessionInfo

HERE = Path(__file__).resolve().parent
SESSION_COOKIE = "pb_session"
SIGNIN_COOKIE = "pb_signin"
FILTER_KEYS = (
    "platform", "tenant", "channel", "user", "since", "until",
    "flagged", "refused", "ungrounded", "q",
)  # fmt: skip
EXPORT_FIELDS = [
    "id", "created", "platform", "tenant", "channel", "thread", "user_id", "user_name",
    "input_text", "reply_text", "refused", "grounded", "open_flags", "redacted_by", "cited",
    "scores", "model_id", "prompt_version", "total_ms",
]  # fmt: skip


@dataclass
class DashboardConfig:
    """Session lifetime (absolute), idle timeout, cookie flags and the sign-in throttle."""

    session_lifetime: timedelta = timedelta(hours=8)
    idle_timeout: timedelta = timedelta(minutes=30)
    secure_cookies: bool = False
    page_size: int = 50
    thread_page_size: int = 20
    throttle: SignInThrottle = field(default_factory=SignInThrottle)


class SignInRequiredError(Exception):
    """No live session: the browser is sent to the sign-in page."""


class BadFormError(Exception):
    """A form without the right CSRF token, or posted from another site."""


def _day(value: str, name: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInputError(f"Bad {name} date {value!r}: use YYYY-MM-DD.") from None


def parse_filter(params: dict[str, str], limit: int = 50, offset: int = 0) -> ExchangeFilter:
    """The list/export filter from query parameters; blank fields mean "any"."""
    given = {key: params.get(key, "").strip() for key in FILTER_KEYS}
    since = _day(given["since"], "from") if given["since"] else None
    until = _day(given["until"], "to") if given["until"] else None
    try:
        return ExchangeFilter(
            platform=given["platform"] or None,
            tenant=given["tenant"] or None,
            channel=given["channel"] or None,
            user=given["user"] or None,
            since=datetime(since.year, since.month, since.day, tzinfo=UTC) if since else None,
            # The "to" day is inclusive on the page; the query's bound is exclusive.
            until=(
                datetime(until.year, until.month, until.day, tzinfo=UTC) + timedelta(days=1)
                if until
                else None
            ),
            flagged=True if given["flagged"] else None,
            # "Ungrounded" means an answer the grounding check could not tie to the essay;
            # refusals are never grounded, so they are left out unless asked for too.
            refused=True if given["refused"] else (False if given["ungrounded"] else None),
            grounded=False if given["ungrounded"] else None,
            search=given["q"] or None,
            limit=limit,
            offset=offset,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InvalidInputError(f"Bad filter {first['loc'][0]}: {first['msg']}.") from None


def _page_number(value: str | None) -> int:
    if value is None or value == "":
        return 1
    if not value.isdigit() or int(value) < 1:
        raise InvalidInputError(f"Bad page number {value!r}.")
    return min(int(value), 1_000_000)


def _export_row(detail: ExchangeDetail) -> dict[str, Any]:
    row = detail.model_dump(mode="json")
    row["cited"] = " ".join(c.passage_id for c in detail.citations)
    row["scores"] = " ".join(
        f"{c.passage_id}={c.score:.3f}" for c in detail.retrieved if c.score is not None
    )
    row["total_ms"] = detail.timings.total_ms
    return {name: row[name] for name in EXPORT_FIELDS}


templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters["when"] = lambda value: value.strftime("%Y-%m-%d %H:%M UTC")
templates.env.filters["pretty"] = lambda value: json.dumps(value, indent=1, ensure_ascii=False)
router = APIRouter()


@dataclass
class DashboardState:
    """What the routes share: the admin-scoped log, the accounts, the settings."""

    log: LogView
    accounts: ModeratorAccounts
    config: DashboardConfig


@dataclass
class Moderating:
    """The signed-in moderator and the log as they may see it (their tenants only)."""

    session: SessionInfo
    view: LogView

    @property
    def name(self) -> str:
        return self.session.moderator.name


def state(request: Request) -> DashboardState:
    found: DashboardState = request.app.state.dashboard
    return found


def page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    # Error pages keep the navigation when the moderator is signed in.
    context.setdefault("session", getattr(request.state, "session", None))
    return templates.TemplateResponse(request, template, context, status_code=status)


def signed_in(request: Request) -> Moderating:
    """The live session from the cookie, or a trip to the sign-in page."""
    shared = state(request)
    token = request.cookies.get(SESSION_COOKIE)
    found = shared.accounts.session(token, shared.config.idle_timeout) if token else None
    if found is None:
        raise SignInRequiredError
    moderator = found.moderator
    # The one place a moderator's scope is chosen; the query layer enforces it from here on.
    view = shared.log if moderator.admin else shared.log.scoped(moderator.tenants)
    request.state.session = found
    return Moderating(found, view)


def _same_site(request: Request) -> bool:
    return not foreign_origin(
        request.headers.get("origin"), request.headers.get("referer"), request.headers.get("host")
    )


async def checked(request: Request) -> Moderating:
    """For POSTs: a live session, a same-site request and the session's CSRF token."""
    moderating = signed_in(request)
    token = (await request.form()).get("csrf")
    given = token if isinstance(token, str) else None
    if not _same_site(request) or not same_token(given, moderating.session.csrf_token):
        raise BadFormError
    return moderating


Signed = Annotated[Moderating, Depends(signed_in)]
Checked = Annotated[Moderating, Depends(checked)]


def create_app(
    log: LogView, accounts: ModeratorAccounts, config: DashboardConfig | None = None
) -> FastAPI:
    """The dashboard over `log` (an admin-scoped view), signing in against `accounts`."""
    app = FastAPI(title="personabot moderation", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.dashboard = DashboardState(log, accounts, config or DashboardConfig())
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(router)
    app.middleware("http")(headers)
    app.add_exception_handler(SignInRequiredError, to_signin)  # type: ignore[arg-type]
    app.add_exception_handler(BadFormError, bad_form)  # type: ignore[arg-type]
    app.add_exception_handler(NotFoundError, not_found)  # type: ignore[arg-type]
    app.add_exception_handler(ForbiddenError, forbidden)  # type: ignore[arg-type]
    app.add_exception_handler(InvalidInputError, invalid)  # type: ignore[arg-type]
    return app


async def headers(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    response = await call_next(request)
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


async def to_signin(request: Request, _exc: SignInRequiredError) -> Response:
    if request.method != "GET":
        return page(
            request,
            "error.html",
            401,
            title="Signed out",
            message="Your session has ended. Sign in again and repeat the action.",
        )
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    response = RedirectResponse("/signin?" + urlencode({"next": target}), status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


async def bad_form(request: Request, _exc: BadFormError) -> Response:
    return page(
        request,
        "error.html",
        403,
        title="Form rejected",
        message="This form expired or came from another site. Reload the page and try again.",
    )


async def not_found(request: Request, exc: NotFoundError) -> Response:
    return page(request, "error.html", 404, title="Not found", message=str(exc))


async def forbidden(request: Request, exc: ForbiddenError) -> Response:
    return page(request, "error.html", 403, title="Not allowed", message=str(exc))


async def invalid(request: Request, exc: InvalidInputError) -> Response:
    return page(request, "error.html", 400, title="Check your input", message=str(exc))


# -- signing in and out ----------------------------------------------------------------


def signin_page(request: Request, status: int = 200, error: str = "", name: str = "") -> Response:
    token = request.cookies.get(SIGNIN_COOKIE) or ""
    fresh = not token
    if fresh:
        token = secrets.token_urlsafe(32)
    response = page(
        request,
        "signin.html",
        status,
        csrf=token,
        error=error,
        name=name,
        next=local_path(request.query_params.get("next")),
    )
    if fresh:
        response.set_cookie(
            SIGNIN_COOKIE, token, httponly=True, samesite="lax",
            secure=state(request).config.secure_cookies, path="/signin",
        )  # fmt: skip
    return response


@router.get("/signin", response_class=HTMLResponse)
def signin_form(request: Request) -> Response:
    return signin_page(request)


@router.post("/signin")
def signin(
    request: Request,
    name: Annotated[str, Form(max_length=128)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    csrf: Annotated[str, Form(max_length=256)] = "",
    next_: Annotated[str, Form(alias="next", max_length=2048)] = "/exchanges",
) -> Response:
    if not _same_site(request) or not same_token(csrf, request.cookies.get(SIGNIN_COOKIE)):
        raise BadFormError
    shared = state(request)
    cfg = shared.config
    address = request.client.host if request.client else "unknown"
    wait = math.ceil(cfg.throttle.retry_after(name, address))
    if wait > 0:
        response = signin_page(
            request, 429, f"Too many failed sign-ins. Try again in {wait} s.", name
        )
        response.headers["Retry-After"] = str(wait)
        return response
    moderator = shared.accounts.authenticate(name, password)
    if moderator is None:
        cfg.throttle.failed(name, address)
        return signin_page(request, 401, "Wrong name or password.", name)
    cfg.throttle.succeeded(name)
    token, _csrf = shared.accounts.start_session(moderator, cfg.session_lifetime)
    response = RedirectResponse(local_path(next_), status_code=303)
    response.set_cookie(
        SESSION_COOKIE, token, max_age=int(cfg.session_lifetime.total_seconds()),
        httponly=True, samesite="lax", secure=cfg.secure_cookies, path="/",
    )  # fmt: skip
    response.delete_cookie(
        SIGNIN_COOKIE, path="/signin", secure=cfg.secure_cookies, httponly=True, samesite="lax"
    )
    return response


@router.post("/signout")
def signout(request: Request, _m: Checked) -> Response:
    state(request).accounts.end_session(request.cookies.get(SESSION_COOKIE, ""))
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# -- reading ---------------------------------------------------------------------------


@router.get("/")
def home(_m: Signed) -> Response:
    return RedirectResponse("/exchanges", status_code=303)


@router.get("/exchanges", response_class=HTMLResponse)
def exchanges(request: Request, m: Signed) -> Response:
    params = dict(request.query_params)
    number = _page_number(params.get("page"))
    size = state(request).config.page_size
    where = parse_filter(params, size, (number - 1) * size)
    listing = m.view.list_exchanges(where)
    kept = {key: params[key] for key in FILTER_KEYS if params.get(key, "").strip()}
    last = max(1, -(-listing.total // size))
    return page(
        request,
        "exchanges.html",
        session=m.session,
        listing=listing,
        filters=kept,
        query=urlencode(kept),
        number=number,
        last=last,
        prev_url=f"?{urlencode({**kept, 'page': number - 1})}" if number > 1 else "",
        next_url=f"?{urlencode({**kept, 'page': number + 1})}" if number < last else "",
    )


@router.get("/exchanges/{exchange_id}", response_class=HTMLResponse)
def conversation(request: Request, exchange_id: str, m: Signed) -> Response:
    """The conversation an exchange belongs to, a page at a time, with everything logged."""
    view = m.view
    focus = view.get_exchange(exchange_id)
    thread = ExchangeFilter(
        platform=focus.platform, tenant=focus.tenant, channel=focus.channel,
        thread=focus.thread,
    )  # fmt: skip
    size = state(request).config.thread_page_size
    raw_page = request.query_params.get("page")
    if raw_page:
        number = _page_number(raw_page)
    else:
        newer = view.list_exchanges(thread.model_copy(update={"since": focus.created, "limit": 1}))
        number = max(0, newer.total - 1) // size + 1
    listing = view.list_exchanges(
        thread.model_copy(update={"limit": size, "offset": (number - 1) * size})
    )
    items: list[ExchangeDetail] = []
    if listing.items:
        wanted = {item.id for item in listing.items}
        window = thread.model_copy(
            update={
                "since": listing.items[-1].created,
                "until": listing.items[0].created + timedelta(microseconds=1),
            }
        )
        items = [d for d in view.iter_exchanges(window) if d.id in wanted]
    banned = {
        (d.platform, d.tenant, d.user_id): view.is_banned(d.platform, d.tenant, d.user_id)
        for d in items
    }
    last = max(1, -(-listing.total // size))
    return page(
        request,
        "conversation.html",
        session=m.session,
        focus=focus,
        items=items,
        banned=banned,
        total=listing.total,
        number=number,
        last=last,
        notice=request.query_params.get("done", ""),
    )


@router.get("/audit", response_class=HTMLResponse)
def audit(request: Request, m: Signed) -> Response:
    number = _page_number(request.query_params.get("page"))
    size = state(request).config.page_size
    entries = m.view.audit(limit=size + 1, offset=(number - 1) * size)
    return page(
        request,
        "audit.html",
        session=m.session,
        entries=entries[:size],
        number=number,
        more=len(entries) > size,
    )


@router.get("/bans", response_class=HTMLResponse)
def bans(request: Request, m: Signed) -> Response:
    return page(request, "bans.html", session=m.session, bans=m.view.bans())


@router.get("/stats", response_class=HTMLResponse)
def stats(request: Request, m: Signed) -> Response:
    raw = request.query_params.get("days", "30")
    if raw not in {"7", "30", "90", "365"}:
        raise InvalidInputError("Show 7, 30, 90 or 365 days.")
    days = int(raw)
    today = datetime.now(UTC).date()
    first = today - timedelta(days=days - 1)
    since = datetime(first.year, first.month, first.day, tzinfo=UTC)
    view = m.view
    per_day = {d.day: d for d in view.stats(since=since)}
    latency = {d.day: d for d in view.latency(since=since)}
    labels = [(first + timedelta(days=i)).isoformat() for i in range(days)]
    counts = [per_day[d].exchanges if d in per_day else 0 for d in labels]

    def rate(day: str, part: str) -> float | None:
        found = per_day.get(day)
        if found is None or not found.exchanges:
            return None
        count: int = getattr(found, part)
        return 100.0 * count / found.exchanges

    total = sum(counts)
    summary = {
        "exchanges": total,
        "refusals": sum(d.refusals for d in per_day.values()),
        "ungrounded": sum(d.ungrounded for d in per_day.values()),
        "flags": sum(d.flags for d in per_day.values()),
    }
    return page(
        request,
        "stats.html",
        session=m.session,
        days=days,
        summary=summary,
        rows=[(d, per_day.get(d), latency.get(d)) for d in reversed(labels) if d in per_day],
        volume=bar_chart(labels, counts, "Exchanges per day"),
        rates=line_chart(
            labels,
            [
                Series("refused", [rate(d, "refusals") for d in labels], "s1"),
                Series("flagged", [rate(d, "flags") for d in labels], "s2"),
                Series("ungrounded", [rate(d, "ungrounded") for d in labels], "s3"),
            ],
            "Refusal, flag and ungrounded rates",
            "%",
        ),
        latency=line_chart(
            labels,
            [
                Series("p50", [latency[d].p50_ms if d in latency else None for d in labels], "s1"),
                Series("p95", [latency[d].p95_ms if d in latency else None for d in labels], "s2"),
            ],
            "Reply latency",
            "ms",
        ),
    )


@router.get("/export.{fmt}")
def export(request: Request, fmt: str, m: Signed) -> Response:
    """Every exchange matching the list's filter, in full, oldest first."""
    if fmt not in {"csv", "jsonl"}:
        raise NotFoundError(f"No export format {fmt!r}: use csv or jsonl.")
    where = parse_filter(dict(request.query_params))
    details = m.view.iter_exchanges(where)

    def as_jsonl() -> Iterator[str]:
        for detail in details:
            yield detail.model_dump_json() + "\n"

    def as_csv() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, EXPORT_FIELDS)
        writer.writeheader()
        for detail in details:
            writer.writerow(_export_row(detail))
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
        yield buffer.getvalue()

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return StreamingResponse(
        as_csv() if fmt == "csv" else as_jsonl(),
        media_type="text/csv; charset=utf-8" if fmt == "csv" else "application/x-ndjson",
        headers={"Content-Disposition": f'attachment; filename="personabot-{stamp}.{fmt}"'},
    )


# -- actions (each one audited by the query layer) --------------------------------------


def back(exchange_id: str, done: str) -> Response:
    return RedirectResponse(
        f"/exchanges/{quote(exchange_id, safe='')}?{urlencode({'done': done})}"
        f"#x-{quote(exchange_id, safe='')}",
        status_code=303,
    )


@router.post("/exchanges/{exchange_id}/flag")
def flag(
    exchange_id: str,
    m: Checked,
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    if not reason.strip():
        raise InvalidInputError("Say why you flag this exchange.")
    opened = m.view.open_flag(exchange_id, m.name, reason)
    return back(opened.exchange_id, "flagged")


@router.post("/flags/{flag_id}/resolve")
def resolve(flag_id: int, m: Checked, note: Annotated[str, Form(max_length=4000)] = "") -> Response:
    done = m.view.resolve(flag_id, m.name, note.strip() or None)
    return back(done.exchange_id, "resolved")


@router.post("/flags/{flag_id}/note")
def note(flag_id: int, m: Checked, text: Annotated[str, Form(max_length=4000)] = "") -> Response:
    noted = m.view.add_note(flag_id, m.name, text)
    return back(noted.exchange_id, "noted")


@router.post("/exchanges/{exchange_id}/redact")
def redact(
    exchange_id: str,
    m: Checked,
    reason: Annotated[str, Form(max_length=2000)] = "",
    confirm: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    if confirm != "yes":
        raise InvalidInputError("Tick the box to confirm: a redaction cannot be undone.")
    done = m.view.redact(exchange_id, m.name, reason)
    return back(done.id, "redacted")


@router.post("/bans")
def ban(
    m: Checked,
    platform: Annotated[str, Form(max_length=64)],
    tenant: Annotated[str, Form(max_length=128)],
    user_id: Annotated[str, Form(max_length=128)],
    reason: Annotated[str, Form(max_length=2000)] = "",
    exchange: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    m.view.ban(platform, tenant, user_id, m.name, reason)
    return back(exchange, "banned") if exchange else RedirectResponse("/bans", status_code=303)


@router.post("/bans/lift")
def unban(
    m: Checked,
    platform: Annotated[str, Form(max_length=64)],
    tenant: Annotated[str, Form(max_length=128)],
    user_id: Annotated[str, Form(max_length=128)],
    exchange: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    m.view.unban(platform, tenant, user_id, m.name)
    return back(exchange, "unbanned") if exchange else RedirectResponse("/bans", status_code=303)
