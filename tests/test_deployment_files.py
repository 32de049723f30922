"""docker-compose.yml is validated by the docker client where it exists (no engine runs on our machines)."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def compose_command() -> list[str] | None:
    """`docker compose` (the v2 plugin) or the standalone `docker-compose`, whichever this machine has."""
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"],
                                                 capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def test_compose_file_is_valid() -> None:
    command = compose_command()
    if command is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    env = {**os.environ, "GANSERVE_API_KEY": "x"}
    result = subprocess.run([*command, "-f", str(REPO / "docker-compose.yml"), "config", "--quiet"],
                            capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr


def test_dockerfile_keeps_torch_out_of_the_api_image() -> None:
    text = (REPO / "Dockerfile").read_text()
    api_stage = text.split("FROM base AS api", 1)[1].split("FROM ", 1)[0]
    assert "torch" not in api_stage and "[worker" not in api_stage


def test_compose_restarts_its_services_and_runs_an_evaluation_worker() -> None:
    import yaml

    services = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    for name, service in services.items():
        if name != "migrate":  # a one-shot
            assert service.get("restart") == "unless-stopped", name
    evaluator = " ".join(services["evaluator"]["command"])
    assert "-Q evaluation" in evaluator
