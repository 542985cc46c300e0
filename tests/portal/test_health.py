from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client


@pytest.mark.django_db
def test_healthz_reports_database_and_redis_ok(client: Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_healthz_is_503_when_redis_does_not_answer(client: Client, settings: object) -> None:
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # type: ignore[attr-defined]
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["redis"] == "ConnectionError"
    assert "127.0.0.1:1" not in response.content.decode()


@pytest.mark.django_db
def test_healthz_refuses_post(client: Client) -> None:
    assert client.post("/healthz").status_code == 405


@pytest.mark.django_db
def test_tests_run_on_postgresql() -> None:
    assert connection.vendor == "postgresql"


@pytest.mark.django_db
def test_home_page_says_when_no_provider_is_set_up(client: Client) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert "No provider is set up yet" in response.content.decode()


@pytest.mark.django_db
def test_home_page_lists_the_providers_and_each_offers_sign_in(client: Client) -> None:
    call_command("load_demo_data", stdout=io.StringIO())
    page = client.get("/").content.decode()
    assert 'href="/v/contoso/"' in page and 'href="/v/litware/"' in page
    assert 'href="#main"' in page
    vendor_page = client.get("/v/contoso/").content.decode()
    assert "Sign in with Microsoft" in vendor_page
    assert "Connect your organization" in vendor_page
    assert client.get("/v/nobody/").status_code == 404
