"""Grouping unanswered questions by meaning: with a fake encoder whose geometry the test sets,
and once with the bundled sentence encoder to keep the threshold honest."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from bot.quality.unanswered import (
    DEFAULT_THRESHOLD,
    Asked,
    Embed,
    LazyEncoder,
    group_questions,
    normalise,
)

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
# Each topic is one axis; a question's vector is the sum of its topics' axes (then normalised).
TOPICS = {"pizza": 0, "topping": 0, "football": 1, "cup": 1, "weather": 2, "age": 3, "old": 3}


def fake_embed(texts: Sequence[str]) -> np.ndarray:
    rows = np.zeros((len(texts), 5), dtype=np.float32)
    for row, text in enumerate(texts):
        for word in text.lower().replace("?", "").split():
            if word in TOPICS:
                rows[row, TOPICS[word]] += 1.0
        if not rows[row].any():
            rows[row, 4] = 1.0
    normalised: np.ndarray = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return normalised


def asked(text: str, hours: int = 0, kind: str = "out_of_scope") -> Asked:
    return Asked(f"x{abs(hash((text, hours)))}", text, kind, NOW - timedelta(hours=hours))


def test_paraphrases_share_a_group_and_the_biggest_group_comes_first() -> None:
    questions = [
        asked("Best pizza topping?"),
        asked("What topping goes on a pizza?", 1),
        asked("Is pineapple a good pizza topping?", 2),
        asked("Who wins the football cup?", 3, "not_direct"),
        asked("Which team lifts the cup?", 4),
        asked("What is the weather like?", 5),
    ]
    groups = group_questions(questions, fake_embed)
    assert [g.count for g in groups] == [3, 2, 1]
    assert {a.text for a in groups[0].examples} == {q.text for q in questions[:3]}
    assert groups[1].kinds == {"not_direct": 1, "out_of_scope": 1}
    assert groups[1].first_seen == NOW - timedelta(hours=4)
    assert groups[1].last_seen == NOW - timedelta(hours=3)


def test_identical_wordings_are_embedded_once_and_all_counted() -> None:
    seen: list[Sequence[str]] = []

    def counting(texts: Sequence[str]) -> np.ndarray:
        seen.append(texts)
        return fake_embed(texts)

    questions = [asked("How OLD are you?", h) for h in range(4)] + [asked("how old  are you?", 9)]
    groups = group_questions(questions, counting)
    assert seen == [["how old are you?"]]
    assert len(groups) == 1 and groups[0].count == 5
    assert [a.created for a in groups[0].examples] == sorted(
        (a.created for a in questions), reverse=True
    )


def test_a_question_below_the_threshold_starts_its_own_group() -> None:
    # "pizza age" sits at cos 0.71 from both "pizza" and "age": a threshold of 0.8 keeps it apart.
    questions = [asked("pizza"), asked("age"), asked("pizza age")]
    assert len(group_questions(questions, fake_embed, threshold=0.8)) == 3
    assert len(group_questions(questions, fake_embed, threshold=0.7)) == 2


def test_bad_input_is_refused_plainly() -> None:
    assert group_questions([], fake_embed) == []
    assert group_questions([asked("   ")], fake_embed) == []
    with pytest.raises(ValueError, match="threshold"):
        group_questions([asked("pizza")], fake_embed, threshold=0)
    with pytest.raises(ValueError, match="2 rows for 1 texts"):
        group_questions([asked("pizza")], lambda texts: np.eye(2, dtype=np.float32))


def test_normalise_folds_case_width_and_spaces() -> None:
    assert normalise("  Ｗhat   IS\tthis? ") == "what is this?"


@pytest.mark.slow
def test_the_bundled_encoder_separates_topics_at_the_default_threshold() -> None:
    from bot.understanding.encoder import MiniLMEncoder

    topics = [
        ["What is the best pizza topping?", "Which pizza toppings do you like?",
         "What should I put on my pizza?"],
        ["Who will win the football cup?", "Which team wins the World Cup this year?",
         "Who is going to win the soccer championship?"],
        ["What is your view of the war in Ukraine today?", "How do you see the current Ukraine war?",
         "What did Kozyrev think about Ukraine in 2022?"],
    ]  # fmt: skip
    questions = [asked(text, i) for i, topic in enumerate(topics) for text in topic]
    groups = group_questions(questions, MiniLMEncoder().embed, DEFAULT_THRESHOLD)
    assert sorted(sorted(a.text for a in g.examples) for g in groups) == sorted(
        sorted(topic) for topic in topics
    )


def test_the_lazy_encoder_loads_once_and_embeds_each_text_once() -> None:
    loads: list[int] = []
    batches: list[list[str]] = []

    def load() -> Embed:
        loads.append(1)

        def embed(texts: Sequence[str]) -> np.ndarray:
            batches.append(list(texts))
            return fake_embed(texts)

        return embed

    encoder = LazyEncoder(load, remember=3)
    assert loads == []  # nothing happens until the first question
    first = encoder(["pizza", "age", "pizza"])
    assert loads == [1] and batches == [["pizza", "age"]]
    np.testing.assert_array_equal(first[0], first[2])
    encoder(["age", "weather", "cup", "old"])  # more than it remembers: still answered whole
    assert batches[1] == ["weather", "cup", "old"]
    encoder(["age"])  # forgotten (oldest first), so embedded again
    assert loads == [1] and batches[2] == ["age"]
    assert encoder([]).shape[0] == 0
