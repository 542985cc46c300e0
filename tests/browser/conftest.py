from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from celery.contrib.testing.worker import start_worker
from django.db import connections
from playwright.sync_api import Browser, Page, sync_playwright

from portal.celery import app as celery_app
from tests.asgi_server import PortalServer, serve_portal
from tests.devcloud_server import USERS, DevCloud
from tests.portal_flow import Person, load_vendors

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
# Without these, Chromium tries to reach Google's services at every start.
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Cameras and microphones for the calling page: Chromium's fake devices, permission granted.
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Playwright's sync API keeps an event loop running in this thread while it lives, which
    # Django takes for async code; the ORM calls of these tests are synchronous. Allowed only
    # for as long as the loop runs (this module), so other tests keep Django's check.
    with pytest.MonkeyPatch.context() as patch, sync_playwright() as playwright:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    # devcloud's CA is not in Chromium's trust store; the portal's server side trusts it explicitly.
    context = browser.new_context(ignore_https_errors=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture
def worker() -> Iterator[None]:
    # The worker thread's database connections close with each task (as celery's Django fixup
    # does in a real worker), so that the test database can be dropped at the end.
    from celery.signals import task_postrun

    def close(**_: Any) -> None:
        connections.close_all()

    task_postrun.connect(close, weak=False)
    celery_app.loader.import_module("celery.contrib.testing.tasks")
    with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=15):
        yield
    task_postrun.disconnect(close)


@pytest.fixture
def portal(devcloud_settings: DevCloud, settings: Any, worker: None) -> Iterator[PortalServer]:
    load_vendors(devcloud_settings)
    Person(devcloud_settings, USERS["alice"][0]).connect()
    with serve_portal(devcloud_settings) as webhook, serve_portal(devcloud_settings, tls=False) as web:
        settings.GRAPH_NOTIFICATION_URL = webhook.url
        yield web
