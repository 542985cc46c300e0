"""Error tracking: on only when SENTRY_DSN is set; what is sent holds no body, cookie, query or token."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sentry_sdk
from django.http import HttpRequest, HttpResponse
from django.test import Client
from django.urls import path
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

from core import logs
from core.sentry import scrub, sentry_init

ROOT = Path(__file__).resolve().parents[2]
DSN = "https://key@127.0.0.1/1"


def client_active(**env: str) -> str:
    """Whether the settings turned Sentry on, in a process of their own."""
    code = "import django, sentry_sdk; django.setup(); c = sentry_sdk.get_client(); print(c.is_active(), c.options.get('environment'), c.options.get('include_local_variables'))"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SENTRY_")} | env
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=environment, capture_output=True, text=True, check=True
    )
    return run.stdout.strip()


def test_sentry_stays_off_without_a_dsn() -> None:
    assert client_active().startswith("False")


def test_sentry_is_on_with_a_dsn_and_sends_no_personal_data() -> None:
    assert client_active(SENTRY_DSN=DSN, SENTRY_ENVIRONMENT="staging") == "True staging False"


class Recorded(Transport):
    """Keeps the events instead of sending them."""

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self.events: list[dict[str, Any]] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        self.events += [item.payload.json for item in envelope.items if item.type == "event" and item.payload.json]


def boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("something broke")


def unavailable(request: HttpRequest) -> HttpResponse:
    return HttpResponse("try again", status=503)


urlpatterns = [path("boom", boom), path("unavailable", unavailable)]


@pytest.fixture
def recorded() -> Iterator[Recorded]:
    transport = Recorded()
    sentry_init(dsn=DSN, environment="test", release="r1", transport=transport)
    yield transport
    sentry_sdk.get_client().close()
    sentry_sdk.get_global_scope().set_client(None)


@pytest.mark.urls(__name__)
def test_an_error_is_sent_without_body_cookies_query_or_authorization(recorded: Recorded, settings: Any) -> None:
    client = Client(raise_request_exception=False)
    client.cookies["sessionid"] = "cookie-secret"
    with logs.scope(request_id="outer-1234567"):
        response = client.post(
            "/boom?code=oauth-secret",
            data={"password": "body-secret"},
            HTTP_AUTHORIZATION="Bearer header-secret",
            HTTP_X_REQUEST_ID="req-12345678",
        )
    assert response.status_code == 500
    sentry_sdk.flush()
    [event] = recorded.events
    assert event["exception"]["values"][0]["value"] == "something broke"
    assert event["environment"] == "test" and event["release"] == "r1"
    assert "?" not in event["request"].get("url", "")
    assert event["tags"]["request_id"] == "req-12345678"
    sent = str(event)
    for secret in ("oauth-secret", "body-secret", "cookie-secret", "header-secret"):
        assert secret not in sent


@pytest.mark.urls(__name__)
def test_a_503_the_portal_chose_is_not_filed_as_an_error(recorded: Recorded) -> None:
    """Django logs each 5xx at ERROR (/healthz naming a stopped worker, say): Sentry's Django
    integration leaves that logger out, and only exceptions are filed."""
    assert Client().get("/unavailable").status_code == 503
    sentry_sdk.flush()
    assert recorded.events == []


def test_scrub_keeps_the_path_and_safe_headers_only() -> None:
    event: Any = {
        "request": {
            "url": "https://portal.example.com/auth/callback?code=oauth-secret",
            "query_string": "code=oauth-secret",
            "method": "GET",
            "data": {"password": "body-secret"},
            "cookies": {"sessionid": "cookie-secret"},
            "env": {"REMOTE_ADDR": "192.0.2.1"},
            "headers": {
                "Authorization": "Bearer t",
                "Cookie": "sessionid=s",
                "User-Agent": "probe",
                "X-CSRFToken": "c",
            },
        }
    }
    with logs.scope(request_id="req-12345678", tenant=3):
        scrubbed = scrub(event, {})
    assert scrubbed["request"] == {
        "url": "https://portal.example.com/auth/callback",
        "method": "GET",
        "headers": {"User-Agent": "probe"},
    }
    assert scrubbed["tags"] == {"request_id": "req-12345678", "tenant": "3"}
