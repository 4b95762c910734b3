"""Prometheus metrics and JSON logs. One registry per app so tests can build several apps."""

from __future__ import annotations

import json
import logging
import sys
import time

from prometheus_client import CollectorRegistry, Counter, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
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
        self.handoffs = Counter("supportbot_handoffs_total", "Hand-offs by reason", ["reason"],
                                registry=self.registry)
        self.degraded = Counter("supportbot_degraded_total",
                                "Dependencies that failed and were worked around",
                                ["dependency"], registry=self.registry)
        self.errors = Counter("supportbot_request_errors_total", "Rejected requests by error code",
                              ["code"], registry=self.registry)
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
        self.review_items = Counter("supportbot_review_items_total",
                                    "Messages kept for labeling (low confidence, out of scope, hand-off)",
                                    registry=self.registry)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "ts": round(time.time(), 3), "level": record.levelname.lower(),
            "logger": record.name, "msg": record.getMessage(),
        }
        for key in ("conversation_id", "request_id", "channel", "action", "error"):
            if hasattr(record, key):
                payload[key] = getattr(record, key)
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload)


class PiiFilter(logging.Filter):
    """Mask e-mail addresses, phone, card and IBAN numbers in every log record (message, args,
    exception text), whatever module logged it."""

    def __init__(self) -> None:
        super().__init__()
        from bot.generation.guard import PiiMasker

        self.masker = PiiMasker()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True
        masked, found = self.masker.mask(message)
        if found:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.masker.mask(record.exc_text)[0]
        return True


def configure_logging(level: str = "INFO", json_logs: bool = True) -> None:
    handler = logging.StreamHandler(sys.stderr)
    plain = logging.Formatter("%(levelname)s %(name)s: %(message)s")
    handler.setFormatter(JsonFormatter() if json_logs else plain)
    handler.addFilter(PiiFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
