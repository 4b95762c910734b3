"""What WhatsApp Cloud API and Messenger share: Meta's webhook verification and the Graph API.

Subscribing a callback URL, Meta sends `GET ?hub.mode=subscribe&hub.challenge=...&hub.verify_token=...`
and expects the challenge back when the token is the one set in the App Dashboard. Every notification
is then a POST signed with `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body, keyed with
the app secret>`. Meta signs the body exactly as sent (non-ASCII escaped as \\uXXXX), so the HMAC runs
over the received bytes, never over re-encoded JSON. Notifications carry no timestamp in the signed
part, so there is no replay window: a replay is a redelivery, and redeliveries dedupe by message id.

Graph API errors come back as JSON `{"error": {"code", "message", "is_transient"...}}`, throttling
often as a plain 400: the retry hook `throttled` gives those codes a budget of their own beside the
usual 429/5xx one (`bot.outbound.RetryPolicy`).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from typing import Any

import httpx

from bot.channels.base import Answer, ChannelError, Handshake, InboundRequest, RateLimiter, load_json
from bot.outbound import Again, Backoff, RetryPolicy, status_hint

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "x-hub-signature-256"
SIGNATURE_PREFIX = "sha256="
CONVERSATION_ID_LIMIT = 64
SAFE_ID_RE = re.compile(r"^[A-Za-z0-9_-]+$")
# Graph error codes that mean "slow down" (API, user, page, custom and business-use-case limits,
# Messenger's per-account limit, WhatsApp's throughput and per-user pair limits) and come back as 400.
THROTTLED_CODES = frozenset({4, 17, 32, 613, 80006, 130429, 131056})
THROTTLED_ATTEMPTS = 3
THROTTLED_BASE_DELAY_S = 1.0


class GraphApiError(RuntimeError):
    """A Graph API call failed for good. Its text never holds the request URL (it may carry an
    access token in the query string)."""

    def __init__(self, status: int, code: int | None, message: str) -> None:
        super().__init__(f"Graph API answered {status}: ({code}) {message}")
        self.status, self.code, self.message = status, code, message


def check_handshake(request: InboundRequest, verify_token: str | None) -> None:
    """Answer a subscription GET: always raises (Handshake when the verify token matches)."""
    params = request.query
    mode, token = params.get("hub.mode"), params.get("hub.verify_token")
    challenge = params.get("hub.challenge")
    if mode != "subscribe" or not challenge:
        raise ChannelError(400, "invalid_payload", "not a webhook verification request (hub.mode=subscribe "
                                                   "with a hub.challenge)")
    if not verify_token:
        raise ChannelError(403, "bad_verify_token", "meta_verify_token is not configured")
    if token is None or not hmac.compare_digest(token.encode(), verify_token.encode()):
        raise ChannelError(403, "bad_verify_token", "hub.verify_token does not match")
    raise Handshake(Answer(challenge, "text/plain"))


def signature(body: bytes, app_secret: str) -> str:
    return SIGNATURE_PREFIX + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def verified_body(request: InboundRequest, app_secret: str) -> bytes:
    """The raw body, once its X-Hub-Signature-256 matched."""
    given = request.headers.get(SIGNATURE_HEADER)
    if not given:
        raise ChannelError(401, "bad_signature", f"missing {SIGNATURE_HEADER} header")
    body = request.body
    expected = signature(body, app_secret)
    if not hmac.compare_digest(expected.encode(), given.strip().lower().encode("utf-8", "surrogateescape")):
        raise ChannelError(403, "bad_signature", "signature does not match")
    return body


def entries(body: bytes, object_name: str) -> list[dict[str, Any]]:
    """The notification's `entry` list; [] (and a warning) for another product's notification."""
    try:
        data = load_json(body)
    except ValueError as exc:  # bad UTF-8 and JSONDecodeError are ValueErrors
        raise ChannelError(400, "invalid_payload", "body is not JSON") from exc
    if not isinstance(data, dict) or not isinstance(data.get("object"), str):
        raise ChannelError(400, "invalid_payload", "not a Meta webhook notification (no object)")
    found = data.get("entry")
    if not isinstance(found, list) or not all(isinstance(e, dict) for e in found):
        raise ChannelError(400, "invalid_payload", "entry is not a list of objects")
    if data["object"] != object_name:
        log.warning("ignoring a %r notification on the %r webhook: check the app's subscriptions",
                    data["object"], object_name)
        return []
    return found


def objects(container: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """container[key] as a list of objects ([] when absent); anything else is a malformed body."""
    value = container.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise TypeError(f"{key} is not a list of objects")
    return value


def conversation_id(channel: str, raw: str) -> str:
    """<channel>-<platform id>; ids with other characters than [A-Za-z0-9_-] or too long are hashed."""
    readable = f"{channel}-{raw}"
    if SAFE_ID_RE.match(readable) and len(readable) <= CONVERSATION_ID_LIMIT:
        return readable
    return f"{channel}-" + hashlib.sha1(raw.encode()).hexdigest()


def truncate(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def graph_error(resp: httpx.Response) -> GraphApiError:
    try:
        error = resp.json().get("error") or {}
        code = error.get("code")
        number = int(code) if isinstance(code, int | str) and str(code).isdigit() else None
        return GraphApiError(resp.status_code, number, str(error.get("message") or resp.reason_phrase))
    except (ValueError, AttributeError):
        return GraphApiError(resp.status_code, None, resp.reason_phrase)


def transient(resp: httpx.Response, error: GraphApiError) -> bool:
    if error.code in THROTTLED_CODES:
        return True
    try:
        return resp.json()["error"]["is_transient"] is True
    except (ValueError, KeyError, TypeError):
        return False


def throttled(resp: httpx.Response) -> Again | None:
    """The retry hook: 429 and 5xx as usual; throttling and transient errors, which Meta answers
    with a 400, on a budget of their own."""
    again = status_hint(resp)
    if again is not None or resp.is_success:
        return again
    error = graph_error(resp)
    return Again("throttled", why=f"throttled, code {error.code}") if transient(resp, error) else None


def retry_policy(base_delay: float = 0.5) -> RetryPolicy:
    return RetryPolicy.of(throttled, log, http=Backoff(base_s=base_delay),
                          throttled=Backoff(THROTTLED_ATTEMPTS, THROTTLED_BASE_DELAY_S))


async def graph_post(http: httpx.AsyncClient, url: str, body: dict[str, Any], *, limiter: RateLimiter,
                     retry: RetryPolicy, params: dict[str, str] | None = None,
                     headers: dict[str, str] | None = None) -> dict[str, Any]:
    """POST to the Graph API under `retry` (see `retry_policy`); a final failure is a GraphApiError."""
    try:
        resp = await retry.request(http, "POST", url, limiter=limiter, params=params, headers=headers,
                                   json=body)
    except httpx.HTTPStatusError as exc:
        raise graph_error(exc.response) from None  # the original names the URL (Messenger's: the token)
    try:
        answer = resp.json()
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}
