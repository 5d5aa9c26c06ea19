"""Faithfulness per claim: a kept sentence must say what one essay sentence says, not merely use
words, numbers and names that occur somewhere in the passages."""

from __future__ import annotations

import pytest

from bot.answering.grounding import check, negated
from bot.knowledge import Knowledge


def passages(knowledge: Knowledge, *ids: str) -> list[str]:
    return [knowledge.by_id[i].text for i in ids]


PFP = ("russia-s-bad-surprise-for-america-09", "russia-s-bad-surprise-for-america-10")
BETRAYED = ("america-s-bad-surprise-for-russia-01",)
LETTER = ("the-promise-of-the-new-era-02",)

UNFAITHFUL = [
    # a year that occurs elsewhere in the passages, not in the sentence the claim restates
    (PFP, "Yeltsin authorized me to sign up to the PfP on June 22, 1993."),
    # swapped actor: it was NATO that approved the policy, not Clinton
    (BETRAYED, "Yeltsin felt betrayed when in December 1994 Clinton approved a policy."),
    # negation dropped
    (LETTER, "Today we ask for Russian membership in NATO."),
    # negation added
    (
        BETRAYED,
        "Yeltsin did not feel offended and betrayed when in December 1994 NATO approved a policy.",
    ),
    # swapped year
    (BETRAYED, "Yeltsin felt offended and betrayed when in December 1993 NATO approved a policy."),
    # swapped actors within one sentence's names
    (BETRAYED, "Clinton was enraged by the recurring failures of Yeltsin to consult."),
    # a day of the month changed
    (PFP, "Yeltsin authorized me to sign up to the PfP on June 12, 1994."),
]
FAITHFUL = [
    (PFP, "Yeltsin authorized me to sign up to the PfP on June 22, 1994."),
    (BETRAYED, "Yeltsin felt offended and betrayed when in December 1994 NATO approved a policy."),
    (LETTER, "Today we do not ask for Russian membership in NATO."),
    (BETRAYED, "He was also enraged by Clinton's recurring failures to consult."),
]


@pytest.mark.parametrize(("ids", "claim"), UNFAITHFUL)
def test_an_unfaithful_claim_is_dropped(
    knowledge: Knowledge, ids: tuple[str, ...], claim: str
) -> None:
    result = check(claim, passages(knowledge, *ids))
    assert result.kept == [], claim


@pytest.mark.parametrize(("ids", "claim"), FAITHFUL)
def test_a_faithful_claim_is_kept(knowledge: Knowledge, ids: tuple[str, ...], claim: str) -> None:
    assert check(claim, passages(knowledge, *ids)).kept == [claim]


def test_negation_decides_polarity() -> None:
    assert negated("we do not ask") and not negated("we ask")
    assert not negated("it is not that we never asked")
    assert negated("NATO does not remain the main power.")
