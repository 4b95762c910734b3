"""The FastAPI application factory: API, health checks, metrics, the demo page and the widget."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import socketio
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bot import __version__
from bot.background import TaskSet
from bot.channels import enabled_channels
from bot.config import Settings, reveal
from bot.services import FROM_SETTINGS, Services, build_services
from bot.web import api, attachments, console, errors, privacy, rasa_routes
from bot.web.limits import BodyLimit, HeaderLimit
from bot.web.rasa_socketio import close_socketio, socketio_server
from bot.web.ratelimit import Limiter, RateLimit
from bot.web.request_id import RequestId
from bot.web.secrets import conversation_id_key, secret_key
from bot.web.security import ScopedCORS, SecurityHeaders
from bot.web.state import services_of
from bot.web.webhooks import ChannelHub, chatwoot_router

if TYPE_CHECKING:
    from bot.handoff.chatwoot import ChatwootBridge

STATIC = Path(__file__).parent / "static"
health = APIRouter()


def create_app(settings: Settings, models: tuple | None = None, generator: object = FROM_SETTINGS) -> FastAPI:
    """`generator` replaces the one `settings.generation` describes (tests pass their own)."""
    otel = settings.web.otel  # off: FastAPI skips its per-request check for a configured provider
    app = FastAPI(title="supportbot", version=__version__, lifespan=_lifespan(settings, models, generator),
                  telemetry={"tracing": otel, "metrics": otel, "logs": otel},
                  description="Customer-service chatbot API: conversations, health, metrics.")
    errors.install(app)
    app.state.conversation_key = conversation_id_key(settings)
    # The console's cookie holds only a signed session id; the sessions live in Redis (console.py).
    app.state.console_cookie = console.ConsoleCookie(secret_key(settings), settings.console.console_session_s,
                                                     settings.console.cookie_secure)
    _middleware(app, settings)
    app.include_router(api.router)
    app.include_router(attachments.router)
    app.include_router(console.router)
    app.include_router(privacy.router)
    app.include_router(rasa_routes.router)
    sio = socketio_server(app, settings.web.widget_origins, settings.limits.max_body_bytes)
    app.mount("/socket.io", socketio.ASGIApp(sio, socketio_path="socket.io"))
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(health)
    return app


def _middleware(app: FastAPI, settings: Settings) -> None:
    """Added innermost first: the last one added sees a request first."""
    app.add_middleware(BodyLimit, max_bytes=settings.limits.max_body_bytes,
                       json_prefixes=("/api/", "/console/api/"), rules=(attachments.upload_rule(settings),))
    app.add_middleware(RateLimit, limiter=lambda: getattr(app.state, "limiter", None))
    app.add_middleware(ScopedCORS, origins=settings.web.widget_origins)
    app.add_middleware(RequestId)
    app.add_middleware(HeaderLimit, max_bytes=settings.limits.max_header_bytes)
    app.add_middleware(SecurityHeaders, https=settings.console.cookie_secure)  # outermost: on every answer


def _lifespan(settings: Settings, models: tuple | None, generator: object
              ) -> Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with build_services(settings, models, generator) as services:  # type: ignore[arg-type]
            app.state.services = services
            # Models, tokenizers and the index are half a million Python objects that live as long
            # as the process; frozen, the collector stops rescanning them (a full collection took
            # 0.2-0.7 s on 2 cores, a stall for every customer of the replica).
            gc.collect()
            gc.freeze()
            app.state.metrics = services.metrics
            app.state.limiter = Limiter(services.counters, settings.sessions.key_prefix, settings.rate_limit,
                                        services.metrics, settings.web.trusted_proxies)
            async with _channels(app, settings, services):
                yield

    return lifespan


@contextlib.asynccontextmanager
async def _channels(app: FastAPI, settings: Settings, services: Services) -> AsyncIterator[None]:
    """The platform webhooks, the Chatwoot bridge and the app's background tasks, for the app's life."""
    bridge = _chatwoot(settings, services)
    if bridge is not None:
        app.include_router(chatwoot_router(bridge))
    http = httpx.AsyncClient(timeout=10.0)
    hub = ChannelHub(enabled_channels(settings, http), services, app.state.limiter,
                     id_key=app.state.conversation_key)
    app.state.channels = hub
    app.include_router(hub.router())
    tasks = app.state.tasks = TaskSet("background task")
    # `supportbot serve` calls this as it stops taking requests: an Engine.IO long-poll whose
    # client has gone would otherwise hold the shutdown for the whole grace period.
    app.state.stopping = lambda: close_socketio(app.state.socketio)
    try:
        yield
    finally:
        gc.unfreeze()  # a process that builds several apps (the tests) frees the old ones
        # The server has stopped taking requests and closed the WebSockets. The turns still
        # running in the background (socket.io, webhooks, Chatwoot) get what is left of the
        # grace period, then they and the live subscriptions are cancelled and awaited, all
        # before Redis, the database and the models go (build_services).
        drain_s = _grace_left(app)
        await asyncio.gather(tasks.aclose(drain_s), hub.aclose(drain_s),
                             *([bridge.aclose(drain_s)] if bridge is not None else []))
        await close_socketio(app.state.socketio)
        await http.aclose()


@health.get("/", include_in_schema=False)
async def demo_page() -> FileResponse:
    return FileResponse(STATIC / "demo.html")


@health.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@health.get("/readyz", summary="Models loaded, Redis and the database reachable")
async def readyz(request: Request) -> JSONResponse:
    services: Services | None = getattr(request.app.state, "services", None)
    checks = {"models": False, "redis": False, "database": False}
    if services is not None:
        checks["models"] = services.nlu is not None and services.knowledge is not None
        checks["redis"] = await services.store.ping()
        checks["database"] = await asyncio.to_thread(services.transcripts.ping)
    ready = all(checks.values())
    # The generator is optional: while it loads (or if it failed) turns degrade, so it is
    # reported here but does not hold readiness back.
    generation = services.generation.state if services and services.generation else "none"
    return JSONResponse({"status": "ready" if ready else "not_ready", "checks": checks,
                         "generator": generation}, status_code=200 if ready else 503)


@health.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    return Response(generate_latest(services_of(request).metrics.registry),
                    media_type=CONTENT_TYPE_LATEST)


DRAIN_S = 10.0  # the background turns' grace period when no server set one (tests, other servers)


def _grace_left(app: FastAPI) -> float:
    """What is left of the grace period that `supportbot serve` started at the signal."""
    deadline = getattr(app.state, "shutdown_deadline", None)
    return DRAIN_S if deadline is None else max(0.0, deadline - time.monotonic())


def _chatwoot(settings: Settings, services: Services) -> ChatwootBridge | None:
    """The optional Chatwoot Agent Bot bridge, when its URL and token are configured."""
    if not (settings.chatwoot.url and settings.chatwoot.api_token):
        return None
    from bot.handoff.chatwoot import ChatwootBridge, ChatwootConfig

    config = ChatwootConfig(
        base_url=settings.chatwoot.url,
        api_token=reveal(settings.chatwoot.api_token) or "",
        webhook_token=reveal(settings.chatwoot.webhook_token),
    )
    return ChatwootBridge(config, services.pipeline, services.store, services.handoff,
                          id_key=conversation_id_key(settings))
