"""Browser-facing hardening: security headers, CORS for the widget's origins, WebSocket origin checks.

Headers (`SecurityHeaders`):
- every response: `X-Content-Type-Options: nosniff`, a `Referrer-Policy`, and, when the app is served
  over HTTPS (`Settings.cookie_secure`), `Strict-Transport-Security`;
- our HTML pages (demo page, console, log-in, admin): a Content-Security-Policy without inline
  scripts (`default-src 'self'`, `connect-src 'self'` plus ws/wss of this host, `frame-ancestors
  'none'`), `X-Frame-Options: DENY`, `Cross-Origin-Opener-Policy`. FastAPI's /docs and /redoc
  (inline scripts, CDN assets) keep their own behaviour;
- /static/widget.js stays loadable from any site (`Cross-Origin-Resource-Policy: cross-origin`,
  `Access-Control-Allow-Origin: *` so `<script crossorigin integrity=...>` works too); the console's
  scripts and styles are `same-origin`;
- the console (pages, API, redirects): `Cache-Control: no-store` (conversations are personal
  data; a shared or back-button cache must not keep them).

The widget puts its stylesheet into a `<style>` element of its shadow root; the pages that embed it
allow exactly that stylesheet by its SHA-256 (read from widget.js at start-up), not 'unsafe-inline'.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
from pathlib import Path
from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
WIDGET_ASSETS = ("/static/widget.js", "/static/widget.css")
OWN_DOCS = ("/docs", "/redoc")  # FastAPI's pages: inline scripts and CDN assets of their own
CONSOLE = "/console"
PRIVATE_API = ("/api/v1/conversations", "/webhooks/rest/", "/model/parse")
# Public API paths a widget on another site calls (the REST API and Rasa's REST channel and parse).
CORS_PREFIXES = ("/api/v1/", "/webhooks/rest/", "/model/parse")
_HOST = re.compile(r"^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$")
_WIDGET_CSS = re.compile(r"var\s+CSS\s*=\s*(\[.*?\])\s*\.join\(\s*\"\"\s*\)", re.S)


def widget_style_hashes(widget_js: Path = STATIC / "widget.js") -> list[str]:
    """CSP sources for the stylesheet widget.js builds (`var CSS = [...].join("")`)."""
    try:
        found = _WIDGET_CSS.search(widget_js.read_text(encoding="utf-8"))
        css = "".join(json.loads(found.group(1))) if found else None
    except (OSError, ValueError, TypeError):
        css = None
    if css is None:
        log.warning("could not read the widget's stylesheet from %s: the demo page's CSP will block it",
                    widget_js.name)
        return []
    digest = base64.b64encode(hashlib.sha256(css.encode("utf-8")).digest()).decode()
    return [f"'sha256-{digest}'"]


def content_security_policy(host: str | None, style_sources: list[str] | tuple[str, ...] = ()) -> str:
    connect = ["'self'"]
    if host and _HOST.match(host):
        connect += [f"ws://{host}", f"wss://{host}"]
    directives = [
        "default-src 'self'", "script-src 'self'", "style-src " + " ".join(["'self'", *style_sources]),
        "img-src 'self' data: blob:", "font-src 'self'", "connect-src " + " ".join(connect),
        "object-src 'none'", "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'",
    ]
    return "; ".join(directives)


def same_host(origin: str, host: str | None) -> bool:
    try:
        return bool(host) and urlsplit(origin).netloc.lower() == str(host).lower()
    except ValueError:
        return False


def origin_allowed(origin: str | None, host: str | None, allowed: list[str]) -> bool:
    """Browsers send Origin on cross-site WebSocket handshakes and never let a page forge it: our own
    host and the configured widget origins may connect; clients that send no Origin are not browsers."""
    if not origin:
        return True
    return "*" in allowed or origin.rstrip("/").lower() in allowed or same_host(origin, host)


class SecurityHeaders:
    def __init__(self, app: ASGIApp, https: bool = False, widget_styles: list[str] | None = None) -> None:
        self.app = app
        self.https = https
        self.widget_styles = widget_styles if widget_styles is not None else widget_style_hashes()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        # The Host header names ws://host in connect-src; a forged one only harms its own sender.
        host = next((v.decode("latin-1") for k, v in scope.get("headers") or [] if k == b"host"), None)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.decorate(path, host, MutableHeaders(scope=message))
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def decorate(self, path: str, host: str | None, headers: MutableHeaders) -> None:
        console = path == CONSOLE or path.startswith(CONSOLE + "/")
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "no-referrer" if console else "strict-origin-when-cross-origin")
        if self.https:
            headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        ctype = headers.get("content-type", "")
        if ctype.startswith("text/html") and not path.startswith(OWN_DOCS):
            styles = [] if console else self.widget_styles
            headers["Content-Security-Policy"] = content_security_policy(host, styles)
            headers["X-Frame-Options"] = "DENY"
            headers["Cross-Origin-Opener-Policy"] = "same-origin"
            headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
        if path in WIDGET_ASSETS:
            headers["Cross-Origin-Resource-Policy"] = "cross-origin"
            headers["Access-Control-Allow-Origin"] = "*"
        elif path.startswith("/static/"):
            headers.setdefault("Cross-Origin-Resource-Policy", "same-origin")
        # A route that chose a private (browser-only) cache keeps it: a customer's photo, served by
        # an id that never changes what it names.
        kept = "private" in headers.get("cache-control", "")
        if path.startswith(PRIVATE_API) and not kept:  # a conversation is personal data: never cached
            headers["Cache-Control"] = "no-store"
        if console and not kept:  # pages and API alike: conversations are personal, sessions private
            headers["Cache-Control"] = "no-store"


class ScopedCORS:
    """Starlette's CORSMiddleware on the public API paths only, for `Settings.widget_origins` (none
    configured: no CORS headers at all, i.e. same origin only). socket.io does its own (same list)."""

    def __init__(self, app: ASGIApp, origins: list[str], prefixes: tuple[str, ...] = CORS_PREFIXES) -> None:
        self.app = app
        self.prefixes = prefixes
        self.cors = CORSMiddleware(
            app, allow_origins=origins, allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", "X-Request-ID", "X-Conversation-Token", "X-Message-Id"],
            expose_headers=["Retry-After", "X-Request-ID"],
            allow_credentials=False, max_age=600) if origins else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.cors is not None and scope["type"] == "http" and scope["path"].startswith(self.prefixes):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)
