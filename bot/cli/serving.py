"""Commands that run the bot: serve (the web app, shut down gracefully) and chat (in the terminal)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import time
import uuid
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from bot.cli.common import RASA_OPTION, console
from bot.cli.common import load_settings as _settings
from bot.config import Settings


def serve_cmd(
    host: str | None = typer.Option(None, help="Address to bind (default SUPPORTBOT_HOST; 0.0.0.0 in a "
                                    "container)."),
    port: int | None = typer.Option(None, help="Port (default SUPPORTBOT_PORT)."),
    graceful_timeout: float = typer.Option(
        20.0, min=0, help="On SIGTERM/SIGINT: stop accepting, then give in-flight requests this many "
        "seconds before closing them (WebSockets are closed at once; clients reconnect)."),
    rasa: Path | None = RASA_OPTION,
) -> None:
    """Train and index first if needed, then serve the API and the demo page."""
    import uvicorn

    from bot.assets import ensure_assets
    from bot.observability import configure_logging, secret_values
    from bot.web.app import create_app
    from bot.web.limits import websocket_max_size

    settings = _settings(rasa)
    ensure_assets(settings, console)
    configure_logging(secrets=secret_values(settings))
    host, port = host or settings.web.host, port or settings.web.port
    console.print(f"supportbot is up: open http://{host}:{port}/ (API docs at /docs)")
    # X-Forwarded-For/-Proto are believed from Settings.trusted_proxies only (uvicorn's default would
    # trust 127.0.0.1), the same list the rate limits use.
    config = uvicorn.Config(create_app(settings), host=host, port=port, log_config=None,
                            # uvicorn types it int; it is a wait_for timeout, so a float is fine
                            timeout_graceful_shutdown=graceful_timeout,  # type: ignore[arg-type]
                            ws_max_size=websocket_max_size(settings.limits.max_body_bytes),
                            forwarded_allow_ips=list(settings.web.trusted_proxies))
    _run_server(config, graceful_timeout)


LEFTOVER_TIMEOUT_S = 5.0  # after the app's shutdown, for tasks nobody owns (python-engineio's pings)


def _run_server(config: Any, graceful_timeout: float) -> None:
    """`uvicorn.run`, made to end: SIGINT and SIGTERM both shut down gracefully and exit 0 (SIGHUP,
    a closed terminal, too); the app learns when its grace period started (`shutdown_deadline`,
    for its background turns) and may act on it (`stopping`); and the tasks still running once it
    has shut down are cancelled with a time limit. asyncio's runner would cancel them once and
    then wait without one: for ever, where a task swallowed the cancellation (bot.background)."""
    import signal

    server = _graceful_server(config, graceful_timeout)
    # uvicorn handles SIGINT and SIGTERM while it serves, then restores the handlers it found and
    # raises the signal again. With the default one SIGTERM would kill the process there (status
    # 143, a crash to Kubernetes) before the leftovers are ended; this one only asks the server to
    # stop (again: a no-op by then), and serves SIGHUP too.
    def stop(signum: int, frame: object) -> None:
        server.handle_exit(signal.SIGTERM, None)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGHUP)}
    runner, stuck = asyncio.Runner(loop_factory=_loop_factory(config)), 0
    try:
        with contextlib.suppress(KeyboardInterrupt):  # uvicorn raises the SIGINT it handled again
            runner.run(server.serve())
        stuck = runner.run(_end_leftovers(LEFTOVER_TIMEOUT_S))
    finally:
        if not stuck:  # else closing the runner would wait for them for ever: exit without it
            runner.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    # The models' half a million objects are freed at exit anyway: no last full collection (it
    # took seconds on 2 cores, after the app's shutdown unfroze them).
    gc.freeze()
    if stuck:
        raise typer.Exit(1)
    if not server.started:
        raise typer.Exit(3)  # uvicorn's STARTUP_FAILURE


def _graceful_server(config: Any, graceful_timeout: float) -> Any:
    """A uvicorn server that tells the app when its grace period started (`shutdown_deadline`) and
    lets it act on it (`stopping`) before shutting down."""
    import uvicorn

    class Server(uvicorn.Server):
        async def shutdown(self, sockets: list[Any] | None = None) -> None:
            state = config.app.state
            state.shutdown_deadline = time.monotonic() + graceful_timeout
            stopping = getattr(state, "stopping", None)
            try:
                if stopping is not None:
                    await stopping()
            except Exception:  # the shutdown itself must go on
                logging.getLogger(__name__).exception("the app's `stopping` failed")
            for connection in list(self.server_state.connections):
                setattr(connection, "shutdown", _quiet(connection.shutdown))  # noqa: B010
            await super().shutdown(sockets)

    return Server(config)


def _quiet(shutdown: Any) -> Any:
    """A connection's `shutdown` that cannot fail the server's: uvicorn's websockets protocol raises
    InvalidState for a WebSocket the client was closing at that moment (exit status 1 on SIGINT)."""
    def call() -> None:
        try:
            shutdown()
        except Exception:  # it is going away anyway
            logging.getLogger(__name__).debug("a connection failed to shut down", exc_info=True)
    return call


def _loop_factory(config: Any) -> Any:
    """The event loop uvicorn's config asks for."""
    if hasattr(config, "get_loop_factory"):
        return config.get_loop_factory()
    config.setup_event_loop()  # older uvicorn sets an event loop policy instead
    return None


async def _end_leftovers(timeout_s: float) -> int:
    """Cancel and await every task but this one; returns how many would not stop."""
    from bot.background import cancel_and_wait

    current = asyncio.current_task()
    left = {t for t in asyncio.all_tasks() if t is not current}
    return len(await cancel_and_wait(left, timeout_s)) if left else 0


def chat_cmd(conversation: str | None = typer.Option(None, help="Continue this conversation id."),
             rasa: Path | None = RASA_OPTION) -> None:
    """Chat with the bot in the terminal, through the same pipeline as the web API."""
    from bot.assets import ensure_assets

    settings = _settings(rasa)
    ensure_assets(settings, console)
    asyncio.run(_chat(settings, conversation or f"cli-{uuid.uuid4().hex[:12]}"))


async def _chat(settings: Settings, conversation_id: str) -> None:
    from rich.text import Text

    from bot.services import build_services
    from bot.types import Message

    async with build_services(settings) as services:
        out = Console()
        out.print(f"[dim]conversation {conversation_id}; empty line or Ctrl-D to quit; "
                  "a button can be chosen by its number[/dim]")
        buttons: list = []
        while True:
            try:
                text = await asyncio.to_thread(input, "you> ")
            except (EOFError, KeyboardInterrupt):
                break
            text = text.strip()
            if not text:
                break
            payload = None
            if text.isdigit() and 0 < int(text) <= len(buttons):
                payload = buttons[int(text) - 1].payload
            msg = Message(channel="cli", conversation_id=conversation_id,
                          message_id=uuid.uuid4().hex, text="" if payload else text, payload=payload)
            replies = await services.pipeline.handle(msg)
            buttons = []
            for reply in replies:
                if reply.text:
                    out.print(Text.assemble(("bot> ", "bold"), reply.text), highlight=False)
                if reply.image:
                    out.print(f"      [image] {reply.image}", markup=False, highlight=False)
                if reply.custom:
                    out.print(f"      [custom] {json.dumps(reply.custom, ensure_ascii=False)}", markup=False,
                              highlight=False)
                for button in reply.buttons:
                    buttons.append(button)
                    out.print(f"      [{len(buttons)}] {button.title}", markup=False, highlight=False)


