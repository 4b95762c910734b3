"""The analytics page (`/console/analytics`), its JSON (`GET /console/api/analytics`) and its CSV export
(`GET /console/api/analytics.csv`): admins only (a logged-in admin, or the admin API key).

Filters (query parameters, all optional): `from`, `to` (YYYY-MM-DD, UTC, both included; default the
last 30 days), `channel`, `language`, `bucket` (`day` or `week`). `charts=true` adds the page's
server-rendered SVG charts (bot/web/console/charts.py). The numbers come from the analytics rollup
(bot/storage/analytics_rollup.py: the reference queries of bot/storage/analytics.py over per-day rows).
"""

from __future__ import annotations

import asyncio
import csv
import io
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import FileResponse, RedirectResponse

from bot.handoff.agents import AgentInfo
from bot.similar import group_similar
from bot.storage.analytics import BUCKETS, DEFAULT_DAYS, MAX_DAYS, Filters, GroupQuestions
from bot.storage.analytics_rollup import RollupAnalytics
from bot.web.console.auth import admin_caller, presented_api_key, session_agent
from bot.web.console.charts import report_charts
from bot.web.console.session import STATIC
from bot.web.errors import ApiError
from bot.web.schemas import error_responses
from bot.web.state import services_of

router = APIRouter(prefix="/console", responses=error_responses(401, 403, 422))

CSV_COLUMNS = ("bucket", "conversations", "messages", "resolved", "resolution_rate", "handed_off",
               "handoff_rate", "confirmed", "up", "down", "yes", "no")


async def analytics_admin(request: Request) -> AgentInfo | None:
    """The admin API key, or a logged-in admin: nobody logged in is 401, an agent 403."""
    if presented_api_key(request) is not None:
        return await admin_caller(request)
    agent = await session_agent(request)
    if agent is None:
        raise ApiError(401, "login_required", "log in to the console as an admin")
    if agent.role != "admin":
        raise ApiError(403, "forbidden", "admins only")
    return agent


def _day(value: str | None, name: str) -> date | None:
    if value is None or value == "":
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise ApiError(422, "invalid_filter", f"{name}: a date as YYYY-MM-DD") from exc


def filters(start: str | None = Query(None, alias="from", max_length=32, description="YYYY-MM-DD (UTC)"),
            end: str | None = Query(None, alias="to", max_length=32, description="YYYY-MM-DD, included"),
            channel: str | None = Query(None, max_length=32),
            language: str | None = Query(None, max_length=8),
            bucket: str = Query("day", max_length=8, description="`day` or `week`")) -> Filters:
    for name, value in (("channel", channel), ("language", language)):
        if value and not value.isprintable():
            raise ApiError(422, "invalid_filter", f"{name}: printable text only")
    if bucket not in BUCKETS:
        raise ApiError(422, "invalid_filter", "bucket: `day` or `week`")
    to = _day(end, "to") or datetime.now(UTC).date()
    since = _day(start, "from") or to - timedelta(days=DEFAULT_DAYS - 1)
    if since > to:
        raise ApiError(422, "invalid_filter", "from: on or before `to`")
    if (to - since).days >= MAX_DAYS:
        raise ApiError(422, "invalid_filter", f"at most {MAX_DAYS} days at once")
    return Filters(start=since, end=to, channel=channel or None, language=language or None, bucket=bucket)


async def _report(request: Request, f: Filters) -> dict[str, Any]:
    services = services_of(request)
    analytics = RollupAnalytics(services.transcripts.engine, group=_question_grouper(request))
    return (await asyncio.to_thread(analytics.report, f)).as_dict()


SIMILAR_QUESTIONS = 0.6  # cosine of all-MiniLM-L6-v2 vectors: rephrasings of one question are 0.6-0.95
CLUSTERED = 150  # the biggest phrasings clustered (each new one costs an encoder pass); the rest by text
VECTORS_KEPT = 20_000


class _QuestionVectors:
    """The FAQ encoder's vectors of unanswered questions, remembered across page views (the same
    questions come back every morning); bounded, and safe from the report's worker threads."""

    def __init__(self, encode: Callable[[list[str]], np.ndarray]) -> None:
        self.encode = encode
        self.kept: OrderedDict[str, np.ndarray] = OrderedDict()
        self.lock = threading.Lock()

    def __call__(self, texts: list[str]) -> np.ndarray:
        with self.lock:
            missing = [t for t in dict.fromkeys(texts) if t not in self.kept]
        if missing:
            for t, v in zip(missing, self.encode(missing), strict=True):
                with self.lock:
                    self.kept[t] = v
        with self.lock:
            for t in texts:
                self.kept.move_to_end(t)
            while len(self.kept) > VECTORS_KEPT:
                self.kept.popitem(last=False)
            return np.stack([self.kept[t] for t in texts])


def _question_grouper(request: Request) -> GroupQuestions | None:
    """Unanswered questions merged by meaning with the FAQ's encoder (None without one: by text)."""
    embedder = getattr(services_of(request).knowledge, "embedder", None)
    if embedder is None:
        return None
    vectors = getattr(request.app.state, "question_vectors", None)
    if vectors is None:
        vectors = request.app.state.question_vectors = _QuestionVectors(embedder.encode)

    def group(items: list[tuple[str, int]]) -> list[tuple[str, int, list[str]]]:
        if not items:
            return []
        items = sorted(items, key=lambda item: (-item[1], item[0]))
        head, tail = items[:CLUSTERED], items[CLUSTERED:]
        merged = group_similar(head, vectors([text for text, _ in head]), SIMILAR_QUESTIONS)
        return sorted([(g.text, g.count, g.examples) for g in merged] + [(t, n, []) for t, n in tail],
                      key=lambda g: (-g[1], g[0]))
    return group


@router.get("/analytics", include_in_schema=False)
async def analytics_page(request: Request) -> Response:
    agent = await session_agent(request)
    if agent is None:
        return RedirectResponse("/console/login", status_code=303)
    if agent.role != "admin":  # a person in a browser: a page, not a JSON error
        return FileResponse(STATIC / "forbidden.html", status_code=403)
    return FileResponse(STATIC / "analytics.html")


@router.get("/api/analytics",
            description="The analytics page's numbers (admins: console session or API key).")
async def analytics_json(request: Request, f: Filters = Depends(filters),
                         charts: bool = Query(False, description="add the page's SVG charts"),
                         _: AgentInfo | None = Depends(analytics_admin)) -> dict[str, Any]:
    report = await _report(request, f)
    if charts:
        report["charts"] = report_charts(report)
    return report


@router.get("/api/analytics.csv", description="The analytics per day or week as CSV (admins).",
            response_class=Response, responses={200: {"content": {"text/csv": {}}}})
async def analytics_csv(request: Request, f: Filters = Depends(filters),
                        _: AgentInfo | None = Depends(analytics_admin)) -> Response:
    report = await _report(request, f)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in report["series"]:
        writer.writerow(["" if row[c] is None else row[c] for c in CSV_COLUMNS])
    name = f"analytics_{f.start.isoformat()}_{f.end.isoformat()}_{f.bucket}.csv"
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
