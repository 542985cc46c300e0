"""The Procfile and docker-compose.yml parse, compose runs the Procfile's lines, and every command
they run exists in this code base."""

from __future__ import annotations

import fnmatch
import importlib
import importlib.util
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.management import get_commands
from honcho.environ import parse_procfile

ROOT = Path(__file__).resolve().parent.parent
DEVELOPMENT_ONLY = {"devcloud", "webhook"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


@pytest.fixture(scope="module")
def procfile() -> dict[str, str]:
    return dict(parse_procfile((ROOT / "Procfile").read_text()).processes)


def with_defaults(line: str) -> list[str]:
    """A Procfile line as sh runs it when no setting is given: `${NAME:-default}` is the default."""
    return shlex.split(re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", line))


def python_commands(procfile: dict[str, str]) -> list[list[str]]:
    commands = [with_defaults(line) for line in procfile.values()]
    return [cmd[1:] for cmd in commands if cmd[:2] == ["exec", "python"]]


def test_the_procfile_defines_the_portals_processes(procfile: dict[str, str]) -> None:
    assert set(procfile) == {"web", "worker", "beat", "devcloud", "webhook"}


def test_each_procfile_line_is_one_command_the_shell_execs(procfile: dict[str, str]) -> None:
    for name, line in procfile.items():
        assert line.startswith("exec python "), name
        assert not re.search(r"[;&|<>`]|\$\(", line), name


def test_web_takes_its_host_port_and_worker_count_from_the_environment(procfile: dict[str, str]) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOST": "192.0.2.1", "PORT": "9001", "WEB_CONCURRENCY": "3"}
    echoed = subprocess.run(
        ["sh", "-c", procfile["web"].replace("exec ", "echo ", 1)], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert "--host 192.0.2.1 --port 9001 --workers 3 " in echoed


def test_every_python_module_it_runs_exists(procfile: dict[str, str]) -> None:
    modules = [cmd[2] for cmd in python_commands(procfile) if cmd[1] == "-m"]
    assert set(modules) == {"devcloud", "uvicorn", "celery"}
    for module in modules:
        assert importlib.util.find_spec(module) is not None, module


def test_the_asgi_app_and_celery_app_it_names_import(procfile: dict[str, str]) -> None:
    for cmd in python_commands(procfile):
        if cmd[2] == "uvicorn":
            module, _, attribute = cmd[3].partition(":")
            assert hasattr(importlib.import_module(module), attribute)
        if cmd[2] == "celery":
            app = importlib.import_module(cmd[cmd.index("-A") + 1]).celery_app
            assert cmd[5] in ("worker", "beat")
            assert app.main == "portal"


def test_no_server_logs_requests(procfile: dict[str, str]) -> None:
    for cmd in python_commands(procfile):
        if cmd[2] == "uvicorn":
            assert "--no-access-log" in cmd, "callback URLs carry OAuth authorization codes"


def test_it_defines_the_stack(compose: dict[str, Any]) -> None:
    assert {"postgres", "redis", "devcloud", "bootstrap", "web", "webhook", "worker", "beat"} <= set(
        compose["services"]
    )
    for name in ("devcloud", "bootstrap", "web", "webhook", "worker", "beat"):
        assert compose["services"][name]["build"] == "."
        assert compose["services"][name]["network_mode"] == "host"


def test_each_portal_service_runs_its_procfile_line_without_a_dotenv(
    compose: dict[str, Any], procfile: dict[str, str]
) -> None:
    for name in procfile:
        assert compose["services"][name]["command"] == ["honcho", "start", "--env", "/dev/null", "--no-prefix", name]


def test_it_sets_the_ports_the_procfile_reads(compose: dict[str, Any]) -> None:
    # honcho sets PORT to 5000 when it is not set.
    anchor = compose["x-portal"]["environment"]
    assert (anchor["PORT"], anchor["DEVCLOUD_PORT"], anchor["WEBHOOK_PORT"]) == ("8000", "8443", "8444")
    assert anchor["ENTRA_LOGIN_URL"] == anchor["GRAPH_URL"] == "https://127.0.0.1:8443"
    assert anchor["GRAPH_NOTIFICATION_URL"] == "https://127.0.0.1:8444"


def test_every_management_command_it_runs_exists(compose: dict[str, Any]) -> None:
    bootstrap = compose["services"]["bootstrap"]["command"]
    assert bootstrap[:3] == ["python", "manage.py", "bootstrap"]
    assert bootstrap[2] in get_commands()


def test_its_settings_are_documented_in_env_example(compose: dict[str, Any]) -> None:
    documented = set(re.findall(r"^([A-Z_]+)=", (ROOT / ".env.example").read_text(), re.M))
    anchor = compose["x-portal"]["environment"]
    assert "SECRET_KEY_FILE" not in anchor, "a fresh clone has no secret file; DEBUG uses the development key"
    names = {name.removesuffix("_FILE") for name in anchor}
    assert names <= documented, names - documented


def dockerignored(path: str) -> bool:
    """Whether .dockerignore keeps `path` out of the build context: the last matching pattern decides."""
    ignored = False
    for pattern in (ROOT / ".dockerignore").read_text().splitlines():
        pattern = pattern.strip()
        if pattern and not pattern.startswith("#") and fnmatch.fnmatchcase(path, pattern.removeprefix("!")):
            ignored = not pattern.startswith("!")
    return ignored


def test_the_image_gets_no_dotenv_file() -> None:
    for path in (".env", ".env.local", ".env.production"):
        assert dockerignored(path), path
    assert not dockerignored(".env.example")
    assert not dockerignored("Procfile")
