"""The wheel the container image installs: migrations and dashboard files inside, and it runs.

The image installs the package non-editable, so nothing may be read from the source tree except
`prompts/` and `knowledge/`, which the Dockerfile copies and points at with environment variables.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from bot.settings import PROJECT_ROOT

pytestmark = pytest.mark.timeout(180)
PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
# What the installed package does at start-up in the image: migrate the log, load the texts.
START = """
import json, bot
from bot.knowledge import load_knowledge
from bot.answering.prompting import Prompts
from bot.settings import load_settings
from bot.storage import open_log
from sqlalchemy import text
settings = load_settings()
log = open_log(settings, require_database=True)
with log.engine.connect() as connection:
    revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
log.close()
print(json.dumps({
    "package": bot.__file__,
    "revision": revision,
    "busy": Prompts(settings.prompts_dir).render("busy"),
    "passages": len(load_knowledge(settings.knowledge_dir).passages),
}))
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built from a copy of what the Dockerfile copies, so the shared tree gets no build/ files."""
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(PROJECT_ROOT / name, source / name)
    for name in ("bot", "adapters"):
        shutil.copytree(
            PROJECT_ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__")
        )
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [*PIP, "wheel", "--no-deps", "--no-build-isolation", "-w", str(out), str(source)],
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("personabot-*.whl")
    return built


def test_wheel_holds_the_packages_and_their_data(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    migrations = {Path(name).name for name in names if name.startswith("bot/storage/migrations/")}
    sources = sorted((PROJECT_ROOT / "bot/storage/migrations/versions").glob("0*.py"))
    assert {"env.py", "script.py.mako", *(path.name for path in sources)} <= migrations
    web = PROJECT_ROOT / "adapters/web"
    for data in [*web.glob("templates/*.html"), *web.glob("static/*")]:
        assert data.relative_to(PROJECT_ROOT).as_posix() in names
    top = {name.split("/")[0] for name in names if not name.startswith("personabot-")}
    assert top == {"bot", "adapters"}  # no tests, benchmarks or data
    assert not any("__pycache__" in name for name in names)


def test_installed_wheel_migrates_and_finds_prompts_and_knowledge(
    wheel: Path, tmp_path: Path
) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [*PIP, "install", "--no-deps", "--no-index", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    app = tmp_path / "app"  # as in the image: texts copied next to, not inside, the package
    shutil.copytree(PROJECT_ROOT / "prompts", app / "prompts")
    shutil.copytree(PROJECT_ROOT / "knowledge", app / "knowledge")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERSONABOT_")}
    env.pop("DATABASE_URL", None)
    env |= {
        "PYTHONPATH": str(target),
        "PERSONABOT_PROMPTS_DIR": str(app / "prompts"),
        "PERSONABOT_KNOWLEDGE_DIR": str(app / "knowledge"),
        "PERSONABOT_DATA_DIR": str(tmp_path / "data"),
    }
    done = subprocess.run(
        [sys.executable, "-c", START],
        check=False,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.splitlines()[-1])
    assert found["package"].startswith(str(target))  # not the source tree
    heads = sorted((PROJECT_ROOT / "bot/storage/migrations/versions").glob("0*.py"))
    assert found["revision"] == heads[-1].name.split("_")[0]  # the newest migration ran
    assert found["busy"].startswith("Many people are asking me right now")
    assert found["passages"] > 10
