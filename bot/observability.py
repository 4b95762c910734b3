"""Prometheus metrics and JSON logs. One registry per app so tests can build several apps."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Iterable
from contextvars import ContextVar
from typing import Any
from urllib.parse import unquote, urlsplit

from prometheus_client import CollectorRegistry, Counter, Histogram

from bot.pii import mask_sensitive, redact


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        # Defined in this order (the order /metrics lists them in), one group at a time.
        self._turn_metrics()
        self._failure_metrics()
        self._generation_metrics()
        self._traffic_metrics()

    def _turn_metrics(self) -> None:
        """What each message became: stages, actions, intents, FAQ hits, model batches."""
        self.turn_seconds = Histogram(
            "supportbot_turn_seconds", "Time to handle one message, by stage", ["stage"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.turns = Counter("supportbot_turns_total", "Handled messages by action",
                             ["channel", "action"], registry=self.registry)
        self.duplicates = Counter("supportbot_duplicate_messages_total",
                                  "Redelivered messages answered from the reply cache",
                                  ["channel"], registry=self.registry)
        self.intents = Counter("supportbot_intents_total", "Predicted intents", ["intent"],
                               registry=self.registry)
        self.intent_confidence = Histogram(
            "supportbot_intent_confidence", "Calibrated confidence of the predicted intent", ["intent"],
            registry=self.registry, buckets=(0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99))
        self.faq_hits = Counter("supportbot_faq_hits_total", "Turns answered from the FAQ, by category",
                                ["category"], registry=self.registry)
        self.faq_top_score = Histogram(
            "supportbot_faq_top_score", "Cosine of the best FAQ hit of each searched message",
            registry=self.registry, buckets=(0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0))
        self.inference_batch = Histogram(
            "supportbot_inference_batch_size", "Messages per model call (micro-batching), by model",
            ["model"], registry=self.registry, buckets=(1, 2, 4, 8, 16, 32, 64))

    def _failure_metrics(self) -> None:
        """Failed sends and webhooks, hand-offs, degraded dependencies, rejected requests."""
        self.channel_errors = Counter(
            "supportbot_channel_errors_total",
            "Messaging-channel failures: refused webhooks (bad signature, malformed...) and failed sends",
            ["channel", "code"], registry=self.registry)
        self.handoffs = Counter("supportbot_handoffs_total", "Hand-offs by reason", ["reason"],
                                registry=self.registry)
        self.degraded = Counter("supportbot_degraded_total",
                                "Dependencies that failed and were worked around",
                                ["dependency"], registry=self.registry)
        self.errors = Counter("supportbot_request_errors_total", "Rejected requests by error code",
                              ["code"], registry=self.registry)
        self.model_failures = Counter(
            "supportbot_model_failures_total",
            "Messages a model call failed on alone (its batch neighbours were retried without it)",
            ["stage"], registry=self.registry)

    def _generation_metrics(self) -> None:
        """The generative fallback: outcomes, degradations, guard interventions, latency."""
        self.generation = Counter("supportbot_generation_total",
                                  "Generative answers by outcome (answered, unsure, refused, degraded)",
                                  ["status", "reason"], registry=self.registry)
        self.generation_degraded = Counter(
            "supportbot_generation_degraded_total",
            "Turns that fell back to the best FAQ hit or a hand-off offer, by reason "
            "(unavailable, timeout, busy, error, language)", ["reason"], registry=self.registry)
        self.generation_guards = Counter(
            "supportbot_generation_guard_total",
            "Guard interventions (pii_*, injection, off_topic, ungrounded, prompt_leak)", ["guard"],
            registry=self.registry)
        self.generation_seconds = Histogram(
            "supportbot_generation_seconds", "Generative answers: time to first token and total",
            ["stage"], registry=self.registry, buckets=(0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 13, 20, 30))

    def _traffic_metrics(self) -> None:
        """Rate-limited requests and messages kept for labeling."""
        self.rate_limited = Counter(
            "supportbot_rate_limited_total",
            "Requests and socket messages refused by a rate limit (limit: ip, conversation, webhook, login)",
            ["limit", "channel"], registry=self.registry)
        self.review_items = Counter("supportbot_review_items_total",
                                    "Messages kept for labeling (low confidence, out of scope, hand-off)",
                                    registry=self.registry)


# The HTTP request being handled (bot.web.request_id sets it); threads started with
# asyncio.to_thread inherit it, so a model or database call logs the request it serves.
REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)


class RequestIdFilter(logging.Filter):
    """Put the current request's id on records that do not carry one."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            rid = REQUEST_ID.get()
            if rid is not None:
                record.request_id = rid
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "ts": round(time.time(), 3), "level": record.levelname.lower(),
            "logger": record.name, "msg": record.getMessage(),
        }
        for key in ("conversation_id", "request_id", "channel", "action", "error"):
            if hasattr(record, key):
                payload[key] = getattr(record, key)
        if record.exc_info or record.exc_text:  # exc_text: what the filters left of the traceback
            payload["exc"] = record.exc_text or self.formatException(record.exc_info)  # type: ignore[arg-type]
        return json.dumps(payload)


class PiiFilter(logging.Filter):
    """Mask personal data (bot.pii's rules: e-mail, phone, card, IBAN, SSN, resident ID) in every
    log record: message and args, traceback and stack text, whatever module logged it; a log line
    is text at rest too. The extra fields (conversation_id, ...) lose card and ID numbers only: a
    WhatsApp conversation id is a phone number, and operators follow a conversation by it."""

    FIELDS = ("conversation_id", "request_id", "channel", "action", "error")

    @staticmethod
    def mask(text: str) -> tuple[str, list[str]]:
        return redact(text, placeholder=lambda kind: f"[{kind}]")

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True
        masked, found = self.mask(message)
        if found:
            record.msg, record.args = masked, None
        for key in self.FIELDS:
            value = getattr(record, key, None)
            if isinstance(value, str):
                setattr(record, key, mask_sensitive(value))
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.mask(record.exc_text)[0]
        if record.stack_info:
            record.stack_info = self.mask(record.stack_info)[0]
        return True


MASK = "***"
# Secrets that may show up whatever the settings say: passwords in URLs, Telegram's token in its API
# path, tokens in query strings (Meta's access_token and hub.verify_token, Chatwoot's ?token=),
# Authorization headers.
SECRET_PATTERNS = [
    (re.compile(r"(\b[a-z][a-z0-9+.-]*://[^\s/@:]*:)[^\s/@]+@", re.I), r"\1" + MASK + "@"),
    (re.compile(r"(/bot)\d+:[A-Za-z0-9_-]+"), r"\1" + MASK),
    (re.compile(r"([?&](?:access_token|hub\.verify_token|token|api_key|key)=)[^&\s\"'<>]+", re.I),
     r"\1" + MASK),
    (re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{6,}"), r"\1 " + MASK),
]


def redact_url(url: object) -> str:
    """A URL fit for a log line: no query string (tokens travel there), no user info, and Telegram's
    bot token out of its path."""
    parts = urlsplit(str(url))
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return SECRET_PATTERNS[1][0].sub(SECRET_PATTERNS[1][1], f"{parts.scheme}://{netloc}{parts.path}")


def secret_values(settings: Any) -> list[str]:
    """Every secret a Settings object holds: its SecretStr fields at any depth (every token, password
    and URL that may carry one), and the passwords inside those URLs."""
    from pydantic import BaseModel, SecretStr

    found: list[str] = []

    def walk(model: BaseModel) -> None:
        for name in type(model).model_fields:
            value = getattr(model, name)
            if isinstance(value, BaseModel):
                walk(value)
            elif isinstance(value, SecretStr):
                secret = value.get_secret_value()
                found.append(secret)
                password = urlsplit(secret).password if "://" in secret else None
                if password:  # a Redis or database URL: its password may be logged on its own
                    found.extend([password, unquote(password)])

    walk(settings)
    return sorted({v for v in found if v and len(v) >= 4}, key=len, reverse=True)


class SecretFilter(logging.Filter):
    """Replace configured secret values and secret-shaped strings with *** in every record (message,
    args, extra fields, traceback text), whatever module logged it (httpx logs request URLs, and
    Telegram's has the bot token in its path)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def mask(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        for pattern, replacement in SECRET_PATTERNS:
            text = pattern.sub(replacement, text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            message = str(record.msg)
        masked = self.mask(message)
        if masked != message:
            record.msg, record.args = masked, None
        for key in ("conversation_id", "request_id", "channel", "action", "error"):
            value = getattr(record, key, None)
            if isinstance(value, str):
                setattr(record, key, self.mask(value))
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.mask(record.exc_text)
        return True


def configure_logging(level: str = "INFO", json_logs: bool = True, secrets: Iterable[str] = ()) -> None:
    """One handler on the root logger: JSON lines on stderr, with PII and `secrets` (see
    `secret_values`) masked."""
    handler = logging.StreamHandler(sys.stderr)
    plain = logging.Formatter("%(levelname)s %(name)s: %(message)s")
    handler.setFormatter(JsonFormatter() if json_logs else plain)
    handler.addFilter(RequestIdFilter())
    handler.addFilter(SecretFilter(secrets))
    handler.addFilter(PiiFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn's own logging config (used when it is started with its defaults, or embedded in another
    # program) gives its loggers private handlers that bypass the masking filters: route them here.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        server_logger = logging.getLogger(name)
        server_logger.handlers.clear()
        server_logger.propagate = True
