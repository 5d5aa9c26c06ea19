from __future__ import annotations

from pathlib import Path

import pytest

from bot.errors import KnowledgeError
from bot.knowledge import Knowledge, join_lines, load_knowledge
from bot.settings import PROJECT_ROOT

EXPECTED_SECTIONS = [
    "Russia versus NATO",
    "The Promise of the New Era",
    "Troubled Partnership with NATO",
    "Russia's Bad Surprise For America",
    "America's Bad Surprise for Russia",
    "The Bill–Boris Show",
    "Conclusions and Outlook",
]


def test_every_heading_is_recognised(knowledge: Knowledge) -> None:
    assert list(knowledge.sections) == EXPECTED_SECTIONS


def test_hyphenation_and_page_furniture_are_gone(knowledge: Knowledge) -> None:
    for passage in knowledge.passages:
        assert "Coordi- " not in passage.text
        assert "458 open door" not in passage.text.lower()
        assert "open door: nato" not in passage.text.lower()
        assert "  " not in passage.text
        assert "\u2019" not in passage.text and "\u201c" not in passage.text
    texts = " ".join(p.text for p in knowledge.passages)
    assert "North Atlantic Coordination Council" in texts
    assert "Unfortunately, the text of the letter" in texts


def test_paragraph_split_by_page_header_is_rejoined(knowledge: Knowledge) -> None:
    joined = [p for p in knowledge.passages if "relationship degraded into hostility" in p.text]
    assert len(joined) == 1
    assert joined[0].section == "Conclusions and Outlook"


def test_ids_are_stable_section_plus_ordinal(knowledge: Knowledge) -> None:
    ids = [p.id for p in knowledge.passages]
    assert len(ids) == len(set(ids))
    assert ids[0] == "russia-versus-nato-01"
    assert "the-bill-boris-show-01" in ids
    assert load_knowledge(PROJECT_ROOT / "knowledge").passages == knowledge.passages


def test_offsets_point_into_the_unchanged_source(knowledge: Knowledge) -> None:
    source = (PROJECT_ROOT / "knowledge" / knowledge.metadata.source_file).read_text("utf-8")
    for passage in knowledge.passages:
        raw = source[passage.start : passage.end]
        first_word = passage.text.split()[0].replace("'", "\u2019")
        assert raw.lstrip().startswith(first_word)
    shared = PROJECT_ROOT.parent / "shared" / "source" / knowledge.metadata.source_file
    if shared.exists():
        assert shared.read_bytes() == (PROJECT_ROOT / "knowledge" / shared.name).read_bytes()


def test_join_lines_rejoins_words_broken_at_line_end() -> None:
    assert join_lines(["North Atlantic Coordi-", "nation Council"]) == (
        "North Atlantic Coordination Council"
    )
    assert join_lines(["Unfor- ", "tunately, it"]) == "Unfortunately, it"


def test_unreadable_knowledge_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(KnowledgeError, match="metadata"):
        load_knowledge(tmp_path)
    (tmp_path / "metadata.toml").write_text(
        (PROJECT_ROOT / "knowledge" / "metadata.toml").read_text("utf-8"), "utf-8"
    )
    with pytest.raises(KnowledgeError, match="Cannot read the essay"):
        load_knowledge(tmp_path)
    (tmp_path / "russia-and-nato-enlargement.txt").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(KnowledgeError):
        load_knowledge(tmp_path)
    (tmp_path / "metadata.toml").write_text("title = [", "utf-8")
    with pytest.raises(KnowledgeError, match="malformed"):
        load_knowledge(tmp_path)
