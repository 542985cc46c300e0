"""Chat-level actions with devcloud through msgraph-sdk: read state shared with Teams, hiding,
renaming, adding and removing people, leaving; charlie of Northwind gets 404s."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from chat import selectors, services
from chat.models import Chat, ChatMember, Message
from chat.sync import chat_sync_member, member_token
from integrations import graph
from tenants.models import TenantUser
from tenants.scopes import DEFAULT_REQUESTED_SCOPES, MEMBER_MANAGEMENT_SCOPE
from tests.devcloud_server import CONTOSO_APP, FABRIKAM, USERS, DevCloud
from tests.portal_flow import Person

pytestmark = pytest.mark.django_db
BOB = USERS["bob"][1]
ALICE = USERS["alice"][1]
TOM = USERS["tom"][1]
CLOE = USERS["cloe"][1]
CHARLIE = USERS["charlie"][1]


def member(oid: str) -> TenantUser:
    return TenantUser.objects.select_related("tenant__vendor").get(oid=oid)


def a_chat(topic: str = "Q3 launch") -> Chat:
    return Chat.objects.get(tenant=member(BOB).tenant, topic=topic)


def one_on_one() -> Chat:
    chats = Chat.objects.filter(tenant=member(BOB).tenant, chat_type="oneOnOne", members__oid=BOB)
    return chats.filter(members__oid=ALICE).get()


def send(person: Person, method: str, url: str, body: Any = None) -> Any:
    if method == "GET":
        return person.client.get(url)
    call = getattr(person.client, method.lower())
    return call(url, json.dumps(body if body is not None else {}), content_type="application/json")


def entry(oid: str, chat: Chat) -> selectors.ChatEntry | None:
    return next((e for e in selectors.member_chats(member=member(oid))[0] if e.chat.pk == chat.pk), None)


def in_teams(oid: str, chat: Chat) -> dict[str, Any]:
    """The chat as Graph shows it to this user (through the SDK, as the portal reads it)."""
    found: dict[str, Any] = graph.run_with_session(member_token(member(oid)), lambda g: g.get_chat(chat.graph_id))
    return found


def teams_truth(devcloud: DevCloud, chat: Chat) -> Any:
    return devcloud.control("GET", f"/chats/{quote(chat.graph_id, safe='')}")


def teams_post(devcloud: DevCloud, chat: Chat, sender: str, text: str) -> None:
    devcloud.control("POST", f"/chats/{quote(chat.graph_id, safe='')}/messages", json={"from": sender, "content": text})


# read state -------------------------------------------------------------------------------------
def test_reading_a_chat_here_reads_it_in_teams(people: dict[str, Person], devcloud_settings: DevCloud) -> None:
    chat = a_chat()
    entry_before = entry(BOB, chat)
    assert entry_before is not None and entry_before.unread
    before = services.required_time(in_teams(BOB, chat)["viewpoint"]["lastMessageReadDateTime"])
    read = send(people["bob"], "POST", f"/api/chats/{chat.pk}/read/")
    assert read.status_code == 200 and read.json() == {"read": True, "in_teams": True}
    after = services.required_time(in_teams(BOB, chat)["viewpoint"]["lastMessageReadDateTime"])
    assert after > before and chat.last_message_at is not None and after >= chat.last_message_at
    # Teams' view, listed again, agrees.
    chat_sync_member(member=member(BOB))
    entry_after = entry(BOB, chat)
    assert entry_after is not None and not entry_after.unread


def test_a_read_teams_refuses_still_reads_the_chat_here(people: dict[str, Person], devcloud_settings: DevCloud) -> None:
    chat = a_chat()
    fault = {"service": "graph", "path": "/v1.0/chats/", "method": "POST", "status": 503, "count": 1}
    devcloud_settings.control("POST", "/faults", json=fault)
    read = send(people["bob"], "POST", f"/api/chats/{chat.pk}/read/")
    assert read.status_code == 200 and read.json() == {"read": True, "in_teams": False}
    entry_after = entry(BOB, chat)
    assert entry_after is not None and not entry_after.unread


def test_a_chat_read_in_teams_shows_read_after_a_sync(people: dict[str, Person], devcloud_settings: DevCloud) -> None:
    chat = a_chat()
    entry_before = entry(BOB, chat)
    assert entry_before is not None and entry_before.unread
    devcloud_settings.control("POST", f"/chats/{quote(chat.graph_id, safe='')}/read", json={"user": BOB})
    chat_sync_member(member=member(BOB))
    entry_after = entry(BOB, chat)
    assert entry_after is not None and not entry_after.unread


def test_marking_a_chat_unread_here_marks_it_unread_in_teams(
    people: dict[str, Person], devcloud_settings: DevCloud
) -> None:
    chat = a_chat()
    assert send(people["bob"], "POST", f"/api/chats/{chat.pk}/read/").status_code == 200
    unread = send(people["bob"], "POST", f"/api/chats/{chat.pk}/unread/")
    assert unread.status_code == 200 and unread.json() == {"unread": True}
    entry_now = entry(BOB, chat)
    assert entry_now is not None and entry_now.unread
    last = selectors.last_message_time(chat=chat)
    assert last is not None
    assert services.required_time(in_teams(BOB, chat)["viewpoint"]["lastMessageReadDateTime"]) < last
    # Listed again from Teams: still unread.
    chat_sync_member(member=member(BOB))
    entry_later = entry(BOB, chat)
    assert entry_later is not None and entry_later.unread


def test_system_events_do_not_make_a_chat_unread(people: dict[str, Person], devcloud_settings: DevCloud) -> None:
    chat = a_chat()
    assert send(people["bob"], "POST", f"/api/chats/{chat.pk}/read/").status_code == 200
    event = {
        "id": "2000000000001",
        "messageType": "systemEventMessage",
        "createdDateTime": "2099-01-01T00:00:00.000Z",
        "lastModifiedDateTime": "2099-01-01T00:00:00.000Z",
        "body": {"contentType": "html", "content": "<systemEventMessage/>"},
        "eventDetail": {"@odata.type": "#microsoft.graph.chatRenamedEventMessageDetail", "chatDisplayName": "x"},
    }
    services.messages_upsert(chat=chat, items=[event])
    found = entry(BOB, chat)
    assert found is not None and not found.unread


# hiding ------------------------------------------------------------------------------------------
def test_a_hidden_chat_leaves_the_list_until_a_new_message(
    people: dict[str, Person], devcloud_settings: DevCloud
) -> None:
    chat = a_chat()
    hidden = send(people["bob"], "POST", f"/api/chats/{chat.pk}/hide/", {"hidden": True})
    assert hidden.status_code == 200 and hidden.json() == {"hidden": True}
    assert entry(BOB, chat) is None
    assert in_teams(BOB, chat)["viewpoint"]["isHidden"] is True
    assert entry(ALICE, chat) is not None  # hidden for bob only
    # Listed again from Teams: still hidden; still reachable by its address.
    chat_sync_member(member=member(BOB))
    assert entry(BOB, chat) is None
    assert people["bob"].client.get(f"/chats/{chat.pk}/").status_code == 200
    # A new message brings it back, before Teams' next listing says so.
    teams_post(devcloud_settings, chat, ALICE, "<p>are you there?</p>")
    chat_sync_member(member=member(BOB), chat_ids=[chat.graph_id], only=True)
    back = entry(BOB, chat)
    assert back is not None and back.unread
    chat_sync_member(member=member(BOB))
    assert ChatMember.objects.get(chat=chat, oid=BOB).hidden is False


def test_a_hidden_chat_is_shown_again_on_request(people: dict[str, Person], devcloud_settings: DevCloud) -> None:
    chat = a_chat()
    assert send(people["bob"], "POST", f"/api/chats/{chat.pk}/hide/", {"hidden": True}).status_code == 200
    shown = send(people["bob"], "POST", f"/api/chats/{chat.pk}/hide/", {"hidden": False})
    assert shown.status_code == 200 and shown.json() == {"hidden": False}
    assert entry(BOB, chat) is not None
    assert in_teams(BOB, chat)["viewpoint"]["isHidden"] is False


@pytest.mark.parametrize("body", [{}, {"hidden": "yes"}, {"hidden": 1}, [True]])
def test_hiding_wants_true_or_false(people: dict[str, Person], body: Any) -> None:
    refused = send(people["bob"], "POST", f"/api/chats/{a_chat().pk}/hide/", body)
    assert refused.status_code == 400


def test_the_list_makes_the_same_queries_with_hidden_chats(
    people: dict[str, Person], devcloud_settings: DevCloud
) -> None:
    bob = people["bob"]

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert bob.client.get("/api/chats/").status_code == 200
        return len(captured)

    before = queries()
    assert send(bob, "POST", f"/api/chats/{a_chat().pk}/hide/", {"hidden": True}).status_code == 200
    assert send(bob, "POST", f"/api/chats/{a_chat('IT help desk').pk}/unread/").status_code == 200
    assert queries() == before


# renaming --------------------------------------------------------------------------------------
def test_bob_renames_a_group_chat_in_teams(
    people: dict[str, Person], devcloud_settings: DevCloud, django_capture_on_commit_callbacks: Any
) -> None:
    chat = a_chat()
    with django_capture_on_commit_callbacks() as queued:
        renamed = send(people["bob"], "PATCH", f"/api/chats/{chat.pk}/", {"topic": "  Q4 launch  "})
    assert renamed.status_code == 200, renamed.content
    assert renamed.json() == {"chat": {"id": chat.pk, "title": "Q4 launch"}}
    assert teams_truth(devcloud_settings, chat)["topic"] == "Q4 launch"
    chat.refresh_from_db()
    assert chat.topic == "Q4 launch"
    assert len(queued) == 1  # a sync of the chat brings Teams' "renamed" message
    chat_sync_member(member=member(BOB), chat_ids=[chat.graph_id], only=True)
    events = Message.objects.filter(chat=chat, message_type="systemEventMessage")
    assert any((m.event or {}).get("@odata.type", "").endswith("chatRenamedEventMessageDetail") for m in events)


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"topic": "x" * 251}, "bad_topic"),
        ({"topic": "  "}, "bad_topic"),
        ({"topic": 5}, "bad_topic"),
        ([1], "bad_json"),
    ],
)
def test_bad_names_are_refused(people: dict[str, Person], body: Any, error: str) -> None:
    refused = send(people["bob"], "PATCH", f"/api/chats/{a_chat().pk}/", body)
    assert refused.status_code == 400 and refused.json()["error"] == error


def test_a_one_on_one_cannot_be_renamed(people: dict[str, Person], devcloud_settings: DevCloud) -> None:
    refused = send(people["bob"], "PATCH", f"/api/chats/{one_on_one().pk}/", {"topic": "Us"})
    assert refused.status_code == 400 and refused.json()["error"] == "not_group"


# members -------------------------------------------------------------------------------------
def test_the_members_of_a_chat(people: dict[str, Person]) -> None:
    listed = people["bob"].client.get(f"/api/chats/{a_chat().pk}/members/")
    assert listed.status_code == 200
    members = listed.json()["members"]
    assert {m["id"] for m in members} >= {BOB, ALICE, TOM}
    assert [m["me"] for m in members if m["id"] == BOB] == [True]
    assert all(set(m) == {"id", "name", "email", "me"} for m in members)


def test_bob_adds_a_colleague_to_a_group_chat(
    people: dict[str, Person], devcloud_settings: DevCloud, django_capture_on_commit_callbacks: Any
) -> None:
    chat = a_chat()
    with django_capture_on_commit_callbacks() as queued:
        added = send(people["bob"], "POST", f"/api/chats/{chat.pk}/members/", {"id": CLOE})
    assert added.status_code == 201, added.content
    assert CLOE in {m["id"] for m in added.json()["members"]}
    assert CLOE in {m["userId"] for m in teams_truth(devcloud_settings, chat)["members"]}
    row = ChatMember.objects.get(chat=chat, oid=CLOE)
    assert row.membership_id
    assert len(queued) == 1
    again = send(people["bob"], "POST", f"/api/chats/{chat.pk}/members/", {"id": CLOE})
    assert again.status_code == 409 and again.json()["error"] == "already_member"


def test_nobody_of_another_organization_can_be_added(people: dict[str, Person], devcloud_settings: DevCloud) -> None:
    chat = a_chat()
    refused = send(people["bob"], "POST", f"/api/chats/{chat.pk}/members/", {"id": CHARLIE})
    assert refused.status_code == 400 and refused.json()["error"] == "unknown_person"
    assert CHARLIE not in {m["userId"] for m in teams_truth(devcloud_settings, chat)["members"]}
    for body in ({"id": "not-a-guid"}, {"id": 5}, {}):
        assert send(people["bob"], "POST", f"/api/chats/{chat.pk}/members/", body).status_code == 400


def test_nobody_is_added_to_a_one_on_one(people: dict[str, Person], devcloud_settings: DevCloud) -> None:
    refused = send(people["bob"], "POST", f"/api/chats/{one_on_one().pk}/members/", {"id": CLOE})
    assert refused.status_code == 400 and refused.json()["error"] == "not_group"


def test_bob_removes_someone_from_a_group_chat(people: dict[str, Person], devcloud_settings: DevCloud) -> None:
    chat = a_chat()
    removed = people["bob"].client.delete(f"/api/chats/{chat.pk}/members/{TOM}/")
    assert removed.status_code == 200, removed.content
    assert TOM not in {m["id"] for m in removed.json()["members"]}
    assert TOM not in {m["userId"] for m in teams_truth(devcloud_settings, chat)["members"]}
    assert not ChatMember.objects.filter(chat=chat, oid=TOM).exists()
    gone = people["bob"].client.delete(f"/api/chats/{chat.pk}/members/{TOM}/")
    assert gone.status_code == 404 and gone.json()["error"] == "not_member"
    # Teams' system message names him, though he is no longer in the chat (his other chats do).
    chat_sync_member(member=member(BOB), chat_ids=[chat.graph_id], only=True)
    events = [m["event"] for m in people["bob"].client.get(f"/api/chats/{chat.pk}/messages/").json()["messages"]]
    assert "Tom Teamsadmin was removed from the chat" in events


def test_leaving_a_chat_takes_it_from_the_leaver_only(
    people: dict[str, Person], devcloud_settings: DevCloud, django_capture_on_commit_callbacks: Any
) -> None:
    chat = a_chat()
    with django_capture_on_commit_callbacks() as queued:
        left = people["bob"].client.delete(f"/api/chats/{chat.pk}/members/{BOB}/")
    assert left.status_code == 200, left.content
    assert left.json() == {"left": True, "url": "/chats/"}
    assert BOB not in {m["userId"] for m in teams_truth(devcloud_settings, chat)["members"]}
    assert entry(BOB, chat) is None
    assert people["bob"].client.get(f"/chats/{chat.pk}/").status_code == 404
    assert entry(ALICE, chat) is not None
    assert len(queued) == 1  # alice's portal reads Teams' "left" message
    # Teams' next listing agrees.
    chat_sync_member(member=member(BOB))
    assert entry(BOB, chat) is None


def test_a_one_on_one_cannot_be_left(people: dict[str, Person], devcloud_settings: DevCloud) -> None:
    refused = people["bob"].client.delete(f"/api/chats/{one_on_one().pk}/members/{BOB}/")
    assert refused.status_code == 400 and refused.json()["error"] == "not_group"


def test_a_throttled_action_says_when_to_try_again(people: dict[str, Person], devcloud_settings: DevCloud) -> None:
    chat = a_chat()
    storm = {"service": "graph", "path": "/v1.0/chats/", "method": "PATCH", "status": 429, "retry_after": 7, "count": 1}
    devcloud_settings.control("POST", "/faults", json=storm)
    refused = send(people["bob"], "PATCH", f"/api/chats/{chat.pk}/", {"topic": "Later"})
    assert refused.status_code == 429 and refused.json()["error"] == "graph_throttled"
    assert int(refused["Retry-After"]) >= 7
    assert a_chat().topic == "Q3 launch"


def test_the_admin_who_connected_removes_people_with_the_token_of_her_first_sign_in(
    people: dict[str, Person], devcloud_settings: DevCloud
) -> None:
    # Alice signed in before she granted the consent: her cached Graph token predates the grant.
    chat = a_chat()
    removed = people["alice"].client.delete(f"/api/chats/{chat.pk}/members/{TOM}/")
    assert removed.status_code == 200, removed.content
    assert TOM not in {m["userId"] for m in teams_truth(devcloud_settings, chat)["members"]}


def test_removing_without_the_permission_says_what_is_missing(
    people: dict[str, Person], devcloud_settings: DevCloud
) -> None:
    # Fabrikam consented before the portal asked for ChatMember.ReadWrite: everything else is granted.
    devcloud_settings.control(
        "POST", f"/tenants/{FABRIKAM}/apps/{CONTOSO_APP}/revoke-consent", json={"remove_app": False}
    )
    earlier = [s for s in DEFAULT_REQUESTED_SCOPES if s != MEMBER_MANAGEMENT_SCOPE]
    devcloud_settings.grant_consent(FABRIKAM, scopes=earlier)
    people["bob"].sign_in()  # his tokens now carry what is granted
    chat = a_chat()
    sent = send(people["bob"], "PATCH", f"/api/chats/{chat.pk}/", {"topic": "Still allowed"})
    assert sent.status_code == 200, sent.content  # the rest works as before
    refused = people["bob"].client.delete(f"/api/chats/{chat.pk}/members/{TOM}/")
    assert refused.status_code == 403 and refused.json()["error"] == "permission_missing"
    assert "ChatMember.ReadWrite" in refused.json()["message"]
    assert ChatMember.objects.filter(chat=chat, oid=TOM).exists()


# who may ------------------------------------------------------------------------------------
def new_urls(chat: Chat) -> list[tuple[str, str, Any]]:
    return [
        ("PATCH", f"/api/chats/{chat.pk}/", {"topic": "Mine now"}),
        ("GET", f"/api/chats/{chat.pk}/members/", None),
        ("POST", f"/api/chats/{chat.pk}/members/", {"id": CHARLIE}),
        ("DELETE", f"/api/chats/{chat.pk}/members/{BOB}/", None),
        ("POST", f"/api/chats/{chat.pk}/unread/", None),
        ("POST", f"/api/chats/{chat.pk}/hide/", {"hidden": True}),
        ("POST", f"/api/chats/{chat.pk}/read/", None),
    ]


def test_charlie_of_northwind_gets_404_for_every_chat_action(
    people: dict[str, Person], devcloud_settings: DevCloud
) -> None:
    chat = a_chat()
    for method, url, body in new_urls(chat):
        refused = send(people["charlie"], method, url, body)
        assert refused.status_code == 404, (method, url)
        assert refused.json()["error"] == "not_found"
    truth = teams_truth(devcloud_settings, chat)
    assert truth["topic"] == "Q3 launch" and BOB in {m["userId"] for m in truth["members"]}


def test_chat_actions_need_the_csrf_token(people: dict[str, Person], devcloud_settings: DevCloud) -> None:
    client = Client(enforce_csrf_checks=True)
    client.cookies = people["bob"].client.cookies
    for method, url, body in new_urls(a_chat()):
        if method == "GET":
            continue
        call = getattr(client, method.lower())
        refused = call(url, json.dumps(body or {}), content_type="application/json")
        assert refused.status_code == 403, (method, url)
    assert a_chat().topic == "Q3 launch"


def test_only_the_methods_of_each_url(people: dict[str, Person]) -> None:
    chat = a_chat()
    assert people["bob"].client.get(f"/api/chats/{chat.pk}/").status_code == 405
    assert people["bob"].client.get(f"/api/chats/{chat.pk}/hide/").status_code == 405
    assert people["bob"].client.post(f"/api/chats/{chat.pk}/members/{TOM}/").status_code == 405
