"""The chat pages and JSON endpoints, with devcloud: bob reads and sends, charlie of Northwind gets 404s."""

from __future__ import annotations

import datetime as dt
import html
import json
import uuid
from typing import Any
from urllib.parse import quote

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from chat import render, selectors, services
from chat.models import Chat, ChatMember, ChatSyncState, Message
from chat.sync import chat_sync_member
from tenants.models import TenantUser
from tests.devcloud_server import USERS, DevCloud
from tests.portal_flow import Person

pytestmark = pytest.mark.django_db
BOB = USERS["bob"][1]
ALICE = USERS["alice"][1]


def member(oid: str) -> TenantUser:
    return TenantUser.objects.select_related("tenant__vendor").get(oid=oid)


def a_chat(topic: str = "Q3 launch") -> Chat:
    return Chat.objects.get(tenant=member(BOB).tenant, topic=topic)


def post_json(person: Person, url: str, body: Any) -> Any:
    return person.client.post(url, json.dumps(body), content_type="application/json")


def test_bob_sees_his_chats_with_titles_and_previews(people: dict[str, Person]) -> None:
    page = people["bob"].client.get("/chats/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "Q3 launch" in text and "IT help desk" in text
    # A one-on-one is named after the other member.
    one_on_one = Chat.objects.filter(tenant=member(BOB).tenant, chat_type="oneOnOne", members__oid=BOB).first()
    assert one_on_one is not None
    other = ChatMember.objects.filter(chat=one_on_one).exclude(oid=BOB).get()
    assert other.display_name in text


def test_a_thread_shows_its_newest_page_and_loads_older_messages(people: dict[str, Person]) -> None:
    chat = a_chat()
    newest = Message.objects.filter(chat=chat).order_by("-created_at").first()
    assert newest is not None
    page = people["bob"].client.get(f"/chats/{chat.pk}/")
    assert page.status_code == 200
    config = page.context["chat_config"]
    assert config["messages"][-1]["id"] == newest.graph_id
    first = config["messages"][0]
    older = people["bob"].client.get(
        f"/api/chats/{chat.pk}/messages/", {"before": first["created"], "before_id": first["id"]}
    )
    assert older.status_code == 200
    assert all(m["created"] <= first["created"] for m in older.json()["messages"])


def test_the_thread_page_makes_the_same_queries_whatever_its_length(
    people: dict[str, Person], devcloud_settings: DevCloud
) -> None:
    chat = a_chat()
    bob = people["bob"]

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert bob.client.get(f"/chats/{chat.pk}/").status_code == 200
        return len(captured)

    before = queries()
    rows = [
        {
            "id": str(10**12 + n),
            "messageType": "message",
            "createdDateTime": f"2020-01-01T00:{n // 60:02d}:{n % 60:02d}.000Z",
            "lastModifiedDateTime": f"2020-01-01T00:{n // 60:02d}:{n % 60:02d}.000Z",
            "from": {"user": {"id": ALICE, "displayName": "Alice"}},
            "body": {"contentType": "html", "content": f"<p>{n}</p>"},
        }
        for n in range(300)
    ]

    services.messages_upsert(chat=chat, items=rows)
    assert queries() == before


def test_message_bodies_are_sanitized(people: dict[str, Person]) -> None:
    dirty = '<p onclick="x()">hi <script>alert(1)</script><a href="javascript:alert(1)">x</a><img src="https://e/x.png"></p>'
    clean = render.safe_html(dirty)
    assert "script" not in clean and "onclick" not in clean and "javascript" not in clean and "<img" not in clean
    assert render.safe_html('<at id="0">Bob</at> <a href="https://teams.example/x">link</a>') == (
        '<span class="mention">Bob</span> <a href="https://teams.example/x" rel="noopener noreferrer nofollow">link</a>'
    )
    assert render.safe_html("a < b\nc", "text") == "a &lt; b<br>c"


def test_bob_sends_a_message_through_graph_as_himself(people: dict[str, Person], devcloud_settings: DevCloud) -> None:
    chat = a_chat()
    body = {"content": "Hello <b>team</b>\nsecond line", "client_id": str(uuid.uuid4())}
    sent = post_json(people["bob"], f"/api/chats/{chat.pk}/messages/", body)
    assert sent.status_code == 201, sent.content
    message = sent.json()["message"]
    assert message["mine"] and message["html"] == "<p>Hello &lt;b&gt;team&lt;/b&gt;<br>second line</p>"
    truth = devcloud_settings.control("GET", f"/chats/{quote(chat.graph_id, safe='')}")["messages"]
    assert truth[-1]["id"] == message["id"] and truth[-1]["from"]["user"]["id"] == BOB
    assert Message.objects.filter(chat=chat, graph_id=message["id"]).exists()


def test_a_throttled_send_says_when_to_try_again_and_sends_nothing(
    people: dict[str, Person], devcloud_settings: DevCloud
) -> None:
    chat = a_chat()
    storm = {"service": "graph", "path": "/v1.0/chats/", "method": "POST", "status": 429, "retry_after": 5, "count": 1}
    devcloud_settings.control("POST", "/faults", json=storm)
    before = Message.objects.filter(chat=chat).count()
    body = {"content": "later", "client_id": str(uuid.uuid4())}
    refused = post_json(people["bob"], f"/api/chats/{chat.pk}/messages/", body)
    assert refused.status_code == 429
    assert refused["Retry-After"] == "5" and refused.json()["error"] == "graph_throttled"
    assert Message.objects.filter(chat=chat).count() == before
    again = post_json(people["bob"], f"/api/chats/{chat.pk}/messages/", body)
    assert again.status_code == 201


@pytest.mark.parametrize(
    ("body", "error"),
    [({"content": "  "}, "empty"), ({"content": 5}, "empty"), ({"content": "x" * 4001}, "too_long"), ([1], "bad_json")],
)
def test_bad_messages_are_refused_with_a_reason(people: dict[str, Person], body: Any, error: str) -> None:
    refused = post_json(people["bob"], f"/api/chats/{a_chat().pk}/messages/", body)
    assert refused.status_code == 400 and refused.json()["error"] == error


def test_sending_needs_the_csrf_token(people: dict[str, Person]) -> None:
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.cookies = people["bob"].client.cookies
    refused = client.post(f"/api/chats/{a_chat().pk}/messages/", '{"content": "x"}', content_type="application/json")
    assert refused.status_code == 403


def test_bob_starts_a_one_on_one_with_alice_and_a_group(people: dict[str, Person], devcloud_settings: DevCloud) -> None:
    found = people["bob"].client.get("/api/chats/people/", {"q": "ali"}).json()["people"]
    assert [p["id"] for p in found] == [ALICE]
    created = post_json(people["bob"], "/api/chats/new/", {"members": [ALICE]})
    assert created.status_code == 201, created.content
    chat = Chat.objects.get(pk=created.json()["chat"])
    assert chat.chat_type == "oneOnOne"
    assert set(ChatMember.objects.filter(chat=chat).values_list("oid", flat=True).iterator()) == {
        member(BOB).oid,
        member(ALICE).oid,
    }
    group = post_json(people["bob"], "/api/chats/new/", {"members": [ALICE], "topic": "Planning"})
    assert group.status_code == 201
    assert Chat.objects.get(pk=group.json()["chat"]).topic == "Planning"
    # His other chats are still his.
    assert selectors.member_chats(member=member(BOB))[0]


def test_nobody_outside_fabrikam_can_be_put_in_a_chat(people: dict[str, Person]) -> None:
    charlie = USERS["charlie"][1]
    assert people["bob"].client.get("/api/chats/people/", {"q": "charlie"}).json()["people"] == []
    refused = post_json(people["bob"], "/api/chats/new/", {"members": [charlie]})
    assert refused.status_code == 400 and refused.json()["error"] == "unknown_person"
    assert post_json(people["bob"], "/api/chats/new/", {"members": ["not-a-guid"]}).status_code == 400
    assert post_json(people["bob"], "/api/chats/new/", {"members": []}).status_code == 400


def test_charlie_of_northwind_gets_404_for_every_fabrikam_chat_url(people: dict[str, Person]) -> None:
    chat = a_chat()
    charlie = people["charlie"]
    created = Message.objects.filter(chat=chat).first()
    assert created is not None
    gets = [
        f"/chats/{chat.pk}/",
        f"/api/chats/{chat.pk}/messages/",
        f"/api/chats/{chat.pk}/changes/?since=2000-01-01T00:00:00Z",
    ]
    posts = [f"/api/chats/{chat.pk}/messages/", f"/api/chats/{chat.pk}/read/"]
    for url in gets:
        assert charlie.client.get(url).status_code == 404, url
    for url in posts:
        assert post_json(charlie, url, {"content": "hi"}).status_code == 404, url
    # The same answer as for a chat that does not exist.
    assert charlie.client.get("/chats/999999/").status_code == 404
    page = charlie.client.get("/chats/").content.decode()
    assert "Q3 launch" not in page


def test_a_fabrikam_chat_bob_is_not_in_is_404_for_him(people: dict[str, Person], devcloud_settings: DevCloud) -> None:
    chat = a_chat()
    ChatMember.objects.filter(chat=chat, oid=BOB).delete()
    assert people["bob"].client.get(f"/chats/{chat.pk}/").status_code == 404


def test_someone_signed_out_is_sent_to_sign_in_and_the_api_says_401(people: dict[str, Person]) -> None:
    from django.test import Client

    anonymous = Client()
    assert anonymous.get("/chats/").status_code == 302
    assert anonymous.get(f"/api/chats/{a_chat().pk}/messages/").status_code == 401


def test_opening_a_thread_shows_it_read_and_the_pages_post_records_it(
    people: dict[str, Person], devcloud_settings: DevCloud
) -> None:
    chat = a_chat()
    bob = member(BOB)

    def unread() -> bool:
        return next(e for e in selectors.member_chats(member=bob)[0] if e.chat.pk == chat.pk).unread

    assert unread()
    page = people["bob"].client.get(f"/chats/{chat.pk}/")
    # The page's own list shows it read; a GET changes nothing.
    assert not next(e for e in page.context["entries"] if e.chat.pk == chat.pk).unread
    assert unread()
    assert people["bob"].client.get("/api/chats/", {"current": chat.pk, "seen": "1"}).status_code == 200
    assert unread()
    assert people["bob"].client.post(page.context["chat_config"]["readUrl"]).status_code == 200
    assert not unread()


def test_the_page_asks_for_a_sync_only_when_the_last_one_is_old(people: dict[str, Person]) -> None:
    state = ChatSyncState.objects.get(member=member(BOB))
    assert people["bob"].client.get("/chats/").context["chat_config"]["syncStale"] is False
    ChatSyncState.objects.filter(pk=state.pk, tenant=state.tenant).update(
        finished_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    )
    assert people["bob"].client.get("/chats/").context["chat_config"]["syncStale"] is True


def test_changes_since_a_time_catch_a_page_up(people: dict[str, Person], devcloud_settings: DevCloud) -> None:
    chat = a_chat()
    page = people["bob"].client.get(f"/chats/{chat.pk}/").context["chat_config"]
    path = f"/chats/{quote(chat.graph_id, safe='')}/messages"
    devcloud_settings.control("POST", path, json={"from": ALICE, "content": "<p>while you were away</p>"})
    chat_sync_member(member=member(BOB), chat_ids=[chat.graph_id], only=True)
    # Mirrored after the page was drawn, though Teams changed it long before.
    late = {
        "id": "1000000000001",
        "messageType": "message",
        "createdDateTime": "2020-01-01T00:00:00.000Z",
        "lastModifiedDateTime": "2020-01-01T00:00:00.000Z",
        "from": {"user": {"id": ALICE, "displayName": "Alice"}},
        "body": {"contentType": "html", "content": "<p>late</p>"},
    }
    services.messages_upsert(chat=chat, items=[late])
    caught = people["bob"].client.get(f"/api/chats/{chat.pk}/changes/", {"since": page["now"]}).json()
    htmls = [m["html"] for m in caught["messages"]]
    assert "<p>while you were away</p>" in htmls and "<p>late</p>" in htmls
    assert caught["now"] > page["now"]
    assert people["bob"].client.get(f"/api/chats/{chat.pk}/changes/", {"since": "yesterday"}).status_code == 400


def test_a_chat_whose_newest_message_is_bobs_own_is_not_unread(
    people: dict[str, Person], devcloud_settings: DevCloud
) -> None:
    chat = a_chat()
    path = f"/chats/{quote(chat.graph_id, safe='')}/messages"
    devcloud_settings.control("POST", path, json={"from": BOB, "content": "<p>typed in Teams by bob</p>"})
    chat_sync_member(member=member(BOB), chat_ids=[chat.graph_id], only=True)
    entry = next(e for e in selectors.member_chats(member=member(BOB))[0] if e.chat.pk == chat.pk)
    assert not entry.unread and entry.preview == "You: typed in Teams by bob"


def test_the_api_answers_json_404_for_a_chat_that_is_not_yours(people: dict[str, Person]) -> None:
    refused = people["charlie"].client.get(f"/api/chats/{a_chat().pk}/messages/")
    assert refused.status_code == 404
    assert refused.json() == {"error": "not_found", "message": "No such chat."}


def test_a_chat_link_opened_signed_out_signs_in_and_comes_back(people: dict[str, Person]) -> None:
    from django.test import Client

    url = f"/chats/{a_chat().pk}/"
    stranger = Client()
    home = stranger.get(stranger.get(url)["Location"])
    assert f'href="/v/contoso/?next={url}"' in home.content.decode()
    assert "Sign in to continue" in home.content.decode()
    vendor = stranger.get("/v/contoso/", {"next": url}).content.decode()
    assert f'<input type="hidden" name="next" value="{url}">' in vendor


def test_chats_say_why_they_are_unavailable_once_consent_is_revoked(people: dict[str, Person]) -> None:
    from tenants.models import CustomerTenant

    CustomerTenant.objects.filter(pk=member(BOB).tenant_id).update(status=CustomerTenant.Status.CONSENT_REVOKED)
    page = people["bob"].client.get("/chats/")
    assert page.status_code == 403
    text = html.unescape(page.content.decode())
    assert "Chats aren't available" in text and "consent for Contoso was revoked" in text
    refused = post_json(people["bob"], f"/api/chats/{a_chat().pk}/messages/", {"content": "hi"})
    assert refused.status_code == 403 and refused.json()["error"] == "consent_revoked"


def test_a_message_tried_twice_is_posted_once(people: dict[str, Person], devcloud_settings: DevCloud) -> None:
    chat = a_chat()
    body = {"content": "only once", "client_id": str(uuid.uuid4())}
    first = post_json(people["bob"], f"/api/chats/{chat.pk}/messages/", body)
    again = post_json(people["bob"], f"/api/chats/{chat.pk}/messages/", body)
    assert first.status_code == again.status_code == 201
    assert first.json()["message"]["id"] == again.json()["message"]["id"]
    truth = devcloud_settings.control("GET", f"/chats/{quote(chat.graph_id, safe='')}")["messages"]
    assert [m["body"]["content"] for m in truth].count("<p>only once</p>") == 1


def test_a_send_without_its_client_id_is_refused(people: dict[str, Person]) -> None:
    refused = post_json(people["bob"], f"/api/chats/{a_chat().pk}/messages/", {"content": "hi", "client_id": "x"})
    assert refused.status_code == 400 and refused.json()["error"] == "bad_client_id"


def test_a_send_teams_did_not_answer_is_not_retried_blindly_and_the_chat_is_synced(
    people: dict[str, Person], devcloud_settings: DevCloud, django_capture_on_commit_callbacks: Any
) -> None:
    chat = a_chat()
    fault = {"service": "graph", "path": "/v1.0/chats/", "method": "POST", "status": 503, "count": 1}
    devcloud_settings.control("POST", "/faults", json=fault)
    body = {"content": "maybe", "client_id": str(uuid.uuid4())}
    with django_capture_on_commit_callbacks() as queued:
        refused = post_json(people["bob"], f"/api/chats/{chat.pk}/messages/", body)
    assert refused.status_code == 503 and refused.json()["error"] == "graph_unavailable"
    assert len(queued) == 1  # a sync of the chat, which shows the message if Teams kept it
    # The person may try again with the same id: it goes through.
    assert post_json(people["bob"], f"/api/chats/{chat.pk}/messages/", body).status_code == 201


def test_the_list_a_page_redraws_shows_the_chat_it_has_open_as_read(
    people: dict[str, Person], devcloud_settings: DevCloud
) -> None:
    chat = a_chat()
    people["bob"].client.get(f"/chats/{chat.pk}/")
    post = f"/chats/{quote(chat.graph_id, safe='')}/messages"
    devcloud_settings.control("POST", post, json={"from": ALICE, "content": "<p>new while open</p>"})
    chat_sync_member(member=member(BOB), chat_ids=[chat.graph_id], only=True)
    hidden = people["bob"].client.get("/api/chats/", {"current": chat.pk}).json()["html"]
    assert f'class="chat-entry unread current" data-chat="{chat.pk}"' in hidden  # a tab in the background
    shown = people["bob"].client.get("/api/chats/", {"current": chat.pk, "seen": "1"}).json()["html"]
    assert f'class="chat-entry current" data-chat="{chat.pk}"' in shown
    other = people["charlie"].client.get("/api/chats/", {"current": chat.pk, "seen": "1"})
    assert other.status_code == 404
