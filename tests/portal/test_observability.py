"""What an operator sees: JSON log lines in the request's or task's context, the access log, /metrics."""

from __future__ import annotations

import io
import json
import logging
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from celery import shared_task
from django.test import Client

from chat.sync import chat_sync_member
from core import logs
from core.coordination import client as redis_client
from core.logs import JsonFormatter
from tenants.models import TenantUser
from tests.chat.conftest import people  # noqa: F401 (a fixture)
from tests.devcloud_server import USERS, DevCloud
from tests.portal_flow import Person, load_vendors

pytestmark = pytest.mark.django_db
TOKEN = "scrape-token-0123456789"
Lines = Callable[[], list[dict[str, Any]]]


@pytest.fixture
def log_lines() -> Iterator[Lines]:
    """The JSON lines that the portal's console handler writes (the configured format in tests)."""
    handler = next(h for h in logging.getLogger().handlers if isinstance(h.formatter, JsonFormatter))
    written = io.StringIO()
    previous = handler.setStream(written)  # type: ignore[attr-defined]
    try:
        yield lambda: [json.loads(line) for line in written.getvalue().splitlines()]
    finally:
        handler.setStream(previous)  # type: ignore[attr-defined]


def access(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in lines if line["logger"] == "portal.access"]


def scrape(client: Client) -> str:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    return response.content.decode()


def value(text: str, name: str, **labels: Any) -> float:
    """The sample `name` whose labels include `labels` (0 when there is none)."""
    total = 0.0
    for line in text.splitlines():
        match = re.fullmatch(r"(\w+)(?:\{(.*)\})? (\S+)", line)
        if not match or match[1] != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match[2] or ""))
        if all(found.get(key) == str(wanted) for key, wanted in labels.items()):
            total += float(match[3])
    return total


# logs ----------------------------------------------------------------------------------------
def test_each_request_gets_one_access_line_without_its_query_cookies_or_authorization(
    client: Client, log_lines: Lines
) -> None:
    client.cookies["sessionid"] = "cookie-value-not-for-logs"
    response = client.get(
        "/healthz?code=oauth-code-not-for-logs&state=s", HTTP_AUTHORIZATION="Bearer header-token-not-for-logs"
    )
    lines = log_lines()
    [line] = access(lines)
    assert line["message"].startswith("GET /healthz ")
    assert line["path"] == "/healthz"
    assert line["method"] == "GET"
    assert line["status"] == response.status_code
    assert line["view"] == "healthz"
    assert isinstance(line["duration_ms"], float)
    assert line["request_id"] == response["X-Request-ID"]
    written = json.dumps(lines)
    for secret in ("oauth-code-not-for-logs", "code=", "cookie-value-not-for-logs", "header-token-not-for-logs"):
        assert secret not in written


def test_a_well_formed_request_id_is_kept_and_any_other_replaced(client: Client, log_lines: Lines) -> None:
    kept = client.get("/healthz", HTTP_X_REQUEST_ID="lb-4f1c2a9e-77")
    assert kept["X-Request-ID"] == "lb-4f1c2a9e-77"
    replaced = client.get("/healthz", HTTP_X_REQUEST_ID='bad id "with quotes"')
    assert re.fullmatch(r"[0-9a-f]{32}", replaced["X-Request-ID"])
    assert [line["request_id"] for line in access(log_lines())] == ["lb-4f1c2a9e-77", replaced["X-Request-ID"]]


def test_a_members_lines_carry_his_ids_and_never_a_token_or_an_oauth_code(
    devcloud_settings: DevCloud, log_lines: Lines
) -> None:
    load_vendors(devcloud_settings)
    Person(devcloud_settings, USERS["alice"][0]).connect()
    bob = Person(devcloud_settings, USERS["bob"][0])
    bob.sign_in()
    member = TenantUser.objects.select_related("tenant").get(oid=USERS["bob"][1])
    response = bob.client.post("/api/acs-token/")
    assert response.status_code == 200
    acs_token = response.json()["token"]
    lines = log_lines()
    [line] = [line for line in access(lines) if line["path"] == "/api/acs-token/"]
    assert line["member"] == member.pk
    assert line["tenant"] == member.tenant_id
    assert line["vendor"] == member.tenant.vendor_id
    assert line["user"] == member.user_id
    callbacks = [line for line in access(lines) if "callback" in line["path"]]
    assert callbacks and all("?" not in line["path"] and "?" not in line["message"] for line in callbacks)
    written = json.dumps(lines)
    assert acs_token not in written and acs_token.split(".")[1] not in written
    assert "code=" not in written and "eyJ" not in written  # no JWT (Entra or ACS) of any kind


@shared_task
def _noted(member_id: int) -> None:
    logging.getLogger("tests.task").info("working")


def test_a_tasks_lines_carry_its_id_name_and_member(log_lines: Lines) -> None:
    result = _noted.apply(args=[42])
    [line] = [line for line in log_lines() if line["logger"] == "tests.task"]
    assert line["task_id"] == result.id
    assert line["task"].endswith("_noted")
    assert line["member"] == 42


def test_a_task_queued_by_a_request_runs_with_its_request_id(log_lines: Lines) -> None:
    with logs.scope(request_id="queued-by-request-1"):
        _noted.delay(7)
    [message] = redis_client().lrange("celery", 0, -1)
    headers = json.loads(message)["headers"]
    assert headers["request_id"] == "queued-by-request-1"
    _noted.apply(args=[7], headers={"request_id": headers["request_id"]})
    [line] = [line for line in log_lines() if line["logger"] == "tests.task"]
    assert line["request_id"] == "queued-by-request-1"


# metrics -------------------------------------------------------------------------------------
def test_metrics_is_a_404_without_a_token_set(client: Client, settings: Any) -> None:
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404


def test_metrics_is_a_404_for_a_wrong_or_missing_token_whatever_the_method(client: Client, settings: Any) -> None:
    settings.METRICS_TOKEN = TOKEN
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}x").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION=TOKEN).status_code == 404
    assert client.post("/metrics").status_code == 404
    assert client.post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 405


def test_the_request_counters_move_with_each_request(client: Client, settings: Any) -> None:
    settings.METRICS_TOKEN = TOKEN
    settings.HEALTHZ_CELERY = False
    before = scrape(client)
    client.get("/healthz")
    client.get("/healthz")
    client.get("/no-such-page/")
    after = scrape(client)
    healthz = {"view": "healthz", "method": "GET", "status": "2xx"}
    assert (
        value(after, "portal_http_requests_total", **healthz) - value(before, "portal_http_requests_total", **healthz)
        == 2
    )
    unmatched = {"view": "unmatched", "status": "4xx"}
    assert (
        value(after, "portal_http_requests_total", **unmatched)
        - value(before, "portal_http_requests_total", **unmatched)
        == 1
    )
    duration = "portal_http_request_duration_seconds_count"
    assert value(after, duration, view="healthz") - value(before, duration, view="healthz") == 2


@pytest.mark.usefixtures("people")
def test_a_sync_moves_the_graph_bucket_and_sync_figures_by_tenant(
    client: Client, settings: Any, devcloud_settings: DevCloud
) -> None:
    settings.METRICS_TOKEN = TOKEN
    bob = TenantUser.objects.select_related("tenant__vendor").get(oid=USERS["bob"][1])
    tenant = {"vendor": bob.tenant.vendor_id, "tenant": bob.tenant_id}
    devcloud = devcloud_settings
    storm = {"service": "graph", "path": "/v1.0/chats/", "status": 429, "retry_after": 1, "count": 2}
    devcloud.control("POST", "/faults", json=storm)
    chat_id = devcloud.control("GET", "/chats", params={"user": USERS["bob"][1]})["chats"][0]["id"]
    devcloud.control("POST", f"/chats/{chat_id}/messages", json={"from": USERS["bob"][1], "content": "<p>new</p>"})
    before = scrape(client)
    chat_sync_member(member=bob)
    after = scrape(client)

    def moved(name: str, **labels: Any) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("portal_graph_requests_total", **tenant, status="2xx") >= 2  # the chat list and a batch's page
    assert moved("portal_graph_requests_total", **tenant, status="429") == 2
    assert moved("portal_chat_syncs_total", kind="incremental", outcome="ok") == 1
    assert moved("portal_chat_sync_duration_seconds_count", kind="incremental") == 1
    assert moved("portal_chat_sync_messages_total", **tenant) >= 1
    assert moved("portal_chat_sync_lag_seconds_count") == 1
    assert moved("portal_chat_sync_staleness_seconds_count") == 1
    assert moved("portal_graph_slot_wait_seconds_count", **tenant) >= 1
    assert moved("portal_bucket_wait_seconds_count", bucket="graph-tenant") >= 1
    charlie = TenantUser.objects.get(oid=USERS["charlie"][1])
    assert moved("portal_graph_requests_total", tenant=charlie.tenant_id) == 0


def test_token_exchanges_and_their_refusals_are_counted_by_tenant(
    client: Client, settings: Any, devcloud_settings: DevCloud
) -> None:
    settings.METRICS_TOKEN = TOKEN
    load_vendors(devcloud_settings)
    Person(devcloud_settings, USERS["alice"][0]).connect()
    bob = Person(devcloud_settings, USERS["bob"][0])
    bob.sign_in()
    member = TenantUser.objects.select_related("tenant").get(oid=USERS["bob"][1])
    tenant = {"vendor": member.tenant.vendor_id, "tenant": member.tenant_id}
    throttled = {"service": "acs", "path": "/teamsUser", "status": 429, "retry_after": 1, "count": 1}
    devcloud_settings.control("POST", "/faults", json=throttled)
    before = scrape(client)
    assert bob.client.post("/api/acs-token/").status_code == 503
    time.sleep(1.1)  # ACS's Retry-After, which the portal honours
    assert bob.client.post("/api/acs-token/").status_code == 200
    assert bob.client.post("/api/acs-token/").status_code == 200  # cached: no exchange
    after = scrape(client)

    def moved(name: str, **labels: Any) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    exchanges = "portal_acs_token_exchanges_total"
    assert moved(exchanges, **tenant, outcome="ok", source="") == 1
    assert moved(exchanges, **tenant, outcome="acs_busy", source="acs") == 1
    assert moved("portal_acs_token_exchange_duration_seconds_count") == 2


def test_the_queue_depth_is_read_from_the_broker_at_each_scrape(client: Client, settings: Any) -> None:
    settings.METRICS_TOKEN = TOKEN
    assert value(scrape(client), "portal_celery_queue_length", queue="celery") == 0
    for _ in range(3):
        _noted.delay(1)
    assert value(scrape(client), "portal_celery_queue_length", queue="celery") == 3
    assert value(scrape(client), "portal_celery_unacked_tasks") == 0
