"""Production: docker-compose.production.yml runs the Procfile's lines against Microsoft with every
service health-checked and secrets as files, and the settings production.env.example documents
pass `manage.py check --deploy` without a single warning."""

from __future__ import annotations

import base64
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.management import get_commands
from django.test import Client
from honcho.environ import parse_procfile

from tests.test_docker_compose import dockerignored

ROOT = Path(__file__).resolve().parent.parent
PORTAL_SERVICES = {"web", "worker", "beat"}
# How the test makes each secret that production reads from a file.
SECRETS: dict[str, Callable[[], str]] = {
    "SECRET_KEY": lambda: secrets.token_urlsafe(50),
    "ENCRYPTION_KEYS": lambda: base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("="),
    "DATABASE_URL": lambda: f"postgres://portal:{secrets.token_urlsafe(24)}@postgres:5432/portal",
}


def read_env_file(path: Path) -> dict[str, str]:
    return dict(re.findall(r"^([A-Z][A-Z0-9_]*)=(.*)$", path.read_text(), re.M))


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.production.yml").read_text())
    return data


@pytest.fixture(scope="module")
def production_env() -> dict[str, str]:
    return read_env_file(ROOT / "production.env.example")


def environment(service: dict[str, Any]) -> dict[str, str]:
    return {name: str(value) for name, value in (service.get("environment") or {}).items()}


def test_the_documented_settings_pass_the_deployment_checks_without_a_warning(
    production_env: dict[str, str], tmp_path: Path
) -> None:
    env = {"PATH": os.environ["PATH"]}
    for name, value in production_env.items():
        secret = name.removesuffix("_FILE")
        if name.endswith("_FILE"):
            assert secret in SECRETS, f"{name}: add how to make this secret to SECRETS"
            (tmp_path / secret).write_text(SECRETS[secret]() + "\n")
            value = str(tmp_path / secret)
        env[name] = value
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_it_runs_no_devcloud_no_webhook_and_no_demo_data(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {"postgres", "redis", "migrate"} | PORTAL_SERVICES
    migrate = compose["services"]["migrate"]["command"]
    assert migrate == ["python", "manage.py", "bootstrap"]
    assert migrate[2] in get_commands()
    text = (ROOT / "docker-compose.production.yml").read_text()
    assert "8443" not in text and "devcloud" not in text.lower()


def test_it_talks_to_microsoft_in_production_mode(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        env = environment(service)
        assert env.get("DEBUG", "false") == "false", name
        assert not {"ENTRA_LOGIN_URL", "GRAPH_URL", "MICROSOFT_CA_BUNDLE"} & set(env), name
    web = environment(compose["services"]["web"])
    # Every interface of its own container: only the TLS proxy reaches it.
    assert web["HOST"] == "0.0.0.0"  # noqa: S104
    assert (web["PORT"], web["BEHIND_TLS_PROXY"]) == ("8000", "true")


def test_each_portal_service_runs_its_procfile_line(compose: dict[str, Any]) -> None:
    procfile = dict(parse_procfile((ROOT / "Procfile").read_text()).processes)
    assert set(procfile) >= PORTAL_SERVICES
    for name in PORTAL_SERVICES:
        assert compose["services"][name]["command"] == ["honcho", "start", "--env", "/dev/null", "--no-prefix", name]
    assert "${WEB_CONCURRENCY" in procfile["web"]


def test_every_service_that_keeps_running_has_a_healthcheck(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if service.get("restart") == "no":
            assert name == "migrate", "the only one-shot service"
            continue
        assert service["healthcheck"]["test"], name
    for name in PORTAL_SERVICES:
        assert compose["services"][name]["healthcheck"]["test"] == ["CMD", "python", "manage.py", "healthcheck", name]
    assert "healthcheck" in get_commands()


def test_secrets_come_as_files(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        env = environment(service)
        listed = set(service.get("secrets", []))
        for variable, value in env.items():
            if re.search(r"PASSWORD|SECRET|KEYS?$|DATABASE_URL$", variable.removesuffix("_FILE")):
                assert variable.endswith("_FILE"), f"{name}: {variable} holds a secret in the compose file"
            if variable.endswith("_FILE"):
                assert value.removeprefix("/run/secrets/") in listed, f"{name}: {variable}"
    portal = environment(compose["services"]["web"])
    assert {"SECRET_KEY_FILE", "ENCRYPTION_KEYS_FILE", "DATABASE_URL_FILE"} <= set(portal)
    assert environment(compose["services"]["postgres"])["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"
    assert all("file" in secret for secret in compose["secrets"].values())


def test_what_compose_sets_is_what_production_env_example_documents(
    compose: dict[str, Any], production_env: dict[str, str]
) -> None:
    for name in PORTAL_SERVICES | {"migrate"}:
        service = compose["services"][name]
        assert service["env_file"] == "production.env"
        assert environment(service).items() <= production_env.items(), name


def test_every_production_setting_is_documented_in_env_example(
    compose: dict[str, Any], production_env: dict[str, str]
) -> None:
    documented = set(read_env_file(ROOT / ".env.example"))
    names = {name.removesuffix("_FILE") for name in production_env}
    names |= {name.removesuffix("_FILE") for name in environment(compose["services"]["web"])}
    assert names <= documented, names - documented
    example = (ROOT / "production.env.example").read_text()
    assert "example.com" in production_env["ALLOWED_HOSTS"]
    # Every setting has its comment on the line above.
    assert not re.search(r"^[A-Z_]+=.*\n[A-Z_]+=", example, re.M)
    assert not re.search(r"^\n[A-Z_]+=", example, re.M)


def test_the_image_gets_no_production_settings_or_secrets() -> None:
    assert dockerignored("production.env")
    assert dockerignored("secrets")


@pytest.mark.django_db
def test_healthz_answers_plain_http_while_pages_redirect_to_https(client: Client, settings: Any) -> None:
    settings.SECURE_SSL_REDIRECT = True
    settings.HEALTHZ_CELERY = False  # no worker runs here: tests/portal/test_health.py checks those
    assert client.get("/").status_code == 301
    assert client.get("/healthz").status_code == 200
