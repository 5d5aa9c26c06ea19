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
import logging
import math
import secrets
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup
from pydantic import ValidationError
from starlette.datastructures import FormData

from adapters.web.charts import Series, bar_chart, line_chart
from adapters.web.jump import jump_link
from adapters.web.security import (
    SECURITY_HEADERS,
    SignInThrottle,
    allowed_host,
    foreign_origin,
    local_path,
    same_token,
)
from bot.messages import ReplyKind
from bot.quality.unanswered import (
    DEFAULT_THRESHOLD,
    Embed,
    LazyEncoder,
    QuestionGroup,
    group_questions,
    group_record,
    unanswered_questions,
)
from bot.storage import (
    ExchangeDetail,
    ExchangeFilter,
    ExchangeSummary,
    FlagInfo,
    ForbiddenError,
    InvalidInputError,
    LogView,
    NotFoundError,
)
from bot.storage.accounts import ModeratorAccounts, SessionInfo
from bot.storage.api import ORDERS
from bot.storage.export import safe_cell, safe_row
from bot.storage.insights import DayInsight, day_insights, kind_totals, percentile

HERE = Path(__file__).resolve().parent
DEFAULT_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
logger = logging.getLogger(__name__)
SESSION_COOKIE = "pb_session"
SIGNIN_COOKIE = "pb_signin"
TZ_COOKIE = "pb_tz"
# Pages a conversation's "back" link may return to, with their filters.
LIST_PAGES = ("/exchanges", "/queue", "/users/", "/unanswered")
BULK_LIMIT = 500
QUEUE_FLAGGED = ExchangeFilter(flagged=True, limit=1)
# The queue's second part: replies voted down since anyone looked, with no open flag.
QUEUE_DOWN = ExchangeFilter(voted="down", reviewed=False, flagged=False, limit=1)
FILTER_KEYS = (
    "platform", "tenant", "channel", "user", "since", "until",
    "flagged", "refused", "ungrounded", "kind", "voted", "q", "sort",
)  # fmt: skip
SORTS = {"new": "newest first", "old": "oldest first", "latency": "slowest first",
         "votes": "most voted down", "score": "lowest score first"}  # fmt: skip
# The Votes filter: "unreviewed" is a down vote no moderator has looked at since it was cast.
VOTED: dict[str, tuple[str, bool | None]] = {
    "up": ("up", None), "down": ("down", None), "unreviewed": ("down", False),
}  # fmt: skip
KINDS = tuple(kind.value for kind in ReplyKind)
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
    # Host header values (without port) this dashboard answers to; anything else is refused,
    # so a DNS-rebinding page cannot drive a dashboard listening on loopback.
    allowed_hosts: frozenset[str] = field(default_factory=lambda: DEFAULT_HOSTS)
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
    if given["kind"] and given["kind"] not in KINDS:
        raise InvalidInputError(
            f"Unknown reply kind {given['kind']!r}: use one of {', '.join(KINDS)}."
        )
    if given["voted"] and given["voted"] not in VOTED:
        raise InvalidInputError("Votes filter: use up, down or unreviewed.")
    voted, reviewed = VOTED.get(given["voted"], (None, None))
    if given["sort"] and given["sort"] not in SORTS:
        raise InvalidInputError(f"Sort by one of: {', '.join(SORTS)}.")
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
            kind=given["kind"] or None,
            voted="up" if voted == "up" else ("down" if voted else None),
            reviewed=reviewed,
            search=given["q"] or None,
            order=next((o for o in ORDERS if o == given["sort"]), "new"),
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


def zone_of(request: Request | None) -> ZoneInfo:
    """The moderator's chosen time zone (a cookie set on the preferences page), else UTC."""
    name = request.cookies.get(TZ_COOKIE, "") if request is not None else ""
    try:
        return ZoneInfo(name) if name else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


@pass_context
def when(context: Context, value: datetime, short: bool = False) -> Markup:
    """A stored time in the moderator's zone, with the exact UTC time on hover."""
    utc = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    zone = zone_of(context.get("request"))
    local = utc.astimezone(zone)
    shown = local.strftime("%m-%d %H:%M" if short else "%Y-%m-%d %H:%M")
    if not short:
        shown += " UTC" if zone.key == "UTC" else local.strftime(" %Z")
    return Markup('<time datetime="{}" title="{}">{}</time>').format(
        utc.strftime("%Y-%m-%dT%H:%M:%SZ"), utc.strftime("%Y-%m-%d %H:%M:%S UTC"), shown
    )


def exchange_link(x: ExchangeSummary) -> str | None:
    """The jump link to an exchange's reply on its platform, when its ids are stored."""
    return jump_link(
        x.platform, x.tenant, x.channel, x.thread,
        getattr(x, "platform_message_id", None), getattr(x, "permalink", None),
    )  # fmt: skip


templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters["when"] = when
templates.env.globals["jump"] = exchange_link
templates.env.globals["percentile"] = percentile
templates.env.filters["pretty"] = lambda value: json.dumps(value, indent=1, ensure_ascii=False)
router = APIRouter()


@dataclass
class DashboardState:
    """What the routes share: the admin-scoped log, the accounts, the settings."""

    log: LogView
    accounts: ModeratorAccounts
    config: DashboardConfig
    embed: Embed


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
    view: LogView | None = getattr(request.state, "view", None)
    if view is not None and context["session"] is not None:
        context.setdefault("open_count", view.list_exchanges(QUEUE_FLAGGED).total)
        context.setdefault("down_count", view.list_exchanges(QUEUE_DOWN).total)
    context.setdefault("zone", zone_of(request).key)
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
    request.state.view = view
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
    log: LogView,
    accounts: ModeratorAccounts,
    config: DashboardConfig | None = None,
    embed: Embed | None = None,
) -> FastAPI:
    """The dashboard over `log` (an admin-scoped view), signing in against `accounts`;
    `embed` groups unanswered questions (default: the bundled sentence encoder, loaded lazily)."""
    app = FastAPI(title="personabot moderation", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.dashboard = DashboardState(
        log, accounts, config or DashboardConfig(), embed or LazyEncoder()
    )
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(router)
    app.middleware("http")(known_host)
    app.middleware("http")(headers)
    app.add_exception_handler(SignInRequiredError, to_signin)  # type: ignore[arg-type]
    app.add_exception_handler(BadFormError, bad_form)  # type: ignore[arg-type]
    app.add_exception_handler(NotFoundError, not_found)  # type: ignore[arg-type]
    app.add_exception_handler(ForbiddenError, forbidden)  # type: ignore[arg-type]
    app.add_exception_handler(InvalidInputError, invalid)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, invalid_form)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, crashed)
    return app


async def known_host(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    if not allowed_host(request.headers.get("host"), state(request).config.allowed_hosts):
        return HTMLResponse(
            "<!doctype html><title>Unknown host</title><p>This dashboard does not answer to "
            "that host name. Add it with <code>--allowed-host</code> if it is yours.</p>",
            status_code=400,
        )
    return await call_next(request)


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


async def invalid_form(request: Request, exc: RequestValidationError) -> Response:
    """A form field too long (or a bad path/query value): said in words, and any text the
    moderator typed shown back rather than lost in a JSON error."""
    problems = []
    for error in exc.errors():
        field = str(error.get("loc", ("", "input"))[-1])
        limit = (error.get("ctx") or {}).get("max_length")
        problems.append(
            f"{field}: at most {limit} characters" if limit else f"{field}: {error.get('msg', '')}"
        )
    body = exc.body
    kept = (
        [(name, value) for name, value in body.multi_items() if isinstance(value, str)]
        if isinstance(body, FormData)
        else []
    )
    kept = [(name, value) for name, value in kept if name not in {"csrf", "password", "back"}]
    return page(
        request,
        "error.html",
        400,
        title="Check your input",
        message="; ".join(problems) + ".",
        kept=kept,
        back_to=here_of(request),
    )


async def crashed(request: Request, exc: Exception) -> Response:
    """An unexpected failure: logged, and a plain page that still carries every security
    header (it is served outside the middleware that adds them)."""
    logger.exception(
        "dashboard request %s %s failed", request.method, request.url.path, exc_info=exc
    )
    response = HTMLResponse(
        "<!doctype html><title>Something went wrong</title><p>Something went wrong on our side; "
        "it has been logged. Go back and try again.</p>",
        status_code=500,
    )
    response.headers.update(SECURITY_HEADERS)
    return response


def here_of(request: Request) -> str:
    """The page a failed form came from (its Referer, when it is this site's), else the list."""
    referer = request.headers.get("referer") or ""
    parts = urlsplit(referer)
    return (
        local_path(parts.path + (f"?{parts.query}" if parts.query else ""))
        if parts.path
        else "/exchanges"
    )


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
    shared.accounts.record_sign_in(name, address, moderator is not None)
    if moderator is None:
        cfg.throttle.failed(name, address)
        return signin_page(request, 401, "Wrong name or password.", name)
    cfg.throttle.succeeded(name, address)
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


def here(request: Request) -> str:
    """This page's path and query, for links that should come back to it."""
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


def back_target(value: str | None) -> str:
    """A local list page to return to (with its filters), else the exchanges list."""
    target = local_path(value)
    return target if target.startswith(LIST_PAGES) else "/exchanges"


def _listing(request: Request, m: Moderating, base: ExchangeFilter | None = None) -> dict[str, Any]:
    """A filtered, paged listing and the links around it, for every page that shows rows."""
    params = dict(request.query_params)
    number = _page_number(params.get("page"))
    size = state(request).config.page_size
    where = parse_filter(params, size, (number - 1) * size)
    if base is not None:
        where = where.model_copy(update=base.model_dump(exclude_unset=True))
    listing = m.view.list_exchanges(where)
    kept = {key: params[key] for key in FILTER_KEYS if params.get(key, "").strip()}
    last = max(1, -(-listing.total // size))
    return {
        "listing": listing,
        "filters": kept,
        "query": urlencode(kept),
        "number": number,
        "last": last,
        "back": here(request),
        "prev_url": f"?{urlencode({**kept, 'page': number - 1})}" if number > 1 else "",
        "next_url": f"?{urlencode({**kept, 'page': number + 1})}" if number < last else "",
        "notice": _notice(request),
    }


def _notice(request: Request) -> str:
    done = request.query_params.get("done", "")
    count = request.query_params.get("count", "")
    return f"{done}:{count}" if count.isdigit() else done


@router.get("/exchanges", response_class=HTMLResponse)
def exchanges(request: Request, m: Signed) -> Response:
    return page(
        request,
        "exchanges.html",
        session=m.session,
        saved=m.view.saved_filters(m.name),
        kinds=KINDS,
        sorts=SORTS,
        **_listing(request, m),
    )


@router.get("/queue", response_class=HTMLResponse)
def queue(request: Request, m: Signed) -> Response:
    """What needs a moderator: exchanges with an open flag (who has each), then replies users
    voted down that nobody has flagged or reviewed since."""
    context = _listing(request, m, ExchangeFilter(flagged=True))
    size = state(request).config.page_size
    down = m.view.list_exchanges(QUEUE_DOWN.model_copy(update={"limit": size}))
    claims: dict[str, list[FlagInfo]] = {}
    for open_flag in m.view.flags("open", limit=5000):
        if open_flag.assignee:
            claims.setdefault(open_flag.exchange_id, []).append(open_flag)
    mine = set(m.session.moderator.tenants)
    assignees = [
        a.name
        for a in state(request).accounts.list()
        if a.name != m.name and (a.admin or m.session.moderator.admin or mine & set(a.tenants))
    ]
    return page(
        request,
        "queue.html",
        session=m.session,
        down=down,
        claims=claims,
        assignees=assignees,
        sorts=SORTS,
        **context,
    )


@router.get("/users/{platform}/{tenant}/{user_id}", response_class=HTMLResponse)
def user_page(request: Request, platform: str, tenant: str, user_id: str, m: Signed) -> Response:
    """One platform user in one tenant: their exchanges, the open flags on them, the votes
    and reports they gave, their ban."""
    base = ExchangeFilter(platform=platform, tenant=tenant, user=user_id)
    context = _listing(request, m, base)
    votes = m.view.user_votes(platform, tenant, user_id)
    reports = m.view.user_reports(platform, tenant, user_id)
    if not (context["listing"].total or votes or reports):
        raise NotFoundError(f"Nothing from {platform} user {user_id!r} in tenant {tenant!r}.")
    flagged = m.view.list_exchanges(base.model_copy(update={"flagged": True, "limit": 1})).total
    items = context["listing"].items
    return page(
        request,
        "user.html",
        session=m.session,
        subject={"platform": platform, "tenant": tenant, "user_id": user_id},
        name=items[0].user_name if items else user_id,
        flagged=flagged,
        votes=votes,
        reports=reports,
        banned=next(
            (
                b
                for b in m.view.bans()
                if (b.platform, b.tenant, b.user_id) == (platform, tenant, user_id)
            ),
            None,
        ),
        **context,
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
    open_tenants = {f.tenant for d in items for f in d.flags if f.status == "open"}
    assignable = {tenant: view.moderators_for(tenant) for tenant in open_tenants}
    last = max(1, -(-listing.total // size))
    back = back_target(request.query_params.get("back"))
    return page(
        request,
        "conversation.html",
        session=m.session,
        focus=focus,
        items=items,
        banned=banned,
        assignable=assignable,
        total=listing.total,
        number=number,
        last=last,
        back=back,
        page_url=lambda n: "?" + urlencode({"page": n, "back": back}),
        notice=_notice(request),
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


# How the stats page groups reply kinds: refusals apart from greetings and identity answers.
KIND_GROUPS = {
    "answered": ("answer",),
    "not directly": ("not_direct",),
    "refused": ("out_of_scope", "injection", "too_long", "empty", "not_text"),
    "greeting or identity": ("greeting", "identity"),
    "rate limited or down": ("rate_limited", "busy", "unavailable"),
}


@router.get("/stats", response_class=HTMLResponse)
def stats(request: Request, m: Signed) -> Response:
    days, since = _days(request)
    first = since.date()
    view = m.view
    per_day = {d.day: d for d in view.stats(since=since)}
    insight = day_insights(view, since=since)
    labels = [(first + timedelta(days=i)).isoformat() for i in range(days)]
    counts = [per_day[d].exchanges if d in per_day else 0 for d in labels]

    def share(day: str, count: int) -> float | None:
        found = per_day.get(day)
        return 100.0 * count / found.exchanges if found and found.exchanges else None

    def of(day: str) -> DayInsight:
        return insight.get(day) or DayInsight(day=day)

    def latency(pick: str, percent: int) -> list[float | None]:
        return [percentile(getattr(of(d), pick), percent) for d in labels]

    totals = kind_totals(insight)
    groups = {name: sum(totals.get(k, 0) for k in kinds) for name, kinds in KIND_GROUPS.items()}
    other = sum(totals.values()) - sum(groups.values())
    model_ms = [v for d in insight.values() for v in d.model_ms]
    canned_ms = [v for d in insight.values() for v in d.canned_ms]
    total = sum(counts)
    flagged = sum(d.flagged for d in insight.values())
    summary = {
        "exchanges": total,
        "groups": {**groups, **({"other": other} if other else {})},
        "ungrounded": sum(d.ungrounded for d in per_day.values()),
        "flagged": flagged,
        "flag_rate": 100.0 * flagged / total if total else 0.0,
        "votes_up": sum(d.votes_up for d in insight.values()),
        "votes_down": sum(d.votes_down for d in insight.values()),
        "model": (percentile(model_ms, 50), percentile(model_ms, 95), len(model_ms)),
        "canned": (percentile(canned_ms, 50), percentile(canned_ms, 95), len(canned_ms)),
    }
    refusal_kinds = KIND_GROUPS["refused"]
    return page(
        request,
        "stats.html",
        session=m.session,
        days=days,
        summary=summary,
        rows=[(d, per_day.get(d), of(d)) for d in reversed(labels) if d in per_day or d in insight],
        volume=bar_chart(labels, counts, "Exchanges per day"),
        rates=line_chart(
            labels,
            [
                Series(
                    "refused",
                    [share(d, sum(of(d).kinds.get(k, 0) for k in refusal_kinds)) for d in labels],
                    "s1",
                ),
                Series("flagged", [share(d, of(d).flagged) for d in labels], "s2"),
                Series(
                    "ungrounded",
                    [share(d, per_day[d].ungrounded) if d in per_day else None for d in labels],
                    "s3",
                ),
            ],
            "Refusal, flag and ungrounded rates",
            "%",
        ),
        votes=line_chart(
            labels,
            [
                Series("up", [float(of(d).votes_up) for d in labels], "s4"),
                Series("down", [float(of(d).votes_down) for d in labels], "s2"),
            ],
            "Votes per day",
        ),
        latency=line_chart(
            labels,
            [
                Series("model p50", latency("model_ms", 50), "s1"),
                Series("model p95", latency("model_ms", 95), "s2"),
                Series("canned p95", latency("canned_ms", 95), "s3"),
            ],
            "Reply latency",
            "ms",
        ),
    )


def _days(request: Request, default: str = "30") -> tuple[int, datetime]:
    raw = request.query_params.get("days", default)
    if raw not in {"7", "30", "90", "365"}:
        raise InvalidInputError("Show 7, 30, 90 or 365 days.")
    days = int(raw)
    first = datetime.now(UTC).date() - timedelta(days=days - 1)
    return days, datetime(first.year, first.month, first.day, tzinfo=UTC)


def _groups(request: Request, m: Moderating) -> tuple[int, list[QuestionGroup]]:
    days, since = _days(request)
    asked = unanswered_questions(m.view, since=since)
    return days, group_questions(asked, state(request).embed, DEFAULT_THRESHOLD)


@router.get("/unanswered", response_class=HTMLResponse)
def unanswered(request: Request, m: Signed) -> Response:
    """What people asked that the essay does not answer, grouped by meaning."""
    days, groups = _groups(request, m)
    return page(
        request,
        "unanswered.html",
        session=m.session,
        days=days,
        groups=groups,
        questions=sum(g.count for g in groups),
        back=here(request),
    )


@router.get("/unanswered.{fmt}")
def unanswered_export(request: Request, fmt: str, m: Signed) -> Response:
    """The grouped questions as CSV (one line a question) or JSON (one object a group)."""
    if fmt not in {"csv", "json"}:
        raise NotFoundError(f"No export format {fmt!r}: use csv or json.")
    days, groups = _groups(request, m)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    disposition = {
        "Content-Disposition": f'attachment; filename="unanswered-{days}d-{stamp}.{fmt}"'
    }
    if fmt == "json":
        body = [group_record(number, group) for number, group in enumerate(groups, 1)]
        return Response(
            json.dumps(body, ensure_ascii=False, indent=1),
            media_type="application/json",
            headers=disposition,
        )
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        ["group", "group_size", "label", "question", "kind", "created", "tenant", "exchange_id"]
    )
    for number, group in enumerate(groups, 1):
        for a in group.examples:
            writer.writerow(
                [safe_cell(value) for value in (
                    number, group.count, group.label, a.text, a.kind, a.created.isoformat(),
                    a.tenant, a.exchange_id,
                )]
            )  # fmt: skip
    return Response(buffer.getvalue(), media_type="text/csv; charset=utf-8", headers=disposition)


@router.get("/export.{fmt}")
def export(request: Request, fmt: str, m: Signed) -> Response:
    """Every exchange matching the list's filter, in full, oldest first."""
    if fmt not in {"csv", "jsonl"}:
        raise NotFoundError(f"No export format {fmt!r}: use csv or jsonl.")
    where = parse_filter(dict(request.query_params))
    details = m.view.iter_exchanges(where)
    sent = [0]

    def audited(lines: Iterator[str]) -> Iterator[str]:
        """Writes the audit entry once the download ends, however far it got."""
        try:
            yield from lines
        finally:
            m.view.audit_export(m.name, fmt, where, sent[0], "dashboard download")

    def as_jsonl() -> Iterator[str]:
        for detail in details:
            sent[0] += 1
            yield detail.model_dump_json() + "\n"

    def as_csv() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, EXPORT_FIELDS)
        writer.writeheader()
        for detail in details:
            writer.writerow(safe_row(_export_row(detail)))
            sent[0] += 1
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
        yield buffer.getvalue()

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return StreamingResponse(
        audited(as_csv() if fmt == "csv" else as_jsonl()),
        media_type="text/csv; charset=utf-8" if fmt == "csv" else "application/x-ndjson",
        headers={"Content-Disposition": f'attachment; filename="personabot-{stamp}.{fmt}"'},
    )


# -- actions (each one audited by the query layer) --------------------------------------


# The list page (with its filters) a conversation was opened from, carried through its forms.
Back = Annotated[str, Form(alias="back", max_length=2048)]


def back(exchange_id: str, done: str, list_page: str = "") -> Response:
    """To the exchange's conversation, saying what was done, still able to return to the list."""
    query = {"done": done, **({"back": back_target(list_page)} if list_page else {})}
    return RedirectResponse(
        f"/exchanges/{quote(exchange_id, safe='')}?{urlencode(query)}"
        f"#x-{quote(exchange_id, safe='')}",
        status_code=303,
    )


def with_notice(target: str, done: str, count: int) -> Response:
    """Back to a list page (its filters kept), saying what was done to how many."""
    parts = urlsplit(back_target(target))
    query = [(k, v) for k, v in parse_qsl(parts.query) if k not in {"done", "count"}]
    query += [("done", done), ("count", str(count))]
    return RedirectResponse(f"{parts.path}?{urlencode(query)}", status_code=303)


@router.post("/bulk")
async def bulk(request: Request, m: Checked) -> Response:
    """One action on every selected exchange: resolve their open flags, flag them, claim their
    open flags, or mark their down votes reviewed."""
    form = await request.form()
    ids = [value for value in form.getlist("ids") if isinstance(value, str)]
    action = form.get("action")
    text = form.get("text")
    text = text.strip() if isinstance(text, str) else ""
    target = form.get("back")
    target = target if isinstance(target, str) else ""
    if not ids:
        raise InvalidInputError("Select at least one exchange (x selects, a selects the page).")
    if len(ids) > BULK_LIMIT:
        raise InvalidInputError(f"Select at most {BULK_LIMIT} exchanges at once.")
    if action not in {"resolve", "flag", "claim", "assign", "review"}:
        raise InvalidInputError("Choose an action: resolve, flag, claim, assign or review.")
    if action == "claim":
        claimed = 0
        for exchange_id in dict.fromkeys(ids):
            for found in m.view.get_exchange(exchange_id).flags:
                if found.status == "open" and found.assignee != m.name:
                    m.view.claim_flag(found.id, m.name)
                    claimed += 1
        return with_notice(target, "claimed", claimed)
    if not text or len(text) > 2000:
        raise InvalidInputError(
            "Give a reason (up to 2,000 characters): it goes in the audit trail."
        )
    if action == "assign":
        assignee = form.get("assignee")
        if not isinstance(assignee, str) or not assignee:
            raise InvalidInputError("Pick the moderator to assign the flags to.")
        return with_notice(target, "assigned", _assign_all(m, ids, assignee, text))
    count = 0
    for exchange_id in dict.fromkeys(ids):
        if action == "review":
            if m.view.get_exchange(exchange_id).unreviewed_down:
                m.view.review_votes(exchange_id, m.name, text)
                count += 1
            continue
        if action == "flag":
            m.view.open_flag(exchange_id, m.name, text)
            count += 1
            continue
        for found in m.view.get_exchange(exchange_id).flags:
            if found.status == "open":
                m.view.resolve(found.id, m.name, text)
                count += 1
    done = {"flag": "flagged", "review": "reviewed"}.get(action, "resolved")
    return with_notice(target, done, count)


def _assign_all(m: Moderating, ids: list[str], assignee: str, reason: str) -> int:
    """Assigns every open flag of the exchanges to `assignee`, after checking that they moderate
    each flag's tenant, so a refusal leaves nothing half done."""
    flags = [
        f for x in dict.fromkeys(ids) for f in m.view.get_exchange(x).flags if f.status == "open"
    ]
    for tenant in sorted({f.tenant for f in flags}):
        if assignee not in m.view.moderators_for(tenant):
            raise InvalidInputError(
                f"{assignee!r} does not moderate tenant {tenant!r}: nothing was assigned."
            )
    for found in flags:
        m.view.assign_flag(found.id, m.name, assignee, reason)
    return len(flags)


@router.post("/flags/{flag_id}/claim")
def claim(flag_id: int, m: Checked, list_page: Back = "") -> Response:
    claimed = m.view.claim_flag(flag_id, m.name)
    return back(claimed.exchange_id, "claimed", list_page)


@router.post("/flags/{flag_id}/assign")
def assign(
    flag_id: int,
    m: Checked,
    assignee: Annotated[str, Form(max_length=128)] = "",
    reason: Annotated[str, Form(max_length=2000)] = "",
    list_page: Back = "",
) -> Response:
    if not assignee:
        raise InvalidInputError("Pick the moderator to assign the flag to.")
    assigned = m.view.assign_flag(flag_id, m.name, assignee, reason)
    return back(assigned.exchange_id, "assigned", list_page)


@router.post("/exchanges/{exchange_id}/review")
def review(
    exchange_id: str,
    m: Checked,
    reason: Annotated[str, Form(max_length=2000)] = "",
    list_page: Back = "",
) -> Response:
    """A reply users voted down, looked at and found fine: it leaves the queue."""
    done = m.view.review_votes(exchange_id, m.name, reason)
    return back(done.id, "reviewed", list_page)


@router.post("/flags/{flag_id}/release")
def release(flag_id: int, m: Checked, list_page: Back = "") -> Response:
    released = m.view.release_flag(flag_id, m.name)
    return back(released.exchange_id, "released", list_page)


@router.post("/filters")
def save_filter(
    m: Checked,
    name: Annotated[str, Form(max_length=128)] = "",
    query: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    """Keeps the list's current filter under a name, for this moderator only."""
    kept = {k: v for k, v in parse_qsl(query) if k in FILTER_KEYS and v.strip()}
    parse_filter(kept)  # a saved filter must be one the list accepts
    saved = m.view.save_filter(m.name, name, urlencode(kept))
    return RedirectResponse(f"/exchanges?{saved.query}", status_code=303)


@router.post("/filters/delete")
def delete_filter(m: Checked, name: Annotated[str, Form(max_length=128)] = "") -> Response:
    if not m.view.delete_filter(m.name, name):
        raise NotFoundError(f"No saved filter {name!r}.")
    return RedirectResponse("/exchanges", status_code=303)


@router.get("/prefs", response_class=HTMLResponse)
def prefs(request: Request, m: Signed) -> Response:
    return page(
        request,
        "prefs.html",
        session=m.session,
        zones=sorted(available_timezones()),
        back=local_path(request.query_params.get("back")),
    )


@router.post("/prefs")
def save_prefs(
    m: Checked,
    zone: Annotated[str, Form(max_length=64)] = "UTC",
    back_to: Back = "",
) -> Response:
    """The time zone pages show times in (kept in a cookie: a per-browser preference)."""
    if zone not in available_timezones():
        raise InvalidInputError(
            f"Unknown time zone {zone!r}: pick one from the list, e.g. Europe/Berlin."
        )
    response = RedirectResponse(local_path(back_to), status_code=303)
    response.set_cookie(TZ_COOKIE, zone, max_age=365 * 86400, samesite="lax", path="/")
    return response


@router.post("/exchanges/{exchange_id}/flag")
def flag(
    exchange_id: str,
    m: Checked,
    reason: Annotated[str, Form(max_length=2000)] = "",
    list_page: Back = "",
) -> Response:
    if not reason.strip():
        raise InvalidInputError("Say why you flag this exchange.")
    opened = m.view.open_flag(exchange_id, m.name, reason)
    return back(opened.exchange_id, "flagged", list_page)


@router.post("/flags/{flag_id}/resolve")
def resolve(
    flag_id: int,
    m: Checked,
    note: Annotated[str, Form(max_length=4000)] = "",
    list_page: Back = "",
) -> Response:
    done = m.view.resolve(flag_id, m.name, note.strip() or None)
    return back(done.exchange_id, "resolved", list_page)


@router.post("/flags/{flag_id}/note")
def note(
    flag_id: int,
    m: Checked,
    text: Annotated[str, Form(max_length=4000)] = "",
    list_page: Back = "",
) -> Response:
    noted = m.view.add_note(flag_id, m.name, text)
    return back(noted.exchange_id, "noted", list_page)


@router.post("/exchanges/{exchange_id}/redact")
def redact(
    exchange_id: str,
    m: Checked,
    reason: Annotated[str, Form(max_length=2000)] = "",
    confirm: Annotated[str, Form(max_length=8)] = "",
    list_page: Back = "",
) -> Response:
    if confirm != "yes":
        raise InvalidInputError("Tick the box to confirm: a redaction cannot be undone.")
    done = m.view.redact(exchange_id, m.name, reason)
    return back(done.id, "redacted", list_page)


@router.post("/bans")
def ban(
    m: Checked,
    platform: Annotated[str, Form(max_length=64)],
    tenant: Annotated[str, Form(max_length=128)],
    user_id: Annotated[str, Form(max_length=128)],
    reason: Annotated[str, Form(max_length=2000)] = "",
    exchange: Annotated[str, Form(max_length=64)] = "",
    list_page: Back = "",
) -> Response:
    m.view.ban(platform, tenant, user_id, m.name, reason)
    if exchange:
        return back(exchange, "banned", list_page)
    return RedirectResponse(back_target(list_page) if list_page else "/bans", status_code=303)


@router.post("/bans/lift")
def unban(
    m: Checked,
    platform: Annotated[str, Form(max_length=64)],
    tenant: Annotated[str, Form(max_length=128)],
    user_id: Annotated[str, Form(max_length=128)],
    exchange: Annotated[str, Form(max_length=64)] = "",
    list_page: Back = "",
) -> Response:
    m.view.unban(platform, tenant, user_id, m.name)
    if exchange:
        return back(exchange, "unbanned", list_page)
    return RedirectResponse(back_target(list_page) if list_page else "/bans", status_code=303)
