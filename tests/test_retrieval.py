from __future__ import annotations

import json

import pytest

from bot.knowledge import Knowledge
from bot.text import normalize, sentences, terms
from bot.understanding.retrieval import BM25Retriever
from tests.conftest import DEV_EVAL


@pytest.fixture(scope="module")
def retriever(knowledge: Knowledge) -> BM25Retriever:
    return BM25Retriever(knowledge.passages)


def _in_scope_cases() -> list[dict[str, object]]:
    lines = DEV_EVAL.read_text("utf-8").splitlines()
    return [c for c in map(json.loads, lines) if c["kind"] == "in_scope"]


@pytest.mark.parametrize("case", _in_scope_cases(), ids=lambda c: str(c["id"]))
def test_a_gold_passage_is_in_the_top_three(retriever: BM25Retriever, case: dict) -> None:
    top = retriever.search(case["question"]).passages[:3]
    assert any(normalize(g) in normalize(s.passage.text) for g in case["gold"] for s in top)


def test_stemming_matches_inflections(retriever: BM25Retriever) -> None:
    result = retriever.search("Which democracy was emerging?")
    assert "democraci" in result.matched_terms
    assert terms("democracies") == terms("democracy") == ["democraci"]
    assert result.passages[0].passage.id == "russia-versus-nato-01"


@pytest.mark.parametrize(
    "question",
    [
        "What's the weather like in Paris tomorrow?",
        "Recommend me a good laptop for gaming.",
        "How do I bake sourdough bread?",
        "Who won the football world cup final?",
    ],
)
def test_unrelated_questions_have_low_coverage(retriever: BM25Retriever, question: str) -> None:
    assert retriever.search(question).coverage < 0.5


def test_history_steers_a_follow_up(retriever: BM25Retriever) -> None:
    alone = retriever.search("Why did he do that?")
    assert alone.passages == []
    steered = retriever.search(
        "Why did he do that?", ["What did Primakov tell Yeltsin about the PfP?"]
    )
    assert any("Primakov" in s.passage.text for s in steered.passages[:2])


def test_best_quote_adds_the_following_sentence_when_it_answers(retriever: BM25Retriever) -> None:
    question = "Who accompanied Warren Christopher to Moscow in October 1993?"
    ranked = [s.passage for s in retriever.search(question).passages]
    used, quote = retriever.best_quote(question, ranked)
    assert "Strobe Talbott" in quote
    assert all(part in " ".join(p.text for p in used) for part in sentences(quote))


def test_stance_questions_prefer_the_authors_stance(retriever: BM25Retriever) -> None:
    question = "How did you feel about Yeltsin's late-night insertion on Poland?"
    ranked = [s.passage for s in retriever.search(question).passages]
    _, quote = retriever.best_quote(question, ranked)
    assert quote.startswith("In my heart")


def test_sentence_splitter_keeps_initials_together() -> None:
    text = "Apparently, George H.W. Bush realized that. Mr. Yeltsin said no. U.S. Secretary came."
    assert sentences(text) == [
        "Apparently, George H.W. Bush realized that.",
        "Mr. Yeltsin said no.",
        "U.S. Secretary came.",
    ]


def test_acronyms_the_essay_defines_match_their_long_form(retriever: BM25Retriever) -> None:
    from bot.understanding.retrieval import defined_acronyms

    assert defined_acronyms(["through a mechanism called the Partnership for Peace (PfP)."]) == {
        "PfP": "Partnership for Peace"
    }
    top = retriever.search("What did Primakov tell Yeltsin about the Partnership for Peace?")
    assert "Primakov told Yeltsin" in top.passages[0].passage.text
