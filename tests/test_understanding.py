"""Understanding people's own words: typing, answerability and follow-ups, on questions the
published sets do not hold (general mechanisms, not special cases)."""

from __future__ import annotations

import pytest

from bot.core import DialogueCore
from bot.knowledge import Knowledge
from bot.messages import IncomingMessage, ReplyKind
from bot.understanding.answerability import missing_answer
from bot.understanding.chat_text import Vocabulary, normalize_typing
from bot.understanding.followups import read_turn

ANSWERED = [
    "What did the leak of the Warsaw story cost everyone?",
    "What share of the vote did you win in Murmansk?",
    "Why did the reforms in Russia fail?",
    "What happened to the Founding Act of 1997?",
    "Who is Putin?",
    "What did Yeltsin call the new situation at the CSCE summit?",
    "Why did Yeltsin feel betrayed?",
    "did putin ever float the idea of russia actually joining nato??",
    "what did clinton promise yeltsin?",
    "wat was the pfp",
    "why did boris get so mad in dec 94",
    "Who succeeded you as foreign minister?",
    "who did bush lose to?",
    "when was grachev replaced?",
    "who was the president of czechoslovakia?",
    "what was the point of the pfp?",
    "who's talbott lol",
    "what does pfp stand for?",
    "when did yeltsin approve the change?",
    "what was the 'no hasty enlargement' formula replaced with?",
    "how many successor states came out of the ussr?",
    "what is nato?",
]
DECLINED = [
    "Who won the last football world cup?",
    "What is the best programming language?",
    "How old are you?",
    "What's the best pizza in New York?",
    "What do you think about the war in Ukraine?",
    "What is the population of Moscow?",
    "Where do you live now?",
    "what's the price of bitcoin",
    "Who is the current NATO secretary general?",
    "How many members does NATO have today?",
    "What did you think of the 2008 war in Georgia?",
    "Who was Stalin's successor?",
    "Who replaced Christopher as Secretary of State?",
    "who did yeltsin defeat in the 1996 election?",
    "What is the capital of Poland?",
    "what is the currency of russia?",
    "how tall was yeltsin?",
    "when was nato founded?",
    "what does nato stand for?",
    "where was yeltsin born?",
    "who was the first secretary general of nato?",
    "how many troops does nato have in poland now?",
    "what replaced the warsaw pact?",
    "what is the nonproliferation treaty?",
    "what is the iron curtain?",
]


@pytest.fixture(scope="module")
def vocabulary(knowledge: Knowledge) -> Vocabulary:
    return Vocabulary.of(p.text for p in knowledge.passages)


@pytest.mark.parametrize("question", ANSWERED)
def test_answers_what_the_essay_speaks_to(core: DialogueCore, question: str) -> None:
    reply = core.handle(IncomingMessage(text=question))
    assert not reply.refused and reply.kind is ReplyKind.ANSWER
    assert reply.grounded and len(reply.text) <= 450
    assert not reply.text.rstrip("\"'” ").endswith(":"), "the reply must not hang"


@pytest.mark.parametrize("question", DECLINED)
def test_declines_or_says_it_is_not_said_directly(core: DialogueCore, question: str) -> None:
    reply = core.handle(IncomingMessage(text=question))
    assert reply.refused
    assert reply.kind in (ReplyKind.OUT_OF_SCOPE, ReplyKind.NOT_DIRECT)
    assert any(v.check == "answerability" and not v.passed for v in reply.moderation)


def test_not_directly_cites_the_closest_passage(core: DialogueCore) -> None:
    reply = core.handle(
        IncomingMessage(text="What was your reaction to the annexation of Crimea in 2014?")
    )
    assert reply.kind is ReplyKind.NOT_DIRECT and reply.refused
    assert reply.text.startswith("My essay does not say that directly.")
    assert reply.citations and reply.citations[0].quote in reply.citations[0].passage


def test_typing_does_not_change_the_answer(core: DialogueCore) -> None:
    typed = [
        "Why did Yeltsin feel betrayed in December 1994?",
        "why did yeltsin feel betrayed in dec 94",
        "y did yeltsin feel betrayed in dec '94??? 😡😡",
        "why did yeltsin feel betrayed in dec 94!!! https://example.com/a?b=c",
    ]
    replies = [
        core.handle(IncomingMessage(text=text, channel=f"c{n}")) for n, text in enumerate(typed)
    ]
    assert all("betrayed" in r.text and not r.refused for r in replies)
    assert len({r.citations[0].passage_id for r in replies}) == 1


def test_chat_spellings_names_and_short_years_take_the_essays_form(
    vocabulary: Vocabulary,
) -> None:
    said = normalize_typing("wat did u think of pfp in the 93 election and start 2 lol", vocabulary)
    assert said == "what did you think of PfP in the 1993 election and START II"
    assert normalize_typing("was boris at the nato summit in oct 94?", vocabulary) == (
        "was Boris Yeltsin at the NATO summit in October 1994?"
    )
    # A short year the essay never mentions is left as typed, not guessed.
    assert normalize_typing("back in '14", vocabulary) == "back in '14"


def test_follow_ups_refer_back_and_new_subjects_start_afresh() -> None:
    earlier = ["What did Primakov tell Yeltsin about the Partnership for Peace?"]
    assert read_turn("Did the press believe him?", earlier).follow_up
    assert read_turn("why?", earlier).follow_up
    assert not read_turn("Who was Clinton?", earlier).follow_up
    moving = read_turn("what happened after that?", earlier)
    assert moving.follow_up and moving.moves_on
    assert not read_turn("Did the press believe him?", []).follow_up


def test_a_new_short_question_is_not_hijacked_by_the_last_topic(core: DialogueCore) -> None:
    core.handle(
        IncomingMessage(text="What did Primakov tell Yeltsin about the Partnership for Peace?")
    )
    reply = core.handle(IncomingMessage(text="Who was Clinton?"))
    assert "Clinton" in reply.text


@pytest.mark.parametrize(
    ("question", "said", "missing"),
    [
        ("When did Grachev leave?", "Grachev was replaced in 1996.", None),
        ("When did Grachev leave?", "Grachev was replaced by a general.", "a time"),
        ("How many votes did you win?", "I won 70% of the vote.", None),
        ("How many votes did you win?", "I won the vote.", "a quantity"),
        ("Who took over from Christopher?", "Christopher came to Moscow.", "a successor"),
        ("Who took over from Christopher?", "Putin was Yeltsin's successor.", "a successor"),
        ("Who was Yeltsin's successor?", "Yeltsin's chosen successor, Putin.", None),
        ("What was the formula replaced with?", 'He changed it from "No" to "Yes!"', None),
        ("What replaced the Warsaw Pact?", "That hostility could be removed.", "a successor"),
        ("How many successor states were there?", "One of fifteen successor states.", None),
        ("Who did Yeltsin beat in 1996?", "His reelection campaign in 1996.", "who won"),
        ("Who did Bush lose to?", "Bush was losing to Democrats.", None),
        ("What is the capital of Poland?", "Poland wanted to join NATO.", "its capital"),
        ("Who was the president of Poland?", "Wałęsa, the President of Poland.", None),
        ("What was the name of the plan?", "The plan was called the PfP.", None),
        ("What was the reaction of Yeltsin?", "Yeltsin was enraged.", None),
        ("When was NATO founded?", "When nations founded NATO, they pivoted.", "a time"),
        ("When did he sign?", "He signed the next morning.", None),
        ("Where was he born?", "He was a straightforward man.", "a place"),
        ("Where did they live?", "They lived in London.", None),
        ("Where is NATO based?", "Its friends in the West portray NATO as a bloc.", "a place"),
        ("What does NATO stand for?", "NATO remains the main power.", "what it stands for"),
        ("What is the NPT?", "Russia joined the NPT as a nuclear state.", "what it is"),
        ("What is the NPT?", "The NPT is a treaty.", None),
        ("What is the PfP?", "a mechanism called the Partnership for Peace (PfP).", None),
        ("What is the saying about misfortune?", "A saying: misfortune leads to fortune.", None),
        ("What was the PfP?", "Yeltsin praised the PfP.", None),
        ("What does PfP stand for?", "the Partnership for Peace (PfP).", None),
    ],
)
def test_an_answer_holds_the_kind_of_thing_asked_for(
    question: str, said: str, missing: str | None
) -> None:
    assert missing_answer(question, said) == missing


def test_a_follow_up_is_answered_with_something_it_was_not_told(core: DialogueCore) -> None:
    first = core.handle(
        IncomingMessage(text="what did bush say when he welcomed yeltsin in june 92?", channel="b")
    )
    assert "totally convinced" in first.text
    again = core.handle(
        IncomingMessage(text="and what was going on with bush himself at home?", channel="b")
    )
    assert not again.refused and "totally convinced" not in again.text


def test_a_follow_up_that_names_nothing_is_read_with_what_it_refers_to(core: DialogueCore) -> None:
    asked = "what did yeltsin say about the founding act on the radio?"
    core.handle(IncomingMessage(text=asked, channel="radio"))
    reply = core.handle(IncomingMessage(text="was that accurate?", channel="radio"))
    assert not reply.refused and "inaccurately" in reply.text


def test_a_short_follow_up_about_the_last_answer_is_answered_from_it(core: DialogueCore) -> None:
    core.handle(IncomingMessage(text="what was the cold peace speech about?", channel="peace"))
    reply = core.handle(IncomingMessage(text="who gave it?", channel="peace"))
    assert not reply.refused and "Yeltsin" in reply.text
