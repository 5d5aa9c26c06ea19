"""Ingest: turns the essay as supplied into clean passages with stable ids and source offsets.

The source is raw extracted text (hyphenation at line ends, a running page header, stray spaces,
curly quotes). Cleaning is deterministic so passage ids and offsets stay stable between runs.
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from bot.errors import KnowledgeError

_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})
_HEADING_END = re.compile(r"[.,;:!?\"'\u201d\u2019)\u2026-]$")
_SENTENCE_END = re.compile(r"[.!?:\"'\u201d\u2019\u2026)]$")
_MAX_HEADING_CHARS = 60


@dataclass(frozen=True)
class Metadata:
    title: str
    author: str
    persona_name: str
    book: str
    running_header: str
    disclosure: str
    source_file: str
    topics: tuple[str, ...] = ()


@dataclass(frozen=True)
class Passage:
    """A paragraph of the essay: the unit that is retrieved, quoted and cited."""

    id: str
    section: str
    ordinal: int
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class Knowledge:
    metadata: Metadata
    passages: tuple[Passage, ...]
    sections: tuple[str, ...]
    by_id: dict[str, Passage] = field(default_factory=dict, compare=False)


@dataclass
class _Line:
    text: str
    start: int
    end: int


def clean_text(text: str) -> str:
    """Normalises one paragraph's joined text: Unicode form, quotes and whitespace."""
    text = unicodedata.normalize("NFC", text).translate(_QUOTES)
    return re.sub(r"\s+", " ", text).strip()


def join_lines(lines: list[str]) -> str:
    """Joins a paragraph's lines, re-joining words hyphenated across a line break."""
    joined = ""
    for raw in lines:
        line = raw.strip()
        if joined.endswith("-") and line[:1].isalpha():
            joined = joined[:-1] + line
        else:
            joined = f"{joined} {line}" if joined else line
    return joined


def slugify(text: str) -> str:
    dashed = re.sub(r"[\W_]+", "-", text.lower())
    return unicodedata.normalize("NFKD", dashed).encode("ascii", "ignore").decode().strip("-")


def _is_running_header(line: str, header: str) -> bool:
    """The book's page header, with its page number on either side, on a line of its own."""
    stripped = re.sub(r"^\d+\s+|\s+\d+$", "", line.strip().lower())
    return bool(header) and stripped == header.lower()


def _is_page_number(line: str) -> bool:
    return bool(re.fullmatch(r"\s*\d{1,4}\s*", line))


def _blocks(source: str, header: str) -> list[list[_Line]]:
    """Groups non-blank lines into blocks, dropping page furniture."""
    blocks: list[list[_Line]] = []
    current: list[_Line] = []
    offset = 0
    for raw in source.splitlines(keepends=True):
        line = raw.rstrip("\r\n")
        start, offset = offset, offset + len(raw)
        if _is_running_header(line, header) or _is_page_number(line):
            continue
        if not line.strip():
            if current:
                blocks.append(current)
                current = []
            continue
        current.append(_Line(line, start, start + len(line)))
    if current:
        blocks.append(current)
    return blocks


def _merge_broken_paragraphs(blocks: list[list[_Line]]) -> list[list[_Line]]:
    """Rejoins a paragraph that a page break split: it ends mid-sentence, its tail starts lowercase."""
    merged: list[list[_Line]] = []
    for block in blocks:
        if merged:
            previous = merged[-1][-1].text.rstrip()
            first = block[0].text.strip()
            if not _SENTENCE_END.search(previous) and first[:1].islower():
                merged[-1] = merged[-1] + block
                continue
        merged.append(block)
    return merged


def is_heading(block: list[_Line]) -> bool:
    """A section heading is a short single line in title case with no closing punctuation."""
    if len(block) != 1:
        return False
    text = block[0].text.strip()
    return (
        len(text) <= _MAX_HEADING_CHARS
        and text[:1].isupper()
        and not _HEADING_END.search(text)
        and len(text.split()) >= 2
    )


def parse(source: str, metadata: Metadata) -> tuple[tuple[Passage, ...], tuple[str, ...]]:
    """Splits the source into passages under their headings; text before the first heading is the title page."""
    title_block = {clean_text(part).lower() for part in (metadata.title, metadata.author)}
    passages: list[Passage] = []
    sections: list[str] = []
    section: str | None = None
    ordinal = 0
    for block in _merge_broken_paragraphs(_blocks(source, metadata.running_header)):
        text = clean_text(join_lines([line.text for line in block]))
        if is_heading(block):
            if section is None and any(text.lower() in t or t in text.lower() for t in title_block):
                continue
            section, ordinal = text, 0
            sections.append(section)
            continue
        if section is None:
            continue
        ordinal += 1
        passage_id = f"{slugify(section)}-{ordinal:02d}"
        passages.append(Passage(passage_id, section, ordinal, text, block[0].start, block[-1].end))
    return tuple(passages), tuple(sections)


def load_metadata(knowledge_dir: Path) -> Metadata:
    path = knowledge_dir / "metadata.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        return Metadata(
            title=data["title"],
            author=data["author"],
            persona_name=data["persona_name"],
            book=data["book"],
            running_header=data["running_header"],
            disclosure=data["disclosure"],
            source_file=data["source_file"],
            topics=tuple(data.get("topics", ())),
        )
    except (OSError, UnicodeDecodeError) as exc:
        raise KnowledgeError(f"Cannot read knowledge metadata {path}: {exc}") from None
    except (tomllib.TOMLDecodeError, KeyError, TypeError) as exc:
        raise KnowledgeError(f"Knowledge metadata {path} is malformed: {exc}") from None


def load_knowledge(knowledge_dir: Path) -> Knowledge:
    """Reads and ingests the essay; every failure becomes a KnowledgeError with the file named."""
    metadata = load_metadata(knowledge_dir)
    path = knowledge_dir / metadata.source_file
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise KnowledgeError(f"Cannot read the essay {path}: {exc}") from None
    passages, sections = parse(source, metadata)
    if not passages:
        raise KnowledgeError(f"The essay {path} holds no passages under a section heading.")
    return Knowledge(metadata, passages, sections, {p.id: p for p in passages})
