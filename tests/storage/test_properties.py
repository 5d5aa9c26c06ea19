"""Properties checked over many generated inputs: redaction and tenant isolation."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.storage import ExchangeFilter, NotFoundError, Redactor, SqlConversationLog
from bot.storage.export import CONTROL_STARTS, FORMULA_STARTS, safe_cell
from tests.storage.conftest import exchange, open_sql_log, sqlite_url

redactor = Redactor()
filler = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30)


@given(before=filler, address=st.emails(), after=filler)
def test_redaction_never_leaks_an_email(before: str, address: str, after: str) -> None:
    assert address not in redactor.text(f"{before} {address} {after}")


@given(
    digits=st.lists(st.integers(0, 9), min_size=10, max_size=12),
    separator=st.sampled_from(["", " ", "-", "."]),
)
def test_redaction_never_leaks_a_phone_number(digits: list[int], separator: str) -> None:
    number = "".join(map(str, digits[:3])) + separator + "".join(map(str, digits[3:]))
    assert number not in redactor.text(f"call me on {number} tonight")


def test_redaction_spares_years_and_ranges() -> None:
    text = "Between 1993-1997 and in 2008 NATO grew from 16 to 19 members."
    assert redactor.text(text) == text


def test_redaction_extra_patterns_and_kinds() -> None:
    custom = Redactor(kinds=["email"], extra_patterns=[r"ticket-\d+"])
    assert custom.text("a@b.io ticket-42 +1 555 123 4567") == (
        "[email redacted] [redacted] +1 555 123 4567"
    )


@given(
    value=st.text()
    | st.builds(
        lambda lead, rest: lead + rest,
        st.sampled_from([*sorted(FORMULA_STARTS | CONTROL_STARTS), " =", "  +"]),
        st.text(),
    )
    | st.integers(min_value=10**15).map(str)
)
def test_no_exported_cell_starts_a_formula_and_none_changes_meaning(value: str) -> None:
    cell = safe_cell(value)
    assert cell[:1] not in CONTROL_STARTS
    assert cell.lstrip()[:1] not in FORMULA_STARTS
    assert cell in (value, "'" + value)  # only ever marked as text, never altered
    buffer = io.StringIO()
    csv.writer(buffer).writerow([cell])
    assert next(csv.reader(io.StringIO(buffer.getvalue()))) == [cell]


TENANTS = ["guild-a", "guild-b", "workspace-c"]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    scope=st.sets(st.sampled_from(TENANTS), min_size=1, max_size=2),
    platform=st.none() | st.sampled_from(["discord", "slack"]),
    tenant=st.none() | st.sampled_from(TENANTS),
    refused=st.none() | st.booleans(),
    flagged=st.none() | st.booleans(),
    search=st.none() | st.sampled_from(["q", "1", "%", "_", "guild"]),
    offset=st.integers(0, 5),
    probe=st.integers(0, 29),
)
def test_scoped_queries_never_return_other_tenants(
    populated: tuple[SqlConversationLog, list[str], list[str]],
    scope: set[str],
    platform: str | None,
    tenant: str | None,
    refused: bool | None,
    flagged: bool | None,
    search: str | None,
    offset: int,
    probe: int,
) -> None:
    log, ids, owners = populated
    view = log.scoped(scope)
    where = ExchangeFilter(
        platform=platform,
        tenant=tenant,
        refused=refused,
        flagged=flagged,
        search=search,
        offset=offset,
    )
    assert all(item.tenant in scope for item in view.list_exchanges(where).items)
    assert all(item.tenant in scope for item in view.iter_exchanges(where))
    assert all(flag.tenant in scope for flag in view.flags(status=None))
    exchanges_seen = sum(day.exchanges for day in view.stats())
    assert exchanges_seen == sum(owner in scope for owner in owners)
    try:
        found = view.get_exchange(ids[probe])
        assert found.tenant in scope
    except NotFoundError:
        assert owners[probe] not in scope


@pytest.fixture(scope="module")
def populated(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[SqlConversationLog, list[str], list[str]]]:
    path: Path = tmp_path_factory.mktemp("iso")
    log = open_sql_log(sqlite_url(path), path)
    ids: list[str] = []
    owners: list[str] = []
    start = datetime(2026, 2, 1, tzinfo=UTC)
    for index in range(30):
        tenant = TENANTS[index % 3]
        item = exchange(
            f"q{index} from {tenant}",
            tenant=tenant,
            platform="slack" if tenant.startswith("workspace") else "discord",
            refused=index % 4 == 0,
            received_at=start + timedelta(hours=index),
        )
        log.record(item)
        if index % 5 == 0:
            log.flag(item.id, "reporter", "check")
        ids.append(item.id)
        owners.append(tenant)
    yield log, ids, owners
    log.close()
