"""In Chromium against devcloud: admins connect Fabrikam, members are let in or stopped."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from tenants.models import CustomerTenant
from tenants.tasks import confirm_tenant_consent
from tests.devcloud_server import CONTOSO_APP, FABRIKAM, USERS, DevCloud, password_of
from tests.portal_flow import load_vendors

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def portal(live_server: LiveServer, devcloud_settings: DevCloud) -> LiveServer:
    load_vendors(devcloud_settings)
    return live_server


def entra_sign_in(page: Page, who: str, *, password: str | None = None) -> None:
    upn = USERS[who][0]
    page.get_by_label("Email, phone, or Skype").fill(upn)
    page.get_by_label("Password").fill(password or password_of(upn))
    page.get_by_role("button", name="Sign in").click()


def accept_consent_if_asked(page: Page) -> None:
    page.wait_for_load_state()
    if page.get_by_role("button", name="Accept").count():
        page.get_by_role("button", name="Accept").click()


def connect(page: Page, portal: LiveServer, who: str) -> None:
    page.goto(portal.url + "/v/contoso/")
    page.get_by_role("button", name="Connect your organization").click()
    entra_sign_in(page, who)
    accept_consent_if_asked(page)  # the admin's own sign-in consent
    expect(page.get_by_role("heading", name="Permissions requested · Accept for your organization")).to_be_visible()
    page.get_by_role("button", name="Accept").click()


@pytest.mark.parametrize(
    ("who", "role"),
    [
        ("alice", "Global Administrator"),
        ("april", "Application Administrator"),
        ("cloe", "Cloud Application Administrator"),
    ],
)
def test_an_admin_connects_fabrikam_and_sees_the_grant_with_the_role(
    page: Page, portal: LiveServer, who: str, role: str
) -> None:
    connect(page, portal, who)
    expect(page.locator(".status")).to_have_text("Active")
    history = page.get_by_role("table").nth(1)
    expect(history).to_contain_text(role)
    expect(history).to_contain_text("client-credentials")
    expect(page.get_by_role("status")).to_contain_text("is connected to Contoso")


def test_a_user_with_no_role_is_stopped_with_the_explanation(page: Page, portal: LiveServer) -> None:
    page.goto(portal.url + "/v/contoso/")
    page.get_by_role("button", name="Connect your organization").click()
    entra_sign_in(page, "bob")
    page.get_by_role("link", name="Return to the application without granting consent").click()
    expect(page.get_by_role("heading", name="An administrator is needed to connect your organization")).to_be_visible()
    expect(page.locator("main")).to_contain_text("Cloud Application Administrator")
    expect(page.get_by_label("Link to connect Contoso")).to_have_value(f"{portal.url}/v/contoso/")


def test_a_northwind_user_cannot_sign_in_before_northwind_is_onboarded(page: Page, portal: LiveServer) -> None:
    page.goto(portal.url + "/v/contoso/")
    page.get_by_role("button", name="Sign in with Microsoft").focus()
    page.keyboard.press("Enter")
    entra_sign_in(page, "charlie")
    accept_consent_if_asked(page)
    expect(page.get_by_role("alert")).to_contain_text("not connected to Contoso")


def test_after_revocation_the_beat_task_marks_the_tenant_and_members_are_refused(
    page: Page, portal: LiveServer, devcloud_settings: DevCloud
) -> None:
    connect(page, portal, "alice")
    expect(page.locator(".status")).to_have_text("Active")
    devcloud_settings.control("POST", f"/tenants/{FABRIKAM}/apps/{CONTOSO_APP}/revoke-consent")
    tenant = CustomerTenant.objects.get(tid=FABRIKAM)
    assert confirm_tenant_consent(tenant.pk) == "revoked"
    page.reload()
    expect(page.locator(".status")).to_have_text("Consent revoked")
    expect(page.get_by_role("button", name="Grant consent again")).to_be_visible()
    other = page.context.browser.new_context(ignore_https_errors=True).new_page()  # type: ignore[union-attr]
    devcloud_settings.grant_consent(FABRIKAM)  # the portal refuses even if Entra lets Bob in
    other.goto(portal.url + "/v/contoso/")
    other.get_by_role("button", name="Sign in with Microsoft").click()
    entra_sign_in(other, "bob")
    expect(other.get_by_role("alert")).to_contain_text("consent for Contoso was revoked")
    other.context.close()


def test_a_wrong_password_keeps_the_user_on_the_sign_in_page(page: Page, portal: LiveServer) -> None:
    page.goto(portal.url + "/v/contoso/")
    page.get_by_role("button", name="Sign in with Microsoft").click()
    entra_sign_in(page, "bob", password="not-the-password")
    expect(page.get_by_role("alert")).to_contain_text("AADSTS50126")
