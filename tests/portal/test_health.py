from __future__ import annotations

import io
import time
from collections.abc import Iterator
from typing import Any

import pytest
from celery.contrib.testing.worker import start_worker
from django.core.management import call_command
from django.db import connection, connections
from django.test import Client

from core import coordination, tasks
from portal import health
from portal.celery import app as celery_app


@pytest.fixture(autouse=True)
def _ping_again() -> Iterator[None]:
    """Each test's first /healthz pings the workers (the answer is kept a few seconds per process)."""
    health.forget_worker_answer()
    yield
    health.forget_worker_answer()


@pytest.fixture
def celery_checks(settings: Any) -> Any:
    settings.HEALTHZ_CELERY = True
    settings.HEALTHZ_CELERY_TIMEOUT = 0.5
    return settings


@pytest.fixture
def worker() -> Iterator[None]:
    """A Celery worker in a thread, on the tests' broker. Starting, it closes this thread's
    database connection (as a worker process does): the tests using it open theirs again."""
    with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=15):
        connections.close_all()
        yield


@pytest.mark.django_db(transaction=True)
def test_healthz_is_200_when_a_worker_answers_and_beat_ran(client: Client, celery_checks: Any, worker: None) -> None:
    tasks.heartbeat()
    response = client.get("/healthz")
    assert response.status_code == 200, response.json()
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "redis": "ok", "celery_worker": "ok", "beat": "ok"},
    }


@pytest.mark.django_db
def test_healthz_is_503_naming_the_worker_when_none_answers(client: Client, celery_checks: Any) -> None:
    tasks.heartbeat()
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {
        "status": "error",
        "checks": {
            "database": "ok",
            "redis": "ok",
            "celery_worker": "no worker answered within 0.5 s",
            "beat": "ok",
        },
    }


@pytest.mark.django_db(transaction=True)
def test_healthz_is_503_naming_beat_when_its_heartbeat_is_stale(
    client: Client, celery_checks: Any, worker: None
) -> None:
    coordination.put(tasks.HEARTBEAT, str(time.time() - 7 * 60), seconds=60)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"] == {
        "database": "ok",
        "redis": "ok",
        "celery_worker": "ok",
        "beat": "last ran 7 min ago",
    }


@pytest.mark.django_db
def test_healthz_says_beat_never_ran_without_a_heartbeat(client: Client, celery_checks: Any) -> None:
    assert client.get("/healthz").json()["checks"]["beat"] == "never ran (no heartbeat within a day)"


@pytest.mark.django_db
def test_a_burst_of_healthz_pings_the_workers_once(client: Client, celery_checks: Any) -> None:
    started = time.monotonic()
    first = client.get("/healthz").json()["checks"]["celery_worker"]
    assert time.monotonic() - started >= 0.5
    started = time.monotonic()
    answers = [client.get("/healthz").json()["checks"]["celery_worker"] for _ in range(5)]
    assert time.monotonic() - started < 0.5
    assert answers == [first] * 5 == ["no worker answered within 0.5 s"] * 5


@pytest.mark.django_db
def test_healthz_reports_database_and_redis_ok_without_the_celery_checks(client: Client, settings: Any) -> None:
    settings.HEALTHZ_CELERY = False
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_healthz_is_503_when_redis_does_not_answer(client: Client, settings: Any) -> None:
    settings.HEALTHZ_CELERY = False
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
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
