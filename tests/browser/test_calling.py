"""In Chromium against devcloud: the calling page gets its ACS token and says plainly what it can't do."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from tests.browser.test_onboarding import accept_consent_if_asked, entra_sign_in
from tests.devcloud_server import USERS, DevCloud
from tests.portal_flow import Person, load_vendors

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def portal(live_server: LiveServer, devcloud_settings: DevCloud, settings: Any) -> LiveServer:
    settings.CALL_CONNECT_TIMEOUT_MS = 3000
    load_vendors(devcloud_settings)
    Person(devcloud_settings, USERS["alice"][0]).connect()
    # Alice has signed in, so she is among the people Bob can call.
    return live_server


def sign_in(page: Page, portal: LiveServer, who: str) -> None:
    page.goto(portal.url + "/v/contoso/")
    page.get_by_role("button", name="Sign in with Microsoft").click()
    entra_sign_in(page, who)
    accept_consent_if_asked(page)
    expect(page.get_by_role("link", name="Call from the browser")).to_be_visible()


def test_a_fabrikam_user_is_ready_to_call_and_told_the_calling_service_is_unreachable(
    page: Page, portal: LiveServer
) -> None:
    console_errors: list[str] = []
    page.on("pageerror", lambda error: console_errors.append(str(error)))
    sign_in(page, portal, "bob")
    page.get_by_role("link", name="Call from the browser").click()
    state = page.locator("#call-state")
    # The SDK's credential accepted the token from the endpoint.
    expect(state).to_have_attribute("data-state", "ready")
    expect(state).to_contain_text("Ready to call as Bob Baker")
    page.get_by_label("Find a person").fill("Ali")
    page.get_by_role("option", name="Alice Anders").or_(page.get_by_role("button", name="Alice Anders")).first.click()
    page.get_by_role("button", name="Call", exact=True).click()
    expect(state).to_have_attribute("data-state", "unreachable", timeout=15_000)
    expect(state).to_contain_text("Calling service unreachable")
    assert console_errors == []


def test_joining_a_meeting_needs_a_teams_link(page: Page, portal: LiveServer) -> None:
    sign_in(page, portal, "bob")
    page.goto(portal.url + "/call/")
    expect(page.locator("#call-state")).to_have_attribute("data-state", "ready")
    page.get_by_label("Teams meeting link").fill("https://example.com/not-a-meeting")
    page.get_by_role("button", name="Join meeting").click()
    expect(page.locator("main")).to_contain_text("Teams meeting link")
    expect(page.locator("#call-state")).to_have_attribute("data-state", "ready")


def test_a_user_whose_sessions_were_revoked_is_asked_to_sign_in_again(
    page: Page, portal: LiveServer, devcloud_settings: DevCloud
) -> None:
    sign_in(page, portal, "bob")
    devcloud_settings.control("POST", "/users/bob@fabrikam.example/revoke-sessions")
    page.goto(portal.url + "/call/")
    state = page.locator("#call-state")
    expect(state).to_have_attribute("data-state", "error")
    expect(state).to_contain_text("Sign in again")
    page.get_by_role("link", name="Sign in again").click()
    page.get_by_role("button", name="Sign in with Microsoft").click()
    entra_sign_in(page, "bob")  # revoking the sessions ended Entra's single sign-on too
    expect(page).to_have_url(portal.url + "/call/")
    expect(state).to_have_attribute("data-state", "ready")
