"""In Chromium, axe-core checks every page of the portal in the states people see it in (WCAG 2.1
A and AA, and axe's best practices): signed out, vendor staff and the operator, errors and refusals,
a member's pages, the chats with a thread of messages and its dialogs open, the calling page (ready,
people found, a call that failed, and a call's controls as the page draws them), some of them in
German too. No live region is inside another; the thread's messages are one role="log".
And the chat page works from the keyboard: dialogs keep the focus and give it back.

People sign in through Entra with the test client (tests.portal_flow.Person); Chromium gets their
session cookie, so only the portal's pages are loaded in the browser (devcloud's sign-in pages
stand in for Microsoft's and are not ours to check).
"""

from __future__ import annotations

import base64
import re
from urllib.parse import quote

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.http import HttpResponse
from django.test import Client, RequestFactory
from django.views import defaults
from playwright.sync_api import Browser, Locator, Page, expect

from chat.models import Chat
from tenants.models import CustomerTenant
from tenants.tasks import confirm_tenant_consent
from tests.asgi_server import PortalServer
from tests.browser.axe import Audit
from tests.browser.test_chat import send
from tests.browser.test_chat_parity import act, chat_settings, message, paste_image, png
from tests.browser.test_onboarding import accept_consent_if_asked, entra_sign_in
from tests.devcloud_server import CONTOSO_APP, FABRIKAM, USERS, DevCloud
from tests.portal_flow import Person

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
TOM, BOB = USERS["tom"][1], USERS["bob"][1]


def browser_of(browser: Browser, portal: PortalServer, client: Client | None = None) -> Page:
    """A browser of its own, signed in as the test client is (or signed out)."""
    context = browser.new_context(ignore_https_errors=True)  # devcloud's CA is not in Chromium's store
    if client is not None:
        cookies = [{"name": name, "value": morsel.value, "url": portal.url} for name, morsel in client.cookies.items()]
        context.add_cookies(cookies)  # type: ignore[arg-type]  # Playwright keeps SetCookieParam private
    page = context.new_page()
    page.set_default_timeout(20_000)
    return page


def show(page: Page, portal: PortalServer, response: HttpResponse) -> None:
    """A response of the portal, in a page at the portal's address (so that its styles load)."""
    page.goto(portal.url + "/no-such-page/")
    page.set_content(response.content.decode())


def signed_in(browser: Browser, portal: PortalServer, devcloud: DevCloud, upn: str, vendor: str = "contoso") -> Page:
    person = Person(devcloud, upn)
    person.sign_in(vendor)
    return browser_of(browser, portal, person.client)


def test_signed_out_vendor_and_operator_pages_and_refusals(
    browser: Browser, portal: PortalServer, devcloud_settings: DevCloud
) -> None:
    audit = Audit()
    visitor = browser_of(browser, portal)
    for name, path in [
        ("home, signed out", "/"),
        ("home, asked to sign in", "/chats/"),
        ("vendor page", "/v/contoso/"),
        ("not found", "/no-such-page/"),
        ("refused: no sign-in under way", "/auth/callback/"),
        ("refused: consent state", "/onboarding/callback/"),
    ]:
        visitor.goto(portal.url + path)
        audit.check(visitor, name)
    visitor.goto(portal.url + "/v/contoso/")
    token = visitor.locator("form[action$='/sign-in/'] input[name=csrfmiddlewaretoken]")
    token.evaluate("(input) => { input.value = 'stale'; }")
    visitor.get_by_role("button", name="Sign in with Microsoft").click()
    expect(visitor.get_by_role("heading", name="The form has expired")).to_be_visible()
    audit.check(visitor, "refused: a form without its token")
    # The error pages that tests don't reach through a view of their own.
    request = RequestFactory().get("/")
    request.user = AnonymousUser()
    for name, response in [
        ("bad request", defaults.bad_request(request, SuspiciousOperation())),
        ("forbidden", defaults.permission_denied(request, PermissionDenied())),
        ("server error", defaults.server_error(request)),
    ]:
        show(visitor, portal, response)
        audit.check(visitor, name)

    # Contoso's administrator: customers, credentials (also refused), staff (an invitation).
    cora = signed_in(browser, portal, devcloud_settings, "support@contoso.example")
    cora.goto(portal.url + "/vendor/contoso/")
    expect(cora.get_by_role("heading", name="Contoso: customers")).to_be_visible()
    audit.check(cora, "vendor dashboard")
    cora.goto(portal.url + "/vendor/contoso/?q=nothing-like-this")
    audit.check(cora, "vendor dashboard, nothing found")
    cora.goto(portal.url + "/vendor/contoso/credentials/")
    audit.check(cora, "vendor credentials")
    cora.get_by_role("button", name="Check and replace").click()
    expect(cora.locator(".errorlist").first).to_be_visible()
    audit.check(cora, "vendor credentials, refused")
    cora.goto(portal.url + "/vendor/contoso/staff/")
    cora.get_by_label("Address (their sign-in name in your organization)").fill("admin@contoso.example")
    cora.get_by_role("button", name="Invite", exact=True).click()
    expect(cora.locator("#invitation-link")).to_be_visible()
    audit.check(cora, "vendor staff, with an invitation link")
    join_link = cora.locator("#invitation-link").inner_text()
    cora.get_by_role("link", name="Remove admin@contoso.example").click()
    audit.check(cora, "vendor staff removal")
    for name, path in [("unavailable: chats for vendor staff", "/chats/"), ("unavailable: calls", "/call/")]:
        cora.goto(portal.url + path)
        audit.check(cora, name)
    visitor.goto(join_link)
    audit.check(visitor, "join a vendor's staff")

    # The operator: vendors and an invitation; the vendor's registration page, then revoked.
    operator = get_user_model().objects.create_superuser("operator", password="Operator-Test-1")
    client = Client()
    client.force_login(operator)
    op = browser_of(browser, portal, client)
    op.goto(portal.url + "/operator/")
    op.get_by_label("Vendor's name").fill("Tailspin")
    op.get_by_role("button", name="Create the invitation").click()
    register_link = op.locator("#invitation-link").inner_text()
    audit.check(op, "operator, with an invitation")
    visitor.goto(register_link)
    audit.check(visitor, "vendor registration")
    visitor.get_by_role("button", name="Check and sign in through the app").click()
    expect(visitor.locator(".errorlist").first).to_be_visible()
    audit.check(visitor, "vendor registration, refused")
    op.get_by_role("button", name="Revoke the invitation of Tailspin").click()
    visitor.goto(register_link)
    audit.check(visitor, "invitation unusable")

    # Charlie, of Northwind (not connected; he is no administrator), tries to connect it, then signs in.
    charlie = browser_of(browser, portal)
    charlie.goto(portal.url + "/v/contoso/")
    charlie.get_by_role("button", name="Connect your organization").click()
    entra_sign_in(charlie, "charlie")
    accept_consent_if_asked(charlie)  # Northwind lets its users consent to signing in
    expect(
        charlie.get_by_role("heading", name="An administrator is needed to connect your organization")
    ).to_be_visible()
    audit.check(charlie, "an administrator is needed")
    charlie.goto(portal.url + "/v/contoso/")
    charlie.get_by_role("button", name="Sign in with Microsoft").click()
    entra_sign_in(charlie, "charlie")  # the portal asks Entra to let him choose the account
    expect(charlie.get_by_role("alert")).to_contain_text("not connected to Contoso")
    audit.check(charlie, "refused: not connected")
    audit.assert_clean()


def seed_thread(devcloud: DevCloud) -> None:
    """In Teams: a message, a quoted reply with reactions, an image, and a deleted message."""
    chats = devcloud.control("GET", "/chats", params={"tenant": FABRIKAM})["chats"]
    chat = next(c for c in chats if c["topic"] == "Q3 launch")
    base = f"/chats/{quote(chat['id'], safe='')}/messages"
    first = devcloud.control("POST", base, json={"from": BOB, "content": "<p>Draft of the launch deck</p>"})
    reply = {"from": TOM, "content": "<p>Looks <b>good</b></p>", "replyTo": first["id"]}
    reply_id = devcloud.control("POST", base, json=reply)["id"]
    for who, reaction in [(BOB, "👍"), (TOM, "❤️")]:
        devcloud.control(
            "POST", f"{base}/{reply_id}/reactions", json={"user": who, "reactionType": reaction, "on": True}
        )
    image = {"contentType": "image/png", "contentBytes": base64.b64encode(png()).decode()}
    devcloud.control("POST", base, json={"from": TOM, "content": "<p>The chart</p>", "images": [image]})
    gone = devcloud.control("POST", base, json={"from": TOM, "content": "<p>Wrong chat</p>"})
    devcloud.control("DELETE", f"{base}/{gone['id']}")


def open_thread(page: Page, portal: PortalServer) -> None:
    chat = Chat.objects.get(tenant__tid=FABRIKAM, topic="Q3 launch")
    page.goto(f"{portal.url}/chats/{chat.pk}/")
    expect(page.locator("body")).to_have_attribute("data-live", "open")
    expect(page.locator("#messages li.deleted")).to_have_count(1)


def test_a_members_pages_the_chats_and_a_thread_with_its_dialogs(
    browser: Browser, portal: PortalServer, devcloud_settings: DevCloud
) -> None:
    audit = Audit()
    seed_thread(devcloud_settings)
    bob = signed_in(browser, portal, devcloud_settings, USERS["bob"][0])  # a member
    bob.goto(portal.url + "/")
    audit.check(bob, "home, a member")
    bob.context.close()
    alice = signed_in(browser, portal, devcloud_settings, USERS["alice"][0])  # Fabrikam's administrator
    for name, path in [
        ("home, an administrator", "/"),
        ("tenant admin", "/tenant/"),
        ("disconnect confirmation", "/tenant/disconnect/"),
    ]:
        alice.goto(portal.url + path)
        audit.check(alice, name)
    alice.goto(portal.url + "/call/")
    expect(alice.locator("#call-state")).to_have_attribute("data-state", "ready")
    audit.check(alice, "call")
    alice.get_by_label("Find a person").fill("Bo")
    expect(alice.locator("#people-results").get_by_text("Bob Baker")).to_be_visible()
    audit.check(alice, "call, people found")
    alice.locator("#people-results").get_by_text("Bob Baker").click()
    alice.get_by_role("button", name="Call", exact=True).click()
    # Served over http at 127.0.0.1, which the calling SDK refuses (https or localhost only).
    expect(alice.locator("#call-state")).to_have_attribute("data-state", "error", timeout=15_000)
    audit.check(alice, "call, the call could not be placed")
    # A call in progress needs Azure Communication Services' signaling, which is not here: its
    # controls and video tiles are checked as the page draws them, shown as a call shows them.
    alice.locator("#in-call").evaluate("section => { section.hidden = false; }")
    expect(alice.get_by_role("button", name="Hang up")).to_be_visible()
    audit.check(alice, "call, its controls as in a call")

    alice.goto(portal.url + "/chats/")
    expect(alice.get_by_role("navigation", name="Your chats").get_by_role("link", name="Q3 launch")).to_be_visible()
    audit.check(alice, "chats")
    alice.get_by_role("button", name="New chat").click()
    dialog = alice.get_by_role("dialog", name="New chat")
    expect(dialog.get_by_role("checkbox").first).to_be_visible()
    audit.check(alice, "chats, new chat dialog")
    dialog.get_by_role("button", name="Cancel").click()

    open_thread(alice, portal)
    expect(message(alice, "Looks good").locator("blockquote.quote")).to_contain_text("Draft of the launch deck")
    expect(message(alice, "The chart").locator("img[src*='/hosted/']")).to_be_visible()
    audit.check(alice, "thread")
    if not alice.get_by_role("log", name="Messages").locator("#messages").count():
        audit.note("thread", "the message list is not in a role=log named Messages")
    alice.get_by_role("textbox", name="Message").press_sequentially("Thanks @b")
    expect(alice.get_by_role("listbox", name="People to mention")).to_be_visible()
    audit.check(alice, "thread, mention choices open")
    alice.get_by_role("textbox", name="Message").fill("")
    act(message(alice, "Looks good"), "React")
    audit.check(alice, "thread, reaction picker open")
    alice.keyboard.press("Escape")
    act(message(alice, "Draft of the launch deck"), "Reply")
    expect(alice.locator("#reply-chip")).to_be_visible()
    audit.check(alice, "thread, replying")
    alice.get_by_role("button", name="Cancel reply").click()
    send(alice, "Agenda for Monday")
    mine = alice.locator("#messages li.mine:not(.pending)").filter(has_text="Agenda for Monday")
    act(mine, "Edit")
    expect(alice.get_by_role("textbox", name="Edit message")).to_be_focused()
    audit.check(alice, "thread, editing a message")
    alice.keyboard.press("Escape")
    paste_image(alice, png())
    expect(alice.get_by_role("list", name="Images to send").get_by_role("img")).to_have_count(1)
    audit.check(alice, "thread, an image to send")
    alice.get_by_role("button", name="Remove image 1").click()
    chat = Chat.objects.get(tenant__tid=FABRIKAM, topic="Q3 launch")
    fault = {"service": "graph", "path": f"/v1.0/chats/{chat.graph_id}/messages", "method": "POST", "status": 400}
    devcloud_settings.control("POST", "/faults", json={**fault, "count": 1})
    send(alice, "This one fails")
    expect(alice.locator("#messages li.pending")).to_have_attribute("data-state", "failed")
    audit.check(alice, "thread, a message not sent")

    chat_settings(alice, "Rename chat")
    expect(alice.get_by_role("dialog", name="Rename chat")).to_be_visible()
    audit.check(alice, "thread, rename dialog")
    alice.keyboard.press("Escape")
    chat_settings(alice, "Members")
    expect(alice.get_by_role("dialog", name="Members").get_by_role("listitem").first).to_be_visible()
    audit.check(alice, "thread, members dialog")
    alice.get_by_role("dialog", name="Members").get_by_role("button", name="Close").click()
    chat_settings(alice, "Leave chat")
    expect(alice.get_by_role("dialog", name="Leave this chat?")).to_be_visible()
    audit.check(alice, "thread, confirmation dialog")
    alice.get_by_role("dialog", name="Leave this chat?").get_by_role("button", name="Cancel").click()

    alice.get_by_label("Search messages").fill("launch")
    alice.get_by_label("Search messages").press("Enter")
    expect(alice.get_by_role("region", name=re.compile("launch")).get_by_role("link").first).to_be_visible()
    audit.check(alice, "thread, search results")

    # Some of them in German, which her browser asks for: translated names still match what is shown.
    german = browser.new_context(locale="de-DE")
    german.add_cookies(alice.context.cookies())  # type: ignore[arg-type]
    deutsch = german.new_page()
    for name, path in [("home, German", "/"), ("tenant admin, German", "/tenant/"), ("call, German", "/call/")]:
        deutsch.goto(portal.url + path)
        expect(deutsch.locator("html")).to_have_attribute("lang", "de")
        audit.check(deutsch, name)
    open_thread(deutsch, portal)
    audit.check(deutsch, "thread, German")
    german.close()

    # Consent revoked in Entra: the admin's page, the start page and the chats say so.
    devcloud_settings.control("POST", f"/tenants/{FABRIKAM}/apps/{CONTOSO_APP}/revoke-consent")
    assert confirm_tenant_consent(CustomerTenant.objects.get(tid=FABRIKAM).pk) == "revoked"
    for name, path in [
        ("tenant admin, revoked", "/tenant/"),
        ("home, revoked", "/"),
        ("unavailable: chats", "/chats/"),
    ]:
        alice.goto(portal.url + path)
        audit.check(alice, name)
    audit.assert_clean()


def focus_stays_in(page: Page, dialog: Locator, presses: int = 8) -> None:
    """Tab never reaches the page behind a modal dialog (after its last control, the browser's own)."""
    for _ in range(presses):
        page.keyboard.press("Tab")
        inside = "(d) => d.contains(document.activeElement) || document.activeElement === document.body"
        assert dialog.evaluate(inside), "the focus left the dialog"


def test_the_chat_page_works_from_the_keyboard(
    browser: Browser, portal: PortalServer, devcloud_settings: DevCloud
) -> None:
    alice = signed_in(browser, portal, devcloud_settings, USERS["alice"][0])
    alice.goto(portal.url + "/chats/")
    alice.get_by_role("navigation", name="Your chats").get_by_role("link", name="Q3 launch").click()
    expect(alice.locator("body")).to_have_attribute("data-live", "open")

    # The first Tab reaches "Skip to content", shown when focused; Enter moves to the page.
    alice.locator("body").focus()
    alice.keyboard.press("Tab")
    skip = alice.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    alice.keyboard.press("Enter")
    expect(alice.locator("main")).to_be_focused()

    # A focused control shows where the focus is.
    settings_button = alice.get_by_role("button", name="Chat settings")
    settings_button.focus()
    alice.keyboard.press("Tab")
    alice.keyboard.press("Shift+Tab")
    assert settings_button.evaluate("(b) => getComputedStyle(b).outlineStyle") != "none"

    # The menu opens with Enter on its first item; Escape closes it, the focus back on its button.
    alice.keyboard.press("Enter")
    expect(alice.get_by_role("button", name="Rename chat")).to_be_focused()
    alice.keyboard.press("Escape")
    expect(settings_button).to_be_focused()
    # Tabbing past its last item closes it.
    alice.keyboard.press("Enter")
    menu = alice.locator("#chat-settings-menu")
    for _ in range(menu.get_by_role("button").count()):
        alice.keyboard.press("Tab")
    expect(menu).to_be_hidden()
    expect(settings_button).to_have_attribute("aria-expanded", "false")
    settings_button.focus()

    # Each dialog keeps the focus while open and gives it back when closed (Escape or Cancel).
    for tabs, (action, name) in enumerate(
        [("Rename chat", "Rename chat"), ("Members", "Members"), ("Hide chat", "Hide this chat?")]
    ):
        alice.keyboard.press("Enter")
        for _ in range(tabs):
            alice.keyboard.press("Tab")
        menu_item = alice.locator("#chat-settings-menu").get_by_role("button", name=action)
        expect(menu_item).to_be_focused()
        alice.keyboard.press("Enter")
        dialog = alice.get_by_role("dialog", name=name)
        expect(dialog).to_be_visible()
        focus_stays_in(alice, dialog)
        alice.keyboard.press("Escape")
        expect(dialog).to_be_hidden()
        expect(settings_button).to_be_focused()

    new_chat = alice.get_by_role("button", name="New chat")
    new_chat.focus()
    alice.keyboard.press("Enter")
    dialog = alice.get_by_role("dialog", name="New chat")
    expect(dialog.get_by_label("Find people")).to_be_focused()
    focus_stays_in(alice, dialog)
    dialog.get_by_role("button", name="Cancel").focus()
    alice.keyboard.press("Enter")
    expect(dialog).to_be_hidden()
    expect(new_chat).to_be_focused()

    # A message's actions are reached with Tab from the message list, and shown when focused.
    last = alice.locator("#messages li.message:not(.system)").last
    last.get_by_role("button", name="Reply").focus()
    expect(last.locator(".message-actions")).to_have_css("opacity", "1")
    alice.keyboard.press("Enter")
    expect(alice.get_by_role("textbox", name="Message")).to_be_focused()
