"""The FastAPI application factory: API, health checks, metrics, the demo page and the widget."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import socketio
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bot import __version__
from bot.background import TaskSet
from bot.channels import enabled_channels, rasa
from bot.channels.webhook import ChannelHub
from bot.config import Settings
from bot.services import FROM_SETTINGS, Services, build_services
from bot.web import api, console, errors, privacy
from bot.web.limits import BodyLimit, HeaderLimit
from bot.web.ratelimit import Limiter, RateLimit
from bot.web.request_id import RequestId
from bot.web.secrets import conversation_id_key, secret_key
from bot.web.security import ScopedCORS, SecurityHeaders

STATIC = Path(__file__).parent / "static"


def create_app(settings: Settings, models: tuple | None = None, generator: object = FROM_SETTINGS) -> FastAPI:
    """`generator` replaces the one `settings.generation` describes (tests pass their own)."""

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
            app.state.limiter = Limiter(services.store.r, settings.key_prefix, settings.rate_limit,
                                        services.metrics, settings.trusted_proxies)
            bridge = _chatwoot(settings, services)
            if bridge is not None:
                app.include_router(bridge.router())
            http = httpx.AsyncClient(timeout=10.0)
            hub = ChannelHub(enabled_channels(settings, http), services, app.state.limiter,
                             id_key=app.state.conversation_key)
            app.state.channels = hub
            app.include_router(hub.router())
            tasks = app.state.tasks = TaskSet("background task")
            # `supportbot serve` calls this as it stops taking requests: an Engine.IO long-poll whose
            # client has gone would otherwise hold the shutdown for the whole grace period.
            app.state.stopping = lambda: rasa.close_socketio(app.state.socketio)
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
                await rasa.close_socketio(app.state.socketio)
                await http.aclose()

    otel = settings.otel  # off: FastAPI skips its per-request check for a configured provider
    app = FastAPI(title="supportbot", version=__version__, lifespan=lifespan,
                  telemetry={"tracing": otel, "metrics": otel, "logs": otel},
                  description="Customer-service chatbot API: conversations, health, metrics.")
    errors.install(app)
    app.state.conversation_key = conversation_id_key(settings)
    # The console's cookie holds only a signed session id; the sessions live in Redis (console.py).
    app.state.console_cookie = console.ConsoleCookie(secret_key(settings), settings.console_session_s,
                                                     settings.cookie_secure)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes,
                       json_prefixes=("/api/", "/console/api/"))
    app.add_middleware(RateLimit, limiter=lambda: getattr(app.state, "limiter", None))
    app.add_middleware(ScopedCORS, origins=settings.widget_origins)

    app.add_middleware(RequestId)
    app.add_middleware(HeaderLimit, max_bytes=settings.max_header_bytes)
    app.add_middleware(SecurityHeaders, https=settings.cookie_secure)  # outermost: every answer gets them

    app.include_router(api.router)
    app.include_router(console.router)
    app.include_router(privacy.router)
    app.include_router(rasa.router)
    sio = rasa.socketio_server(app, settings.widget_origins, settings.max_body_bytes)
    app.mount("/socket.io", socketio.ASGIApp(sio, socketio_path="socket.io"))
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def demo_page() -> FileResponse:
        return FileResponse(STATIC / "demo.html")

    @app.get("/healthz", summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", summary="Models loaded, Redis and the database reachable")
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

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        return Response(generate_latest(request.app.state.services.metrics.registry),
                        media_type=CONTENT_TYPE_LATEST)

    return app


DRAIN_S = 10.0  # the background turns' grace period when no server set one (tests, other servers)


def _grace_left(app: FastAPI) -> float:
    """What is left of the grace period that `supportbot serve` started at the signal."""
    deadline = getattr(app.state, "shutdown_deadline", None)
    return DRAIN_S if deadline is None else max(0.0, deadline - time.monotonic())


def _chatwoot(settings: Settings, services: Services):  # type: ignore[no-untyped-def]
    """The optional Chatwoot Agent Bot bridge, when its URL and token are configured."""
    if not (settings.chatwoot_url and settings.chatwoot_api_token):
        return None
    from bot.handoff.chatwoot import ChatwootBridge, ChatwootConfig

    config = ChatwootConfig(base_url=settings.chatwoot_url, api_token=settings.chatwoot_api_token,
                            webhook_token=settings.chatwoot_webhook_token)
    return ChatwootBridge(config, services.pipeline, services.store, services.handoff, services.store.r,
                          prefix=settings.key_prefix, id_key=conversation_id_key(settings))
