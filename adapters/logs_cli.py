"""`personabot logs ...`: the moderators' review tool over the conversation log.

Every command goes through the tenant-scoped query layer (`--scope`), and every action that
changes something is written to the audit trail under `--as NAME` (default: the OS user).
"""

from __future__ import annotations

import csv
import getpass
import json
import os
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, TextIO

import typer
from pydantic import BaseModel, ValidationError
from rich import box
from rich.console import Console
from rich.table import Table

from bot.errors import PersonabotError
from bot.quality.unanswered import (
    DEFAULT_THRESHOLD,
    LazyEncoder,
    group_questions,
    group_record,
    unanswered_questions,
)
from bot.settings import load_settings
from bot.storage import (
    ExchangeFilter,
    ExchangeSummary,
    InvalidInputError,
    LogView,
    Page,
    SqlConversationLog,
    open_log,
)
from bot.storage.api import ORDERS, Order
from bot.storage.chain import Sealer
from bot.storage.export import safe_cell, safe_row

logs_app = typer.Typer(
    help="Review the conversation log: list, show, flag, export, purge, erase, verify.",
    no_args_is_help=True,
)
console = Console()
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


@dataclass
class _Context:
    actor: str
    scope: list[str] | None


def parse_duration(value: str) -> timedelta:
    """`30d`, `12h`, `90m`, `2w`, `45s`."""
    match = _DURATION.match(value)
    if not match or int(match.group(1)) == 0:
        raise InvalidInputError(
            f"Bad duration {value!r}: use a positive number and a unit, like 30d, 12h, 90m or 2w."
        )
    try:
        return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    except OverflowError:
        raise InvalidInputError(
            f"Duration {value!r} is too long (at most 999999999 days)."
        ) from None


def parse_when(value: str | None, option: str) -> datetime | None:
    """An ISO date or time (UTC unless it says otherwise), or a duration ago (`7d`)."""
    if value is None:
        return None
    if _DURATION.match(value):
        return datetime.now(UTC) - parse_duration(value)
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInputError(
            f"Bad date for {option}: {value!r} (use 2026-01-31, 2026-01-31T14:00 or 7d)."
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _flag_id(value: str) -> int:
    if not value.isascii() or not value.isdigit():
        raise InvalidInputError(f"Bad flag id {value!r}: flag ids are whole numbers.")
    return int(value)


@logs_app.callback()
def _options(
    ctx: typer.Context,
    actor: Annotated[
        str | None, typer.Option("--as", help="Your name in the audit trail (default: OS user).")
    ] = None,
    scope: Annotated[
        list[str] | None,
        typer.Option("--scope", help="Act as a moderator of these tenants only (repeatable)."),
    ] = None,
) -> None:
    ctx.obj = _Context(actor=actor or getpass.getuser(), scope=scope or None)


@contextmanager
def _view(ctx: typer.Context) -> Iterator[LogView]:
    """The log, narrowed to `--scope`; closed (and its spool flushed) when the command ends."""
    options: _Context = ctx.obj
    log: SqlConversationLog = open_log(load_settings(), require_database=True)
    try:
        yield log.scoped(options.scope) if options.scope else log
    finally:
        log.close()


def _print_json(value: BaseModel | Sequence[BaseModel] | dict[str, object]) -> None:
    if isinstance(value, BaseModel):
        text = value.model_dump_json(indent=2)
    elif isinstance(value, Sequence):
        text = json.dumps([item.model_dump(mode="json") for item in value], indent=2)
    else:
        text = json.dumps(value, indent=2, default=str)
    print(text)


def _filters(
    platform: str | None,
    tenant: str | None,
    channel: str | None,
    user: str | None,
    since: str | None,
    until: str | None,
    flagged: bool,
    refused: bool,
    ungrounded: bool,
    search: str | None,
    limit: int = 50,
    offset: int = 0,
    order: Order = "new",
) -> ExchangeFilter:
    try:
        return ExchangeFilter(
            platform=platform,
            tenant=tenant,
            channel=channel,
            user=user,
            since=parse_when(since, "--since"),
            until=parse_when(until, "--until"),
            flagged=True if flagged else None,
            # As on the dashboard: "ungrounded" means an answer the grounding check could not
            # tie to the essay, so refusals (never grounded) stay out unless asked for too.
            refused=True if refused else (False if ungrounded else None),
            grounded=False if ungrounded else None,
            search=search,
            limit=limit,
            offset=offset,
            order=order,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InvalidInputError(f"Bad --{first['loc'][0]}: {first['msg']}.") from None


class SortOrder(StrEnum):
    """The dashboard's Sort select."""

    new = "new"
    old = "old"
    latency = "latency"
    votes = "votes"
    score = "score"


Platform = Annotated[str | None, typer.Option(help="discord, slack, local...")]
Tenant = Annotated[str | None, typer.Option(help="Discord guild, Slack workspace or 'local'.")]
Channel = Annotated[str | None, typer.Option()]
User = Annotated[str | None, typer.Option(help="Platform user id.")]
Since = Annotated[str | None, typer.Option(help="From this date/time (UTC) or duration ago.")]
Until = Annotated[str | None, typer.Option(help="Before this date/time (UTC) or duration ago.")]
Flagged = Annotated[bool, typer.Option("--flagged", help="Only exchanges with an open flag.")]
Refused = Annotated[bool, typer.Option("--refused", help="Only refusals.")]
Ungrounded = Annotated[bool, typer.Option("--ungrounded", help="Only ungrounded answers.")]
Search = Annotated[str | None, typer.Option(help="Text in the question or the answer.")]
AsJson = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


@logs_app.command("list")
def list_(
    ctx: typer.Context,
    platform: Platform = None,
    tenant: Tenant = None,
    channel: Channel = None,
    user: User = None,
    since: Since = None,
    until: Until = None,
    flagged: Flagged = False,
    refused: Refused = False,
    ungrounded: Ungrounded = False,
    search: Search = None,
    limit: Annotated[int, typer.Option(help="Rows per page (1-1000).")] = 50,
    offset: Annotated[int, typer.Option(help="Rows to skip.")] = 0,
    sort: Annotated[
        SortOrder,
        typer.Option(
            help="new, old, latency (slowest first), votes (most down first) or score (lowest "
            "best retrieval score first, nothing retrieved last)."
        ),
    ] = SortOrder.new,
    as_json: AsJson = False,
) -> None:
    """List exchanges, newest first (or --sort)."""
    where = _filters(
        platform, tenant, channel, user, since, until, flagged, refused, ungrounded, search,
        limit, offset, next(order for order in ORDERS if order == sort.value),
    )  # fmt: skip
    with _view(ctx) as view:
        page = view.list_exchanges(where)
    if as_json:
        _print_json(page)
        return
    console.print(exchange_table(page, console.width))


# Kinds whose grounding matters: an ungrounded greeting or refusal is what it should be.
_ANSWER_KINDS = {"answer", "not_direct"}


def exchange_table(page: Page, width: int) -> Table:
    """The listing, with as many columns as `width` holds, one line a row: ids whole, text cut
    with an ellipsis; the answer from 100 columns, where and who from 130."""
    rows = [_row(item, width) for item in page.items]
    columns = ["id", "created (UTC)", "where", "user", "question", "answer", "state"]
    if width < 130:
        columns.remove("where")
        columns.remove("user")
    if width < 100:
        columns.remove("answer")
    caps = {"where": 28, "user": 16, "state": 24}
    widths = {
        name: min(caps.get(name, width), max([len(name), *(len(r[name]) for r in rows)]))
        for name in columns
        if name not in {"question", "answer"}
    }
    # Columns are 3 characters apart (padding and rule); the texts share what is left.
    free = width - sum(widths.values()) - 3 * (len(columns) - 1)
    texts = [text for text in ("question", "answer") if text in columns]
    for text in texts:
        widths[text] = max(free // len(texts), 8)
    shown = f"{page.offset + 1}-{page.offset + len(page.items)}" if page.items else "none"
    table = Table(
        title=f"exchanges {shown} of {page.total}",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
    )
    for name in columns:
        table.add_column(name, width=widths[name], no_wrap=True, overflow="ellipsis")
    for row in rows:
        table.add_row(*(_short(row[name], widths[name]) for name in columns))
    return table


def _row(item: ExchangeSummary, width: int) -> dict[str, str]:
    kind = "refused" if item.kind == "answer" and item.refused else item.kind
    state = [kind.replace("_", " ")]
    if kind in _ANSWER_KINDS and not item.grounded:
        state.append("ungrounded")
    if item.open_flags:
        state.append(f"{item.open_flags} flag{'s' if item.open_flags > 1 else ''}")
    return {
        "id": item.id[:12],
        "created (UTC)": item.created.strftime("%Y-%m-%d %H:%M" + ("" if width < 100 else ":%S")),
        "where": f"{item.platform}/{item.tenant}/{item.channel}",
        "user": item.user_name,
        "question": item.input_text,
        "answer": item.reply_text,
        "state": ", ".join(state),
    }


def _short(text: str, width: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


@logs_app.command()
def show(
    ctx: typer.Context,
    exchange_id: Annotated[str, typer.Argument(metavar="ID", help="Exchange id or prefix.")],
    as_json: AsJson = False,
) -> None:
    """Show one exchange: question, answer, passages with scores, verdicts, flags."""
    with _view(ctx) as view:
        detail = view.get_exchange(exchange_id)
    if as_json:
        _print_json(detail)
        return
    console.print(f"[bold]{detail.id}[/]  {detail.created:%Y-%m-%d %H:%M:%S} UTC")
    console.print(
        f"{detail.platform}/{detail.tenant}/{detail.channel}"
        f"{'/' + detail.thread if detail.thread else ''}  user {detail.user_name} ({detail.user_id})",
        markup=False,
    )
    console.print("[bold]Q:[/] " + detail.input_text.replace("[", r"\["))
    console.print("[bold]A:[/] " + detail.reply_text.replace("[", r"\["))
    console.print(
        f"refused={detail.refused} grounded={detail.grounded} model={detail.model_id} "
        f"prompt={detail.prompt_version} tokens={detail.tokens.prompt}+{detail.tokens.completion} "
        f"total={detail.timings.total_ms:.0f} ms",
        markup=False,
    )
    passages = Table(title="passages")
    for column in ("passage", "section", "score", "cited", "quote"):
        passages.add_column(column, overflow="fold")
    cited = {c.passage_id: c for c in detail.citations}
    for item in detail.retrieved:
        quote = cited[item.passage_id].quote if item.passage_id in cited else ""
        score = "" if item.score is None else f"{item.score:.3f}"
        mark = "yes" if item.passage_id in cited else ""
        passages.add_row(item.passage_id, item.section, score, mark, _short(quote, 80))
    console.print(passages)
    verdicts = Table(title="moderation")
    for column in ("check", "passed", "detail"):
        verdicts.add_column(column)
    for verdict in detail.moderation:
        verdicts.add_row(verdict.check, str(verdict.passed), verdict.detail)
    console.print(verdicts)
    if detail.votes_up or detail.votes_down:
        reviewed = (
            f"; down votes reviewed by {detail.reviewed_by}: {detail.review_reason}"
            if detail.reviewed_by
            else ""
        )
        pending = " (a down vote awaits review)" if detail.unreviewed_down else ""
        console.print(
            f"votes: {detail.votes_up} up, {detail.votes_down} down{reviewed}{pending}",
            markup=False,
        )
    for flag in detail.flags:
        console.print(
            f"flag {flag.id} [{flag.status}] by {flag.reporter}: {flag.reason}", markup=False
        )
        for note in flag.notes:
            console.print(f"  note by {note.author}: {note.text}", markup=False)


@logs_app.command()
def flag(
    ctx: typer.Context,
    exchange_id: Annotated[str, typer.Argument(metavar="ID", help="Exchange id or prefix.")],
    reason: Annotated[str, typer.Option(help="Why it needs review.")],
    as_json: AsJson = False,
) -> None:
    """Flag an exchange for review."""
    with _view(ctx) as view:
        created = view.open_flag(exchange_id, ctx.obj.actor, reason)
    if as_json:
        _print_json(created)
    else:
        console.print(f"flag {created.id} opened on {created.exchange_id}", markup=False)


@logs_app.command()
def resolve(
    ctx: typer.Context,
    flag_id: Annotated[str, typer.Argument(metavar="FLAG_ID")],
    note: Annotated[str | None, typer.Option(help="How it was resolved.")] = None,
    as_json: AsJson = False,
) -> None:
    """Resolve a flag, optionally with a note."""
    with _view(ctx) as view:
        resolved = view.resolve(_flag_id(flag_id), ctx.obj.actor, note)
    if as_json:
        _print_json(resolved)
    else:
        console.print(f"flag {resolved.id} resolved", markup=False)


@logs_app.command()
def note(
    ctx: typer.Context,
    flag_id: Annotated[str, typer.Argument(metavar="FLAG_ID")],
    text: Annotated[str, typer.Argument(help="The note.")],
    as_json: AsJson = False,
) -> None:
    """Add a moderator's note to a flag."""
    with _view(ctx) as view:
        noted = view.add_note(_flag_id(flag_id), ctx.obj.actor, text)
    if as_json:
        _print_json(noted)
    else:
        console.print(f"note added to flag {noted.id}", markup=False)


class ExportFormat(StrEnum):
    jsonl = "jsonl"
    csv = "csv"


_CSV_FIELDS = [
    "id", "created", "platform", "tenant", "channel", "thread", "user_id", "user_name",
    "input_text", "reply_text", "kind", "refused", "grounded", "open_flags", "cited",
    "model_id", "prompt_version", "total_ms",
]  # fmt: skip


@contextmanager
def _output(path: Path | None) -> Iterator[TextIO]:
    """stdout, or a new or regular file readable by its owner only (exports hold conversations)."""
    if path is None:
        yield sys.stdout
        return
    if path.exists() and not path.is_file():
        raise InvalidInputError(f"Cannot export to {path}: it is not a regular file.")
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        handle = os.fdopen(descriptor, "w", encoding="utf-8", newline="")
    except OSError as exc:
        raise InvalidInputError(f"Cannot export to {path}: {exc.strerror or exc}.") from None
    try:
        with handle:
            yield handle
    except OSError as exc:
        raise InvalidInputError(f"Writing {path} failed: {exc.strerror or exc}.") from None


@logs_app.command()
def export(
    ctx: typer.Context,
    format_: Annotated[ExportFormat, typer.Option("--format", help="jsonl or csv.")] = (
        ExportFormat.jsonl
    ),
    output: Annotated[Path | None, typer.Option(help="File to write (default: stdout).")] = None,
    platform: Platform = None,
    tenant: Tenant = None,
    channel: Channel = None,
    user: User = None,
    since: Since = None,
    until: Until = None,
    flagged: Flagged = False,
    refused: Refused = False,
    ungrounded: Ungrounded = False,
    search: Search = None,
) -> None:
    """Export every matching exchange in full, oldest first."""
    where = _filters(
        platform, tenant, channel, user, since, until, flagged, refused, ungrounded, search
    )
    count = 0
    with _view(ctx) as view:
        with _output(output) as handle:
            writer = csv.DictWriter(handle, _CSV_FIELDS) if format_ is ExportFormat.csv else None
            if writer:
                writer.writeheader()
            for detail in view.iter_exchanges(where):
                if writer:
                    row = detail.model_dump(mode="json")
                    row["cited"] = " ".join(c.passage_id for c in detail.citations)
                    row["total_ms"] = detail.timings.total_ms
                    writer.writerow(safe_row({name: row[name] for name in _CSV_FIELDS}))
                else:
                    handle.write(detail.model_dump_json() + "\n")
                count += 1
        view.audit_export(ctx.obj.actor, format_.value, where, count, str(output or "stdout"))
    if output is not None:
        console.print(f"exported {count} exchanges to {output}", markup=False)


@logs_app.command()
def purge(
    ctx: typer.Context,
    older_than: Annotated[
        str | None,
        typer.Option(help="Delete exchanges older than this (30d, 12h...); default from settings."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only count what would be deleted.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    as_json: AsJson = False,
) -> None:
    """Apply retention: delete old exchanges and their flags (the hash chain stays verifiable).
    Exchanges with an open flag are kept until a moderator resolves it."""
    period = parse_duration(older_than or load_settings().log_retention)
    with _view(ctx) as view:
        count = view.purge(period, ctx.obj.actor, dry_run=True)
        if dry_run:
            deleted = 0
        else:
            if count and not yes:
                if not sys.stdin.isatty():
                    raise InvalidInputError(
                        f"This would delete {count} exchanges older than {period}: "
                        "add --yes to confirm (or --dry-run to only count)."
                    )
                if not typer.confirm(f"Delete {count} exchanges older than {period}?"):
                    raise PersonabotError("Nothing deleted.")
            deleted = view.purge(period, ctx.obj.actor)
    if as_json:
        _print_json(
            {"deleted": deleted, "would_delete": count, "older_than_s": period.total_seconds()}
        )
    elif dry_run:
        console.print(f"would purge {count} exchanges older than {period}", markup=False)
    else:
        console.print(f"purged {deleted} exchanges older than {period}", markup=False)


@logs_app.command("erase-user")
def erase_user(
    ctx: typer.Context,
    platform: Annotated[str, typer.Argument(help="discord, slack, local...")],
    user_id: Annotated[str, typer.Argument(help="The platform user id.")],
    tenant: Annotated[str | None, typer.Option(help="Only in this tenant.")] = None,
    as_json: AsJson = False,
) -> None:
    """Erase one platform user's data; flagged exchanges stay with the user replaced by a placeholder."""
    with _view(ctx) as view:
        report = view.erase_user(platform, user_id, ctx.obj.actor, tenant)
    if as_json:
        _print_json(report)
    else:
        console.print(
            f"deleted {report.exchanges_deleted} exchanges, anonymised {report.exchanges_anonymised} "
            f"flagged ones and {report.flags_anonymised} reports, lifted {report.bans_lifted} bans, "
            f"deleted {report.votes_deleted} votes and {report.spooled_dropped} rejected spool "
            f"lines, scrubbed {report.rows_scrubbed} rows that named or quoted them",
            markup=False,
        )


@logs_app.command()
def verify(ctx: typer.Context, as_json: AsJson = False) -> None:
    """Check every tenant's chain, the audit trail and every sealed table; exits 1 and names
    the first bad row of each (table and row) if anything was changed behind the product."""
    with _view(ctx) as view:
        reports = view.verify()
    if as_json:
        _print_json(reports)
    else:
        for report in reports:
            where = report.table + (f" of {report.tenant}" if report.tenant else "")
            if report.ok:
                console.print(f"{where}: ok ({report.checked} rows)", markup=False, soft_wrap=True)
            else:
                at = f" at row {report.broken_seq}" if report.broken_seq is not None else ""
                console.print(
                    f"{where}: BROKEN{at}{' (' + report.row + ')' if report.row else ''}: "
                    f"{report.problem}",
                    markup=False,
                    style="red",
                    soft_wrap=True,
                )
        if reports and not reports[0].keyed:
            console.print(
                "WARNING: PERSONABOT_LOG_KEY is not set, so the hashes are unkeyed: anyone who "
                "can write to the database can recompute them. See docs/moderation-log.md.",
                markup=False,
                style="yellow",
                soft_wrap=True,
            )
    if not all(report.ok for report in reports):
        raise typer.Exit(1)


@logs_app.command()
def rekey(
    ctx: typer.Context,
    old_key_env: Annotated[
        str | None,
        typer.Option(
            help="Environment variable holding the key the log was sealed with until now "
            "(unset: the current PERSONABOT_LOG_KEY; empty variable: no key)."
        ),
    ] = None,
) -> None:
    """Seal rows stored before seals existed, or rotate PERSONABOT_LOG_KEY: everything is
    checked under the old key first, then re-linked and re-sealed under the current one.
    Stop the bots and the dashboard first, and restart them with the new key."""
    with _view(ctx) as view:
        if old_key_env is None:
            old = view.sealer
        elif old_key_env not in os.environ:
            raise InvalidInputError(f"The environment variable {old_key_env} is not set.")
        else:
            old = Sealer(os.environ[old_key_env].encode() or None)
        count = view.rekey(old, ctx.obj.actor)
    console.print(
        f"re-sealed {count} rows under key {view.sealer.key_id or '(none)'}", markup=False
    )


@logs_app.command()
def stats(
    ctx: typer.Context, since: Since = None, until: Until = None, as_json: AsJson = False
) -> None:
    """Exchanges, refusals, ungrounded answers and flags per day (UTC)."""
    start, end = parse_when(since, "--since"), parse_when(until, "--until")
    with _view(ctx) as view:
        days = view.stats(start, end)
    if as_json:
        _print_json(days)
        return
    table = Table(title="per day (UTC)")
    for column in ("day", "exchanges", "refusals", "ungrounded", "flags"):
        table.add_column(column, justify="right")
    for day in days:
        table.add_row(
            day.day, str(day.exchanges), str(day.refusals), str(day.ungrounded), str(day.flags)
        )
    console.print(table)


@logs_app.command()
def ban(
    ctx: typer.Context,
    platform: Annotated[str, typer.Argument()],
    tenant: Annotated[str, typer.Argument()],
    user_id: Annotated[str, typer.Argument()],
    reason: Annotated[str, typer.Option(help="Why.")] = "",
) -> None:
    """Bar a platform user from talking to the persona in one tenant."""
    with _view(ctx) as view:
        added = view.ban(platform, tenant, user_id, ctx.obj.actor, reason)
    console.print("banned" if added else "already banned", markup=False)


@logs_app.command()
def unban(
    ctx: typer.Context,
    platform: Annotated[str, typer.Argument()],
    tenant: Annotated[str, typer.Argument()],
    user_id: Annotated[str, typer.Argument()],
) -> None:
    """Lift a ban."""
    with _view(ctx) as view:
        removed = view.unban(platform, tenant, user_id, ctx.obj.actor)
    if not removed:
        raise PersonabotError(f"{platform} user {user_id} is not banned in {tenant}.")
    console.print("unbanned", markup=False)


@logs_app.command()
def audit(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(help="Entries to show (1-10000).")] = 50,
    as_json: AsJson = False,
) -> None:
    """The audit trail of moderator actions, newest first."""
    with _view(ctx) as view:
        entries = view.audit(limit)
    if as_json:
        _print_json(entries)
        return
    table = Table(title="audit trail")
    for column in ("at (UTC)", "actor", "action", "tenant", "target"):
        table.add_column(column, overflow="fold")
    for entry in entries:
        table.add_row(
            f"{entry.at:%Y-%m-%d %H:%M:%S}",
            entry.actor,
            entry.action,
            entry.tenant or "",
            entry.target,
        )
    console.print(table)


# -- the moderators' queue, scripted (the dashboard's Queue, Bans and Unanswered pages) --------


class FlagStatus(StrEnum):
    open = "open"
    resolved = "resolved"
    all = "all"


@logs_app.command()
def flags(
    ctx: typer.Context,
    status: Annotated[FlagStatus, typer.Option(help="open, resolved or all.")] = FlagStatus.open,
    assignee: Annotated[
        str | None, typer.Option(help="Only flags claimed by this moderator ('' for unclaimed).")
    ] = None,
    limit: Annotated[int, typer.Option(help="Flags to show (1-10000), newest first.")] = 100,
    as_json: AsJson = False,
) -> None:
    """Flags, newest first: who reported what, who claimed it, how it was resolved."""
    if not 1 <= limit <= 10_000:
        raise InvalidInputError("--limit must be between 1 and 10000.")
    with _view(ctx) as view:
        found = view.flags(None if status is FlagStatus.all else status.value, limit)
    if assignee is not None:
        found = [f for f in found if (f.assignee or "") == assignee]
    if as_json:
        _print_json(found)
        return
    table = Table(title=f"{len(found)} {status.value} flag(s)", box=box.SIMPLE)
    for column in ("id", "exchange", "opened (UTC)"):
        table.add_column(column, no_wrap=True)
    for column in ("reporter", "reason", "claimed by", "status"):
        table.add_column(column, overflow="fold")
    for item in found:
        holder = item.assignee or ""
        if item.assignee and item.assigned_by not in (None, item.assignee):
            holder = f"{item.assignee} (by {item.assigned_by})"
        table.add_row(
            str(item.id), item.exchange_id[:12], f"{item.created:%Y-%m-%d %H:%M}", item.reporter,
            _short(item.reason), holder,
            item.status if not item.resolved_by else f"{item.status} by {item.resolved_by}",
        )  # fmt: skip
    console.print(table)


@logs_app.command()
def assign(
    ctx: typer.Context,
    flag_id: Annotated[str, typer.Argument(metavar="FLAG_ID")],
    to: Annotated[str, typer.Option("--to", help="A moderator account of the flag's tenant.")],
    reason: Annotated[str, typer.Option(help="Why (kept in the audit trail and as a note).")],
    as_json: AsJson = False,
) -> None:
    """Assign an open flag to a moderator (the dashboard's Assign)."""
    with _view(ctx) as view:
        assigned = view.assign_flag(_flag_id(flag_id), ctx.obj.actor, to, reason)
    if as_json:
        _print_json(assigned)
    else:
        console.print(f"flag {assigned.id} assigned to {assigned.assignee}", markup=False)


@logs_app.command()
def review(
    ctx: typer.Context,
    exchange_id: Annotated[str, typer.Argument(metavar="ID", help="Exchange id or prefix.")],
    reason: Annotated[str, typer.Option(help="Why the reply is fine (audited).")],
    as_json: AsJson = False,
) -> None:
    """Mark a voted-down reply reviewed: it leaves the queue until it is voted down again."""
    with _view(ctx) as view:
        done = view.review_votes(exchange_id, ctx.obj.actor, reason)
    if as_json:
        _print_json({"reviewed": done.id, "by": done.reviewed_by, "down": done.votes_down})
    else:
        console.print(f"reviewed the {done.votes_down} down vote(s) of {done.id}", markup=False)


@logs_app.command()
def bans(ctx: typer.Context, as_json: AsJson = False) -> None:
    """Every ban in your tenants, oldest first."""
    with _view(ctx) as view:
        found = view.bans()
    if as_json:
        _print_json(found)
        return
    table = Table(title=f"{len(found)} ban(s)", box=box.SIMPLE)
    for column in ("platform", "tenant", "user id", "reason", "by", "since (UTC)"):
        table.add_column(column, overflow="fold")
    for item in found:
        table.add_row(
            item.platform, item.tenant, item.user_id, item.reason, item.banned_by,
            f"{item.created:%Y-%m-%d %H:%M}",
        )  # fmt: skip
    console.print(table)


@logs_app.command()
def redact(
    ctx: typer.Context,
    exchange_id: Annotated[str, typer.Argument(metavar="ID", help="Exchange id or prefix.")],
    reason: Annotated[str, typer.Option(help="Why (kept in the audit trail).")],
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: this cannot be undone.")] = False,
    as_json: AsJson = False,
) -> None:
    """Replace an exchange's question, answer and prompt with [redacted], for good."""
    if not reason.strip():
        raise InvalidInputError("Give a --reason: it goes in the audit trail.")
    if not yes:
        raise InvalidInputError("A redaction cannot be undone: add --yes to confirm.")
    with _view(ctx) as view:
        done = view.redact(exchange_id, ctx.obj.actor, reason)
    if as_json:
        _print_json({"redacted": done.id})
    else:
        console.print(f"redacted {done.id}", markup=False)


@logs_app.command()
def votes(
    ctx: typer.Context,
    exchange_id: Annotated[
        str | None, typer.Argument(metavar="[ID]", help="One exchange's votes.")
    ] = None,
    up: Annotated[bool, typer.Option("--up", help="List replies voted up, not down.")] = False,
    unreviewed: Annotated[
        bool,
        typer.Option("--unreviewed", help="Only down votes no moderator reviewed (the queue's)."),
    ] = False,
    since: Since = None,
    limit: Annotated[int, typer.Option(help="Rows (1-1000).")] = 50,
    as_json: AsJson = False,
) -> None:
    """Users' votes: one exchange's up/down counts, or the replies voted down (or --up)."""
    with _view(ctx) as view:
        if exchange_id is not None:
            found = view.get_exchange(exchange_id)
            if as_json:
                _print_json({"id": found.id, "up": found.votes_up, "down": found.votes_down})
            else:
                console.print(
                    f"{found.id}: {found.votes_up} up, {found.votes_down} down", markup=False
                )
            return
        try:
            if up and unreviewed:
                raise InvalidInputError("--unreviewed is about down votes: drop --up.")
            where = ExchangeFilter(
                voted="up" if up else "down",
                reviewed=False if unreviewed else None,
                since=parse_when(since, "--since"),
                limit=limit,
            )
        except ValidationError as exc:
            raise InvalidInputError(f"Bad --limit: {exc.errors()[0]['msg']}.") from None
        page = view.list_exchanges(where)
    if as_json:
        _print_json(page)
        return
    table = Table(title=f"{page.total} repl(ies) voted {'up' if up else 'down'}", box=box.SIMPLE)
    for column in ("id", "created (UTC)", "where", "question", "up", "down"):
        table.add_column(column, overflow="fold")
    for item in page.items:
        table.add_row(
            item.id[:12], f"{item.created:%Y-%m-%d %H:%M}",
            f"{item.platform}/{item.tenant}/{item.channel}", _short(item.input_text),
            str(item.votes_up), str(item.votes_down),
        )  # fmt: skip
    console.print(table)


class GroupFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


@logs_app.command()
def unanswered(
    ctx: typer.Context,
    since: Annotated[str, typer.Option(help="From this date/time or duration ago.")] = "30d",
    until: Until = None,
    threshold: Annotated[
        float, typer.Option(help="Similarity (0-1] at which questions share a group.")
    ] = DEFAULT_THRESHOLD,
    examples: Annotated[int, typer.Option(help="Questions shown per group (table).")] = 3,
    format_: Annotated[GroupFormat, typer.Option("--format", help="table, json or csv.")] = (
        GroupFormat.table
    ),
) -> None:
    """What people asked that the essay does not answer, grouped by meaning, largest first."""
    if not 0 < threshold <= 1:
        raise InvalidInputError("--threshold must be above 0 and at most 1.")
    with _view(ctx) as view:
        asked = unanswered_questions(
            view, parse_when(since, "--since"), parse_when(until, "--until")
        )
    groups = group_questions(asked, LazyEncoder(), threshold)
    if format_ is GroupFormat.json:
        print(json.dumps([group_record(n, g) for n, g in enumerate(groups, 1)], indent=2))
        return
    if format_ is GroupFormat.csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(["group", "group_size", "label", "question", "kind", "created", "tenant",
                         "exchange_id"])  # fmt: skip
        for number, group in enumerate(groups, 1):
            for item in group.examples:
                writer.writerow([safe_cell(value) for value in (
                    number, group.count, group.label, item.text, item.kind,
                    item.created.isoformat(), item.tenant, item.exchange_id,
                )])  # fmt: skip
        return
    table = Table(
        title=f"{len(asked)} unanswered question(s) in {len(groups)} group(s)", box=box.SIMPLE
    )
    for column in ("#", "count", "most typical wording", "more examples", "last asked (UTC)"):
        table.add_column(column, overflow="fold")
    for number, group in enumerate(groups, 1):
        others = [a.text for a in group.examples if a.text != group.label]
        table.add_row(
            str(number), str(group.count), group.label,
            "; ".join(_short(t, 50) for t in dict.fromkeys(others[: max(0, examples - 1)])),
            f"{group.last_seen:%Y-%m-%d %H:%M}",
        )  # fmt: skip
    console.print(table)
