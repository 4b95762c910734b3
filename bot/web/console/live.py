"""The console's WebSocket: every turn and queue change, live, for as long as the session lasts."""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from bot.web.console.auth import session_agent, visit
from bot.web.schemas import error_responses
from bot.web.security import same_host
from bot.web.state import services_of

router = APIRouter(prefix="/console", responses=error_responses(401, 403, 422))
REVALIDATE_S = 30.0  # an open console WebSocket re-checks its session this often (and on each ping)


async def _still_logged_in(websocket: WebSocket) -> bool:
    return (await visit(websocket, fresh=True)).agent is not None


async def _watch(websocket: WebSocket, ended: asyncio.Event) -> None:
    """Backstop for a missed `sessions_ended` event, and sessions that simply expire."""
    while not ended.is_set():
        await asyncio.sleep(REVALIDATE_S)
        if not await _still_logged_in(websocket):
            ended.set()


async def _pings(websocket: WebSocket, agent_id: int, ended: asyncio.Event) -> None:
    """Pings keep the agent marked online, while the session lasts; returns when the client goes."""
    queue = services_of(websocket).queue
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            if (await websocket.receive())["type"] == "websocket.disconnect":  # any frame is a ping
                return
            if not await _still_logged_in(websocket):
                ended.set()
                return
            await queue.heartbeat(str(agent_id))


@router.websocket("/ws")
async def console_socket(websocket: WebSocket) -> None:
    """Every turn and queue change, live, to logged-in agents (via Redis pub/sub: all replicas),
    for as long as the session lasts: a logout, password change or disabled account closes it."""
    services = services_of(websocket)
    origin = websocket.headers.get("origin")
    if origin and not same_host(origin, websocket.headers.get("host")):
        await websocket.close(code=1008, reason="origin not allowed")  # cross-site WebSocket hijacking
        return
    agent = await session_agent(websocket)
    if agent is None:
        await websocket.close(code=1008, reason="login required")
        return
    await websocket.accept()
    await services.queue.heartbeat(str(agent.id))
    ended = asyncio.Event()

    async def forward(event: dict) -> None:
        if event.get("type") == "sessions_ended":  # for the server side only
            if event.get("agent") == str(agent.id) and not await _still_logged_in(websocket):
                ended.set()
            return
        if event.get("type") == "turn":
            event = {"type": "turn", "conversation_id": event["conversation_id"]}
        await websocket.send_json(event)

    # The app owns these tasks (bot.background): they are ended at shutdown whatever happens here.
    owner, gone = websocket.app.state.tasks, (WebSocketDisconnect, RuntimeError, OSError)
    channels = [services.queue.console_channel, services.store.channel]
    tasks = [owner.spawn(services.store.follow(channels, forward), name="console-pushes", quiet=gone,
                         endless=True),
             owner.spawn(_watch(websocket, ended), name="console-watch", quiet=gone, endless=True)]
    pings = owner.spawn(_pings(websocket, agent.id, ended), name="console-pings", quiet=gone, endless=True)
    stop = owner.spawn(ended.wait(), name="console-ended", endless=True)
    try:
        await asyncio.wait({pings, stop}, return_when=asyncio.FIRST_COMPLETED)
        if ended.is_set():  # (the client may have gone at the same moment)
            with contextlib.suppress(RuntimeError, WebSocketDisconnect, OSError):
                await websocket.close(code=1008, reason="session ended")
    finally:
        await owner.stop(*tasks, pings, stop)  # cancelled and awaited: the pub/sub connection is closed
