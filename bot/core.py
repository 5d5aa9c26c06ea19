"""The dialogue core: one message in, one grounded, cited, logged reply out, whatever the platform."""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

from bot.answering.generation import Generation, GenerationRequest, Generator
from bot.answering.grounding import check, covers, is_verbatim
from bot.answering.prompting import Prompts
from bot.conversation_log import ConversationLog
from bot.errors import GenerationError, GeneratorUnavailableError
from bot.knowledge import Knowledge, Passage
from bot.messages import (
    Citation,
    Exchange,
    IncomingMessage,
    Reply,
    ReplyKind,
    RetrievedPassage,
    Timings,
    TokenCounts,
    Trace,
    Verdict,
)
from bot.settings import Settings
from bot.text import sentences
from bot.understanding.answerability import ScopeDecision, ScopeGate
from bot.understanding.memory import ConversationMemory, Turn
from bot.understanding.retrieval import Retriever, ScoredPassage, SearchResult
from bot.understanding.screening import IdentityQuestion, Intent, screen

TextSink = Callable[[str], None]
logger = logging.getLogger(__name__)
_FOLLOW_UP_MAX_WORDS = 10
_MAX_QUOTE_CHARS = 350
# A generator stops itself at the deadline; this extra wait covers one that cannot.
_DEADLINE_GRACE_S = 2.0
# Below this much time left, starting the model cannot produce a sentence before the deadline.
_MIN_GENERATION_S = 0.5

# Intents answered from a template without retrieval or the model, and whether each is a refusal
# (the identity disclosure declines to speak as the real person, so it counts as one).
_CANNED: dict[Intent, tuple[str, bool, ReplyKind]] = {
    Intent.EMPTY: ("empty", True, ReplyKind.EMPTY),
    Intent.TOO_LONG: ("too_long", True, ReplyKind.TOO_LONG),
    Intent.NOT_TEXT: ("not_text", True, ReplyKind.NOT_TEXT),
    Intent.INJECTION: ("injection", True, ReplyKind.INJECTION),
    Intent.IDENTITY: ("identity", False, ReplyKind.IDENTITY),
    Intent.GREETING: ("greeting", False, ReplyKind.GREETING),
}
# The identity answer begins the way the question expects: "No." to "are you the real one?".
_IDENTITY_TEMPLATES = {
    IdentityQuestion.OPEN: "identity",
    IdentityQuestion.PERSON: "identity_no",
    IdentityQuestion.MACHINE: "identity_yes",
}
# Adapter-side canned replies (rate limits, a full queue, a model that is down) and their kinds.
_ADAPTER_KINDS: dict[str, ReplyKind] = {
    "slow_down": ReplyKind.RATE_LIMITED,
    "too_long": ReplyKind.TOO_LONG,
    "busy": ReplyKind.BUSY,
    "unavailable": ReplyKind.UNAVAILABLE,
    "greeting": ReplyKind.GREETING,
}


@dataclass
class _Draft:
    """What one turn has produced so far; turned into an Exchange at the end."""

    reply: Reply
    trace: Trace
    streamed: bool = False
    prompt_passages: tuple[str, ...] = ()


class DialogueCore:
    """Screens, retrieves, gates, prompts, generates, grounds, remembers and logs one turn."""

    def __init__(
        self,
        knowledge: Knowledge,
        retriever: Retriever,
        generator: Generator,
        prompts: Prompts,
        settings: Settings,
        log: ConversationLog | None = None,
        memory: ConversationMemory | None = None,
    ) -> None:
        self.knowledge = knowledge
        self.retriever = retriever
        self.generator = generator
        self.prompts = prompts
        self.settings = settings
        self.log = log
        self.scope = ScopeGate(
            (p.text for p in knowledge.passages),
            [knowledge.metadata.title, *knowledge.metadata.topics],
            settings.scope_min_coverage,
        )
        self._generation_pool = ThreadPoolExecutor(
            max_workers=settings.generation_workers, thread_name_prefix="generation"
        )
        self.memory = memory or ConversationMemory(
            settings.memory_turns, settings.memory_conversations
        )
        meta = knowledge.metadata
        self._persona = {
            "persona_name": meta.persona_name,
            "title": meta.title,
            "book": meta.book,
            "disclosure": meta.disclosure,
            "topics": _join_topics(meta.topics),
            "limit": settings.max_input_chars,
        }

    def handle(self, message: IncomingMessage, on_text: TextSink | None = None) -> Reply:
        return self.respond(message, on_text).reply

    def respond(
        self,
        message: IncomingMessage,
        on_text: TextSink | None = None,
        deadline: float | None = None,
    ) -> Exchange:
        """Answers one message; `on_text` receives each sentence once it has passed grounding.

        `deadline` (a time.monotonic() value; default: now + the generation deadline) bounds the
        model's share: a turn that waited in a queue past it is answered from the essay alone.
        """
        started = time.perf_counter()
        if deadline is None:
            deadline = time.monotonic() + self.settings.generation_deadline_s
        screened = screen(message.text, self.settings.max_input_chars)
        verdicts = [
            Verdict(
                check="input", passed=screened.intent is Intent.QUESTION, detail=screened.intent
            ),
            Verdict(
                check="invisible_characters",
                passed=screened.stripped_chars == 0,
                detail=f"{screened.stripped_chars} removed",
            ),
        ]
        if screened.detail:
            verdicts[0].detail = f"{screened.intent}: {screened.detail}"
        key = message.conversation_key()
        if screened.intent in _CANNED:
            template, refused, kind = _CANNED[screened.intent]
            if screened.identity is not None:
                template = _IDENTITY_TEMPLATES[screened.identity]
            draft = _Draft(
                Reply(text=self._render(template), refused=refused, kind=kind), self._trace()
            )
        else:
            draft = self._answer(
                screened.text, self.memory.history(key), verdicts, on_text, deadline
            )
        if on_text and not draft.streamed:
            on_text(draft.reply.text)
        draft.reply.moderation = verdicts + draft.reply.moderation
        draft.reply.timings.total_ms = (time.perf_counter() - started) * 1000
        if screened.intent is Intent.QUESTION:
            turn = Turn(
                screened.text,
                draft.reply.text,
                tuple(draft.reply.citations),
                draft.prompt_passages,
            )
            self.memory.remember(key, turn)
        exchange = Exchange(message=message, reply=draft.reply, trace=draft.trace)
        self._record(exchange)
        return exchange

    def forget(self, message: IncomingMessage) -> bool:
        return self.memory.forget(message.conversation_key())

    def last_citations(self, message: IncomingMessage) -> list[Citation]:
        history = self.memory.history(message.conversation_key())
        return list(history[-1].citations) if history else []

    def canned(self, template: str, **values: object) -> str:
        """In-voice texts adapters need (slow down, unavailable), rendered with the persona's facts."""
        return self._render(template, **values)

    def record_canned(self, message: IncomingMessage, template: str, **values: object) -> Exchange:
        """An adapter's canned reply (slow down, busy, unavailable, too long), logged as an
        exchange so that it can be reported and counted like any other reply."""
        kind = _ADAPTER_KINDS.get(template, ReplyKind.UNAVAILABLE)
        reply = Reply(
            text=self._render(template, **values),
            refused=kind is not ReplyKind.GREETING,
            kind=kind,
            moderation=[Verdict(check="adapter", passed=False, detail=template)],
        )
        exchange = Exchange(message=message, reply=reply, trace=self._trace())
        self._record(exchange)
        return exchange

    def _render(self, template: str, **values: object) -> str:
        return self.prompts.render(template, **{**self._persona, **values})

    def _trace(self, search: SearchResult | None = None, prompt: str = "") -> Trace:
        retrieved = [
            RetrievedPassage(passage_id=s.passage.id, score=round(s.score, 4))
            for s in (search.passages if search else [])
        ]
        return Trace(
            prompt_version=self.prompts.version,
            model_id=self.generator.model_id,
            retrieved=retrieved,
            prompt=prompt,
        )

    def _search(self, question: str, history: Sequence[Turn]) -> tuple[SearchResult, ScopeDecision]:
        """Retrieves with the question alone, or with recent turns when it is a follow-up; a
        follow-up that brings no words the essay lacks inherits the conversation's scope."""
        earlier = [turn.question for turn in history]
        result = self.retriever.search(question, (), k=self.settings.max_citations + 2)
        decision = self.scope.decide(question, result)
        follow_up = bool(earlier) and (
            not result.query_terms or len(question.split()) <= _FOLLOW_UP_MAX_WORDS
        )
        if follow_up:
            with_history = self.retriever.search(
                question, earlier, k=self.settings.max_citations + 2
            )
            adds_nothing_new = set(result.query_terms) <= set(result.matched_terms)
            if with_history.passages and (decision.in_scope or adds_nothing_new):
                return with_history, ScopeDecision(True, f"{decision.reason}; follow-up")
        return result, decision

    def _answer(
        self,
        question: str,
        history: Sequence[Turn],
        verdicts: list[Verdict],
        on_text: TextSink | None,
        deadline: float,
    ) -> _Draft:
        started = time.perf_counter()
        search, scope = self._search(question, history)
        retrieval_ms = (time.perf_counter() - started) * 1000
        verdicts.append(Verdict(check="scope", passed=scope.in_scope, detail=scope.reason))
        if not scope.in_scope:
            reply = Reply(text=self._render("refusal"), refused=True, kind=ReplyKind.OUT_OF_SCOPE)
            reply.timings.retrieval_ms = retrieval_ms
            return _Draft(reply, self._trace(search))

        ranked = search.passages[: self.settings.max_citations]
        in_prompt = self._prompt_passages(search.passages, history)
        system = self._render("system")
        user = self._render(
            "answer",
            passages="\n".join(
                self.prompts.render(
                    "passage", number=n, section=s.passage.section, text=s.passage.text
                )
                for n, s in enumerate(in_prompt, 1)
            ),
            earlier=(
                self.prompts.render("earlier", question=search.history[-1]) + "\n"
                if search.history
                else ""
            ),
            question=question,
        )
        evidence = [s.passage.text for s in in_prompt]
        quoted, best = self.retriever.best_quote(
            question,
            [s.passage for s in ranked],
            search.history,
        )
        quote = _clip(best)
        budget = self.settings.max_answer_chars - len(
            self._render("quoted_answer", answer="", quote=quote)
        )
        streamer = _GroundedStreamer(evidence, question, budget, on_text)
        request = GenerationRequest(
            system=system,
            user=user,
            max_tokens=self.settings.max_tokens,
            temperature=self.settings.temperature,
            deadline_s=deadline - time.monotonic(),
        )
        try:
            if (request.deadline_s or 0.0) < _MIN_GENERATION_S:
                raise TimeoutError("waited past the deadline before the model was free")
            generation = self._generate(request, streamer)
        except GeneratorUnavailableError as exc:
            verdicts.append(Verdict(check="generation", passed=False, detail=_describe(exc)))
            reply = Reply(
                text=self._render("unavailable"), refused=True, kind=ReplyKind.UNAVAILABLE
            )
            reply.timings.retrieval_ms = retrieval_ms
            return _Draft(reply, self._trace(search, f"{system}\n\n{user}"))
        except (GenerationError, TimeoutError) as exc:  # the essay's own words answer without it
            verdicts.append(Verdict(check="generation", passed=False, detail=_describe(exc)))
            generation = Generation(text="", prompt=f"{system}\n\n{user}")
        grounding = check(generation.text, evidence, question)
        answer = " ".join(_within_budget(grounding.kept, budget))
        if answer and covers(answer, quote):
            text = answer
        elif answer:
            text = self._render("quoted_answer", answer=answer, quote=quote)
        else:
            text = self._render("fallback", quote=quote)
        streamer.finish(text)
        citations = self._citations(question, text, ranked, quoted)
        # The model's sentences passed `check` above; what remains to verify is the quote itself.
        verbatim = all(
            is_verbatim(part, [p.text for p in quoted])
            for part in sentences(quote.removesuffix("…"))
        )
        verdicts.append(
            Verdict(
                check="grounding",
                passed=verbatim,
                detail=(
                    f"model sentences kept {len(grounding.kept)}, dropped "
                    f"{len(grounding.dropped)}; quote {'verbatim' if verbatim else 'NOT verbatim'}"
                ),
            )
        )
        reply = Reply(
            text=text,
            citations=citations,
            refused=False,
            grounded=verbatim,
            timings=Timings(
                retrieval_ms=retrieval_ms,
                ttft_ms=generation.ttft_ms,
                generation_ms=generation.total_ms,
            ),
            tokens=TokenCounts(
                prompt=generation.prompt_tokens, completion=generation.completion_tokens
            ),
        )
        trace = self._trace(search, generation.prompt or f"{system}\n\n{user}")
        trace.options = generation.options
        shown = tuple(s.passage.id for s in in_prompt)
        return _Draft(reply, trace, streamed=True, prompt_passages=shown)

    def _prompt_passages(
        self, candidates: Sequence[ScoredPassage], history: Sequence[Turn]
    ) -> list[ScoredPassage]:
        """The top passages in essay order. A follow-up whose best passage the model saw last turn
        is shown that turn's passages again, so llama.cpp reuses the cached prompt prefix instead
        of reading them anew (a few hundred milliseconds of prefill on two cores)."""
        chosen = list(candidates[: self.settings.passages_in_prompt])
        if history and chosen and chosen[0].passage.id in history[-1].prompt_passages:
            known = self.knowledge.by_id
            chosen = [
                ScoredPassage(known[passage_id], 0.0)
                for passage_id in history[-1].prompt_passages
                if passage_id in known
            ]
        return sorted(chosen, key=lambda s: s.passage.start)

    def _generate(self, request: GenerationRequest, streamer: _GroundedStreamer) -> Generation:
        """Runs the generator under the deadline; a generator that hangs costs this turn, not the bot."""
        future = self._generation_pool.submit(
            contextvars.copy_context().run,
            self.generator.generate,
            request,
            streamer.feed if streamer.active else None,
        )
        try:
            return future.result(timeout=(request.deadline_s or 0.0) + _DEADLINE_GRACE_S)
        except FutureTimeout:
            streamer.close()
            raise TimeoutError(f"no reply within {request.deadline_s:.1f} s") from None

    def _citations(
        self, question: str, answer: str, ranked: Sequence[ScoredPassage], quoted: list[Passage]
    ) -> list[Citation]:
        """The quoted passages first, then the rest by relevance."""
        ordered = quoted + [s.passage for s in ranked if s.passage not in quoted]
        citations = []
        for passage in ordered[: self.settings.max_citations]:
            best = self.retriever.key_sentences(f"{question} {answer}", passage, limit=2)
            quote = _clip(" ".join(best))
            if not is_verbatim(quote.removesuffix("…"), [passage.text]):
                quote = _clip(passage.text)
            citations.append(
                Citation(
                    passage_id=passage.id,
                    section=passage.section,
                    quote=quote,
                    passage=passage.text,
                )
            )
        return citations

    def _record(self, exchange: Exchange) -> None:
        if self.log is None:
            return
        try:
            self.log.record(exchange)
        except Exception:  # the reply matters more than its record; the log spools on its own
            logger.exception("could not record exchange %s", exchange.id)


class _GroundedStreamer:
    """Buffers model tokens and releases a sentence only once grounding has accepted it."""

    def __init__(
        self, evidence: list[str], question: str, budget: int, sink: TextSink | None
    ) -> None:
        self._evidence = evidence
        self._question = question
        self._budget = budget
        self._sink = sink
        self._buffer = ""
        self._shown: list[str] = []

    @property
    def active(self) -> bool:
        return self._sink is not None

    def close(self) -> None:
        """Stops forwarding: a generation that overran its deadline must not talk after the answer."""
        self._sink = None

    def feed(self, piece: str) -> None:
        self._buffer += piece
        if not self._sink or not piece.rstrip().endswith((".", "!", '"')):
            return
        for sentence in _within_budget(
            check(self._buffer, self._evidence, self._question).kept, self._budget
        ):
            if sentence not in self._shown:
                self._sink(f" {sentence}" if self._shown else sentence)
                self._shown.append(sentence)

    def finish(self, final_text: str) -> None:
        """Sends the part of the final text the stream has not shown; the two always add up."""
        if not self._sink:
            return
        shown = " ".join(self._shown)
        rest = final_text.removeprefix(shown) if final_text.startswith(shown) else "\n" + final_text
        if rest.strip():
            self._sink(rest)


def _within_budget(sentences: Sequence[str], budget: int) -> list[str]:
    """At most two sentences, as many as fit the character budget, in order."""
    chosen: list[str] = []
    used = 0
    for sentence in sentences[:2]:
        used += len(sentence) + 1
        if used > budget:
            break
        chosen.append(sentence)
    return chosen


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[:200]


def _join_topics(topics: Sequence[str]) -> str:
    if len(topics) <= 1:
        return "".join(topics) or "my essay"
    return ", ".join(topics[:-1]) + " and " + topics[-1]


def _clip(text: str) -> str:
    if len(text) <= _MAX_QUOTE_CHARS:
        return text
    cut = text[:_MAX_QUOTE_CHARS].rsplit(" ", 1)[0]
    return cut.rstrip(",;:—-") + "…"
