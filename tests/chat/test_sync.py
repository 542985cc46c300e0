"""The chat sync against devcloud: the first sync mirrors Graph exactly, changes converge."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from chat import services
from chat.models import Chat, ChatMember, ChatSyncState, Message
from chat.sync import chat_sync_member
from tenants.models import TenantUser
from tests.devcloud_server import FABRIKAM, USERS, DevCloud
from tests.portal_flow import Person, load_vendors

# The sync's writes have a PostgreSQL branch and a generic one (SQLite, in development): both run.
pytestmark = [pytest.mark.django_db, pytest.mark.both_databases]
BOB = USERS["bob"][1]


@pytest.fixture
def bob(devcloud_settings: DevCloud) -> TenantUser:
    load_vendors(devcloud_settings)
    Person(devcloud_settings, USERS["alice"][0]).connect()
    response: Any = Person(devcloud_settings, USERS["bob"][0]).sign_in()
    assert response.status_code == 302
    return TenantUser.objects.select_related("tenant__vendor").get(oid=BOB)


def graph_truth(devcloud: DevCloud, user: str) -> dict[str, dict[str, Any]]:
    """Every chat of the user in devcloud, with members and messages (Graph's shapes)."""
    chats = devcloud.control("GET", "/chats", params={"user": user})["chats"]
    return {c["id"]: devcloud.control("GET", f"/chats/{quote(c['id'], safe='')}") for c in chats}


def mirror(member: TenantUser) -> dict[str, dict[str, Any]]:
    chats = Chat.objects.filter(tenant=member.tenant, members__oid=member.oid)
    return {
        chat.graph_id: {
            "members": sorted(str(m.oid) for m in ChatMember.objects.filter(tenant=member.tenant, chat=chat)),
            "messages": {
                m.graph_id: (m.body, services.graph_time(m.last_modified_at), m.deleted_at is not None, m.message_type)
                for m in Message.objects.filter(tenant=member.tenant, chat=chat)
            },
            "topic": chat.topic,
        }
        for chat in chats
    }


def expected(truth: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        chat_id: {
            "members": sorted(m["userId"] for m in chat["members"]),
            "messages": {
                m["id"]: (
                    m["body"]["content"],
                    m["lastModifiedDateTime"],
                    m["deletedDateTime"] is not None,
                    m["messageType"],
                )
                for m in chat["messages"]
            },
            "topic": chat["topic"] or "",
        }
        for chat_id, chat in truth.items()
    }


def test_the_first_sync_mirrors_graph_exactly(bob: TenantUser, devcloud_settings: DevCloud) -> None:
    body = {"users": 4, "chats": 3, "messages": 120, "seed": 5, "include": [BOB]}
    devcloud_settings.control("POST", f"/tenants/{FABRIKAM}/chats/generate", json=body)
    state = chat_sync_member(member=bob)
    assert mirror(bob) == expected(graph_truth(devcloud_settings, BOB))
    assert (state.status, state.chats_total, state.chats_done) == (ChatSyncState.Status.IDLE, 7, 7)
    assert Message.objects.filter(tenant=bob.tenant).count() == sum(
        len(c["messages"]) for c in graph_truth(devcloud_settings, BOB).values()
    )
    assert all(c.watermark is not None for c in Chat.objects.filter(tenant=bob.tenant))


def test_edits_deletions_and_new_messages_converge(bob: TenantUser, devcloud_settings: DevCloud) -> None:
    chat_sync_member(member=bob)
    chat_id = next(iter(graph_truth(devcloud_settings, BOB)))
    path = f"/chats/{quote(chat_id, safe='')}/messages"
    messages = devcloud_settings.control("GET", f"/chats/{quote(chat_id, safe='')}")["messages"]
    users = [m for m in messages if m["from"]]
    devcloud_settings.control("PATCH", f"{path}/{users[0]['id']}", json={"content": "<p>edited in Teams</p>"})
    devcloud_settings.control("DELETE", f"{path}/{users[1]['id']}")
    devcloud_settings.control("POST", path, json={"from": BOB, "content": "<p>new</p>"})
    chat_sync_member(member=bob, full=True)
    assert mirror(bob) == expected(graph_truth(devcloud_settings, BOB))
    assert Message.objects.get(tenant=bob.tenant, graph_id=users[1]["id"]).deleted_at is not None


def test_a_message_restored_in_teams_is_restored_in_the_mirror(bob: TenantUser, devcloud_settings: DevCloud) -> None:
    chat_sync_member(member=bob)
    chat_id = next(iter(graph_truth(devcloud_settings, BOB)))
    path = f"/chats/{quote(chat_id, safe='')}/messages"
    messages = devcloud_settings.control("GET", f"/chats/{quote(chat_id, safe='')}")["messages"]
    message_id = next(m["id"] for m in messages if m["from"] and not m.get("deletedDateTime"))
    devcloud_settings.control("DELETE", f"{path}/{message_id}")
    chat_sync_member(member=bob, full=True)
    assert Message.objects.get(tenant=bob.tenant, graph_id=message_id).deleted_at is not None
    devcloud_settings.control("POST", f"{path}/{message_id}/restore")
    chat_sync_member(member=bob, full=True)
    assert Message.objects.get(tenant=bob.tenant, graph_id=message_id).deleted_at is None
    assert mirror(bob) == expected(graph_truth(devcloud_settings, BOB))


def test_a_second_sync_without_changes_reads_no_messages(bob: TenantUser, devcloud_settings: DevCloud) -> None:
    chat_sync_member(member=bob)
    devcloud_settings.control("DELETE", "/requests")
    chat_sync_member(member=bob)
    endpoints = [e["endpoint"] for e in devcloud_settings.requests(service="graph")]
    assert endpoints == ["graph.list_chats"]
    rows = Message.objects.filter(tenant=bob.tenant).count()
    chat_sync_member(member=bob, full=True)
    assert Message.objects.filter(tenant=bob.tenant).count() == rows


def test_an_older_copy_never_overwrites_a_newer_one(bob: TenantUser, devcloud_settings: DevCloud) -> None:
    chat_sync_member(member=bob)
    chat = Chat.objects.filter(tenant=bob.tenant).first()
    assert chat is not None
    newest = Message.objects.filter(chat=chat, message_type="message").order_by("-created_at").first()
    assert newest is not None
    edited = {
        "id": newest.graph_id,
        "messageType": "message",
        "createdDateTime": services.graph_time(newest.created_at),
        "lastModifiedDateTime": "2099-01-01T00:00:00.000Z",
        "deletedDateTime": "2099-01-01T00:00:00.000Z",
        "body": {"contentType": "html", "content": ""},
        "from": None,
    }
    stale = {
        **edited,
        "lastModifiedDateTime": services.graph_time(newest.last_modified_at),
        "deletedDateTime": None,
        "body": {"contentType": "html", "content": "<p>stale</p>"},
    }
    services.messages_upsert(chat=chat, items=[edited])
    services.messages_upsert(chat=chat, items=[stale])
    newest.refresh_from_db()
    assert newest.deleted_at is not None and newest.body == ""
    assert Message.objects.filter(chat=chat, graph_id=newest.graph_id).count() == 1


def test_a_429_storm_is_ridden_out_without_a_request_before_retry_after(
    bob: TenantUser, devcloud_settings: DevCloud
) -> None:
    storm = {"service": "graph", "path": "/v1.0/chats/", "status": 429, "retry_after": 1, "count": 6}
    devcloud_settings.control("POST", "/faults", json=storm)
    devcloud_settings.control("DELETE", "/requests")
    state = chat_sync_member(member=bob)
    assert state.status == ChatSyncState.Status.IDLE
    assert mirror(bob) == expected(graph_truth(devcloud_settings, BOB))
    log = [e for e in devcloud_settings.requests(service="graph") if "/messages" in e["path"]]
    throttled = [e for e in log if e["status"] == 429]
    assert len(throttled) == 6
    for refusal in throttled:
        chat = refusal["path"].split("/messages")[0]
        later = [e for e in log if e["path"].startswith(chat) and e["time"] > refusal["time"]]
        assert later and min(e["time"] for e in later) - refusal["time"] >= 1.0


def test_a_429_without_retry_after_backs_off_with_jitter(bob: TenantUser, devcloud_settings: DevCloud) -> None:
    storm = {"service": "graph", "path": "/v1.0/chats/", "status": 429, "count": 4}
    devcloud_settings.control("POST", "/faults", json=storm)
    state = chat_sync_member(member=bob)
    assert state.status == ChatSyncState.Status.IDLE
    assert mirror(bob) == expected(graph_truth(devcloud_settings, BOB))


def test_every_member_of_a_chat_of_more_than_25_is_mirrored(bob: TenantUser, devcloud_settings: DevCloud) -> None:
    users = devcloud_settings.control("POST", f"/tenants/{FABRIKAM}/users", json={"count": 30, "prefix": "crowd"})
    crowd = [u["id"] for u in users["users"]]
    chat = devcloud_settings.control(
        "POST", "/chats", json={"chatType": "group", "topic": "All hands", "members": crowd[:2], "creator": BOB}
    )
    for user in users["users"][2:]:
        devcloud_settings.control("POST", f"/chats/{quote(chat['id'], safe='')}/members", json={"user": user["id"]})
    chat_sync_member(member=bob)
    mirrored = ChatMember.objects.filter(tenant=bob.tenant, chat__graph_id=chat["id"])
    assert mirrored.count() == 31  # bob and the 30; `$expand=members` would have given 25
    assert set(mirrored.values_list("display_name", flat=True)) >= {u["display_name"] for u in users["users"]}
    endpoints = [e["endpoint"] for e in devcloud_settings.requests(service="graph")]
    assert "graph.list_members" in endpoints


def test_a_notified_chat_is_synced_while_the_members_own_sync_runs(
    bob: TenantUser, devcloud_settings: DevCloud
) -> None:
    from core import coordination

    chat_sync_member(member=bob)
    chat = Chat.objects.filter(tenant=bob.tenant, topic="Q3 launch").get()
    devcloud_settings.control(
        "POST", f"/chats/{quote(chat.graph_id, safe='')}/messages", json={"from": BOB, "content": "<p>now</p>"}
    )
    with coordination.held(f"chat-sync:{bob.pk}", timeout=30, wait=0):  # a long sync of bob's
        chat_sync_member(member=bob, chat_ids=[chat.graph_id], only=True)
    assert Message.objects.filter(tenant=bob.tenant, chat=chat, body="<p>now</p>").exists()


def test_a_notified_change_of_members_or_topic_reaches_the_mirror_with_its_event(
    bob: TenantUser, devcloud_settings: DevCloud
) -> None:
    """A targeted sync reads no chat list: a system event says members came or went, or the chat
    was renamed, and the chat is read again with its members."""
    chat_sync_member(member=bob)
    chat = Chat.objects.get(tenant=bob.tenant, topic="Q3 launch")
    path = f"/chats/{quote(chat.graph_id, safe='')}"
    april, tom = USERS["april"][1], USERS["tom"][1]
    devcloud_settings.control("POST", f"{path}/members", json={"user": april, "by": USERS["alice"][1]})
    devcloud_settings.control("DELETE", f"{path}/members/{tom}")
    devcloud_settings.control("PATCH", path, json={"topic": "Q3 launch (final)", "by": BOB})
    devcloud_settings.control("DELETE", "/requests")
    chat_sync_member(member=bob, chat_ids=[chat.graph_id], only=True)
    chat.refresh_from_db()
    members = set(ChatMember.objects.filter(tenant=bob.tenant, chat=chat).values_list("oid", flat=True))
    assert {str(oid) for oid in members} == {
        m["userId"] for m in graph_truth(devcloud_settings, BOB)[chat.graph_id]["members"]
    }
    assert april in {str(oid) for oid in members} and tom not in {str(oid) for oid in members}
    assert chat.topic == "Q3 launch (final)"
    endpoints = [e["endpoint"] for e in devcloud_settings.requests(service="graph")]
    assert endpoints.count("graph.get_chat") == 1 and "graph.list_chats" not in endpoints
    # A message alone asks nothing more.
    devcloud_settings.control("POST", f"{path}/messages", json={"from": BOB, "content": "<p>hello</p>"})
    devcloud_settings.control("DELETE", "/requests")
    chat_sync_member(member=bob, chat_ids=[chat.graph_id], only=True)
    assert "graph.get_chat" not in [e["endpoint"] for e in devcloud_settings.requests(service="graph")]
