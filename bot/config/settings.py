"""The one configuration object. Built once at start-up and passed in; never imported as a global."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.config import channels, groups, recipes
from bot.config.groups import split_list


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

    models: groups.ModelSettings = Field(default_factory=groups.ModelSettings)
    inference: groups.InferenceSettings = Field(default_factory=groups.InferenceSettings)
    redis: groups.RedisSettings = Field(default_factory=groups.RedisSettings)
    sessions: groups.SessionSettings = Field(default_factory=groups.SessionSettings)
    storage: groups.StorageSettings = Field(default_factory=groups.StorageSettings)
    limits: groups.LimitSettings = Field(default_factory=groups.LimitSettings)
    web: groups.WebSettings = Field(default_factory=groups.WebSettings)
    console: groups.ConsoleSettings = Field(default_factory=groups.ConsoleSettings)
    handoff: groups.HandoffSettings = Field(default_factory=groups.HandoffSettings)
    attachments: groups.AttachmentSettings = Field(default_factory=groups.AttachmentSettings)
    rate_limit: recipes.RateLimitSettings = Field(default_factory=recipes.RateLimitSettings)
    telegram: channels.TelegramSettings = Field(default_factory=channels.TelegramSettings)
    meta: channels.MetaSettings = Field(default_factory=channels.MetaSettings)
    whatsapp: channels.WhatsAppSettings = Field(default_factory=channels.WhatsAppSettings)
    messenger: channels.MessengerSettings = Field(default_factory=channels.MessengerSettings)
    slack: channels.SlackSettings = Field(default_factory=channels.SlackSettings)
    twilio: channels.TwilioSettings = Field(default_factory=channels.TwilioSettings)
    chatwoot: channels.ChatwootSettings = Field(default_factory=channels.ChatwootSettings)
    thresholds: recipes.Thresholds = Field(default_factory=recipes.Thresholds)
    dialogue: recipes.DialogueSettings = Field(default_factory=recipes.DialogueSettings)
    train: recipes.TrainSettings = Field(default_factory=recipes.TrainSettings)
    generation: recipes.GenerationSettings = Field(default_factory=recipes.GenerationSettings)
    rasa: recipes.RasaSettings = Field(default_factory=recipes.RasaSettings)

    @field_validator("models", "inference", "redis", "sessions", "storage", "limits", "web", "console",
                     "handoff", "attachments", "telegram", "meta", "whatsapp", "messenger", "slack", "twilio",
                     "chatwoot",
                     mode="before")
    @classmethod
    def _group_reads_its_own_variables(cls, value: Any, info: ValidationInfo) -> Any:
        """A group given as a dict (keyword arguments, or the nested `SUPPORTBOT_<GROUP>__*` spelling)
        still reads its other fields from its own variables, so the two spellings can be mixed."""
        if isinstance(value, dict):
            return cls.model_fields[str(info.field_name)].annotation(**value)  # type: ignore[misc]
        return value

    @field_validator("languages", mode="before")
    @classmethod
    def _languages(cls, value: Any) -> Any:
        return split_list(value)

    def updated(self, changes: Mapping[str, Any]) -> Settings:
        """A validated copy with some values changed, named `field` or `group.field` (for example
        `{"redis.url": ..., "limits.max_body_bytes": 2048}`); the environment is not read again.
        Only what was set is carried over, so a copy still tells a default from a chosen value (an
        `auto` generation backend picks the OpenAI server only when its URL was set)."""
        data = self.model_dump(exclude_unset=True)
        for dotted, value in changes.items():
            *groups, name = dotted.split(".")
            target = data
            for group in groups:
                target = target.setdefault(group, {})
            target[name] = value.model_dump() if isinstance(value, BaseModel) else value
        return type(self).model_validate(data)

    def for_rasa_project(self, project: Path, language: str | None = None) -> Settings:
        """These settings serving a Rasa 3 project: its domain.yml, data/ and knowledge_base/, its
        language (config.yml's), and a data folder of its own (var/rasa/<folder name>) unless one
        was chosen."""
        project = project.resolve()
        chosen = "data_dir" in self.model_fields_set
        data_dir = self.data_dir if chosen else Path("var") / "rasa" / project.name
        return self.updated({"rasa.project": project, "data_dir": data_dir,
                             "domain_file": project / "domain.yml", "training_data": project / "data",
                             "knowledge_base": project / "knowledge_base",
                             "default_language": language or self.default_language,
                             "languages": [language or self.default_language]})

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
