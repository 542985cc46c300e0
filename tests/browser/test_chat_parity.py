"""In Chromium, the chat page does what Teams users expect, between two Fabrikam users (alice and
bob, each in a browser of his own) and from Teams itself: quoted replies, edits, deletions and
their undo, reactions, mentions, images, read state, chat management, search, notifications.

Each test signs both in once and covers several features, to keep the file fast.
"""

from __future__ import annotations

import re
import struct
import zlib
from urllib.parse import quote

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from chat.models import Chat, GraphSubscription
from tests.asgi_server import PortalServer
from tests.browser.test_chat import open_chat, send, signed_in, thread, wait_for
from tests.devcloud_server import FABRIKAM, USERS, DevCloud

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
LIVE = 15_000  # ms: a change reaching the other browser (Graph, the portal, the socket)
BOB, TOM = USERS["bob"][1], USERS["tom"][1]


@pytest.fixture
def teams(devcloud_settings: DevCloud) -> DevCloud:
    # Devcloud's one-request-per-second-per-chat limit would make every step wait on the
    # worker's catch-up syncs; throttling has a test of its own (faults) below.
    devcloud_settings.control("PUT", "/settings", json={"graph_chat_messages_per_chat_rps": 0})
    return devcloud_settings


def message(page: Page, text: str) -> Locator:
    """The last message whose own text (not a quote of it) has `text`."""
    body = page.locator(".message-body", has_text=text)
    return thread(page).locator("li.message:not(.pending)").filter(has=body).last


def pinned(page: Page, item: Locator) -> Locator:
    """The same message whatever its text becomes (its id is the Graph message id)."""
    return page.locator(f"[id='{item.get_attribute('id')}']")


def act(item: Locator, action: str) -> None:
    item.hover()
    item.get_by_role("group", name=re.compile("^Actions on")).get_by_role("button", name=action, exact=True).click()


def react(page: Page, item: Locator, name: str) -> None:
    act(item, "React")
    page.get_by_role("group", name="Choose a reaction").get_by_role("button", name=name).click()


def chat_settings(page: Page, action: str) -> None:
    page.get_by_role("button", name="Chat settings").click()
    page.locator("#chat-settings-menu").get_by_role("button", name=action).click()


def status(page: Page) -> Locator:
    return page.locator("#page-status")


def png(size: int = 8) -> bytes:
    """A small red square, a real PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\xcc\x22\x22" * size for _ in range(size))
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def paste_image(page: Page, data: bytes) -> None:
    page.get_by_role("textbox", name="Message").evaluate(
        """(box, bytes) => {
            const file = new File([new Uint8Array(bytes)], "image.png", { type: "image/png" });
            const clipboard = new DataTransfer();
            clipboard.items.add(file);
            box.focus();
            box.dispatchEvent(new ClipboardEvent("paste", { clipboardData: clipboard, bubbles: true, cancelable: true }));
        }""",
        list(data),
    )


def set_visibility(page: Page, state: str) -> None:
    page.evaluate(
        """(state) => {
            Object.defineProperty(document, "visibilityState", { value: state, configurable: true });
            Object.defineProperty(document, "hidden", { value: state === "hidden", configurable: true });
            document.dispatchEvent(new Event("visibilitychange"));
        }""",
        state,
    )


def test_reply_edit_delete_undo_and_react_live(browser: Browser, portal: PortalServer, teams: DevCloud) -> None:
    bob = signed_in(browser, portal, "bob")
    alice = signed_in(browser, portal, "alice")
    open_chat(bob, "Q3 launch")
    open_chat(alice, "Q3 launch")
    send(alice, "Can someone review the launch deck?")
    original = message(bob, "Can someone review the launch deck?")
    expect(original).to_be_visible(timeout=LIVE)

    # Bob replies with a quote: the chip above the composer (with its cancel), then the quote.
    act(original, "Reply")
    chip = bob.locator("#reply-chip")
    expect(chip).to_contain_text("Replying to Alice Anders Can someone review the launch deck?")
    expect(bob.get_by_role("textbox", name="Message")).to_be_focused()
    chip.get_by_role("button", name="Cancel reply").click()
    expect(chip).to_be_hidden()
    act(original, "Reply")
    send(bob, "On it this afternoon")
    expect(chip).to_be_hidden()
    reply = message(alice, "On it this afternoon")
    expect(reply.locator("blockquote.quote")).to_contain_text("Alice Anders", timeout=LIVE)
    expect(reply.locator("blockquote.quote")).to_contain_text("Can someone review the launch deck?")
    reply.get_by_role("button", name=re.compile("^Go to the message from Alice Anders")).click()
    expect(message(alice, "Can someone review the launch deck?")).to_have_class(re.compile(r"\bhighlight\b"))
    expect(message(alice, "Can someone review the launch deck?")).to_be_focused()

    # Bob edits his reply: Enter saves, it shows at once, and Alice sees "Edited".
    mine = pinned(bob, message(bob, "On it this afternoon"))
    act(mine, "Edit")
    editor = bob.get_by_role("textbox", name="Edit message")
    expect(editor).to_be_focused()
    editor.fill("On it this morning")
    editor.press("Enter")
    expect(mine).to_contain_text("On it this morning")
    expect(mine.locator(".edited")).to_have_text("Edited")
    expect(message(alice, "On it this morning").locator(".edited")).to_have_text("Edited", timeout=LIVE)
    expect(mine).not_to_have_class(re.compile(r"\bworking\b"))
    # Escape leaves the editor without a change; focus goes back to "Edit".
    act(mine, "Edit")
    bob.get_by_role("textbox", name="Edit message").press("Escape")
    expect(bob.get_by_role("textbox", name="Edit message")).to_have_count(0)
    expect(mine.get_by_role("button", name="Edit", exact=True)).to_be_focused()

    # Deleted after a confirmation, for both; then undone.
    act(mine, "Delete")
    bob.get_by_role("dialog", name="Delete this message?").get_by_role("button", name="Delete").click()
    expect(mine).to_contain_text("This message was deleted.")
    expect(pinned(alice, mine)).to_contain_text("This message was deleted.", timeout=LIVE)
    expect(pinned(alice, mine).get_by_role("button", name="Undo")).to_have_count(0)
    mine.get_by_role("button", name="Undo").click()
    expect(mine).to_contain_text("On it this morning")
    expect(pinned(alice, mine)).to_contain_text("On it this morning", timeout=LIVE)

    # Alice likes it: Bob sees the chip and who reacted; he likes it too (2), then not (1).
    react(alice, pinned(alice, mine), "Like")
    alices_chip = pinned(alice, mine).locator("button.reaction")
    expect(alices_chip).to_have_attribute("aria-pressed", "true")
    like = mine.get_by_role("button", name=re.compile("^Like"))
    expect(like).to_have_accessible_name("Like 👍, 1: Alice Anders", timeout=LIVE)
    expect(like).to_have_attribute("title", "Like: Alice Anders")
    like.click()
    expect(like).to_have_attribute("aria-pressed", "true")
    expect(like).to_contain_text("2")
    expect(alices_chip).to_have_attribute("title", "Like: Alice Anders, Bob Baker", timeout=LIVE)
    like.click()
    expect(like).to_have_attribute("aria-pressed", "false")
    expect(alices_chip).to_have_attribute("title", "Like: Alice Anders", timeout=LIVE)
    # The picker works from the keyboard: Escape closes it, focus back on "React".
    mine.get_by_role("button", name="React").focus()
    bob.keyboard.press("Enter")
    expect(bob.get_by_role("group", name="Choose a reaction").get_by_role("button", name="Like")).to_be_focused()
    bob.keyboard.press("Escape")
    expect(bob.get_by_role("group", name="Choose a reaction")).to_have_count(0)
    expect(mine.get_by_role("button", name="React")).to_be_focused()


def test_mentions_images_and_the_title_count(browser: Browser, portal: PortalServer, teams: DevCloud) -> None:
    bob = signed_in(browser, portal, "bob")
    alice = signed_in(browser, portal, "alice")
    open_chat(bob, "Q3 launch")
    open_chat(alice, "Q3 launch")
    title = bob.title()
    set_visibility(bob, "hidden")

    # Alice mentions Bob with the keyboard only.
    box = alice.get_by_role("textbox", name="Message")
    box.press_sequentially("Thanks @b")
    people = alice.get_by_role("listbox", name="People to mention")
    expect(people).to_be_visible()
    expect(people.get_by_role("option")).to_have_text([re.compile("Bella Berg"), re.compile("Bob Baker")])
    expect(box).to_have_attribute("aria-activedescendant", "mention-option-0")
    box.press("ArrowDown")
    box.press("ArrowDown")
    box.press("ArrowUp")
    expect(box).to_have_attribute("aria-activedescendant", "mention-option-1")
    expect(people.get_by_role("option", name=re.compile("Bob Baker"))).to_have_attribute("aria-selected", "true")
    box.press("Enter")
    expect(people).to_be_hidden()
    expect(box).to_have_value("Thanks @Bob Baker ")
    box.press_sequentially("for the numbers")
    box.press("Escape")
    box.press("Enter")
    mention = message(bob, "for the numbers")
    expect(mention).to_have_class(re.compile(r"\bmentions-me\b"), timeout=LIVE)
    expect(mention.locator(".mention")).to_have_text("Bob Baker")
    expect(mention).to_contain_text("Mentions you")
    expect(message(alice, "for the numbers").locator(".mention")).to_have_text("Bob Baker")
    expect(message(alice, "for the numbers")).not_to_have_class(re.compile(r"\bmentions-me\b"))
    # Bob's tab was in the background: its title counts what came; seen, it is reset.
    expect(bob).to_have_title(f"(1) {title}")
    set_visibility(bob, "visible")
    expect(bob).to_have_title(title)

    # A pasted image: a preview that can be removed, then sent and shown to both.
    paste_image(alice, png())
    previews = alice.get_by_role("list", name="Images to send")
    expect(previews.get_by_role("img")).to_have_count(1)
    paste_image(alice, png(12))
    expect(previews.get_by_role("img")).to_have_count(2)
    previews.get_by_role("button", name="Remove image 2").click()
    expect(previews.get_by_role("img")).to_have_count(1)
    send(alice, "The chart")
    expect(previews).to_be_hidden()
    for page in (alice, bob):
        image = message(page, "The chart").locator("img[src*='/hosted/']")
        expect(image).to_be_visible(timeout=LIVE)
        expect(image).to_have_attribute("alt", re.compile(".+"))
        wait_for(lambda image=image: image.evaluate("img => img.complete && img.naturalWidth === 8"))
    # Through the file button: limits are checked before anything is sent.
    chooser = bob.locator("#image-input")
    too_big = {"name": "huge.png", "mimeType": "image/png", "buffer": png() + bytes(3 * 1024 * 1024)}
    chooser.set_input_files([too_big])
    expect(bob.locator("#composer-error")).to_contain_text("“huge.png” is 3 MB; an image can be at most 3 MB.")
    small = [{"name": f"s{i}.png", "mimeType": "image/png", "buffer": png()} for i in range(5)]
    chooser.set_input_files(small)
    expect(bob.locator("#composer-error")).to_have_text("A message can have at most 4 images.")
    expect(bob.get_by_role("list", name="Images to send").get_by_role("img")).to_have_count(4)
    bob.get_by_role("button", name="Send").click()
    expect(bob.locator("#composer-error")).to_have_text("")
    expect(message(alice, "").locator("img[src*='/hosted/']")).to_have_count(4, timeout=LIVE)


def test_read_state_search_and_chat_management(browser: Browser, portal: PortalServer, teams: DevCloud) -> None:
    bob = signed_in(browser, portal, "bob")
    alice = signed_in(browser, portal, "alice")
    open_chat(bob, "Q3 launch")
    open_chat(alice, "Q3 launch")
    send(alice, "The spreadsheet for the budget is in the folder")
    expect(message(bob, "spreadsheet for the budget")).to_be_visible(timeout=LIVE)

    # Alice renames the chat: at once for her, live for Bob.
    chat_settings(alice, "Rename chat")
    dialog = alice.get_by_role("dialog", name="Rename chat")
    dialog.get_by_label("Chat name").fill("Q3 launch room")
    dialog.get_by_role("button", name="Save").click()
    expect(alice.get_by_role("heading", name="Q3 launch room")).to_be_visible()
    expect(bob.get_by_role("heading", name="Q3 launch room")).to_be_visible(timeout=LIVE)
    expect(bob).to_have_title(re.compile("^Q3 launch room · Chats"))

    # Members: April added through people search, then removed.
    chat_settings(alice, "Members")
    members = alice.get_by_role("dialog", name="Members")
    in_chat = members.get_by_role("list", name="Members")
    expect(in_chat.get_by_role("listitem")).to_have_count(4)
    members.get_by_label("Add people").fill("April")
    members.get_by_role("button", name="Add April Appleton").click()
    expect(in_chat.get_by_role("listitem").filter(has_text="April Appleton")).to_be_visible()
    expect(members.get_by_role("button", name="Remove April Appleton")).to_be_visible(timeout=LIVE)
    expect(alice.locator("#thread-members")).to_contain_text("April Appleton")
    members.get_by_role("button", name="Remove April Appleton").click()
    expect(in_chat.get_by_role("listitem").filter(has_text="April Appleton")).to_have_count(0, timeout=LIVE)
    members.get_by_role("button", name="Close").click()
    expect(alice.locator("#thread-members")).not_to_contain_text("April Appleton")

    # Bob searches: the result names the chat and the sender, and opens the message.
    bob.get_by_label("Search messages").fill("spreadsheet")
    bob.get_by_label("Search messages").press("Enter")
    results = bob.get_by_role("region", name=re.compile("spreadsheet"))
    hit = results.get_by_role("link", name=re.compile("Q3 launch room"))
    expect(hit).to_contain_text("Alice Anders")
    expect(hit.locator("mark")).to_have_text(re.compile("spreadsheet", re.IGNORECASE))
    hit.click()
    found = message(bob, "spreadsheet for the budget")
    expect(found).to_have_class(re.compile(r"\bhighlight\b"))
    expect(found).to_be_focused()

    # Bob marks the chat unread: he is back on his chat list, the chat shown unread.
    bob.get_by_role("button", name="Mark as unread").click()
    expect(bob).to_have_url(re.compile(r"/chats/$"))
    entry = bob.locator("li.chat-entry").filter(has_text="Q3 launch room")
    expect(entry).to_have_class(re.compile(r"\bunread\b"))

    # Alice hides it (it leaves her list); Bob leaves it.
    chat_settings(alice, "Hide chat")
    alice.get_by_role("dialog", name="Hide this chat?").get_by_role("button", name="Hide").click()
    expect(alice).to_have_url(re.compile(r"/chats/$"))
    expect(
        alice.get_by_role("navigation", name="Your chats").get_by_role("link", name=re.compile("Q3 launch"))
    ).to_have_count(0)
    entry.get_by_role("link").click()
    chat_settings(bob, "Leave chat")
    bob.get_by_role("dialog", name="Leave this chat?").get_by_role("button", name="Leave").click()
    expect(bob).to_have_url(re.compile(r"/chats/$"))
    expect(
        bob.get_by_role("navigation", name="Your chats").get_by_role("link", name=re.compile("Q3 launch"))
    ).to_have_count(0)


def test_what_people_do_in_teams_appears_live(browser: Browser, portal: PortalServer, teams: DevCloud) -> None:
    bob = signed_in(browser, portal, "bob")
    open_chat(bob, "Q3 launch")
    chat = Chat.objects.get(tenant__tid=FABRIKAM, topic="Q3 launch")
    wait_for(lambda: GraphSubscription.objects.filter(chat=chat).exists())
    send(bob, "Numbers are final")
    target = message(bob, "Numbers are final")
    expect(target).not_to_have_class(re.compile(r"\bpending\b"))
    message_id = target.get_attribute("data-id")
    # Tom acts in Teams itself (devcloud's control API), not through the portal.
    base = f"/chats/{quote(chat.graph_id, safe='')}/messages"
    teams.control("POST", f"{base}/{message_id}/reactions", json={"user": TOM, "reactionType": "❤️", "on": True})
    expect(pinned(bob, target).get_by_role("button", name=re.compile("^Heart"))).to_have_attribute(
        "title", "Heart: Tom Teamsadmin", timeout=LIVE
    )
    teams.control("POST", base, json={"from": TOM, "content": "<p>Great work</p>", "replyTo": message_id})
    reply = message(bob, "Great work")
    expect(reply.locator("blockquote.quote")).to_contain_text("Numbers are final", timeout=LIVE)
    mention = {"from": TOM, "content": '<p><at id="0">Bob Baker</at> can you send them?</p>', "mentions": [BOB]}
    sent = teams.control("POST", base, json=mention)
    expect(message(bob, "can you send them?")).to_have_class(re.compile(r"\bmentions-me\b"), timeout=LIVE)
    edit = {"content": "<p>Bob Baker can you send them today?</p>"}
    teams.control("PATCH", f"{base}/{sent['id']}", json=edit)
    expect(message(bob, "send them today?").locator(".edited")).to_have_text("Edited", timeout=LIVE)
    # A message in another of his chats, while his tab is in the background: the title counts it.
    title = bob.title()
    set_visibility(bob, "hidden")
    other = Chat.objects.get(tenant__tid=FABRIKAM, topic="IT help desk")
    wait_for(lambda: GraphSubscription.objects.filter(chat=other).exists())
    teams.control(
        "POST",
        f"/chats/{quote(other.graph_id, safe='')}/messages",
        json={"from": TOM, "content": "<p>Ticket closed</p>"},
    )
    expect(bob).to_have_title(f"(1) {title}", timeout=LIVE)
    set_visibility(bob, "visible")
    expect(bob).to_have_title(title)
    assert bob.evaluate("performance.getEntriesByType('navigation').length") == 1


def test_a_refused_reaction_rolls_back_and_a_throttled_one_waits(
    browser: Browser, portal: PortalServer, teams: DevCloud
) -> None:
    bob = signed_in(browser, portal, "bob")
    open_chat(bob, "Q3 launch")
    chat = Chat.objects.get(tenant__tid=FABRIKAM, topic="Q3 launch")
    target = thread(bob).locator("li.message:not(.system)").last
    path = f"/v1.0/chats/{chat.graph_id}/messages/{target.get_attribute('data-id')}/setReaction"
    # Slow enough to see the chip before the refusal rolls it back.
    refusal = {"service": "graph", "path": path, "status": 403, "latency_ms": 800, "count": 1}
    teams.control("POST", "/faults", json=refusal)
    react(bob, target, "Laugh")
    chip = target.get_by_role("button", name=re.compile("^Laugh"))
    expect(chip).to_have_attribute("aria-pressed", "true")
    expect(chip).to_have_count(0)
    expect(status(bob)).to_contain_text("Your reaction was not added: ")

    # Throttled twice: the portal sits out the first wait itself, then the page waits, saying
    # so, and tries again.
    throttled = {"service": "graph", "path": path, "status": 429, "retry_after": 3, "count": 2}
    teams.control("POST", "/faults", json=throttled)
    react(bob, target, "Surprised")
    chip = target.get_by_role("button", name=re.compile("^Surprised"))
    expect(chip).to_have_attribute("aria-pressed", "true")
    expect(status(bob)).to_contain_text(re.compile(r"Teams is busy; trying again in \d s"), timeout=LIVE)
    expect(status(bob)).to_have_text("", timeout=20_000)
    expect(chip).to_have_attribute("title", "Surprised: Bob Baker")
    expect(chip).to_have_attribute("aria-pressed", "true")
