"""Renders the plain-text templates in prompts/, failing loudly when a placeholder has no value."""

from __future__ import annotations

import hashlib
import string
from pathlib import Path

from bot.errors import PersonabotError


class TemplateError(PersonabotError):
    """A template is missing, unreadable or was rendered without one of its placeholders."""


class Prompts:
    """All templates of a prompts folder, read once; `version` identifies their exact text."""

    def __init__(self, directory: Path) -> None:
        try:
            files = sorted(directory.glob("*.txt"))
            self._templates = {f.stem: f.read_text(encoding="utf-8").strip() for f in files}
        except (OSError, UnicodeDecodeError) as exc:
            raise TemplateError(f"Cannot read prompt templates in {directory}: {exc}") from None
        if not self._templates:
            raise TemplateError(f"No prompt templates (*.txt) found in {directory}.")
        digest = hashlib.sha256()
        for name, text in sorted(self._templates.items()):
            digest.update(f"{name}\0{text}\0".encode())
        self.version = digest.hexdigest()[:12]

    @property
    def names(self) -> list[str]:
        return sorted(self._templates)

    def placeholders(self, name: str) -> set[str]:
        return {field for _, field, _, _ in string.Formatter().parse(self._get(name)) if field}

    def _get(self, name: str) -> str:
        try:
            return self._templates[name]
        except KeyError:
            raise TemplateError(f"Prompt template '{name}.txt' is missing.") from None

    def render(self, name: str, **values: object) -> str:
        missing = self.placeholders(name) - values.keys()
        if missing:
            raise TemplateError(
                f"Prompt template '{name}.txt' needs values for: {', '.join(sorted(missing))}."
            )
        return self._get(name).format(**values)
