"""A Fabrikam user signs in to the portal through devcloud's Entra sign-in page, in Chromium."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from tests.devcloud_server import FABRIKAM, USERS, DevCloud, password_of

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_member_signs_in_with_microsoft_using_the_keyboard(
    page: Page, live_server: LiveServer, devcloud_settings: DevCloud
) -> None:
    devcloud_settings.grant_consent(FABRIKAM)
    call_command("load_demo_data", stdout=io.StringIO())
    upn = USERS["bob"][0]

    page.goto(live_server.url + "/")
    page.get_by_role("button", name="Sign in with Microsoft").focus()
    page.keyboard.press("Enter")

    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert page.url.startswith(f"{devcloud_settings.base_url}/organizations/oauth2/v2.0/authorize?")
    page.get_by_label("Email, phone, or Skype").fill(upn)
    page.get_by_label("Password").fill(password_of(upn))
    page.get_by_role("button", name="Sign in").click()

    expect(page.get_by_text("You are signed in as")).to_be_visible()
    expect(page.locator("main")).to_contain_text("Bob Baker")
    assert page.url.startswith(live_server.url)


def test_a_wrong_password_keeps_the_user_on_the_sign_in_page(
    page: Page, live_server: LiveServer, devcloud_settings: DevCloud
) -> None:
    call_command("load_demo_data", stdout=io.StringIO())
    page.goto(live_server.url + "/")
    page.get_by_role("button", name="Sign in with Microsoft").click()
    page.get_by_label("Email, phone, or Skype").fill(USERS["bob"][0])
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("AADSTS50126")
