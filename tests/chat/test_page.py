"""The chat page's reads and drawing: few queries, rows read by its own statements as the ORM
reads them, a body sanitized once drawn the same as every time, its JSON as Django writes it."""

from __future__ import annotations

import datetime as dt
import html
import json

import nh3
import pytest
from django.db import connection
from django.template.defaultfilters import date
from django.test.utils import CaptureQueriesContext
from django.utils.html import json_script as django_json_script
from django.utils.timezone import localtime

from chat import render, selectors, services
from chat.models import Chat, ChatSyncState, Message
from tenants.models import TenantUser
from tests.devcloud_server import FABRIKAM, USERS
from tests.portal_flow import Person

# The page's statements have a form for SQLite too (development's database).
pytestmark = [pytest.mark.django_db, pytest.mark.both_databases]
BOB = USERS["bob"][1]
ALICE = USERS["alice"][1]
ZED = "0d3c47a2-8b7e-4f3e-9a51-7c1b2f0e9d11"
NOBODY = "1e4d58b3-9c8f-4a4f-8b62-8d2c3a1f0e22"


def member(oid: str) -> TenantUser:
    return TenantUser.objects.select_related("tenant__vendor").get(oid=oid)


def a_chat(topic: str = "Q3 launch") -> Chat:
    return Chat.objects.get(tenant=member(BOB).tenant, topic=topic)


def queries(person: Person, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert person.client.get(url).status_code == 200
    return len(captured)


def untitled_group() -> Chat:
    """A group chat without a topic: bob, alice, Zed, and someone Teams gives no name, only an email."""
    item = {
        "id": "19:untitled-group@thread.v2",
        "chatType": "group",
        "topic": None,
        "createdDateTime": "2024-01-01T00:00:00.000Z",
        "lastUpdatedDateTime": "2024-01-01T00:00:00.000Z",
        "webUrl": f"https://teams.microsoft.com/l/chat/19:untitled-group@thread.v2/0?tenantId={FABRIKAM}",
        "members": [
            {"userId": BOB, "displayName": "Bob Baker", "email": ""},
            {"userId": ALICE, "displayName": "Alice", "email": ""},
            {"userId": ZED, "displayName": "Zed", "email": ""},
            {"userId": NOBODY, "displayName": "", "email": "nobody@fabrikam.example"},
        ],
        "lastMessagePreview": {"createdDateTime": "2024-01-01T00:00:00.000Z"},
    }
    return services.chats_upsert(member=member(BOB), items=[item], complete=False)[item["id"]]


def test_the_thread_page_makes_five_queries_and_the_chats_page_four(people: dict[str, Person]) -> None:
    bob = people["bob"]
    # Session, user; the chat with its members and his sync state; the list; the thread.
    assert queries(bob, f"/chats/{a_chat().pk}/") == 5
    # Session, user; his sync state; the list.
    assert queries(bob, "/chats/") == 4


def test_the_thread_page_reads_messages_as_the_orm_does(people: dict[str, Person]) -> None:
    chat = a_chat()
    read, _ = selectors.thread_page(chat=chat)
    ordered = Message.objects.filter(tenant_id=chat.tenant_id, chat=chat).order_by("-created_at", "-graph_id")
    expected = list(reversed(ordered[: selectors.PAGE_SIZE]))
    assert [m.pk for m in read] == [m.pk for m in expected]
    fields = [f.attname for f in Message._meta.concrete_fields if f.name != "mirrored_at"]
    assert [[getattr(m, f) for f in fields] for m in read] == [[getattr(m, f) for f in fields] for m in expected]
    assert [render.message_payload(m, me=BOB) for m in read] == [render.message_payload(m, me=BOB) for m in expected]
    # An older page, by the cursor the page sends.
    first = expected[0]
    older, _ = selectors.thread_page(chat=chat, before=(first.created_at, first.graph_id))
    assert all((m.created_at, m.graph_id) < (first.created_at, first.graph_id) for m in older)


def test_opening_a_chat_brings_its_members_and_his_sync_state_as_the_orm_reads_them(people: dict[str, Person]) -> None:
    bob, chat = member(BOB), a_chat()
    opened = selectors.access_open_chat(member=bob, chat_id=chat.pk)
    assert opened.chat == chat
    assert [(m.pk, m.oid, m.display_name, m.last_read_at) for m in opened.members] == [
        (m.pk, m.oid, m.display_name, m.last_read_at) for m in selectors.chat_members(chat=chat)
    ]
    state = ChatSyncState.objects.get(member=bob)
    assert opened.sync is not None
    assert (opened.sync.pk, opened.sync.status, opened.sync.finished_at) == (state.pk, state.status, state.finished_at)


def test_a_member_who_never_synced_opens_a_chat_without_a_sync_state(people: dict[str, Person]) -> None:
    bob = member(BOB)
    ChatSyncState.objects.filter(member=bob, tenant=bob.tenant).delete()
    assert selectors.access_open_chat(member=bob, chat_id=a_chat().pk).sync is None
    assert people["bob"].client.get(f"/chats/{a_chat().pk}/").context["chat_config"]["sync"]["status"] == "never"


def test_a_chat_without_a_topic_is_named_as_its_thread_names_it(people: dict[str, Person]) -> None:
    bob, chat = member(BOB), untitled_group()
    entry = next(e for e in selectors.member_chats(member=bob)[0] if e.chat.pk == chat.pk)
    title = selectors.thread_title(member=bob, chat=chat, members=selectors.chat_members(chat=chat))
    assert entry.title == title == "nobody@fabrikam.example, Alice, Zed"
    page = people["bob"].client.get(f"/chats/{chat.pk}/").content.decode()
    assert page.count(title) >= 2  # the list and the thread's heading


def test_the_list_draws_links_and_times_as_its_template_did(people: dict[str, Person]) -> None:
    chat = a_chat()
    page = people["bob"].client.get(f"/chats/{chat.pk}/")
    text = page.content.decode()
    for entry in page.context["entries"]:
        assert f'<a href="/chats/{entry.chat.pk}/"' in text
        if entry.at:
            time = f'<time class="chat-time" datetime="{entry.at.isoformat()}">{date(localtime(entry.at), "M j, H:i")}'
            assert time in text
    assert f'<a href="/chats/{chat.pk}/" aria-current="page">' in text


def test_the_pages_json_is_what_djangos_json_script_writes() -> None:
    value = {"html": "<p>a & b</p></script><script>alert(1)</script>", "name": "Zoë 😀 <&>", "n": [1, None, True]}
    assert render.json_script(value, "chat-config") == django_json_script(value, "chat-config")
    assert "</script><script>" not in render.json_script(value, "chat-config")


def test_the_page_carries_the_config_its_script_reads(people: dict[str, Person]) -> None:
    page = people["bob"].client.get(f"/chats/{a_chat().pk}/")
    text = page.content.decode()
    config = text.split('<script id="chat-config" type="application/json">')[1].split("</script>")[0]
    assert json.loads(config) == json.loads(json.dumps(page.context["chat_config"]))


def test_a_body_sanitized_once_is_drawn_the_same_with_other_images_or_quotes() -> None:
    body = (
        '<attachment id="q1"></attachment><p onclick="x()">Hi <at id="0">Bob</at>'
        '<img src="https://graph.example/a"><script>alert(1)</script></p>'
    )
    plain = render.safe_html(body)
    assert plain == render.safe_html(body)
    with_image = render.safe_html(body, images={"https://graph.example/a": "/images/a"})
    assert '<img src="/images/a" alt="Image">' in with_image and "<img" not in plain
    quoted = render.safe_html(body, shown_apart={"q1"})
    note = '<span class="note">[attachment]</span>'
    assert note in plain and note not in quoted
    for drawn in (plain, with_image, quoted):
        assert "script" not in drawn and "onclick" not in drawn
    # Long bodies are sanitized each time, the same way.
    long = render.safe_html(body + "<p>" + "x" * render.CACHED_CHARS + "</p>")
    assert long.startswith(plain) and "script" not in long


TRICKY = [
    '<p onclick="x()">hi <script>alert(1)</script><a href="javascript:alert(1)">x</a></p>',
    '<a href="https://teams.example/x" target="_blank" rel="x">link</a><!-- c --><style>p{}</style>',
    '<span class="mention">a</span><span class="evil">b</span><table><tr><td colspan=2 onclick=1>x</td></tr></table>',
    '<a href="mailto:a@b" title="t">m</a><div style="x">d</div><p>&lt;b&gt; &amp; &quot;</p>',
    "<svg><script>1</script></svg><math><mi>x</mi></math><iframe src=https://e></iframe>",
]


@pytest.mark.parametrize("body", TRICKY)
def test_sanitizing_keeps_what_nh3_keeps_under_the_pages_rules(body: str) -> None:
    def keep(tag: str, name: str, value: str) -> str | None:
        if tag == "span" and name == "class":
            return value if value in ("mention", "note") else None
        return None if (tag, name) == ("img", "src") else value

    rules = {"tags": render.TAGS, "attributes": render.ATTRIBUTES, "url_schemes": render.SCHEMES}
    expected = nh3.clean(
        body, **rules, link_rel="noopener noreferrer nofollow", attribute_filter=keep, strip_comments=True
    )
    assert render.safe_html(body) == expected
    assert render.plain_text(body, limit=1000) == " ".join(html.unescape(nh3.clean(body, tags=set())).split())


def test_a_preview_is_the_same_text_cached_or_not() -> None:
    body = "<p>Hello <b>there</b> &amp; welcome</p>"
    assert render.plain_text(body) == render.plain_text(body) == "Hello there & welcome"
    assert render.plain_text(body + " " * render.CACHED_CHARS) == "Hello there & welcome"


def test_the_page_draws_a_message_anew_once_it_changes(people: dict[str, Person]) -> None:
    chat = a_chat()
    newest = Message.objects.filter(tenant_id=chat.tenant_id, chat=chat).order_by("-created_at", "-graph_id").first()
    assert newest is not None
    later = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    edited = {
        "id": newest.graph_id,
        "messageType": "message",
        "createdDateTime": newest.created_at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "lastModifiedDateTime": later,
        "lastEditedDateTime": later,
        "from": {"user": {"id": ALICE, "displayName": "Alice"}},
        "body": {"contentType": "html", "content": "<p>edited <script>x</script></p>"},
    }
    before = people["bob"].client.get(f"/chats/{chat.pk}/").context["chat_config"]["messages"][-1]
    services.messages_upsert(chat=chat, items=[edited])
    after = people["bob"].client.get(f"/chats/{chat.pk}/").context["chat_config"]["messages"][-1]
    assert after["id"] == before["id"] and after["html"] == "<p>edited </p>" and after["edited"]
