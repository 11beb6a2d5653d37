"""The programme dashboard (/inbox/dashboard): the funnel, the weekly arrivals by channel and language, where young
people came from, each organisation's figures and the assistant's health, with filters and a CSV file per table.

Coordinators see the whole programme and may filter by partner; a caseworker sees their own organisation's figures
only (the partner filter is forced to it). Everything shown is an aggregate under the small-cell rule of
bot.services.dashboard; the charts are drawn here as SVG (bot.inbox.charts), so the page keeps its strict
Content-Security-Policy and loads no third-party script.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from bot.inbox import auth, charts, pages, queries, texts
from bot.inbox.auth import Db, Staff
from bot.inbox.pages import render
from bot.models import Role, utcnow
from bot.services import dashboard, partners
from bot.services.dashboard import Cell, Dashboard, FilterError, Filters
from bot.settings import LANGUAGES

router = APIRouter(prefix="/inbox", include_in_schema=False, route_class=pages.PageRoute)  # refusals as pages
CHANNELS = ("telegram", "whatsapp", "web")
HIDDEN = "< 5"
FORMULA = ("=", "+", "-", "@", "\t", "\r")  # a CSV cell starting so would run as a formula in a spreadsheet


def organisations(session: Session) -> dict[str, str]:
    """The organisations figures are given for, by key, with their names: Actiris, the partners of
    knowledge/partners.yml, then any other team of the inbox."""
    names = {"actiris": "Actiris"} | {key: p.name for key, p in partners.finder().knowledge.partners.items()}
    for organisation in queries.organisations(session):
        names.setdefault(organisation.key, organisation.name)
    return names


def _day(value: str | None, default: date, field: str) -> date:
    if not value:
        return default
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise FilterError(f"bad_{field}") from None


Period = Annotated[str | None, Query(max_length=10)]
Choice = Annotated[str | None, Query(max_length=40)]


@dataclass(frozen=True)
class Asked:
    """The filters as the address asks for them (the page's form, a CSV link), not checked yet."""

    start: Period = None
    end: Period = None
    partner: Choice = None
    channel: Choice = None
    language: Choice = None


AskedDep = Annotated[Asked, Depends()]


def filters_of(
    signed: auth.Signed,
    known: Collection[str],
    today: date,
    asked: Asked,
) -> Filters:
    """The filters asked for, checked; a caseworker's partner is always their own organisation."""
    default = Filters.last_weeks(today)
    chosen = Filters(
        start=_day(asked.start, default.start, "start"),
        end=_day(asked.end, default.end, "end"),
        partner=asked.partner or None,
        channel=asked.channel or None,
        language=asked.language or None,
    ).checked(CHANNELS, LANGUAGES)
    if signed.account.role == Role.CASEWORKER:
        own = signed.account.organisation.key if signed.account.organisation is not None else None
        if own is None:
            raise HTTPException(status_code=403, detail="a caseworker without an organisation has no figures")
        return Filters(chosen.start, chosen.end, own, chosen.channel, chosen.language)
    if chosen.partner is not None and chosen.partner not in known:
        raise FilterError("unknown_partner")
    return chosen


def _compute(request: Request, session: Db, signed: auth.Signed, asked: Asked) -> tuple[Dashboard, str | None]:
    """The dashboard for the query's filters, or for the default ones with the error's code when they are wrong."""
    zone = ZoneInfo(auth.settings_of(request).timezone)
    today = utcnow().astimezone(zone).date()
    known = organisations(session)
    error = None
    try:
        filters = filters_of(signed, known, today, asked)
    except FilterError as wrong:
        error = wrong.code
        filters = filters_of(signed, known, today, Asked())
    return dashboard.build(session, filters, zone, shown_for(signed, known)), error


def shown_for(signed: auth.Signed, known: Mapping[str, str]) -> list[str]:
    """The organisations whose rows an account sees: every one for a coordinator, their own for a caseworker."""
    if signed.account.role == Role.CASEWORKER and signed.account.organisation is not None:
        return [signed.account.organisation.key]
    return list(known)


@router.get("/dashboard")
def page(request: Request, session: Db, signed: Staff, asked: AskedDep) -> Response:
    """The dashboard page; wrong filters show the default figures with what was wrong (400)."""
    board, error = _compute(request, session, signed, asked)
    names = organisations(session)
    language_ = texts.language_of(request, signed)

    def t(key: str, **values: Any) -> str:
        return texts.text(key, language_, **values)

    return render(
        request,
        "dashboard.html",
        signed,
        400 if error else 200,
        board=board,
        error=error,
        charts=_charts(board, t, names),
        partner_name=lambda key: names.get(key, key),
        organisations=names,
        channels=CHANNELS,
        languages=LANGUAGES,
        hidden=HIDDEN,
        query=_query(board.filters),
        is_caseworker=signed.account.role == Role.CASEWORKER,
        retention_months=auth.settings_of(request).retention_months,
    )


def _charts(board: Dashboard, t: Any, names: Mapping[str, str]) -> dict[str, Any]:
    """The page's SVG charts, their labels in the reader's language."""
    shared = {"hidden": HIDDEN, "empty": t("dashboard.empty")}
    weeks = [week.strftime("%d/%m") for week in board.by_channel.weeks]
    made = {
        "funnel": charts.funnel(
            [(t(f"dashboard.step_{step.key}"), step.count) for step in board.funnel],
            title=t("dashboard.funnel_title"),
            **shared,
        ),
        "sources": charts.bars(
            [(source_label(key, t, names), count) for key, count in board.sources],
            title=t("dashboard.sources_title"),
            **shared,
        ),
    }
    for name, group, series in (
        ("channels", "channel", board.by_channel),
        ("languages", "language", board.by_language),
    ):
        made[name] = charts.weekly_bars(
            weeks,
            {t(f"dashboard.{group}_{key}"): values for key, values in series.series.items()},
            title=t(f"dashboard.{name}_title"),
            **shared,
        )
    return made


def source_label(key: str, t: Any, names: Mapping[str, str]) -> str:
    """A deep-link source as a reader knows it: "none" translated, a partner's poster by the partner's name."""
    if key == "none":
        return str(t("dashboard.source_none"))
    return names.get(key.removeprefix("src_"), key)


def _query(filters: Filters) -> str:
    """The filters as a query string, for the CSV links."""
    values = {"start": filters.start.isoformat(), "end": filters.end.isoformat()}
    optional = {"partner": filters.partner, "channel": filters.channel, "language": filters.language}
    values |= {key: value for key, value in optional.items() if value}
    return urlencode(values)


@router.get("/dashboard/{table}.csv")
def table_csv(request: Request, session: Db, signed: Staff, table: str, asked: AskedDep) -> Response:
    """One table of the dashboard as a CSV file (UTF-8 with a byte-order mark, so spreadsheets read the accents)."""
    zone = ZoneInfo(auth.settings_of(request).timezone)
    names = organisations(session)
    try:
        filters = filters_of(signed, names, utcnow().astimezone(zone).date(), asked)
    except FilterError as wrong:
        raise HTTPException(status_code=400, detail=f"wrong filter: {wrong.code}") from None
    tables = dashboard.build(session, filters, zone, shown_for(signed, names)).tables()
    if table not in tables:
        raise HTTPException(status_code=404, detail=f"no table {table!r}: {', '.join(sorted(tables))}")
    language_ = texts.language_of(request, signed)
    rows = tables[table]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([_header(column, table, language_) for column in rows.columns])
    for row in rows.rows:
        writer.writerow([_cell(row[0], table, language_, names), *(_cell(value) for value in row[1:])])
    name = f"dashboard-{table}-{filters.start.isoformat()}-{filters.end.isoformat()}.csv"
    return Response(
        "\ufeff" + out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _header(column: str, table: str, language: str) -> str:
    """A CSV column's title: a channel or a language by its name in the weekly tables."""
    group = {"channels": "channel", "languages": "language"}.get(table)
    if group is not None and column != "week":
        return texts.text(f"dashboard.{group}_{column}", language)
    return texts.text(f"dashboard.col_{column}", language)


def _cell(value: Cell, table: str | None = None, language: str = "en", names: Mapping[str, str] | None = None) -> str:
    """A CSV cell: hidden counts as "< 5", a row's key translated, nothing a spreadsheet would run."""
    if value is None:
        return HIDDEN
    text = str(value)
    if table == "funnel":
        text = texts.text(f"dashboard.step_{value}", language)
    elif table == "partners" and names is not None:
        text = names.get(text, text)
    elif table == "sources" and names is not None:
        text = source_label(text, lambda key: texts.text(key, language), names)
    elif table == "health":
        text = texts.text(f"dashboard.health_{value}", language)
    return "'" + text if text.startswith(FORMULA) else text
