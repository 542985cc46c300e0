"""What bob does to messages, through Graph as himself (devcloud, msgraph-sdk): quote, mention,
send images, edit, delete, restore, react; each lands in the mirror and on the members' pages.
Alice's messages are hers alone to change; charlie of Northwind gets 404s."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any
from urllib.parse import quote

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from chat import live, services
from chat.models import Chat, ChatMember, Message
from tenants.models import TenantUser
from tests.devcloud_server import USERS, DevCloud
from tests.portal_flow import Person

pytestmark = pytest.mark.django_db
BOB, ALICE, CHARLIE = USERS["bob"][1], USERS["alice"][1], USERS["charlie"][1]
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(17)
GIF = b"GIF89a" + bytes(20)


def member(oid: str) -> TenantUser:
    return TenantUser.objects.select_related("tenant__vendor").get(oid=oid)


def a_chat(topic: str = "Q3 launch") -> Chat:
    return Chat.objects.get(tenant=member(BOB).tenant, topic=topic)


def send_json(person: Person, method: str, url: str, body: Any = None) -> Any:
    data = "" if body is None else json.dumps(body)
    return getattr(person.client, method)(url, data, content_type="application/json")


def send(person: Person, chat: Chat, content: str, **extra: Any) -> Any:
    body = {"content": content, "client_id": str(uuid.uuid4()), **extra}
    return send_json(person, "post", f"/api/chats/{chat.pk}/messages/", body)


def sent(person: Person, chat: Chat, content: str, **extra: Any) -> dict[str, Any]:
    answer = send(person, chat, content, **extra)
    assert answer.status_code == 201, answer.content
    message: dict[str, Any] = answer.json()["message"]
    return message


def message_url(chat: Chat, graph_id: str, suffix: str = "") -> str:
    return f"/api/chats/{chat.pk}/messages/{graph_id}/{suffix}"


def in_teams(devcloud: DevCloud, chat: Chat, graph_id: str) -> dict[str, Any]:
    messages = devcloud.control("GET", f"/chats/{quote(chat.graph_id, safe='')}")["messages"]
    found: dict[str, Any] = next(m for m in messages if m["id"] == graph_id)
    return found


def alices_message(chat: Chat) -> Message:
    message = Message.objects.filter(chat=chat, sender_oid=ALICE, message_type="message", deleted_at=None).first()
    assert message is not None
    return message


def name_of(chat: Chat, oid: str) -> str:
    return ChatMember.objects.get(chat=chat, oid=oid).display_name


class Heard:
    """What a member's open pages are sent (his events, as `live` publishes them)."""

    def __init__(self, oid: str, monkeypatch: pytest.MonkeyPatch) -> None:
        self.member_id = member(oid).pk
        self.events: list[dict[str, Any]] = []
        send = live._send

        def record(events: list[tuple[int, dict[str, Any]]]) -> None:
            self.events.extend(event for member_id, event in events if member_id == self.member_id)
            send(events)

        monkeypatch.setattr(live, "_send", record)

    def messages(self) -> list[dict[str, Any]]:
        """The messages heard since the last call."""
        heard = [m for event in self.events if event["type"] == "messages" for m in event["messages"]]
        self.events.clear()
        return heard


@pytest.fixture
def alice_hears(people: dict[str, Person], monkeypatch: pytest.MonkeyPatch) -> Heard:
    return Heard(ALICE, monkeypatch)


def graph_calls(devcloud: DevCloud, method: str, part: str) -> list[dict[str, Any]]:
    return [r for r in devcloud.requests(service="graph") if r["method"] == method and part in r["path"]]


# sending -------------------------------------------------------------------------------------
def test_bob_mentions_alice_and_she_sees_she_is_mentioned(
    people: dict[str, Person], devcloud_settings: DevCloud, alice_hears: Heard
) -> None:
    chat = a_chat()
    alice = name_of(chat, ALICE)
    message = sent(people["bob"], chat, f"Hi @{alice}, see this", mentions=[{"id": ALICE, "name": alice}])
    assert message["html"] == f'<p>Hi <span class="mention">{alice}</span>, see this</p>'
    assert not message["mentions_me"] and message["can_edit"] and message["sender_id"] == BOB
    truth = in_teams(devcloud_settings, chat, message["id"])
    assert truth["body"]["content"] == f'<p>Hi <at id="0">{alice}</at>, see this</p>'
    assert truth["mentions"][0]["mentioned"]["user"]["id"] == ALICE
    assert Message.objects.get(chat=chat, graph_id=message["id"]).mentions[0]["mentionText"] == alice
    heard = [m for m in alice_hears.messages() if m["id"] == message["id"]]
    assert heard and heard[-1]["mentions_me"] and not heard[-1]["mine"] and not heard[-1]["can_edit"]


def test_a_mention_whose_name_is_not_in_the_text_is_dropped(
    people: dict[str, Person], devcloud_settings: DevCloud
) -> None:
    chat = a_chat()
    message = sent(people["bob"], chat, "no names here", mentions=[{"id": ALICE, "name": name_of(chat, ALICE)}])
    assert message["html"] == "<p>no names here</p>"
    assert not in_teams(devcloud_settings, chat, message["id"]).get("mentions")


def test_only_members_of_the_chat_can_be_mentioned(people: dict[str, Person], devcloud_settings: DevCloud) -> None:
    chat = a_chat()
    outsiders = [{"id": CHARLIE, "name": "Charlie"}]
    refused = send(people["bob"], chat, "@Charlie hi", mentions=outsiders)
    assert refused.status_code == 400 and refused.json()["error"] == "bad_mention"
    for bad in ([{"id": "not-a-guid", "name": "x"}], [{"id": ALICE}], "alice", [{"id": ALICE, "name": ""}]):
        assert send(people["bob"], chat, "hi", mentions=bad).json()["error"] == "bad_mention", bad
    assert not graph_calls(devcloud_settings, "POST", "/messages")


def test_bob_replies_quoting_alices_message(people: dict[str, Person], devcloud_settings: DevCloud) -> None:
    chat = a_chat()
    quoted = alices_message(chat)
    message = sent(people["bob"], chat, "Agreed", reply_to=quoted.graph_id)
    assert message["reply_to"]["id"] == quoted.graph_id
    assert message["reply_to"]["sender"] == name_of(chat, ALICE)
    assert message["reply_to"]["preview"]
    assert message["html"] == "<p>Agreed</p>"  # the quote's <attachment> tag is not drawn
    truth = in_teams(devcloud_settings, chat, message["id"])
    assert truth["attachments"][0]["contentType"] == "messageReference"
    assert graph_calls(devcloud_settings, "POST", "/messages/replyWithQuote")


def test_a_reply_to_a_message_of_another_chat_is_refused(people: dict[str, Person]) -> None:
    chat, other = a_chat(), a_chat("IT help desk")
    elsewhere = Message.objects.filter(chat=other, message_type="message").first()
    assert elsewhere is not None
    for reply_to in (elsewhere.graph_id, "123", 5, "x" * 65):
        refused = send(people["bob"], chat, "hi", reply_to=reply_to)
        assert refused.status_code == 400 and refused.json()["error"] == "bad_reply", reply_to


def test_bob_sends_an_image_that_the_page_shows_through_the_portal_once_fetched(
    people: dict[str, Person], devcloud_settings: DevCloud
) -> None:
    chat = a_chat()
    image = {"content_type": "image/png", "data": base64.b64encode(PNG).decode()}
    message = sent(people["bob"], chat, "", images=[image])
    truth = in_teams(devcloud_settings, chat, message["id"])
    assert "hostedContents/" in truth["body"]["content"] and "../hostedContents/1" not in truth["body"]["content"]
    prefix = f'<p><img src="/api/chats/{chat.pk}/messages/{message["id"]}/hosted/'
    assert message["html"].startswith(prefix) and message["html"].endswith('/" alt="Image"></p>')
    url = message["html"][len('<p><img src="') : -len('" alt="Image"></p>')]
    before = len(graph_calls(devcloud_settings, "GET", "/hostedContents/"))
    shown = people["bob"].client.get(url)
    assert shown.status_code == 200 and shown.content == PNG
    assert shown["Content-Type"] == "image/png" and shown["X-Content-Type-Options"] == "nosniff"
    assert shown["Cache-Control"] == "private, max-age=86400"
    assert shown["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert len(graph_calls(devcloud_settings, "GET", "/hostedContents/")) == before + 1
    again = people["alice"].client.get(url)  # another member: from the portal's cache
    assert again.status_code == 200 and again.content == PNG
    assert len(graph_calls(devcloud_settings, "GET", "/hostedContents/")) == before + 1


def test_only_images_a_message_shows_are_fetched(people: dict[str, Person], devcloud_settings: DevCloud) -> None:
    chat = a_chat()
    image = {"content_type": "image/gif", "data": base64.b64encode(GIF).decode()}
    message = sent(people["bob"], chat, "look", images=[image])
    other = alices_message(chat)
    for url in (
        message_url(chat, message["id"], "hosted/not-in-the-body/"),
        message_url(chat, other.graph_id, "hosted/x/"),
        message_url(chat, "999999", "hosted/x/"),
    ):
        refused = people["bob"].client.get(url)
        assert refused.status_code == 404 and refused.json()["error"] == "not_found", url
    assert not graph_calls(devcloud_settings, "GET", "/hostedContents/")


@pytest.mark.parametrize(
    ("images", "why"),
    [
        ([{"content_type": "image/png", "data": base64.b64encode(GIF).decode()}], "not a PNG"),
        ([{"content_type": "image/svg+xml", "data": base64.b64encode(b"<svg/>").decode()}], "type"),
        ([{"content_type": "image/png", "data": "!!not base64!!"}], "base64"),
        ([{"content_type": "image/png", "data": base64.b64encode(PNG).decode()}] * 5, "too many"),
        ([{"content_type": "image/gif", "data": base64.b64encode(GIF + bytes(3 * 1024 * 1024)).decode()}], "size"),
        ("image.png", "not a list"),
        ([{"content_type": "image/png"}], "no data"),
    ],
)
def test_bad_images_are_refused(people: dict[str, Person], devcloud_settings: DevCloud, images: Any, why: str) -> None:
    refused = send(people["bob"], a_chat(), "", images=images)
    assert refused.status_code == 400 and refused.json()["error"] == "bad_image", why
    assert not graph_calls(devcloud_settings, "POST", "/messages")


def test_a_body_too_large_to_be_a_message_is_refused(people: dict[str, Person]) -> None:
    chat = a_chat()
    huge = {"content": "x", "client_id": str(uuid.uuid4()), "padding": "y" * (18 * 1024 * 1024)}
    refused = send_json(people["bob"], "post", f"/api/chats/{chat.pk}/messages/", huge)
    assert refused.status_code == 413 and refused.json()["error"] == "too_big"


# edit, delete, restore -----------------------------------------------------------------------
def test_bob_edits_his_message_and_everyone_sees_it(
    people: dict[str, Person], devcloud_settings: DevCloud, alice_hears: Heard
) -> None:
    chat = a_chat()
    message = sent(people["bob"], chat, "first try")
    alice_hears.messages()
    edited = send_json(people["bob"], "patch", message_url(chat, message["id"]), {"content": "second <try>"})
    assert edited.status_code == 200, edited.content
    payload = edited.json()["message"]
    assert payload["html"] == "<p>second &lt;try&gt;</p>" and payload["edited"] and payload["can_edit"]
    assert in_teams(devcloud_settings, chat, message["id"])["body"]["content"] == "<p>second &lt;try&gt;</p>"
    row = Message.objects.get(chat=chat, graph_id=message["id"])
    assert row.body == "<p>second &lt;try&gt;</p>" and row.last_edited_at is not None
    heard = alice_hears.messages()
    assert [m["html"] for m in heard] == ["<p>second &lt;try&gt;</p>"] and not heard[0]["mine"]


def test_an_edit_keeps_the_mentions_whose_names_remain(people: dict[str, Person], devcloud_settings: DevCloud) -> None:
    chat = a_chat()
    alice = name_of(chat, ALICE)
    message = sent(people["bob"], chat, f"@{alice} hi", mentions=[{"id": ALICE, "name": alice}])
    edited = send_json(people["bob"], "patch", message_url(chat, message["id"]), {"content": f"@{alice} hello"})
    assert edited.json()["message"]["html"] == f'<p><span class="mention">{alice}</span> hello</p>'
    assert in_teams(devcloud_settings, chat, message["id"])["mentions"][0]["mentioned"]["user"]["id"] == ALICE


def test_an_edit_keeps_the_quote_and_the_images_which_the_text_does_not_hold(
    people: dict[str, Person], devcloud_settings: DevCloud
) -> None:
    chat = a_chat()
    quoted = alices_message(chat)
    image = {"content_type": "image/png", "data": base64.b64encode(PNG).decode()}
    message = sent(people["bob"], chat, "Look", reply_to=quoted.graph_id, images=[image])
    before = in_teams(devcloud_settings, chat, message["id"])["body"]["content"]
    edited = send_json(people["bob"], "patch", message_url(chat, message["id"]), {"content": "Look again"})
    assert edited.status_code == 200, edited.content
    payload = edited.json()["message"]
    assert payload["reply_to"]["id"] == quoted.graph_id and "Look again" in payload["html"]
    assert payload["html"].count("<img ") == 1
    after = in_teams(devcloud_settings, chat, message["id"])["body"]["content"]
    assert after.startswith(f'<attachment id="{quoted.graph_id}"></attachment><p>Look again</p>')
    assert before[before.index("<img") :] in after


def test_bob_deletes_and_restores_his_message(
    people: dict[str, Person], devcloud_settings: DevCloud, alice_hears: Heard
) -> None:
    chat = a_chat()
    message = sent(people["bob"], chat, "oops")
    deleted = people["bob"].client.delete(message_url(chat, message["id"]))
    assert deleted.status_code == 200, deleted.content
    payload = deleted.json()["message"]
    assert payload["deleted"] and payload["html"] == "" and payload["can_restore"] and not payload["can_edit"]
    assert in_teams(devcloud_settings, chat, message["id"])["deletedDateTime"]
    assert Message.objects.get(chat=chat, graph_id=message["id"]).deleted_at is not None
    assert graph_calls(devcloud_settings, "POST", f"/users/{BOB}/chats/")
    restored = send_json(people["bob"], "post", message_url(chat, message["id"], "restore/"))
    assert restored.status_code == 200, restored.content
    payload = restored.json()["message"]
    assert not payload["deleted"] and payload["html"] == "<p>oops</p>" and not payload["can_restore"]
    assert in_teams(devcloud_settings, chat, message["id"])["deletedDateTime"] is None
    assert Message.objects.get(chat=chat, graph_id=message["id"]).deleted_at is None
    heard = [m for m in alice_hears.messages() if m["id"] == message["id"]]
    assert [m["deleted"] for m in heard] == [False, True, False]
    assert not any(m["can_restore"] for m in heard)


def test_alices_message_is_hers_alone_to_change(people: dict[str, Person], devcloud_settings: DevCloud) -> None:
    chat = a_chat()
    hers = alices_message(chat)
    refusals = [
        send_json(people["bob"], "patch", message_url(chat, hers.graph_id), {"content": "mine now"}),
        people["bob"].client.delete(message_url(chat, hers.graph_id)),
        send_json(people["bob"], "post", message_url(chat, hers.graph_id, "restore/")),
    ]
    for refused in refusals:
        assert refused.status_code == 403 and refused.json()["error"] == "not_yours"
    assert not [r for r in devcloud_settings.requests(service="graph") if "/messages/" in r["path"]]
    assert Message.objects.get(pk=hers.pk).body == hers.body


@pytest.mark.parametrize(
    ("body", "error"),
    [({"content": " "}, "empty"), ({}, "empty"), ({"content": "x" * 4001}, "too_long"), ([1], "bad_json")],
)
def test_bad_edits_are_refused(people: dict[str, Person], body: Any, error: str) -> None:
    chat = a_chat()
    message = sent(people["bob"], chat, "original")
    refused = send_json(people["bob"], "patch", message_url(chat, message["id"]), body)
    assert refused.status_code == 400 and refused.json()["error"] == error


def test_an_unknown_message_is_404(people: dict[str, Person]) -> None:
    chat = a_chat()
    for url in (message_url(chat, "424242"), message_url(chat, "x" * 100)):
        refused = send_json(people["bob"], "patch", url, {"content": "x"})
        assert refused.status_code == 404 and refused.json()["error"] == "not_found"


def test_a_throttled_edit_says_when_to_try_again(people: dict[str, Person], devcloud_settings: DevCloud) -> None:
    chat = a_chat()
    message = sent(people["bob"], chat, "edit me later")
    storm = {"service": "graph", "path": "/v1.0/chats/", "method": "PATCH", "status": 429, "retry_after": 7, "count": 1}
    devcloud_settings.control("POST", "/faults", json=storm)
    refused = send_json(people["bob"], "patch", message_url(chat, message["id"]), {"content": "now"})
    assert refused.status_code == 429 and refused.json()["retry_after"] == 7 and refused["Retry-After"] == "7"
    assert Message.objects.get(chat=chat, graph_id=message["id"]).body == "<p>edit me later</p>"
    again = send_json(people["bob"], "patch", message_url(chat, message["id"]), {"content": "now"})
    assert again.status_code == 200


# reactions -----------------------------------------------------------------------------------
def test_bob_reacts_to_alices_message_and_takes_it_back(
    people: dict[str, Person], devcloud_settings: DevCloud, alice_hears: Heard
) -> None:
    chat = a_chat()
    hers = alices_message(chat)
    url = message_url(chat, hers.graph_id, "reactions/")
    liked = send_json(people["bob"], "post", url, {"reaction": "👍", "on": True})
    assert liked.status_code == 200, liked.content
    bob = name_of(chat, BOB)
    assert liked.json()["message"]["reactions"] == [{"type": "👍", "count": 1, "names": [bob], "mine": True}]
    assert in_teams(devcloud_settings, chat, hers.graph_id)["reactions"][0]["user"]["user"]["id"] == BOB
    assert Message.objects.get(pk=hers.pk).reactions[0]["reactionType"] == "👍"
    heard = alice_hears.messages()
    assert heard[-1]["reactions"] == [{"type": "👍", "count": 1, "names": [bob], "mine": False}]
    assert heard[-1]["mine"] and not heard[-1]["can_restore"]
    # alice's own page draws it the same from the mirror
    page = people["alice"].client.get(f"/api/chats/{chat.pk}/messages/").json()["messages"]
    assert next(m for m in page if m["id"] == hers.graph_id)["reactions"][0]["names"] == [bob]
    taken = send_json(people["bob"], "post", url, {"reaction": "👍", "on": False})
    assert taken.status_code == 200 and taken.json()["message"]["reactions"] == []
    assert not in_teams(devcloud_settings, chat, hers.graph_id)["reactions"]


@pytest.mark.parametrize(
    "body",
    [{"reaction": "💘", "on": True}, {"reaction": "like", "on": True}, {"reaction": "👍"}, {"reaction": "👍", "on": 1}],
)
def test_bad_reactions_are_refused(people: dict[str, Person], devcloud_settings: DevCloud, body: Any) -> None:
    chat = a_chat()
    refused = send_json(people["bob"], "post", message_url(chat, alices_message(chat).graph_id, "reactions/"), body)
    assert refused.status_code == 400 and refused.json()["error"] in ("bad_reaction", "bad_on")
    assert not graph_calls(devcloud_settings, "POST", "Reaction")


def test_a_thread_with_reactions_costs_the_same_queries_whatever_its_length(
    people: dict[str, Person], devcloud_settings: DevCloud
) -> None:
    chat = a_chat()
    reaction = {
        "reactionType": "👍",
        "createdDateTime": "2020-01-01T00:00:00Z",
        "user": {"user": {"id": ALICE, "displayName": None, "userIdentityType": "aadUser"}},
    }

    def rows(count: int, start: int) -> list[dict[str, Any]]:
        return [
            {
                "id": str(10**12 + start + n),
                "messageType": "message",
                "createdDateTime": f"2020-01-01T00:00:{n:02d}.000Z",
                "lastModifiedDateTime": f"2020-01-01T00:00:{n:02d}.000Z",
                "from": {"user": {"id": ALICE, "displayName": "Alice"}},
                "body": {"contentType": "html", "content": f"<p>{n}</p>"},
                "reactions": [reaction],
            }
            for n in range(count)
        ]

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert people["bob"].client.get(f"/api/chats/{chat.pk}/messages/").status_code == 200
        return len(captured)

    services.messages_upsert(chat=chat, items=rows(2, 0))
    few = queries()
    services.messages_upsert(chat=chat, items=rows(40, 100))
    assert queries() == few


# strangers -----------------------------------------------------------------------------------
def test_charlie_of_northwind_gets_404_for_every_message_url(people: dict[str, Person]) -> None:
    chat = a_chat()
    message = alices_message(chat)
    charlie = people["charlie"]
    answers = [
        send(charlie, chat, "hi"),
        send_json(charlie, "patch", message_url(chat, message.graph_id), {"content": "x"}),
        charlie.client.delete(message_url(chat, message.graph_id)),
        send_json(charlie, "post", message_url(chat, message.graph_id, "restore/")),
        send_json(charlie, "post", message_url(chat, message.graph_id, "reactions/"), {"reaction": "👍", "on": True}),
        charlie.client.get(message_url(chat, message.graph_id, "hosted/abc/")),
    ]
    for answer in answers:
        assert answer.status_code == 404 and answer.json()["error"] == "not_found"


def test_message_actions_need_the_csrf_token(people: dict[str, Person]) -> None:
    from django.test import Client

    chat = a_chat()
    client = Client(enforce_csrf_checks=True)
    client.cookies = people["bob"].client.cookies
    url = message_url(chat, alices_message(chat).graph_id, "reactions/")
    assert client.post(url, '{"reaction": "👍", "on": true}', content_type="application/json").status_code == 403


def test_the_page_config_names_the_message_endpoints(people: dict[str, Person]) -> None:
    chat = a_chat()
    config = people["bob"].client.get(f"/chats/{chat.pk}/").context["chat_config"]
    assert config["messageUrl"] == f"/api/chats/{chat.pk}/messages/__id__/"
    assert config["reactions"] == ["👍", "❤️", "😆", "😮", "😢", "😡"]
    assert config["me"] == BOB and config["maxImages"] == 4 and config["maxImageBytes"] == 3 * 1024 * 1024
    assert config["isGroup"] is True and config["topic"] == "Q3 launch"
    assert config["membersUrl"] == f"/api/chats/{chat.pk}/members/"


def test_hostile_html_typed_in_teams_reaches_the_page_harmless(
    people: dict[str, Person], devcloud_settings: DevCloud
) -> None:
    from chat.sync import chat_sync_member

    chat = a_chat()
    hostile = '<p><img src="x" onerror="alert(1)"><a href="javascript:alert(2)">click</a><script>alert(3)</script></p>'
    path = f"/chats/{quote(chat.graph_id, safe='')}/messages"
    posted = devcloud_settings.control("POST", path, json={"from": ALICE, "content": hostile})
    chat_sync_member(member=member(BOB), chat_ids=[chat.graph_id], only=True)
    page = people["bob"].client.get(f"/api/chats/{chat.pk}/messages/").json()["messages"]
    html = next(m for m in page if m["id"] == posted["id"])["html"]
    assert "onerror" not in html and "javascript" not in html and "<script" not in html and "<img" not in html
    assert '<span class="note">[image]</span>' in html
