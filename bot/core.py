"""The dialogue core: one message in, one direct, cited, checked and logged reply out.

`respond` reads as the pipeline, in order:
1. screen      size, invisible characters, injection markers, identity, greeting
2. understand  chat typing → the essay's spelling; the conversation (from the log) → what a
               follow-up refers to; hybrid retrieval; answerability (answer / not directly / decline)
3. answer      the essay sentences that answer, framed by the kind of question, shown at once;
               then what the model adds, if it is asked (off with the bundled model)
4. check       every kept claim aligned to one essay sentence (numbers, names, polarity)
5. log         the exchange with its passages, scores, prompt version and verdicts
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from bot.answering.composition import (
    MAX_REPLY_CHARS,
    QuestionKind,
    Span,
    question_kind,
    select_span,
)
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
from bot.text import sentences, terms
from bot.understanding.answerability import Answerability, AnswerabilityJudge, Outcome
from bot.understanding.chat_text import Vocabulary, normalize_typing
from bot.understanding.followups import Reading, read_turn
from bot.understanding.memory import ConversationMemory, Turn, TurnSource, live_turns
from bot.understanding.retrieval import HybridRetriever, SearchResult
from bot.understanding.screening import IdentityQuestion, Intent, Screened, screen

TextSink = Callable[[str], None]
logger = logging.getLogger(__name__)
_MAX_QUOTE_CHARS = 350
# A generator stops itself at the deadline; this extra wait covers one that cannot.
_DEADLINE_GRACE_S = 2.0
# Below this much time left, starting the model cannot produce a sentence before the deadline.
_MIN_GENERATION_S = 0.5

# Intents answered from a template without retrieval or the model: template, refusal, kind.
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
class Understanding:
    """What a question asks, read in its conversation, and what the essay holds for it."""

    question: str
    kind: QuestionKind
    reading: Reading
    search: SearchResult
    span: Span
    decision: Answerability
    retrieval_ms: float


@dataclass
class _Draft:
    """What one turn has produced so far; turned into an Exchange at the end."""

    reply: Reply
    trace: Trace
    streamed: bool = False
    options: dict[str, object] = field(default_factory=dict)


class DialogueCore:
    """One turn at a time, for every platform; the adapters only translate."""

    def __init__(
        self,
        knowledge: Knowledge,
        retriever: HybridRetriever,
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
        texts = [p.text for p in knowledge.passages]
        self.vocabulary = Vocabulary.of(texts)
        self.judge = AnswerabilityJudge(
            self.vocabulary,
            frozenset(t for p in knowledge.passages for t in terms(f"{p.section} {p.text}")),
            settings.answer_at,
            settings.closest_at,
        )
        self._generation_pool = ThreadPoolExecutor(
            max_workers=settings.generation_workers, thread_name_prefix="generation"
        )
        self.memory = memory or ConversationMemory(
            settings.memory_turns, settings.memory_conversations
        )
        self._forgotten: dict[tuple[str, str, str, str], datetime] = {}
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
        """Answers one message. `on_text` receives the reply in pieces whose concatenation is the
        reply's text: the direct answer first, before any model runs, then what the model adds.

        `deadline` (a time.monotonic() value; default: now + the generation deadline) bounds the
        model's share: a turn that waited in a queue past it is answered from the essay alone.
        """
        started = time.perf_counter()
        if deadline is None:
            deadline = time.monotonic() + self.settings.reply_deadline_s
        screened, verdicts = self._screen(message)
        if screened.intent in _CANNED:
            draft = self._canned(screened)
        else:
            history = self.history(message)
            understanding = self._understand(screened.text, history)
            verdicts.append(
                Verdict(
                    check="answerability",
                    passed=understanding.decision.outcome is Outcome.ANSWER,
                    detail=f"{understanding.decision.outcome}: {understanding.decision.reason}",
                )
            )
            draft = self._answer(understanding, verdicts, on_text, deadline)
        if on_text and not draft.streamed:
            on_text(draft.reply.text)
        draft.reply.moderation = verdicts + draft.reply.moderation
        draft.reply.timings.total_ms = (time.perf_counter() - started) * 1000
        draft.trace.options.update(draft.options)
        exchange = Exchange(message=message, reply=draft.reply, trace=draft.trace)
        if screened.intent is Intent.QUESTION:
            self.memory.remember(message.conversation_key(), _turn_of(exchange))
        self._record(exchange)
        return exchange

    # 1. screen -------------------------------------------------------------------------------

    def _screen(self, message: IncomingMessage) -> tuple[Screened, list[Verdict]]:
        screened = screen(message.text, self.settings.max_input_chars)
        verdicts = [
            Verdict(
                check="input",
                passed=screened.intent is Intent.QUESTION,
                detail=f"{screened.intent}: {screened.detail}"
                if screened.detail
                else screened.intent,
            ),
            Verdict(
                check="invisible_characters",
                passed=screened.stripped_chars == 0,
                detail=f"{screened.stripped_chars} removed",
            ),
        ]
        return screened, verdicts

    def _canned(self, screened: Screened) -> _Draft:
        template, refused, kind = _CANNED[screened.intent]
        if screened.identity is not None:
            template = _IDENTITY_TEMPLATES[screened.identity]
        return _Draft(Reply(text=self._render(template), refused=refused, kind=kind), self._trace())

    # 2. understand ---------------------------------------------------------------------------

    def history(self, message: IncomingMessage) -> list[Turn]:
        """The conversation's live turns: from the log when it can answer, else the cache."""
        key = message.conversation_key()
        turns: list[Turn] | None = None
        if isinstance(self.log, TurnSource):
            try:
                turns = self.log.recent_turns(key, self.settings.memory_turns)
            except Exception as exc:  # the cache answers while the database cannot
                logger.warning("conversation history unavailable from the log: %s", exc)
        if turns is None:
            turns = self.memory.history(key)
        idle = timedelta(minutes=self.settings.conversation_idle_minutes)
        return live_turns(turns, _aware(message.received_at), idle, self._forgotten.get(key))

    def _understand(self, text: str, history: Sequence[Turn]) -> Understanding:
        started = time.perf_counter()
        question = normalize_typing(text, self.vocabulary) or text
        earlier = [turn.read_as or turn.question for turn in history]
        reading = read_turn(question, earlier)
        kind = question_kind(question)
        last = history[-1] if history and reading.follow_up else None
        search = self.retriever.search(
            question,
            [reading.context] if reading.context else [],
            k=self.settings.max_citations + 2,
            shown=frozenset(last.span) if last else frozenset(),
        )
        located = self._locate(last.span[-1]) if last and last.span and reading.moves_on else None
        if not search.sentences:
            span = Span(())
        else:
            said = frozenset(where for turn in history for where in turn.span)
            span = select_span(
                question,
                search,
                self.retriever,
                self.retriever.embed_texts,
                located,
                said if reading.follow_up else frozenset(),
                MAX_REPLY_CHARS - len(self._render(f"answer_{kind}", answer="")),
            )
        if located is not None and span.parts:
            decision = Answerability(Outcome.ANSWER, "continues the essay", 1.0)
        elif span.parts:
            best = search.sentences[0]
            about_last = last is not None and (best.passage.id, best.index) in last.span
            decision = self.judge.decide(question, search, span.text, about_last)
        else:
            decision = Answerability(Outcome.DECLINE, "nothing retrieved", 0.0)
        retrieval_ms = (time.perf_counter() - started) * 1000
        return Understanding(question, kind, reading, search, span, decision, retrieval_ms)

    def _locate(self, where: tuple[str, int]) -> tuple[Passage, int] | None:
        passage = self.knowledge.by_id.get(where[0])
        return (passage, where[1]) if passage is not None else None

    # 3. answer and 4. check ------------------------------------------------------------------

    def _answer(
        self,
        understanding: Understanding,
        verdicts: list[Verdict],
        on_text: TextSink | None,
        deadline: float,
    ) -> _Draft:
        search, span, decision = understanding.search, understanding.span, understanding.decision
        options: dict[str, object] = {"read_as": understanding.reading.read_as}
        if decision.outcome is Outcome.DECLINE:
            reply = Reply(text=self._render("refusal"), refused=True, kind=ReplyKind.OUT_OF_SCOPE)
            reply.timings.retrieval_ms = understanding.retrieval_ms
            return _Draft(reply, self._trace(search), options=options)
        if decision.outcome is Outcome.NOT_DIRECT:
            closest = search.sentences[0]
            reply = Reply(
                text=self._render("not_direct", quote=_clip(closest.text)),
                refused=True,
                kind=ReplyKind.NOT_DIRECT,
                grounded=is_verbatim(_clip(closest.text).removesuffix("…"), [closest.passage.text]),
                citations=self._citations(search, [closest.passage], closest.text),
            )
            reply.timings.retrieval_ms = understanding.retrieval_ms
            return _Draft(reply, self._trace(search), options=options)

        direct = self._render(f"answer_{understanding.kind}", answer=span.text)
        if on_text:
            on_text(direct)
        options["span"] = [[passage.id, index] for passage, index, _ in span.parts]
        options["prompt_passages"] = [p.id for p in span.passages]
        generation, added = self._model_addition(understanding, direct, verdicts, deadline)
        text = " ".join([direct, *added])
        if on_text and added:
            on_text(f" {' '.join(added)}")
        verbatim = all(
            is_verbatim(fragment, [passage.text])
            for passage, _, text in span.parts
            for fragment in _fragments(text)
        )
        verdicts.append(
            Verdict(
                check="grounding",
                passed=verbatim,
                detail=f"essay sentences {len(span.parts)} {'verbatim' if verbatim else 'NOT verbatim'}; "
                f"model sentences kept {len(added)}",
            )
        )
        reply = Reply(
            text=text,
            citations=self._citations(search, span.passages, span.text),
            refused=False,
            grounded=verbatim,
            kind=ReplyKind.ANSWER,
            model_sentences=len(added),
            timings=Timings(
                retrieval_ms=understanding.retrieval_ms,
                ttft_ms=generation.ttft_ms if generation else 0.0,
                generation_ms=generation.total_ms if generation else 0.0,
            ),
            tokens=TokenCounts(
                prompt=generation.prompt_tokens if generation else 0,
                completion=generation.completion_tokens if generation else 0,
            ),
        )
        trace = self._trace(search, generation.prompt if generation else "")
        if generation:
            trace.options = dict(generation.options)
        return _Draft(reply, trace, streamed=bool(on_text), options=options)

    def _model_addition(
        self, understanding: Understanding, direct: str, verdicts: list[Verdict], deadline: float
    ) -> tuple[Generation | None, list[str]]:
        """The sentences the model may add after the direct answer (up to the setting's limit),
        each kept only when one essay sentence states it (its numbers, names and polarity)."""
        if not self.settings.uses_model:
            return None, []
        passages = list(understanding.span.passages)
        for ranked in understanding.search.passages:
            if len(passages) >= self.settings.passages_in_prompt:
                break
            if ranked.passage not in passages:
                passages.append(ranked.passage)
        system = self._render("system")
        user = self._render(
            "answer",
            passages="\n".join(
                self.prompts.render("passage", number=n, section=p.section, text=p.text)
                for n, p in enumerate(passages, 1)
            ),
            question=understanding.question,
            answer=understanding.span.text,
        )
        request = GenerationRequest(
            system=system,
            user=user,
            max_tokens=self.settings.max_tokens,
            temperature=self.settings.temperature,
            deadline_s=deadline - time.monotonic(),
        )
        try:
            generation = self._generate(request, deadline)
            generation.prompt = generation.prompt or f"{system}\n\n{user}"
        except (GeneratorUnavailableError, GenerationError, TimeoutError) as exc:
            verdicts.append(Verdict(check="generation", passed=False, detail=_describe(exc)))
            return None, []
        grounding = check(generation.text, [p.text for p in passages], understanding.question)
        added: list[str] = []
        for sentence in grounding.kept:
            if len(added) >= self.settings.model_sentence_limit:
                break
            said = " ".join([direct, *added])
            fits = len(said) + 1 + len(sentence) <= self.settings.answer_chars_limit
            if fits and not covers(said, sentence):
                added.append(sentence)
        return generation, added

    def _generate(self, request: GenerationRequest, deadline: float) -> Generation:
        """Runs the generator under the deadline; a generator that hangs costs this turn, not the bot."""

        def when_started() -> Generation:
            # Time spent waiting for a generation worker counts against the deadline too.
            left = deadline - time.monotonic()
            if left < _MIN_GENERATION_S:
                raise TimeoutError("waited past the deadline before the model was free")
            return self.generator.generate(replace(request, deadline_s=left), None)

        future = self._generation_pool.submit(contextvars.copy_context().run, when_started)
        try:
            return future.result(timeout=request.deadline_s or 0.0)
        except FutureTimeout:
            if future.cancel():  # still waiting for a generation worker: no grace to give
                raise TimeoutError(f"no model free within {request.deadline_s:.1f} s") from None
        try:  # a generation that is running stops itself at the deadline, give it a moment
            return future.result(timeout=_DEADLINE_GRACE_S)
        except FutureTimeout:
            raise TimeoutError(f"no reply within {request.deadline_s:.1f} s") from None

    def _citations(
        self, search: SearchResult, shown: Sequence[Passage], said: str
    ) -> list[Citation]:
        """The passages the answer quotes first, then the rest by relevance; each citation's
        quote is what the answer took from it, or its best-matching sentence."""
        ordered = list(shown) + [s.passage for s in search.passages if s.passage not in shown]
        best: dict[str, str] = {}
        for sentence in search.sentences:
            best.setdefault(sentence.passage.id, sentence.text)
        citations = []
        taken = _fragments(said)
        for passage in ordered[: self.settings.max_citations]:
            quoted = [f for f in taken if is_verbatim(f, [passage.text])]
            quote = _clip(" … ".join(quoted) if quoted else best.get(passage.id, passage.text))
            citations.append(
                Citation(
                    passage_id=passage.id,
                    section=passage.section,
                    quote=quote,
                    passage=passage.text,
                )
            )
        return citations

    # 5. log ----------------------------------------------------------------------------------

    def _record(self, exchange: Exchange) -> None:
        if self.log is None:
            return
        try:
            self.log.record(exchange)
        except Exception:  # the reply matters more than its record; the log spools on its own
            logger.exception("could not record exchange %s", exchange.id)

    # What adapters ask of the core besides answering ------------------------------------------

    def forget(self, message: IncomingMessage) -> bool:
        """Hides the conversation so far from later turns (for everyone in it)."""
        key = message.conversation_key()
        had = bool(self.history(message))
        when = _aware(message.received_at)
        self._forgotten[key] = when
        if isinstance(self.log, TurnSource):
            try:
                self.log.forget_turns(key, when)
            except Exception as exc:  # this process still forgets; others may not
                logger.warning("could not record the forgetting in the log: %s", exc)
        return self.memory.forget(key) or had

    def last_citations(self, message: IncomingMessage) -> list[Citation]:
        history = self.history(message)
        if not history:
            return []
        known = self.knowledge.by_id
        return [
            c
            if c.passage or c.passage_id not in known
            else c.model_copy(update={"passage": known[c.passage_id].text})
            for c in history[-1].citations
        ]

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


def _turn_of(exchange: Exchange) -> Turn:
    options = exchange.trace.options
    span = options.get("span", ())
    return Turn(
        question=exchange.message.text,
        answer=exchange.reply.text,
        citations=tuple(exchange.reply.citations),
        prompt_passages=tuple(options.get("prompt_passages", ())),
        read_as=str(options.get("read_as", "")),
        span=tuple((str(w[0]), int(w[1])) for w in span) if isinstance(span, list) else (),
        when=_aware(exchange.message.received_at),
    )


def _fragments(text: str) -> list[str]:
    """The verbatim pieces of a composed text: its sentences, split where words were cut."""
    return [
        piece.strip(" …")
        for part in sentences(text)
        for piece in part.split("…")
        if piece.strip(" …")
    ]


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


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
