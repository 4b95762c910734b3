"""Twilio Programmable Messaging (SMS) channel.

Twilio signs each webhook with `X-Twilio-Signature`: base64(HMAC-SHA1(auth token, URL + each POST
parameter's name and value, sorted by name)). The URL must be the one Twilio called, which a TLS
proxy hides from us, hence `public_base_url`. SMS has no buttons: they go out as a numbered list.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import httpx

from bot.channels.base import (
    UNSUPPORTED,
    Answer,
    ChannelError,
    Conversation,
    InboundRequest,
    RateLimiter,
    buttons_as_text,
    split_text,
)
from bot.config import Settings, reveal
from bot.outbound import RetryPolicy
from bot.types import Message, Reply

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "x-twilio-signature"
BODY_LIMIT = 1600  # Messages resource: Body is at most 1600 characters
RATE_PER_S = 1.0  # a long-code number sends about one message per second
E164 = re.compile(r"^\+\d{1,15}$")
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def signature(auth_token: str, url: str, params: list[tuple[str, str]]) -> str:
    """Twilio's webhook signature: the URL, then every POST parameter as name + value, sorted by
    name (repeated names by value), HMAC-SHA1 with the auth token, base64."""
    data = url + "".join(k + v for k, v in sorted(params))
    mac = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode()


def url_variants(url: str) -> list[str]:
    """The URL as given, without its port and with the scheme's default port: Twilio's own
    validators accept either, as its signing is not consistent about ports."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.netloc.startswith("[") or not host:  # IPv6 literals and oddities: as given only
        return [url]
    userinfo = parts.netloc.rpartition("@")[0]
    prefix = f"{userinfo}@" if userinfo else ""
    bare = urlunsplit(parts._replace(netloc=prefix + host))
    default = {"https": 443, "http": 80}.get(parts.scheme)
    ported = urlunsplit(parts._replace(netloc=f"{prefix}{host}:{parts.port or default}"))
    return list(dict.fromkeys([url, bare, ported]))


class TwilioChannel:
    name = "twilio"

    def __init__(self, account_sid: str, auth_token: str, http: httpx.AsyncClient, *,
                 from_number: str | None = None, public_base_url: str | None = None,
                 api_url: str = "https://api.twilio.com") -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.from_number = from_number
        self.public_base_url = public_base_url.rstrip("/") if public_base_url else None
        self.messages_url = f"{api_url.rstrip('/')}/2010-04-01/Accounts/{account_sid}/Messages.json"
        self.http = http
        self._limiters: dict[str, RateLimiter] = {}  # per sending number: the limit is the number's
        self.retry = RetryPolicy.of(logger=log)

    def signed_url(self, request: InboundRequest) -> str:
        """The URL Twilio called: our public base + the path and raw query, else what we received."""
        if not self.public_base_url:
            return request.url
        query = request.raw_query
        return self.public_base_url + request.path + (f"?{query}" if query else "")

    async def parse(self, request: InboundRequest) -> list[Message]:
        given = request.headers.get(SIGNATURE_HEADER)
        if not given:
            raise ChannelError(401, "bad_signature", f"missing {SIGNATURE_HEADER} header")
        try:
            params = parse_qsl(request.body.decode("utf-8"), keep_blank_values=True)
        except (UnicodeDecodeError, ValueError) as exc:
            raise ChannelError(400, "invalid_payload", "body is not form-encoded UTF-8") from exc
        url = self.signed_url(request)
        if not any(hmac.compare_digest(given.encode(), signature(self.auth_token, u, params).encode())
                   for u in url_variants(url)):
            raise ChannelError(403, "bad_signature", "X-Twilio-Signature does not match")
        form = dict(params)
        if "MessageStatus" in form or form.get("SmsStatus", "received") != "received":
            return []  # a status callback (sent, delivered, failed...), not a message to us
        sender, to = form.get("From", ""), form.get("To", "")
        message_sid = form.get("MessageSid") or form.get("SmsSid")
        if not sender or not to or not message_sid:
            raise ChannelError(400, "invalid_payload", "From, To and MessageSid are required")
        metadata = {"phone": sender, "to": to}
        text = form.get("Body", "")
        if not text.strip():
            try:
                num_media = int(form.get("NumMedia") or 0)
            except ValueError as exc:
                raise ChannelError(400, "invalid_payload", "NumMedia is not a number") from exc
            if num_media <= 0:
                return []  # an empty SMS: nothing to answer
            text, metadata[UNSUPPORTED] = "", form.get("MediaContentType0", "").partition("/")[0] or "media"
        return [Message(channel=self.name, conversation_id=conversation_id(sender), message_id=message_sid,
                        text=text, sender_id=sender, metadata=metadata)]

    def ack(self) -> Answer:
        """Empty TwiML: Twilio expects XML back, and our replies go out through the REST API."""
        return Answer(EMPTY_TWIML, "text/xml")

    def conversation(self, message: Message) -> Conversation:
        return Conversation(message.conversation_id,
                            {"phone": message.metadata["phone"], "to": message.metadata.get("to")})

    async def send(self, conversation: Conversation, replies: list[Reply]) -> None:
        sender = self.from_number or conversation.address.get("to")
        if not sender:
            raise ValueError("no number to send from: set twilio_from_number")
        limiter = self._limiters.setdefault(sender, RateLimiter(RATE_PER_S))
        # A Messaging Service sid (MG...) picks the number itself from its pool.
        origin = {"MessagingServiceSid" if sender.startswith("MG") else "From": sender}
        for reply in replies:
            for part in split_text(buttons_as_text(reply), BODY_LIMIT):
                await self.retry.request(self.http, "POST", self.messages_url, limiter=limiter,
                                         auth=(self.account_sid, self.auth_token),
                                         data={"To": conversation.address["phone"], **origin, "Body": part})


def conversation_id(number: str) -> str:
    """E.164 numbers keep their digits (the + is implied); anything else (whatsapp:+1..., short
    codes) is hashed, so that the two kinds never collide."""
    if E164.match(number):
        return f"twilio-{number[1:]}"
    return "twilio-" + hashlib.sha1(number.encode()).hexdigest()


def from_settings(settings: Settings, http: httpx.AsyncClient) -> TwilioChannel | None:
    """None when the channel's secrets are not configured."""
    if not settings.twilio.account_sid or not settings.twilio.auth_token:
        return None
    if not settings.web.public_base_url:
        log.warning("twilio: public_base_url is not set; signatures are checked against the URL we "
                    "receive, which fails behind a proxy that rewrites scheme, host or port")
    return TwilioChannel(
        settings.twilio.account_sid,
        reveal(settings.twilio.auth_token) or "",
        http,
        from_number=settings.twilio.from_number,
        public_base_url=settings.web.public_base_url,
        api_url=settings.twilio.api_url,
    )
