"""docker-compose.yml parses, and every command it runs exists in this code base."""

from __future__ import annotations

import importlib
import importlib.util
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.management import get_commands

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def python_commands(compose: dict[str, Any]) -> list[list[str]]:
    return [svc["command"] for svc in compose["services"].values() if svc.get("command", [""])[0] == "python"]


def test_it_defines_the_stack(compose: dict[str, Any]) -> None:
    assert {"postgres", "redis", "devcloud", "web", "worker", "beat"} <= set(compose["services"])
    for name in ("devcloud", "web", "worker", "beat"):
        assert compose["services"][name]["build"] == "."


def test_every_python_module_it_runs_exists(compose: dict[str, Any]) -> None:
    modules = [cmd[2] for cmd in python_commands(compose) if cmd[1] == "-m"]
    assert {"devcloud", "uvicorn", "celery"} <= set(modules)
    for module in modules:
        assert importlib.util.find_spec(module) is not None, module


def test_every_management_command_it_runs_exists(compose: dict[str, Any]) -> None:
    commands = [cmd[2] for cmd in python_commands(compose) if cmd[1] == "manage.py"]
    assert commands
    for command in commands:
        assert command in get_commands(), command


def test_the_asgi_app_and_celery_app_it_names_import(compose: dict[str, Any]) -> None:
    for cmd in python_commands(compose):
        if cmd[2] == "uvicorn":
            module, _, attribute = cmd[3].partition(":")
            assert hasattr(importlib.import_module(module), attribute)
        if cmd[2] == "celery":
            app = importlib.import_module(cmd[cmd.index("-A") + 1]).celery_app
            assert cmd[5] in ("worker", "beat")
            assert app.main == "portal"


def test_its_settings_are_documented_in_env_example(compose: dict[str, Any]) -> None:
    documented = set(re.findall(r"^([A-Z_]+)=", (ROOT / ".env.example").read_text(), re.M))
    anchor = compose["x-portal"]["environment"]
    assert "SECRET_KEY_FILE" not in anchor, "a fresh clone has no secret file; DEBUG uses the development key"
    names = {name.removesuffix("_FILE") for name in anchor}
    assert names <= documented, names - documented


def test_make_run_uses_the_same_commands() -> None:
    run = (ROOT / "scripts" / "run.py").read_text()
    for fragment in ('"bootstrap", "--demo"', '"-m", "devcloud"', '"portal.asgi:application"', '"worker"', '"beat"'):
        assert fragment in run
