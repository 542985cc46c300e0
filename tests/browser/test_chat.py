"""In Chromium, two Fabrikam users chat live; Teams' own messages appear without a reload.

The portal runs as in production: its ASGI app (pages and websockets) over HTTP for the browser,
the same app over HTTPS for Graph's change notifications (devcloud delivers them), and a Celery
worker on Redis that syncs after sign-in, subscribes to the chats and follows the notifications.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import pytest
from playwright.sync_api import Browser, Page, expect

from chat.models import Chat, GraphSubscription
from tests.asgi_server import PortalServer
from tests.browser.test_onboarding import accept_consent_if_asked, entra_sign_in
from tests.devcloud_server import FABRIKAM, USERS, DevCloud

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
TOM = USERS["tom"][1]


def signed_in(browser: Browser, portal: PortalServer, who: str) -> Page:
    """A browser of its own for `who`, signed in, on the start page."""
    context = browser.new_context(ignore_https_errors=True)  # devcloud's CA is not in Chromium's store
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(portal.url + "/v/contoso/")
    page.get_by_role("button", name="Sign in with Microsoft").click()
    entra_sign_in(page, who)
    accept_consent_if_asked(page)
    expect(page.get_by_role("link", name="Chats", exact=True)).to_be_visible()
    return page


def open_chat(page: Page, topic: str) -> None:
    page.get_by_role("link", name="Chats", exact=True).click()
    chats = page.get_by_role("navigation", name="Your chats")
    # The first sync runs after sign-in; the list fills in live.
    chats.get_by_role("link", name=topic).click()
    expect(page.get_by_role("heading", name=topic)).to_be_visible()
    expect(page.locator("body")).to_have_attribute("data-live", "open")


def send(page: Page, text: str) -> None:
    box = page.get_by_role("textbox", name="Message")
    box.fill(text)
    box.press("Enter")


def thread(page: Page) -> Any:
    return page.locator("#messages")


def test_two_fabrikam_users_exchange_messages_live(browser: Browser, portal: PortalServer) -> None:
    bob = signed_in(browser, portal, "bob")
    alice = signed_in(browser, portal, "alice")
    open_chat(bob, "Q3 launch")
    open_chat(alice, "Q3 launch")
    send(bob, "Hello from Bob's browser")
    expect(thread(bob).locator("li.mine").last).to_contain_text("Hello from Bob's browser")
    expect(thread(alice).locator("li").last).to_contain_text("Hello from Bob's browser", timeout=5_000)
    send(alice, "Hi Bob, Alice here")
    expect(thread(bob).locator("li").last).to_contain_text("Hi Bob, Alice here", timeout=5_000)
    expect(thread(alice).locator("li.pending")).to_have_count(0)
    # Bob's list learns of it too, and shows the chat he is reading as read.
    current = bob.locator("li.chat-entry.current")
    expect(current).to_contain_text("Alice Anders: Hi Bob, Alice here")
    expect(current).not_to_have_class(re.compile(r"\bunread\b"))


def test_a_message_typed_in_teams_appears_in_the_open_thread(
    browser: Browser, portal: PortalServer, devcloud_settings: DevCloud
) -> None:
    bob = signed_in(browser, portal, "bob")
    open_chat(bob, "Q3 launch")
    chat = Chat.objects.get(tenant__tid=FABRIKAM, topic="Q3 launch")
    # After the first sync the worker subscribed to bob's chats (devcloud ran the handshake).
    wait_for(lambda: GraphSubscription.objects.filter(chat=chat).exists())
    path = f"/chats/{quote(chat.graph_id, safe='')}/messages"
    devcloud_settings.control("POST", path, json={"from": TOM, "content": "<p>Typed in <b>Teams</b></p>"})
    expect(thread(bob).locator("li").last).to_contain_text("Typed in Teams", timeout=10_000)
    assert bob.evaluate("performance.getEntriesByType('navigation').length") == 1


def test_a_send_that_fails_is_shown_and_can_be_retried(
    browser: Browser, portal: PortalServer, devcloud_settings: DevCloud
) -> None:
    bob = signed_in(browser, portal, "bob")
    open_chat(bob, "Q3 launch")
    # A refusal (not "busy", which the page retries by itself) is shown with Retry.
    # Sending only: the page also tells Teams the chat was read (another POST under /chats/).
    chat = Chat.objects.get(tenant__tid=FABRIKAM, topic="Q3 launch")
    path = f"/v1.0/chats/{chat.graph_id}/messages"
    fault = {"service": "graph", "path": path, "method": "POST", "status": 400, "count": 1}
    devcloud_settings.control("POST", "/faults", json=fault)
    send(bob, "This one fails first")
    failed = thread(bob).locator("li.pending")
    expect(failed).to_have_attribute("data-state", "failed")
    expect(failed).to_contain_text("Not sent")
    expect(failed).to_contain_text("This one fails first")
    failed.get_by_role("button", name="Retry").click()
    expect(thread(bob).locator("li.pending")).to_have_count(0)
    expect(thread(bob).locator("li.mine").last).to_contain_text("This one fails first")


def test_a_throttled_send_waits_and_goes_through_without_losing_the_text(
    browser: Browser, portal: PortalServer, devcloud_settings: DevCloud
) -> None:
    bob = signed_in(browser, portal, "bob")
    open_chat(bob, "Q3 launch")
    # Sending only: the page also tells Teams the chat was read (another POST under /chats/).
    chat = Chat.objects.get(tenant__tid=FABRIKAM, topic="Q3 launch")
    path = f"/v1.0/chats/{chat.graph_id}/messages"
    fault = {"service": "graph", "path": path, "method": "POST", "status": 429, "retry_after": 4, "count": 1}
    devcloud_settings.control("POST", "/faults", json=fault)
    send(bob, "Patience")
    waiting = thread(bob).locator("li.pending")
    expect(waiting).to_have_attribute("data-state", "waiting")
    expect(waiting).to_contain_text("Teams is busy")
    expect(thread(bob).locator("li.pending")).to_have_count(0, timeout=15_000)
    expect(thread(bob).locator("li.mine").last).to_contain_text("Patience")


def test_bob_starts_a_chat_with_alice_from_the_directory(browser: Browser, portal: PortalServer) -> None:
    bob = signed_in(browser, portal, "bob")
    bob.get_by_role("link", name="Chats", exact=True).click()
    bob.get_by_role("button", name="New chat").click()
    dialog = bob.get_by_role("dialog", name="New chat")
    dialog.get_by_label("Find people").fill("Alice")
    dialog.get_by_role("checkbox", name="Alice Anders").check()
    dialog.get_by_label("Chat name (optional; a group chat)").fill("Budget 2027")
    dialog.get_by_role("button", name="Start chat").click()
    expect(bob.get_by_role("heading", name="Budget 2027")).to_be_visible()
    expect(bob.locator("#thread-empty")).to_be_visible()
    send(bob, "First message of the new chat")
    expect(thread(bob).locator("li.mine").last).to_contain_text("First message of the new chat")


def wait_for(condition: Any, timeout: float = 15) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)
