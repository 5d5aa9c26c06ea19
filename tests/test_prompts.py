from __future__ import annotations

from pathlib import Path

import pytest

from bot.answering.prompting import Prompts, TemplateError
from bot.settings import PROJECT_ROOT


@pytest.fixture(scope="module")
def prompts() -> Prompts:
    return Prompts(PROJECT_ROOT / "prompts")


def test_every_template_renders_with_its_placeholders(prompts: Prompts) -> None:
    assert {"system", "answer", "refusal", "identity", "not_direct", "unavailable"} <= set(
        prompts.names
    )
    for name in prompts.names:
        values = {field: f"<{field}>" for field in prompts.placeholders(name)}
        rendered = prompts.render(name, **values)
        assert rendered.strip()
        for field, value in values.items():
            assert value in rendered
            assert "{" + field + "}" not in rendered


def test_a_missing_placeholder_fails_loudly(prompts: Prompts) -> None:
    with pytest.raises(TemplateError, match="quote"):
        prompts.render("not_direct")
    with pytest.raises(TemplateError, match="missing"):
        prompts.render("no-such-template")


def test_version_changes_with_the_text(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("Hello {name}", "utf-8")
    before = Prompts(tmp_path).version
    (tmp_path / "a.txt").write_text("Hello there {name}", "utf-8")
    assert Prompts(tmp_path).version != before


def test_an_empty_prompts_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="No prompt templates"):
        Prompts(tmp_path)
