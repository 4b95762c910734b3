"""Each messaging platform's credentials and endpoints; a channel is on when its secrets are set."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings

from bot.config.groups import env_group


class TelegramSettings(BaseSettings):
    """Telegram Bot API (env SUPPORTBOT_TELEGRAM_*); enabled when `token` is set."""

    model_config = env_group("SUPPORTBOT_TELEGRAM_")

    token: SecretStr | None = Field(None, description="The bot token from @BotFather.")
    secret_token: SecretStr | None = Field(
        None,
        description="setWebhook's secret_token, checked on every update (X-Telegram-Bot-Api-Secret-Token).",
    )
    api_url: str = Field("https://api.telegram.org", description="Bot API base URL (a local Bot API server).")


class MetaSettings(BaseSettings):
    """The Meta app behind Messenger and WhatsApp Cloud API (env SUPPORTBOT_META_*)."""

    model_config = env_group("SUPPORTBOT_META_")

    app_secret: SecretStr | None = Field(None, description="App secret: checks X-Hub-Signature-256.")
    verify_token: SecretStr | None = Field(
        None, description="Answer to the webhook's hub.verify_token challenge.")
    graph_url: str = Field("https://graph.facebook.com/v21.0", description="Graph API base URL.")


class WhatsAppSettings(BaseSettings):
    """WhatsApp Cloud API (env SUPPORTBOT_WHATSAPP_*); enabled with the Meta app secret."""

    model_config = env_group("SUPPORTBOT_WHATSAPP_")

    token: SecretStr | None = Field(None, description="Access token of the WhatsApp business account.")
    phone_number_id: str | None = Field(None, description="The sending phone number's id.")


class MessengerSettings(BaseSettings):
    """Facebook Messenger (env SUPPORTBOT_MESSENGER_*); enabled with the Meta app secret."""

    model_config = env_group("SUPPORTBOT_MESSENGER_")

    page_token: SecretStr | None = Field(None, description="Page access token.")


class SlackSettings(BaseSettings):
    """Slack Events API (env SUPPORTBOT_SLACK_*)."""

    model_config = env_group("SUPPORTBOT_SLACK_")

    bot_token: SecretStr | None = Field(None, description="xoxb- bot token (chat.postMessage).")
    signing_secret: SecretStr | None = Field(None, description="Checks X-Slack-Signature.")
    api_url: str = Field("https://slack.com/api", description="Web API base URL.")


class TwilioSettings(BaseSettings):
    """Twilio Programmable Messaging, SMS (env SUPPORTBOT_TWILIO_*)."""

    model_config = env_group("SUPPORTBOT_TWILIO_")

    account_sid: str | None = Field(None, description="Account SID (AC...).")
    auth_token: SecretStr | None = Field(None, description="Auth token: checks X-Twilio-Signature and sends.")
    from_number: str | None = Field(None, description="The sending number, E.164.")
    api_url: str = Field("https://api.twilio.com", description="REST API base URL.")


class ChatwootSettings(BaseSettings):
    """Hand-offs into a Chatwoot inbox instead of the built-in console (env SUPPORTBOT_CHATWOOT_*)."""

    model_config = env_group("SUPPORTBOT_CHATWOOT_")

    url: str | None = Field(None, description="Chatwoot's base URL; unset: the built-in console.")
    api_token: SecretStr | None = Field(None, description="An agent bot's or agent's API access token.")
    webhook_token: SecretStr | None = Field(None, description="Token Chatwoot's webhook carries (?token=).")
