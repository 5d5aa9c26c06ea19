"""One validated configuration for every way in, from the environment or an optional `.env`."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal, TypeVar

from platformdirs import user_cache_dir, user_data_dir
from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.errors import ConfigurationError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
_T = TypeVar("_T")


def default_data_dir() -> Path:
    """One per-user folder (e.g. ~/.local/share/personabot), wherever the command is run from,
    so every command and the dashboard share one log and one derived model."""
    return Path(user_data_dir("personabot", appauthor=False))


def default_cache_dir() -> Path:
    """Derived files that can be rebuilt (the essay's sentence vectors), shared by every data dir."""
    return Path(user_cache_dir("personabot", appauthor=False))


class Settings(BaseSettings):
    """Core settings; adapters keep their own platform settings next to their code."""

    model_config = SettingsConfigDict(
        env_prefix="PERSONABOT_", env_file=".env", extra="ignore", populate_by_name=True
    )

    model_path: Path | None = Field(
        default=None, description="A GGUF file; empty means the bundled SmolLM2-135M-Instruct."
    )
    model_quantization: Literal["q4_0", "original"] = Field(
        default="original",
        description="Re-quantize the bundled model for faster prefill, or load it as shipped.",
    )
    knowledge_dir: Path = PROJECT_ROOT / "knowledge"
    prompts_dir: Path = PROJECT_ROOT / "prompts"
    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="Log, spool and derived model; default: the platform's per-user data folder.",
    )
    cache_dir: Path = Field(
        default_factory=default_cache_dir,
        description="Rebuildable files (the essay's vectors); default: the per-user cache folder.",
    )
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "PERSONABOT_DATABASE_URL")
    )

    n_threads: int = Field(default=os.cpu_count() or 1, ge=1, le=256)
    n_ctx: int = Field(default=2048, ge=256, le=32768)
    n_batch: int = Field(default=512, ge=32, le=8192)
    flash_attn: bool = True
    max_tokens: int = Field(default=80, ge=8, le=1024)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    seed: int = 7

    max_citations: int = Field(default=3, ge=1, le=10)
    passages_in_prompt: int = Field(
        default=2, ge=1, le=8, description="Passages the model sees: the answer's, then the next."
    )
    max_input_chars: int = Field(default=2000, ge=16, le=100_000)
    memory_turns: int = Field(default=6, ge=0, le=100)
    memory_conversations: int = Field(default=10_000, ge=1)
    conversation_idle_minutes: float = Field(
        default=30.0, gt=0, le=10_080, description="A conversation this quiet starts afresh."
    )
    answer_at: float = Field(
        default=0.66, ge=0.0, le=2.0, description="Answerability: the essay answers (docs)."
    )
    closest_at: float = Field(
        default=0.50, ge=0.0, le=2.0, description="Answerability: below this, decline."
    )
    model_adds: bool | None = Field(
        default=None,
        description="After the direct answer, let the model add grounded sentences. Default: on "
        "with an inference server (a larger model), off with the bundled 135M model, whose "
        "sentences measured 0% kept (docs/performance.md).",
    )
    model_sentences: int | None = Field(
        default=None,
        ge=1,
        le=10,
        description="Most model sentences kept after the direct answer. Default: 3 with an "
        "inference server, 1 with the bundled model.",
    )
    max_answer_chars: int | None = Field(
        default=None,
        ge=120,
        le=4000,
        description="The direct answer with the model's additions. Default: 700 with an "
        "inference server, 450 with the bundled model.",
    )
    generation_deadline_s: float | None = Field(
        default=None,
        gt=0,
        le=600,
        description="From arrival, how long a reply may wait for the model's addition. Default: "
        "10 s with an inference server, 3 s with the bundled model.",
    )
    generation_workers: int = Field(default=4, ge=1, le=64)

    # Conversation log (docs/moderation-log.md).
    log_redact: bool = Field(default=True, description="Redact before storing anything.")
    log_redact_kinds: list[Literal["email", "phone", "secret"]] = ["email", "phone", "secret"]
    log_redact_patterns: list[str] = Field(
        default_factory=list, description="Extra regular expressions to redact (JSON list)."
    )
    log_spool_dir: Path | None = Field(default=None, description="Default: <data_dir>/spool.")
    log_retention: str = Field(
        default="90d", description="Default for `personabot logs purge`: 30d, 12h, 2w..."
    )
    log_busy_timeout_ms: int = Field(default=30_000, ge=100, le=600_000)
    log_key: SecretStr | None = Field(
        default=None,
        description="Secret that keys the log's hash chain (HMAC); keep it outside the database.",
    )
    log_max_text_chars: int = Field(
        default=8000, ge=256, le=1_000_000, description="Longer stored texts are truncated."
    )

    @field_validator("log_redact_patterns")
    @classmethod
    def _patterns_compile(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{pattern!r} is not a regular expression ({exc})") from None
        return patterns

    # Scale-out (docs/scaling.md): a remote OpenAI-compatible server, shared Redis, operations port.
    inference_url: str | None = Field(
        default=None,
        description="Base URL of an OpenAI-compatible server, e.g. http://llm:8080/v1.",
    )
    inference_model: str = "default"

    def _by_backend(self, chosen: _T | None, server: _T, bundled: _T) -> _T:
        """A setting left unset takes its backend's default: more for a larger model behind an
        inference server than for the bundled 135M model."""
        if chosen is not None:
            return chosen
        return server if self.inference_url else bundled

    @property
    def uses_model(self) -> bool:
        """Whether the model is asked to add to the direct answer."""
        return self._by_backend(self.model_adds, True, False)

    @property
    def model_sentence_limit(self) -> int:
        """A larger model behind an inference server may say more; every sentence is checked."""
        return self._by_backend(self.model_sentences, 3, 1)

    @property
    def answer_chars_limit(self) -> int:
        return self._by_backend(self.max_answer_chars, 700, 450)

    @property
    def reply_deadline_s(self) -> float:
        """The direct answer is on screen at once, so the full reply waits for the model only
        this long: one bundled-model reply takes about 2 s on two cores (docs/performance.md),
        and a queue of them is cut off rather than waited for."""
        return self._by_backend(self.generation_deadline_s, 10.0, 3.0)

    inference_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("PERSONABOT_INFERENCE_API_KEY", "OPENAI_API_KEY"),
    )
    inference_connect_timeout_s: float = Field(default=3.0, gt=0, le=60)
    inference_read_timeout_s: float = Field(default=60.0, gt=0, le=600)
    inference_retries: int = Field(default=2, ge=0, le=10)
    inference_breaker_failures: int = Field(default=3, ge=1, le=100)
    inference_breaker_reset_s: float = Field(default=15.0, gt=0, le=3600)
    redis_url: str | None = Field(
        default=None, validation_alias=AliasChoices("REDIS_URL", "PERSONABOT_REDIS_URL")
    )
    ops_host: str = "127.0.0.1"
    ops_port: int | None = Field(
        default=None, ge=0, le=65535, description="Operations port; unset: off, 0: any free port."
    )
    log_format: str = Field(default="json", pattern="^(json|text)$")
    log_level: str = Field(default="INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$")
    log_message_bodies: bool = False


def first_use_notice(settings: Settings) -> str | None:
    """Says where data will go the first time the default folder is about to be created; a
    folder chosen with PERSONABOT_DATA_DIR needs no announcement."""
    if "data_dir" in settings.model_fields_set or settings.data_dir.exists():
        return None
    kept = (
        "model files and the log's spool"
        if settings.database_url
        else "the conversation log and model files"
    )
    return (
        f"First run: keeping {kept} in {settings.data_dir} "
        "(set PERSONABOT_DATA_DIR to use another folder)."
    )


def load_settings(**overrides: object) -> Settings:
    """Builds settings, turning pydantic's report into one line per bad value."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = ".".join(str(part) for part in error["loc"]) or "settings"
            problems.append(f"{_variable(name)}: {error['msg']}")
        raise ConfigurationError("Invalid settings: " + "; ".join(problems)) from None


def _variable(field: str) -> str:
    """The environment variable a user sets for a field, so the message says what to fix."""
    info = Settings.model_fields.get(field)
    alias = info.validation_alias if info else None
    if isinstance(alias, AliasChoices) and isinstance(alias.choices[0], str):
        return alias.choices[0]
    if isinstance(alias, str):
        return alias
    return f"PERSONABOT_{field.upper()}" if info else field
