"""The app's services, typed: routes reach them through here rather than the untyped `app.state`."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from starlette.applications import Starlette
from starlette.requests import HTTPConnection

if TYPE_CHECKING:
    from bot.services import Services


def services_of(conn: HTTPConnection) -> Services:
    """The Services the lifespan built, for a request or a WebSocket."""
    return app_services(conn.app)


def app_services(app: Starlette) -> Services:
    return cast("Services", app.state.services)
