"""Slack settings: tokens from Slack's own variable names, adapter knobs under PERSONABOT_SLACK_."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.errors import ConfigurationError

_SIGNING_SECRET = re.compile(r"^[0-9a-f]{32,}$")


def _alias(name: str) -> AliasChoices:
    """Slack's conventional names win; the prefixed form works too, for one-file `.env` set-ups."""
    return AliasChoices(name, f"PERSONABOT_{name}")


class SlackSettings(BaseSettings):
    """Everything the Slack adapter needs beyond the core's settings."""

    model_config = SettingsConfigDict(
        env_prefix="PERSONABOT_SLACK_", env_file=".env", extra="ignore", populate_by_name=True
    )

    bot_token: SecretStr | None = Field(default=None, validation_alias=_alias("SLACK_BOT_TOKEN"))
    signing_secret: SecretStr | None = Field(
        default=None, validation_alias=_alias("SLACK_SIGNING_SECRET")
    )
    app_token: SecretStr | None = Field(default=None, validation_alias=_alias("SLACK_APP_TOKEN"))

    command: str = Field(default="/ask", description="The slash command, as set in the manifest.")
    allowed_channels: Annotated[frozenset[str], NoDecode] = Field(
        default=frozenset(), description="Comma-separated channel ids; empty allows every channel."
    )
    allow_dms: bool = True
    rate_limit_count: int = Field(default=5, ge=1, le=10_000)
    rate_limit_seconds: float = Field(default=60.0, gt=0, le=86_400)
    max_input_chars: int = Field(default=1500, ge=16, le=40_000)
    answer_in_channel: bool = Field(
        default=True, description="/ask answers are visible to the channel, not only the asker."
    )
    workers: int = Field(default=2, ge=1, le=64, description="Threads answering at once.")
    max_waiting: int = Field(default=32, ge=1, le=10_000)
    dedup_ttl_seconds: float = Field(default=900.0, gt=0)
    api_retries: int = Field(default=3, ge=0, le=10)
    host: str = "0.0.0.0"
    port: int = Field(default=3000, ge=0, le=65_535)
    path: str = "/slack/events"
    api_base_url: str = Field(
        default="https://slack.com/api/", description="Override only to point at a test server."
    )

    @field_validator("allowed_channels", mode="before")
    @classmethod
    def _split_channels(cls, value: object) -> object:
        if isinstance(value, str):
            return frozenset(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("command")
    @classmethod
    def _slash(cls, value: str) -> str:
        if not re.fullmatch(r"/[a-z0-9_\-]{1,31}", value):
            raise ValueError("must look like /ask: a slash, then up to 31 lowercase letters/digits")
        return value

    @field_validator("api_base_url")
    @classmethod
    def _trailing_slash(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value if value.endswith("/") else value + "/"

    @property
    def socket_mode(self) -> bool:
        return self.app_token is not None and bool(self.app_token.get_secret_value())

    def credentials(self) -> tuple[str, str | None, str | None]:
        """(bot token, signing secret, app token), or a one-line error naming what is wrong."""
        token = self.bot_token.get_secret_value().strip() if self.bot_token else ""
        if not token:
            raise ConfigurationError(
                "SLACK_BOT_TOKEN is not set: copy the Bot User OAuth Token (xoxb-…) from the app's "
                "OAuth & Permissions page."
            )
        if not token.startswith("xoxb-"):
            raise ConfigurationError("SLACK_BOT_TOKEN must be a bot token starting with xoxb-.")
        if self.socket_mode:
            assert self.app_token is not None
            app_token = self.app_token.get_secret_value().strip()
            if not app_token.startswith("xapp-"):
                raise ConfigurationError(
                    "SLACK_APP_TOKEN must be an app-level token starting with xapp- "
                    "(with the connections:write scope)."
                )
            return token, None, app_token
        secret = self.signing_secret.get_secret_value().strip() if self.signing_secret else ""
        if not secret:
            raise ConfigurationError(
                "SLACK_SIGNING_SECRET is not set: HTTP mode needs it (Basic Information → App "
                "Credentials), or set SLACK_APP_TOKEN for Socket Mode."
            )
        if not _SIGNING_SECRET.fullmatch(secret):
            raise ConfigurationError(
                "SLACK_SIGNING_SECRET looks wrong: Slack's signing secret is 32 lowercase hex "
                "characters."
            )
        return token, secret, None


def load_slack_settings(**overrides: object) -> SlackSettings:
    """Builds the Slack settings with one line per bad value instead of pydantic's report."""
    try:
        return SlackSettings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in error['loc']) or 'slack'}: {error['msg']}"
            for error in exc.errors()
        ]
        raise ConfigurationError("Invalid Slack settings: " + "; ".join(problems)) from None
