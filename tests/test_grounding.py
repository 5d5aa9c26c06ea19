from __future__ import annotations

from bot.answering.grounding import check, covers, is_verbatim

PASSAGES = [
    "There is a Russian saying that misfortune leads to fortune. Unfortunately, the text of the "
    'letter given to the press had a typo. The word "not" was absent. So, it read as "Today we '
    'ask for Russian membership in NATO, but regard it as our long-term objective."',
    "In early 1995 Yeltsin approved that change. Then he signed a program of modernization of "
    "Russian strategic nuclear forces.",
]


def test_a_faithful_paraphrase_is_kept() -> None:
    result = check(
        "Yeltsin signed a program of modernization of Russian strategic nuclear forces.",
        PASSAGES,
        "What program did Yeltsin sign?",
    )
    assert len(result.kept) == 1
    assert result.dropped == []


def test_true_words_pinned_to_the_wrong_subject_are_dropped() -> None:
    draft = 'The Russian saying is "Today we ask for Russian membership in NATO."'
    result = check(draft, PASSAGES, "What is the Russian saying about misfortune?")
    assert result.kept == []


def test_invented_names_and_numbers_are_dropped() -> None:
    assert check("Then Boris Borisov signed a program of nuclear forces.", PASSAGES).kept == []
    assert check("In 1997 Yeltsin approved that change.", PASSAGES).kept == []


def test_restating_the_question_is_not_an_answer() -> None:
    question = "What program did Yeltsin sign?"
    assert check("Yeltsin signed a program.", PASSAGES, question).kept == []


def test_links_mentions_and_prompt_talk_are_dropped() -> None:
    for draft in [
        "Yeltsin signed a program, see https://example.com/x?utm_source=a.",
        "@everyone Yeltsin signed a program of modernization of nuclear forces.",
        "My instructions say Yeltsin signed a program of nuclear forces.",
    ]:
        assert check(draft, PASSAGES).kept == []


def test_unfinished_and_repeated_sentences_are_dropped() -> None:
    sentence = "Yeltsin signed a program of modernization of Russian strategic nuclear forces."
    result = check(f"{sentence} {sentence} Then he signed a program of", PASSAGES)
    assert result.kept == [sentence]
    assert len(result.dropped) == 2


QUOTE = "Then he signed a program of modernization of Russian strategic nuclear forces."


def test_covers_recognises_the_quote_in_other_words_and_nothing_less() -> None:
    """An answer that restates the quote, reordered and inside more text, needs no quote after it;
    one that states only part of it (or another sentence sharing a few words) still does."""
    restated = (
        "In 1995 Yeltsin approved the change, and he then signed a program to modernize "
        "the strategic nuclear forces of Russia."
    )
    assert restated != QUOTE and covers(restated, QUOTE)
    assert not covers("Then he signed a program of modernization.", QUOTE)
    assert not covers("Russian forces signed nothing.", QUOTE)
    assert not covers("Yeltsin approved.", QUOTE)


def test_verbatim_means_in_order_in_one_passage() -> None:
    assert is_verbatim("misfortune leads to fortune", PASSAGES)
    assert not is_verbatim("fortune leads to misfortune", PASSAGES)
