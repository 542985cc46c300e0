"""The control API acting as Teams users (quoted replies, mentions, images, reactions, restore, read
state, hiding, renaming, removing members), its notifications, and the journal keeping it all."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tests.devcloud.graph_sdk import as_user, run
from tests.devcloud.test_graph_chat_parity import ALICE, BOB, PNG, ab, dump, message_in, q3, raw, say
from tests.devcloud.test_graph_subscriptions import Webhook, only, subscribe, subscription, webhook  # noqa: F401
from tests.devcloud_server import USERS, DevCloud

IMAGE = {"contentType": "image/png", "contentBytes": base64.b64encode(PNG).decode()}


def chat_path(chat_id: str) -> str:
    return f"/chats/{quote(chat_id, safe='')}"


def post(devcloud: DevCloud, chat_id: str, body: dict[str, Any]) -> dict[str, Any]:
    return dict(devcloud.control("POST", chat_path(chat_id) + "/messages", json=body))


def refused(devcloud: DevCloud, method: str, path: str, body: Any = None) -> int:
    response = devcloud.http.request(method, f"{devcloud.base_url}/_devcloud{path}", json=body, timeout=10)
    assert response.json()["error"], response.text
    return response.status_code


def test_a_teams_user_quotes_mentions_and_pastes_images(devcloud: DevCloud) -> None:
    chat_id = q3(devcloud)
    quoted = say(devcloud, chat_id, "alice", "Numbers?")
    body = {
        "from": BOB,
        "content": '<p><at id="0">Alice</at> see <at id="1">Tom</at></p>',
        "replyTo": quoted,
        "mentions": [USERS["alice"][0], USERS["tom"][1]],
        "images": [IMAGE],
    }
    sent = post(devcloud, chat_id, body)
    content = sent["body"]["content"]
    assert content.startswith(f'<attachment id="{quoted}"></attachment><p><at id="0">Alice</at>')
    (hosted_id,) = sent["hostedContentIds"]
    url = f"{devcloud.base_url}/v1.0/chats/{chat_id}/messages/{sent['id']}/hostedContents/{hosted_id}/$value"
    assert f'<img src="{url}"' in content
    assert json.loads(sent["attachments"][0]["content"])["messageId"] == quoted
    assert [(m["id"], m["mentionText"], m["mentioned"]["user"]["id"]) for m in sent["mentions"]] == [
        (0, "Alice", ALICE),
        (1, "Tom", USERS["tom"][1]),
    ]
    image = raw(devcloud, "bob", "GET", url.removeprefix(f"{devcloud.base_url}/v1.0"))
    assert image.content == PNG and image.headers["content-type"] == "image/png"
    only_image = post(devcloud, chat_id, {"from": BOB, "content": "", "images": [IMAGE, IMAGE]})
    assert len(only_image["hostedContentIds"]) == 2


def test_reactions_restore_read_state_and_hiding_as_in_teams(devcloud: DevCloud) -> None:
    chat_id = ab(devcloud)
    target = say(devcloud, chat_id, "alice", "ship it")
    path = f"{chat_path(chat_id)}/messages/{target}"
    devcloud.control("POST", path + "/reactions", json={"user": USERS["bob"][0], "reactionType": "😆"})
    reacted = devcloud.control("POST", path + "/reactions", json={"user": ALICE, "reactionType": "😆"})
    assert [r["user"]["user"]["id"] for r in reacted["reactions"]] == [BOB, ALICE]
    unreacted = devcloud.control("POST", path + "/reactions", json={"user": ALICE, "reactionType": "😆", "on": False})
    assert [h["actions"] for h in unreacted["messageHistory"]] == ["reactionAdded"] * 2 + ["reactionRemoved"]
    devcloud.control("DELETE", path)
    assert devcloud.control("POST", path + "/restore")["deletedDateTime"] is None
    unread = devcloud.control("POST", chat_path(chat_id) + "/unread", json={"user": BOB})["viewpoint"]
    assert unread["lastMessageReadDateTime"] < message_in(devcloud, chat_id, target)["createdDateTime"]
    read = devcloud.control("POST", chat_path(chat_id) + "/read", json={"user": BOB})["viewpoint"]
    assert read["lastMessageReadDateTime"] >= message_in(devcloud, chat_id, target)["createdDateTime"]
    hidden = devcloud.control("POST", chat_path(chat_id) + "/hide", json={"user": BOB, "hidden": True})
    assert hidden["viewpoint"]["isHidden"] is True
    state = dump(devcloud, chat_id)
    assert state["hidden"] == [BOB] and state["viewpoints"][BOB]["isHidden"] is True
    assert state["viewpoints"][ALICE]["isHidden"] is False
    devcloud.control("POST", chat_path(chat_id) + "/hide", json={"user": BOB, "hidden": False})
    assert dump(devcloud, chat_id)["hidden"] == []


def test_renaming_and_removing_members_as_in_teams(devcloud: DevCloud) -> None:
    chat_id = q3(devcloud)
    renamed = devcloud.control("PATCH", chat_path(chat_id), json={"topic": "Q3 wrap-up", "by": BOB})
    assert renamed["topic"] == "Q3 wrap-up"
    tom = USERS["tom"][1]
    devcloud.control("DELETE", f"{chat_path(chat_id)}/members/{tom}", params={"by": BOB})
    devcloud.control("DELETE", f"{chat_path(chat_id)}/members/{ALICE}", params={"by": ALICE})
    state = dump(devcloud, chat_id)
    assert tom not in {m["userId"] for m in state["members"]} and ALICE not in {m["userId"] for m in state["members"]}
    kinds = [m["eventDetail"]["@odata.type"].split(".")[-1] for m in state["messages"][-3:]]
    assert kinds == [
        "chatRenamedEventMessageDetail",
        "membersDeletedEventMessageDetail",
        "membersLeftEventMessageDetail",
    ]
    assert state["messages"][-3]["eventDetail"]["chatDisplayName"] == "Q3 wrap-up"
    assert state["messages"][-2]["eventDetail"]["initiator"]["user"]["id"] == BOB


def test_the_control_api_refuses_what_teams_would_not_do(devcloud: DevCloud) -> None:
    chat_id, group = ab(devcloud), q3(devcloud)
    target = say(devcloud, chat_id, "alice", "hi")
    messages = chat_path(chat_id) + "/messages"
    assert refused(devcloud, "POST", messages, {"from": BOB, "content": "<p>x</p>", "replyTo": "404"}) == 400
    assert refused(devcloud, "POST", messages, {"from": BOB, "content": "<p>no tag</p>", "mentions": [ALICE]}) == 400
    bad_image = {"from": BOB, "content": "x", "images": [{"contentType": "text/html", "contentBytes": "eA=="}]}
    assert refused(devcloud, "POST", messages, bad_image) == 400
    reaction = {"user": BOB, "reactionType": "like"}
    assert refused(devcloud, "POST", f"{messages}/{target}/reactions", reaction) == 400
    stranger = {"user": USERS["charlie"][1], "reactionType": "👍"}
    assert refused(devcloud, "POST", f"{messages}/{target}/reactions", stranger) == 400
    assert refused(devcloud, "POST", f"{messages}/{target}/restore") == 400
    assert refused(devcloud, "PATCH", chat_path(chat_id), {"topic": "Pair"}) == 400
    assert refused(devcloud, "PATCH", chat_path(group), {"topic": "x" * 251}) == 400
    assert refused(devcloud, "DELETE", f"{chat_path(chat_id)}/members/{ALICE}") == 400
    assert refused(devcloud, "DELETE", f"{chat_path(group)}/members/{USERS['april'][1]}") == 400
    assert refused(devcloud, "POST", chat_path(chat_id) + "/hide", {"user": USERS["april"][1]}) == 400
    assert refused(devcloud, "POST", "/chats/nope/read", {"user": BOB}) == 404


def test_changes_made_in_teams_notify_like_any_other(devcloud: DevCloud, webhook: Webhook) -> None:  # noqa: F811
    chat_id = q3(devcloud)
    target = say(devcloud, chat_id, "alice", "vote")
    run(subscribe(as_user(devcloud, "bob"), subscription(webhook, chat_id)))
    path = f"{chat_path(chat_id)}/messages/{target}"
    devcloud.control("POST", path + "/reactions", json={"user": BOB, "reactionType": "👍"})
    devcloud.control("DELETE", path)
    devcloud.control("POST", path + "/restore")
    devcloud.control("PATCH", chat_path(chat_id), json={"topic": "Vote", "by": ALICE})
    devcloud.control("DELETE", f"{chat_path(chat_id)}/members/{USERS['tom'][1]}", params={"by": ALICE})
    got = [only(n) for n in webhook.wait_for(5)]
    assert [n["changeType"] for n in got] == ["updated", "deleted", "updated", "created", "created"]
    # Read state and hiding change no message.
    devcloud.control("POST", chat_path(chat_id) + "/read", json={"user": BOB})
    devcloud.control("POST", chat_path(chat_id) + "/hide", json={"user": BOB})
    assert len(webhook.accepted()) == 5


def test_a_restarted_devcloud_keeps_reactions_edits_hiding_images_and_members(tmp_path: Path) -> None:
    from tests.devcloud_server import DevCloud as Server

    server = Server.start(tmp_path)
    try:
        before = _changes(server)
        kept = json.dumps(before).replace(server.base_url, "")
    finally:
        server.stop()
    server = Server.start(tmp_path)
    try:
        after = dump(server, before["id"])
        assert json.dumps(after).replace(server.base_url, "") == kept
        hosted_id = after["messages"][-1]["hostedContentIds"][0]
        image = raw(server, "bob", "GET", f"/chats/{after['id']}/messages/{after['messages'][-1]['id']}/hostedContents")
        assert image.json()["value"][0]["id"] == hosted_id
    finally:
        server.stop()


def _changes(server: DevCloud) -> dict[str, Any]:
    """Every kind of change to the Q3 chat, then the chat as the control API shows it."""
    chat_id = q3(server)
    target = say(server, chat_id, "alice", "before restart")
    path = f"{chat_path(chat_id)}/messages/{target}"
    server.control("POST", path + "/reactions", json={"user": BOB, "reactionType": "❤️"})
    server.control("PATCH", path, json={"content": "<p>edited</p>"})
    server.control("POST", chat_path(chat_id) + "/hide", json={"user": BOB})
    server.control("POST", chat_path(chat_id) + "/unread", json={"user": ALICE})
    server.control("PATCH", chat_path(chat_id), json={"topic": "Kept", "by": BOB})
    server.control("DELETE", f"{chat_path(chat_id)}/members/{USERS['tom'][1]}", params={"by": BOB})
    doomed = say(server, chat_id, "bob", "gone")
    server.control("DELETE", f"{chat_path(chat_id)}/messages/{doomed}")
    quoted = post(server, chat_id, {"from": ALICE, "content": "<p>look</p>", "replyTo": target, "images": [IMAGE]})
    server.control("POST", chat_path(chat_id) + "/hide", json={"user": BOB})
    assert quoted["hostedContentIds"]
    return dump(server, chat_id)
