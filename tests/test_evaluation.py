"""The eval's scoring: what counts as an answer, and how long answers are."""

from __future__ import annotations

from bot.messages import Reply, ReplyKind
from bot.quality.evaluation import (
    EvalCase,
    EvalTurn,
    conversation_report,
    judge,
    judge_turn,
    report,
)

CASE = EvalCase(id="q", kind="in_scope", question="When?", facts=[["1994"]])


def _answer(text: str) -> Reply:
    return Reply(text=text, refused=False, kind=ReplyKind.ANSWER)


def test_facts_within_400_characters_count_only_short_answers() -> None:
    short = judge(CASE, _answer("In 1994 it was signed."), [])
    long = judge(CASE.model_copy(update={"id": "r"}), _answer("In 1994 " + "x" * 450), [])
    scores = report([short, long])
    assert short.passed and long.passed
    assert scores.fact_accuracy == 1.0 and scores.fact_accuracy_within_400 == 0.5


def test_answer_lengths_leave_out_canned_replies_and_refusals() -> None:
    identity = EvalCase(id="i", kind="identity", question="Are you real?", facts=[["persona"]])
    canned = Reply(text="I am an AI persona." * 20, refused=False, kind=ReplyKind.IDENTITY)
    results = [
        judge(CASE, _answer("In 1994." + "y" * 92), []),
        judge(CASE.model_copy(update={"id": "s"}), _answer("In 1994." + "y" * 192), []),
        judge(identity, canned, []),
    ]
    scores = report(results)
    assert results[2].answer_chars is None
    assert scores.answer_chars_p50 == 150 and scores.answer_chars_p95 == 195


def test_a_conversation_report_gives_answer_lengths_too() -> None:
    turn = EvalTurn(user="and then?", facts=[["1994"]])
    refused = Reply(text="I cannot say.", refused=True, kind=ReplyKind.OUT_OF_SCOPE)
    results = [judge_turn("c", 1, turn, _answer("In 1994.")), judge_turn("c", 2, turn, refused)]
    scores = conversation_report(results)
    assert scores.turns_passed == 1 and scores.answer_chars_p50 == len("In 1994.")
