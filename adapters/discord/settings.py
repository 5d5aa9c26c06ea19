"""Discord settings: the token and the server admins' controls, validated before anything connects."""

from __future__ import annotations

from typing import Annotated

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.errors import ConfigurationError

# Ids are written as comma-separated lists in the environment ("123,456"), as admins copy them.
IdList = Annotated[tuple[int, ...], NoDecode]


class DiscordSettings(BaseSettings):
    """Everything the Discord adapter reads; the core keeps its own settings."""

    model_config = SettingsConfigDict(
        env_prefix="PERSONABOT_DISCORD_", env_file=".env", extra="ignore", populate_by_name=True
    )

    token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("DISCORD_TOKEN", "PERSONABOT_DISCORD_TOKEN")
    )
    guild_ids: IdList = Field(default=(), description="Guilds the bot answers in; empty: all.")
    channel_ids: IdList = Field(
        default=(), description="Channels (or threads' parents) it answers in; empty: all."
    )
    allow_dms: bool = True
    command_guild_ids: IdList = Field(
        default=(), description="Sync slash commands to these guilds (instant); empty: globally."
    )
    sync_commands: bool = True
    user_rate: int = Field(default=5, ge=1, description="Questions per user per user_rate_seconds.")
    user_rate_seconds: float = Field(default=60.0, gt=0)
    channel_rate: int = Field(default=20, ge=1)
    channel_rate_seconds: float = Field(default=60.0, gt=0)
    max_input_chars: int = Field(default=1500, ge=16, le=4000)
    tracked_messages: int = Field(
        default=10_000,
        ge=16,
        description="Bound on remembered bot messages, reply chains and threads the bot answered in.",
    )
    queue_workers: int = Field(default=16, ge=1, le=64)
    queue_max_waiting: int = Field(default=64, ge=1)
    edit_interval_seconds: float = Field(
        default=1.0, ge=0.05, le=10, description="Least time between two edits of one message."
    )
    shutdown_grace_seconds: float = Field(
        default=8.0,
        ge=0,
        le=300,
        description="On SIGTERM/SIGINT, how long answers in progress may take to finish.",
    )
    auto_shard: bool = False
    shard_count: int | None = Field(
        default=None, ge=1, description="Total shards across all processes (with shard_ids)."
    )
    shard_ids: IdList = Field(default=(), description="The shards this process runs.")

    @model_validator(mode="after")
    def _shards_fit(self) -> DiscordSettings:
        if self.shard_ids and self.shard_count is None:
            raise ValueError("shard_ids needs shard_count (the total across all processes)")
        if self.shard_count is not None and any(i >= self.shard_count for i in self.shard_ids):
            raise ValueError(f"shard ids must be below shard_count ({self.shard_count})")
        return self

    @field_validator("guild_ids", "channel_ids", "command_guild_ids", "shard_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    def require_token(self) -> str:
        """The token, or a clear error naming the variable to set."""
        token = self.token.get_secret_value().strip() if self.token else ""
        if not token:
            raise ConfigurationError(
                "DISCORD_TOKEN is not set: copy the bot token from the Discord developer portal."
            )
        return token


def load_discord_settings(**overrides: object) -> DiscordSettings:
    """Builds the settings, turning pydantic's report into one line per bad value."""
    try:
        return DiscordSettings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "settings"
            name = "DISCORD_TOKEN" if field == "token" else f"PERSONABOT_DISCORD_{field.upper()}"
            problems.append(f"{name}: {error['msg']}")
        raise ConfigurationError("Invalid Discord settings: " + "; ".join(problems)) from None
