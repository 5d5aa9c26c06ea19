"""Builds the dialogue core from settings: the one place that knows which implementations to use."""

from __future__ import annotations

from bot.answering.generation import Generator, LlamaGenerator
from bot.answering.prompting import Prompts
from bot.conversation_log import ConversationLog
from bot.core import DialogueCore
from bot.knowledge import load_knowledge
from bot.serving.model_files import resolve_model_path
from bot.settings import Settings
from bot.understanding.encoder import load_encoder
from bot.understanding.retrieval import HybridRetriever


def build_generator(settings: Settings) -> Generator:
    if settings.inference_url:
        from bot.answering.openai_generator import CircuitBreaker, OpenAIGenerator

        key = settings.inference_api_key
        return OpenAIGenerator(
            settings.inference_url,
            settings.inference_model,
            key.get_secret_value() if key else None,
            connect_timeout_s=settings.inference_connect_timeout_s,
            read_timeout_s=settings.inference_read_timeout_s,
            retries=settings.inference_retries,
            breaker=CircuitBreaker(
                settings.inference_breaker_failures, settings.inference_breaker_reset_s
            ),
        )
    return LlamaGenerator(
        resolve_model_path(settings),
        n_ctx=settings.n_ctx,
        n_threads=settings.n_threads,
        n_batch=settings.n_batch,
        flash_attn=settings.flash_attn,
        seed=settings.seed,
    )


def build_core(
    settings: Settings,
    generator: Generator | None = None,
    log: ConversationLog | None = None,
) -> DialogueCore:
    """Knowledge and prompts load first, so their errors surface before the slower model load."""
    knowledge = load_knowledge(settings.knowledge_dir)
    prompts = Prompts(settings.prompts_dir)
    retriever = HybridRetriever(knowledge.passages, load_encoder(), settings.cache_dir / "vectors")
    return DialogueCore(
        knowledge,
        retriever,
        generator or build_generator(settings),
        prompts,
        settings,
        log=log,
    )
