"""In Chromium: the operator invites Tailspin; Tailspin's admin registers its app with a certificate;
a Tailspin customer's Global Administrator connects; a member gets an ACS token and his chats sync."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import Browser, Page, expect

from tests.asgi_server import PortalServer, serve_portal
from tests.browser.test_onboarding import accept_consent_if_asked
from tests.devcloud.certificates import make_key_pair
from tests.devcloud_server import (
    TAILSPIN_ACS_KEY,
    TAILSPIN_APP,
    TAILSPIN_CERTIFICATE_FILE,
    TAILSPIN_KEY_FILE,
    USERS,
    DevCloud,
    password_of,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def portal(devcloud_settings: DevCloud, worker: None) -> Iterator[PortalServer]:
    get_user_model().objects.create_superuser("operator", password="Operator-Test-1")
    with serve_portal(devcloud_settings, tls=False) as web:
        yield web


def new_page(browser: Browser) -> Page:
    page = browser.new_context(ignore_https_errors=True).new_page()  # devcloud's CA is not Chromium's
    page.set_default_timeout(20_000)
    return page


def entra(page: Page, upn: str) -> None:
    page.get_by_label("Email, phone, or Skype").fill(upn)
    page.get_by_label("Password").fill(password_of(upn))
    page.get_by_role("button", name="Sign in").click()
    accept_consent_if_asked(page)


def invite_tailspin(browser: Browser, portal: PortalServer) -> str:
    operator = new_page(browser)
    operator.goto(portal.url + "/admin/login/?next=/operator/")
    operator.get_by_label("Username").fill("operator")
    operator.get_by_label("Password").fill("Operator-Test-1")
    operator.get_by_role("button", name="Log in").click()
    expect(operator.get_by_role("heading", name="Vendors", exact=True)).to_be_visible()
    operator.get_by_label("Vendor's name").fill("Tailspin")
    operator.get_by_role("button", name="Create the invitation").click()
    return operator.locator("#invitation-link").inner_text()


def register_tailspin(page: Page, link: str, devcloud: DevCloud, *, certificate: Path, key: Path) -> None:
    page.goto(link)
    page.get_by_label("Your organization's tenant").fill("tailspin.example")
    page.get_by_label("Application (client) ID").fill(TAILSPIN_APP)
    page.get_by_label("Certificate (recommended)").check()
    page.get_by_label("Certificate (.pem or .cer in PEM form)").set_input_files(str(certificate))
    page.get_by_label("Its private key").set_input_files(str(key))
    page.get_by_label("ACS connection string").fill(f"endpoint={devcloud.base_url}/;accesskey={TAILSPIN_ACS_KEY}")
    page.get_by_role("button", name="Check and sign in through the app").click()


def test_tailspin_registers_with_a_certificate_and_serves_a_customer(
    browser: Browser, portal: PortalServer, devcloud_settings: DevCloud
) -> None:
    link = invite_tailspin(browser, portal)
    tanya = new_page(browser)
    # First a certificate the app does not have: refused, said plainly, nothing kept.
    stranger = devcloud_settings.state_dir / "stranger"
    stranger.mkdir(exist_ok=True)
    _stranger_pair(stranger)
    register_tailspin(tanya, link, devcloud_settings, certificate=stranger / "cert.pem", key=stranger / "key.pem")
    expect(tanya.get_by_text("Microsoft Entra ID refused the certificate")).to_be_visible()
    # Then the app's own certificate.
    state = devcloud_settings.state_dir
    register_tailspin(
        tanya, link, devcloud_settings, certificate=state / TAILSPIN_CERTIFICATE_FILE, key=state / TAILSPIN_KEY_FILE
    )
    entra(tanya, USERS["tanya"][0])
    expect(tanya.get_by_text("Tailspin is registered")).to_be_visible()
    onboarding = tanya.locator("#onboarding-link").inner_text()
    assert onboarding == portal.url + "/v/tailspin/"

    alice = new_page(browser)  # Fabrikam's Global Administrator
    alice.goto(onboarding)
    alice.get_by_role("button", name="Connect your organization").click()
    entra(alice, USERS["alice"][0])
    expect(alice.get_by_role("heading", name="Permissions requested · Accept for your organization")).to_be_visible()
    alice.get_by_role("button", name="Accept").click()
    expect(alice.locator(".status")).to_have_text("Active")

    bob = new_page(browser)
    bob.goto(onboarding)
    bob.get_by_role("button", name="Sign in with Microsoft").click()
    entra(bob, USERS["bob"][0])
    token: Any = bob.evaluate(
        """async () => {
          const csrf = document.cookie.split("; ").find((c) => c.startsWith("csrftoken=")).split("=")[1];
          const answer = await fetch("/api/acs-token/", {method: "POST", headers: {"X-CSRFToken": csrf}});
          return {status: answer.status, body: await answer.json()};
        }"""
    )
    assert token["status"] == 200 and token["body"]["token"].count(".") == 2
    bob.get_by_role("link", name="Chats", exact=True).click()
    chats = bob.get_by_role("navigation", name="Your chats")
    expect(chats.get_by_role("link", name="Q3 launch")).to_be_visible(timeout=60_000)


def _stranger_pair(folder: Path) -> None:
    pair = make_key_pair("Not Tailspin's")
    (folder / "cert.pem").write_text(pair.certificate_pem)
    (folder / "key.pem").write_text(pair.key_pem)
