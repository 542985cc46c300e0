"""In Chromium, a Fabrikam administrator switches the portal to German with the language switcher
(by keyboard), reads the start page, the organization's page and a chat in German (the strings
the chat page's JavaScript writes too: its message actions, the sync's status), and switches back
to English on the same page.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.asgi_server import PortalServer
from tests.browser.test_chat import signed_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def switch_language(page: Page, *, label: str, language: str, button: str) -> None:
    """The switcher by keyboard: choose in the select, then Tab to its button and press Enter."""
    page.get_by_label(label, exact=True).select_option(language)
    page.get_by_label(label, exact=True).focus()
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name=button)).to_be_focused()
    page.keyboard.press("Enter")


def test_an_administrator_uses_the_portal_in_german_and_switches_back(browser: Browser, portal: PortalServer) -> None:
    alice = signed_in(browser, portal, "alice")
    expect(alice.locator("html")).to_have_attribute("lang", "en")

    switch_language(alice, label="Language", language="de", button="Change language")
    expect(alice.locator("html")).to_have_attribute("lang", "de")
    expect(alice.get_by_role("link", name="Ihre Chats öffnen")).to_be_visible()
    expect(alice.get_by_role("link", name="Aus dem Browser anrufen")).to_be_visible()
    expect(alice.get_by_role("button", name="Abmelden")).to_be_visible()
    expect(alice.get_by_text("Call and chat as a Teams user")).to_have_count(0)

    alice.get_by_role("link", name="Verbindung Ihrer Organisation verwalten").click()
    expect(alice.locator("html")).to_have_attribute("lang", "de")
    expect(alice.get_by_role("heading", name="Einwilligung")).to_be_visible()
    expect(alice.get_by_role("table", name="Berechtigungen")).to_be_visible()
    expect(alice.locator(".status-active")).to_have_text("Aktiv")
    expect(
        alice.get_by_role("link", name=re.compile("^Verbindung Ihrer Organisation mit .+ trennen…$"))
    ).to_be_visible()

    alice.get_by_role("link", name="Chats", exact=True).click()
    alice.get_by_role("navigation", name="Ihre Chats").get_by_role("link", name="Q3 launch").click()
    expect(alice.get_by_role("heading", name="Q3 launch")).to_be_visible()
    expect(alice.locator("html")).to_have_attribute("lang", "de")
    # Written by the page's JavaScript, from the German catalog.
    expect(alice.locator("#sync-text")).to_have_text(
        re.compile(r"^(Auf dem neuesten Stand\.|Ihre Teams-Chats werden synchronisiert.*)$")
    )
    expect(alice.locator("#messages li.message").first).to_be_visible()
    expect(alice.get_by_role("button", name="Antworten").first).to_be_visible()
    expect(alice.get_by_role("button", name="Reagieren").first).to_be_visible()
    expect(alice.get_by_role("button", name="Reply")).to_have_count(0)
    expect(alice.get_by_role("textbox", name="Nachricht")).to_be_visible()
    alice.get_by_role("button", name="Senden").click()  # nothing typed: the script says so
    expect(alice.locator("#composer-error")).to_have_text("Geben Sie zuerst eine Nachricht ein.")

    chat_url = alice.url
    switch_language(alice, label="Sprache", language="en", button="Sprache wechseln")
    expect(alice.locator("html")).to_have_attribute("lang", "en")
    assert alice.url == chat_url  # the same page, in English
    expect(alice.get_by_role("button", name="Reply").first).to_be_visible()
    expect(alice.get_by_role("button", name="Antworten")).to_have_count(0)
