"""devcloud's Graph for the portal's chat features, through msgraph-sdk: quoted replies, mentions,
inline images, edits, soft delete and undo, reactions, read state, hiding, renaming, members;
each with its scope, membership and input checks, and the change notifications it raises."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from msgraph.generated.chats.item.hide_for_user.hide_for_user_post_request_body import HideForUserPostRequestBody
from msgraph.generated.chats.item.mark_chat_read_for_user.mark_chat_read_for_user_post_request_body import (
    MarkChatReadForUserPostRequestBody,
)
from msgraph.generated.chats.item.mark_chat_unread_for_user.mark_chat_unread_for_user_post_request_body import (
    MarkChatUnreadForUserPostRequestBody,
)
from msgraph.generated.chats.item.messages.item.set_reaction.set_reaction_post_request_body import (
    SetReactionPostRequestBody,
)
from msgraph.generated.chats.item.messages.item.unset_reaction.unset_reaction_post_request_body import (
    UnsetReactionPostRequestBody,
)
from msgraph.generated.chats.item.messages.reply_with_quote.reply_with_quote_post_request_body import (
    ReplyWithQuotePostRequestBody,
)
from msgraph.generated.chats.item.unhide_for_user.unhide_for_user_post_request_body import UnhideForUserPostRequestBody
from msgraph.generated.models.aad_user_conversation_member import AadUserConversationMember
from msgraph.generated.models.body_type import BodyType
from msgraph.generated.models.chat import Chat
from msgraph.generated.models.chat_message import ChatMessage
from msgraph.generated.models.chat_message_hosted_content import ChatMessageHostedContent
from msgraph.generated.models.chat_message_mention import ChatMessageMention
from msgraph.generated.models.chat_message_mentioned_identity_set import ChatMessageMentionedIdentitySet
from msgraph.generated.models.identity import Identity
from msgraph.generated.models.item_body import ItemBody
from msgraph.generated.models.teamwork_user_identity import TeamworkUserIdentity

from tests.devcloud.graph_sdk import CHAT_SCOPES, as_user, odata_error, refused, run
from tests.devcloud.test_acs_identity import mint
from tests.devcloud.test_graph_subscriptions import Webhook, only, subscribe, subscription, webhook  # noqa: F401
from tests.devcloud_server import FABRIKAM, NORTHWIND, USERS, DevCloud

ALICE, BOB, APRIL = USERS["alice"][1], USERS["bob"][1], USERS["april"][1]
NO_LIMITS = {
    "graph_chat_messages_per_tenant_rps": 0,
    "graph_chat_messages_per_app_rps": 0,
    "graph_chat_messages_per_chat_rps": 0,
}
GRAPH = "https://graph.microsoft.com/"
SEND_ONLY = [GRAPH + "ChatMessage.Send"]
READ_WRITE_ONLY = [GRAPH + "Chat.ReadWrite"]
READ_ONLY = [GRAPH + "Chat.Read"]
MEMBERS = [GRAPH + "ChatMember.ReadWrite"]
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
INCLUDE_UNKNOWN = {"Prefer": "include-unknown-enum-members"}


@pytest.fixture(autouse=True)
def _no_limits(devcloud: DevCloud) -> None:
    devcloud.control("PUT", "/settings", json=NO_LIMITS)


def chat_with(devcloud: DevCloud, *members: str, topic: str | None = None) -> str:
    """The seed's chat of exactly these users (or the group chat of that topic)."""
    chats = devcloud.control("GET", "/chats", params={"user": USERS[members[0]][1]})["chats"]
    ids = {USERS[m][1] for m in members}
    if topic:
        return str(next(c["id"] for c in chats if c["topic"] == topic))
    return str(next(c["id"] for c in chats if set(c["members"]) == ids))


def ab(devcloud: DevCloud) -> str:
    return chat_with(devcloud, "alice", "bob")


def q3(devcloud: DevCloud) -> str:
    return chat_with(devcloud, "bob", topic="Q3 launch")


def northwind_chat(devcloud: DevCloud) -> str:
    return str(devcloud.control("GET", "/chats", params={"tenant": NORTHWIND})["chats"][0]["id"])


def say(devcloud: DevCloud, chat_id: str, who: str, text: str) -> str:
    body = {"from": USERS[who][1], "content": f"<p>{text}</p>"}
    return str(devcloud.control("POST", f"/chats/{quote(chat_id, safe='')}/messages", json=body)["id"])


def dump(devcloud: DevCloud, chat_id: str) -> dict[str, Any]:
    return dict(devcloud.control("GET", f"/chats/{quote(chat_id, safe='')}"))


def message_in(devcloud: DevCloud, chat_id: str, message_id: str) -> dict[str, Any]:
    return dict(next(m for m in dump(devcloud, chat_id)["messages"] if m["id"] == message_id))


def raw(
    devcloud: DevCloud, who: str, method: str, path: str, body: Any = None, scopes: list[str] | None = None
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {mint(devcloud, who, scopes or CHAT_SCOPES)}", **INCLUDE_UNKNOWN}
    with httpx.Client(verify=devcloud.tls(), trust_env=False, base_url=f"{devcloud.base_url}/v1.0") as http:
        return http.request(method, path, json=body, headers=headers)


def html_body(content: str) -> ItemBody:
    return ItemBody(content_type=BodyType.Html, content=content)


def me_identity(who: str) -> TeamworkUserIdentity:
    return TeamworkUserIdentity(id=USERS[who][1], additional_data={"tenantId": FABRIKAM})


def status_of(exc: BaseException) -> tuple[int, str]:
    status, code, _message = odata_error(exc)
    return status, code


# quoted replies -----------------------------------------------------------------------------
def test_a_quoted_reply_carries_a_message_reference_as_graph_sends_it(devcloud: DevCloud) -> None:
    chat_id = ab(devcloud)
    quoted = say(devcloud, chat_id, "alice", "Can you <b>sign</b> the deck?")
    body = ReplyWithQuotePostRequestBody(message_ids=[quoted], reply_message=ChatMessage(body=html_body("<p>Done</p>")))

    async def main() -> ChatMessage | None:
        return await as_user(devcloud, "bob").chats.by_chat_id(chat_id).messages.reply_with_quote.post(body)

    reply = run(main())
    assert reply is not None and reply.body is not None and reply.attachments
    assert reply.body.content == f'<attachment id="{quoted}"></attachment><p>Done</p>'
    assert reply.reply_to_id is None
    stored = message_in(devcloud, chat_id, str(reply.id))
    (attachment,) = stored["attachments"]
    assert {k: v for k, v in attachment.items() if k != "content"} == {
        "id": quoted,
        "contentType": "messageReference",
        "contentUrl": None,
        "name": None,
        "thumbnailUrl": None,
        "teamsAppId": None,
    }
    reference = json.loads(attachment["content"])
    assert reference["messageId"] == quoted and reference["messagePreview"] == "Can you sign the deck?"
    assert reference["messageSender"] == {
        "application": None,
        "device": None,
        "user": {"userIdentityType": "aadUser", "tenantId": FABRIKAM, "id": ALICE, "displayName": "Alice Anders"},
    }


def test_a_quoted_reply_needs_one_to_ten_messages_of_the_chat_and_chat_message_send(devcloud: DevCloud) -> None:
    chat_id = ab(devcloud)
    ids = [say(devcloud, chat_id, "alice", f"line {n}") for n in range(11)]
    other = say(devcloud, q3(devcloud), "alice", "elsewhere")

    def body(message_ids: list[str]) -> ReplyWithQuotePostRequestBody:
        return ReplyWithQuotePostRequestBody(message_ids=message_ids, reply_message=ChatMessage(body=html_body("ok")))

    async def main() -> list[BaseException]:
        bob = as_user(devcloud, "bob").chats.by_chat_id(chat_id).messages.reply_with_quote
        read_write = as_user(devcloud, "bob", READ_WRITE_ONLY).chats.by_chat_id(chat_id).messages.reply_with_quote
        return [
            await refused(bob.post(body(ids))),
            await refused(bob.post(body([]))),
            await refused(bob.post(body([other]))),
            await refused(read_write.post(body(ids[:1]))),
        ]

    too_many, none, not_in_chat, no_scope = run(main())
    assert status_of(too_many) == status_of(none) == status_of(not_in_chat) == (400, "BadRequest")
    assert status_of(no_scope) == (403, "Forbidden") and "ChatMessage.Send" in odata_error(no_scope)[2]
    assert raw(devcloud, "bob", "POST", f"/chats/{chat_id}/messages/replyWithQuote", {}).status_code == 400


# mentions and inline images -----------------------------------------------------------------
def mention(n: int, who: str, name: str) -> ChatMessageMention:
    user = Identity(id=USERS[who][1], display_name=name, additional_data={"userIdentityType": "aadUser"})
    return ChatMessageMention(id=n, mention_text=name, mentioned=ChatMessageMentionedIdentitySet(user=user))


def test_mentions_must_match_the_at_tags_and_are_echoed(devcloud: DevCloud) -> None:
    chat_id = q3(devcloud)
    content = '<p>Hi <at id="0">Alice Smith</at> and <at id="1">Tom</at></p>'

    async def main() -> tuple[ChatMessage | None, list[BaseException]]:
        messages = as_user(devcloud, "bob").chats.by_chat_id(chat_id).messages
        both = [mention(0, "alice", "Alice Anders"), mention(1, "tom", "Tom")]
        sent = await messages.post(ChatMessage(body=html_body(content), mentions=both))
        errors = [
            await refused(messages.post(ChatMessage(body=html_body(content), mentions=both[:1]))),
            await refused(messages.post(ChatMessage(body=html_body("<p>Hi</p>"), mentions=both[:1]))),
            await refused(messages.post(ChatMessage(body=html_body(content), mentions=[both[0], both[0]]))),
        ]
        return sent, errors

    sent, errors = run(main())
    assert sent is not None and sent.mentions and [m.id for m in sent.mentions] == [0, 1]
    assert [status_of(e) for e in errors] == [(400, "BadRequest")] * 3
    stored = message_in(devcloud, chat_id, str(sent.id))["mentions"][0]
    assert stored["mentionText"] == "Alice Anders"
    assert stored["mentioned"]["user"]["id"] == ALICE and stored["mentioned"]["user"]["userIdentityType"] == "aadUser"


def image_message(content: str, temporary_id: str = "1") -> ChatMessage:
    hosted = ChatMessageHostedContent(
        content_bytes=PNG, content_type="image/png", additional_data={"@microsoft.graph.temporaryId": temporary_id}
    )
    return ChatMessage(body=html_body(content), hosted_contents=[hosted])


def test_inline_images_are_stored_as_hosted_contents_at_graph_urls(devcloud: DevCloud) -> None:
    chat_id = ab(devcloud)
    content = '<p>Look</p><img src="../hostedContents/1/$value" alt="chart">'

    async def main() -> tuple[ChatMessage | None, Any, bytes | None]:
        sent = await as_user(devcloud, "bob").chats.by_chat_id(chat_id).messages.post(image_message(content))
        assert sent is not None and sent.id
        message = as_user(devcloud, "alice", READ_ONLY).chats.by_chat_id(chat_id).messages.by_chat_message_id(sent.id)
        listed = await message.hosted_contents.get()
        assert listed is not None and listed.value
        hosted_id = str(listed.value[0].id)
        data = await message.hosted_contents.by_chat_message_hosted_content_id(hosted_id).content.get()
        return sent, listed.value, data

    sent, listed, data = run(main())
    assert sent is not None and sent.body is not None and len(listed) == 1
    hosted_id = listed[0].id
    url = f"{devcloud.base_url}/v1.0/chats/{chat_id}/messages/{sent.id}/hostedContents/{hosted_id}/$value"
    assert sent.body.content == f'<p>Look</p><img src="{url}" alt="chart">'
    assert listed[0].content_type == "image/png" and listed[0].content_bytes is None
    assert data == PNG
    value = raw(devcloud, "alice", "GET", url.removeprefix(f"{devcloud.base_url}/v1.0"))
    assert value.status_code == 200 and value.headers["content-type"] == "image/png" and value.content == PNG
    assert dump(devcloud, chat_id)["messages"][-1]["hostedContentIds"] == [hosted_id]


def test_hosted_contents_must_match_the_images_of_the_body(devcloud: DevCloud) -> None:
    chat_id = ab(devcloud)

    async def main() -> list[BaseException]:
        messages = as_user(devcloud, "bob").chats.by_chat_id(chat_id).messages
        return [
            await refused(messages.post(image_message('<img src="../hostedContents/2/$value">'))),
            await refused(messages.post(image_message("<p>no image</p>"))),
            await refused(messages.post(ChatMessage(body=html_body('<img src="../hostedContents/1/$value">')))),
        ]

    assert [status_of(e) for e in run(main())] == [(400, "BadRequest")] * 3
    sent = run(
        as_user(devcloud, "bob")
        .chats.by_chat_id(chat_id)
        .messages.post(image_message('<img src="../hostedContents/1/$value">'))
    )
    assert sent is not None
    hosted = f"/chats/{chat_id}/messages/{sent.id}/hostedContents"
    assert raw(devcloud, "bob", "GET", hosted, scopes=SEND_ONLY).status_code == 403
    assert raw(devcloud, "bob", "GET", hosted + "/nope/$value").status_code == 404


# edits, soft delete, reactions --------------------------------------------------------------
def test_the_sender_edits_his_message_and_graph_answers_204(devcloud: DevCloud) -> None:
    chat_id = ab(devcloud)
    mine = say(devcloud, chat_id, "bob", "draft")
    before = message_in(devcloud, chat_id, mine)

    async def main() -> Any:
        return (
            await as_user(devcloud, "bob")
            .chats.by_chat_id(chat_id)
            .messages.by_chat_message_id(mine)
            .patch(ChatMessage(body=html_body("<p>final</p>")))
        )

    assert run(main()) is None
    after = message_in(devcloud, chat_id, mine)
    assert after["body"]["content"] == "<p>final</p>" and after["lastEditedDateTime"]
    assert after["lastModifiedDateTime"] > before["lastModifiedDateTime"] and after["etag"] != before["etag"]
    system = next(m["id"] for m in dump(devcloud, q3(devcloud))["messages"] if m["eventDetail"])
    theirs = say(devcloud, chat_id, "alice", "hers")
    edit = {"body": {"contentType": "html", "content": "x"}}
    assert raw(devcloud, "bob", "PATCH", f"/chats/{chat_id}/messages/{theirs}", edit).status_code == 403
    assert raw(devcloud, "bob", "PATCH", f"/chats/{q3(devcloud)}/messages/{system}", edit).status_code == 400
    assert raw(devcloud, "bob", "PATCH", f"/chats/{chat_id}/messages/{mine}", edit, SEND_ONLY).status_code == 403
    assert raw(devcloud, "bob", "PATCH", f"/chats/{chat_id}/messages/{mine}", {"body": {}}).status_code == 400
    devcloud.control("DELETE", f"/chats/{quote(chat_id, safe='')}/messages/{mine}")
    assert raw(devcloud, "bob", "PATCH", f"/chats/{chat_id}/messages/{mine}", edit).status_code == 400


def test_soft_delete_and_undo_under_the_signed_in_user(devcloud: DevCloud) -> None:
    chat_id = ab(devcloud)
    mine = say(devcloud, chat_id, "bob", "oops")

    async def main() -> None:
        message = as_user(devcloud, "bob").users.by_user_id(BOB).chats.by_chat_id(chat_id).messages
        assert await message.by_chat_message_id(mine).soft_delete.post() is None
        deleted = message_in(devcloud, chat_id, mine)
        assert deleted["deletedDateTime"] and deleted["body"]["content"] == ""
        assert await message.by_chat_message_id(mine).undo_soft_delete.post() is None

    run(main())
    restored = message_in(devcloud, chat_id, mine)
    assert restored["deletedDateTime"] is None and restored["body"]["content"] == "<p>oops</p>"
    assert restored["lastModifiedDateTime"] > restored["createdDateTime"]
    theirs = say(devcloud, chat_id, "alice", "hers")
    assert raw(devcloud, "bob", "POST", f"/users/{BOB}/chats/{chat_id}/messages/{theirs}/softDelete").status_code == 403
    assert raw(devcloud, "bob", "POST", f"/users/{ALICE}/chats/{chat_id}/messages/{mine}/softDelete").status_code == 403
    upn = USERS["bob"][0]
    path = f"/users/{upn}/chats/{chat_id}/messages/{mine}/softDelete"
    assert raw(devcloud, "bob", "POST", path, scopes=SEND_ONLY).status_code == 403
    assert raw(devcloud, "bob", "POST", path).status_code == 204
    assert raw(devcloud, "bob", "POST", path).status_code == 400
    undo = f"/users/{BOB}/chats/{chat_id}/messages/{mine}/undoSoftDelete"
    assert raw(devcloud, "bob", "POST", undo).status_code == 204
    assert raw(devcloud, "bob", "POST", undo).status_code == 400
    # Graph documents soft deletion under the user only, and most changes under /chats/{id} only.
    assert raw(devcloud, "bob", "POST", f"/chats/{chat_id}/messages/{mine}/softDelete").status_code == 400
    assert (
        raw(devcloud, "bob", "POST", f"/me/chats/{chat_id}/markChatReadForUser", {"user": {"id": BOB}}).status_code
        == 400
    )


def test_reactions_are_one_per_user_and_type_with_their_history(devcloud: DevCloud) -> None:
    chat_id = ab(devcloud)
    target = say(devcloud, chat_id, "alice", "launch day")
    created = message_in(devcloud, chat_id, target)["lastModifiedDateTime"]

    async def main() -> None:
        bob = as_user(devcloud, "bob", SEND_ONLY).chats.by_chat_id(chat_id).messages.by_chat_message_id(target)
        alice = as_user(devcloud, "alice").chats.by_chat_id(chat_id).messages.by_chat_message_id(target)
        assert await bob.set_reaction.post(SetReactionPostRequestBody(reaction_type="👍")) is None
        await bob.set_reaction.post(SetReactionPostRequestBody(reaction_type="👍"))
        await bob.set_reaction.post(SetReactionPostRequestBody(reaction_type="❤️"))
        await alice.set_reaction.post(SetReactionPostRequestBody(reaction_type="👍"))
        assert await bob.unset_reaction.post(UnsetReactionPostRequestBody(reaction_type="❤️")) is None

    run(main())
    message = message_in(devcloud, chat_id, target)
    assert [(r["reactionType"], r["user"]["user"]["id"]) for r in message["reactions"]] == [("👍", BOB), ("👍", ALICE)]
    assert message["reactions"][0]["user"] == {
        "application": None,
        "device": None,
        "user": {
            "@odata.type": "#microsoft.graph.teamworkUserIdentity",
            "id": BOB,
            "displayName": None,
            "userIdentityType": "aadUser",
            "tenantId": FABRIKAM,
        },
    }
    assert message["reactions"][0]["reactionContentUrl"] is None and message["reactions"][0]["createdDateTime"]
    history = [(h["actions"], h["reaction"]["reactionType"]) for h in message["messageHistory"]]
    assert history == [
        ("reactionAdded", "👍"),
        ("reactionAdded", "❤️"),
        ("reactionAdded", "👍"),
        ("reactionRemoved", "❤️"),
    ]
    assert message["lastModifiedDateTime"] > created and message["lastEditedDateTime"] is None
    path = f"/chats/{chat_id}/messages/{target}/setReaction"
    assert raw(devcloud, "bob", "POST", path, {"reactionType": "like"}).status_code == 400
    assert raw(devcloud, "bob", "POST", path, {}).status_code == 400
    assert raw(devcloud, "bob", "POST", path, {"reactionType": "👍"}, READ_ONLY).status_code == 403


# read state, hiding -------------------------------------------------------------------------
def viewpoint(devcloud: DevCloud, who: str, chat_id: str) -> Any:
    got = run(as_user(devcloud, who).chats.by_chat_id(chat_id).get())
    assert got is not None and got.viewpoint is not None
    return got.viewpoint


def test_read_and_unread_set_the_viewpoint_of_the_signed_in_user(devcloud: DevCloud) -> None:
    chat_id = ab(devcloud)
    say(devcloud, chat_id, "alice", "unread yet")
    last = dump(devcloud, chat_id)["messages"][-1]

    chat = as_user(devcloud, "bob").chats.by_chat_id(chat_id)
    assert run(chat.mark_chat_read_for_user.post(MarkChatReadForUserPostRequestBody(user=me_identity("bob")))) is None
    read = viewpoint(devcloud, "bob", chat_id).last_message_read_date_time
    assert read.isoformat().replace("+00:00", "Z") >= last["createdDateTime"]
    chat = as_user(devcloud, "bob").chats.by_chat_id(chat_id)
    run(chat.mark_chat_unread_for_user.post(MarkChatUnreadForUserPostRequestBody(user=me_identity("bob"))))
    unread = viewpoint(devcloud, "bob", chat_id).last_message_read_date_time
    assert unread.isoformat(timespec="milliseconds").replace("+00:00", "Z") < last["createdDateTime"]
    for who, scopes, status in (("alice", CHAT_SCOPES, 403), ("bob", SEND_ONLY, 403)):
        body = {"user": {"id": USERS[who][1], "tenantId": FABRIKAM}}
        assert raw(devcloud, "bob", "POST", f"/chats/{chat_id}/markChatReadForUser", body, scopes).status_code == status
    assert raw(devcloud, "bob", "POST", f"/chats/{chat_id}/markChatUnreadForUser", {}).status_code == 400
    body = {"user": {"id": BOB, "tenantId": FABRIKAM}, "lastMessageReadDateTime": "2024-01-01T00:00:00Z"}
    assert raw(devcloud, "bob", "POST", f"/chats/{chat_id}/markChatUnreadForUser", body).status_code == 204
    assert viewpoint(devcloud, "bob", chat_id).last_message_read_date_time.year == 2024


def test_a_hidden_chat_comes_back_for_everyone_with_a_new_message(devcloud: DevCloud) -> None:
    chat_id = ab(devcloud)
    run(
        as_user(devcloud, "bob")
        .chats.by_chat_id(chat_id)
        .hide_for_user.post(HideForUserPostRequestBody(user=me_identity("bob")))
    )
    assert viewpoint(devcloud, "bob", chat_id).is_hidden is True
    assert viewpoint(devcloud, "alice", chat_id).is_hidden is False
    listed = raw(devcloud, "bob", "GET", "/me/chats").json()["value"]
    assert next(c for c in listed if c["id"] == chat_id)["viewpoint"]["isHidden"] is True
    say(devcloud, chat_id, "alice", "ping")
    assert viewpoint(devcloud, "bob", chat_id).is_hidden is False
    chat = as_user(devcloud, "bob").chats.by_chat_id(chat_id)
    run(chat.hide_for_user.post(HideForUserPostRequestBody(user=me_identity("bob"))))
    chat = as_user(devcloud, "bob").chats.by_chat_id(chat_id)
    run(chat.unhide_for_user.post(UnhideForUserPostRequestBody(user=me_identity("bob"))))
    assert viewpoint(devcloud, "bob", chat_id).is_hidden is False
    body = {"user": {"id": ALICE, "tenantId": FABRIKAM}}
    assert raw(devcloud, "bob", "POST", f"/chats/{chat_id}/hideForUser", body).status_code == 403
    assert (
        raw(devcloud, "bob", "POST", f"/chats/{chat_id}/hideForUser", {"user": {"id": BOB}}, SEND_ONLY).status_code
        == 403
    )


# renaming, members --------------------------------------------------------------------------
def test_a_group_chat_is_renamed_with_a_chat_renamed_event(devcloud: DevCloud) -> None:
    chat_id = q3(devcloud)
    renamed = run(as_user(devcloud, "bob").chats.by_chat_id(chat_id).patch(Chat(topic="Q4 launch")))
    assert renamed is not None and renamed.topic == "Q4 launch"
    event = dump(devcloud, chat_id)["messages"][-1]
    assert event["messageType"] == "systemEventMessage"
    assert event["eventDetail"] == {
        "@odata.type": "#microsoft.graph.chatRenamedEventMessageDetail",
        "chatDisplayName": "Q4 launch",
        "chatId": chat_id,
        "initiator": {"application": None, "device": None, "user": event["eventDetail"]["initiator"]["user"]},
    }
    assert event["eventDetail"]["initiator"]["user"]["id"] == BOB
    for chat, topic, scopes, status in (
        (ab(devcloud), "Pair", CHAT_SCOPES, 400),
        (chat_id, "x" * 251, CHAT_SCOPES, 400),
        (chat_id, "Plan: B", CHAT_SCOPES, 400),
        (chat_id, "Fine", SEND_ONLY, 403),
    ):
        assert raw(devcloud, "bob", "PATCH", f"/chats/{chat}", {"topic": topic}, scopes).status_code == status


def member_body(user_id: str) -> AadUserConversationMember:
    bind = f"https://graph.microsoft.com/v1.0/users('{user_id}')"
    return AadUserConversationMember(roles=["owner"], additional_data={"user@odata.bind": bind})


def test_members_are_added_and_removed_with_their_events(devcloud: DevCloud) -> None:
    chat_id = q3(devcloud)

    async def main() -> AadUserConversationMember:
        added = await as_user(devcloud, "bob").chats.by_chat_id(chat_id).members.post(member_body(APRIL))
        assert isinstance(added, AadUserConversationMember) and added.user_id == APRIL and added.id
        return added

    added = run(main())
    assert dump(devcloud, chat_id)["messages"][-1]["eventDetail"]["@odata.type"].endswith(
        "membersAddedEventMessageDetail"
    )
    members = as_user(devcloud, "bob", MEMBERS).chats.by_chat_id(chat_id).members
    run(members.by_conversation_member_id(str(added.id)).delete())
    event = dump(devcloud, chat_id)["messages"][-1]["eventDetail"]
    assert event["@odata.type"] == "#microsoft.graph.membersDeletedEventMessageDetail"
    assert [m["id"] for m in event["members"]] == [APRIL] and event["initiator"]["user"]["id"] == BOB
    mine = next(m["id"] for m in dump(devcloud, chat_id)["members"] if m["userId"] == BOB)
    path = f"/chats/{chat_id}/members/{mine}"
    assert raw(devcloud, "bob", "DELETE", path, scopes=READ_WRITE_ONLY).status_code == 403
    assert raw(devcloud, "bob", "DELETE", f"/chats/{chat_id}/members/bm9wZQ==", scopes=MEMBERS).status_code == 404
    assert raw(devcloud, "bob", "DELETE", path, scopes=MEMBERS).status_code == 204
    event = dump(devcloud, chat_id)["messages"][-1]["eventDetail"]
    assert event["@odata.type"] == "#microsoft.graph.membersLeftEventMessageDetail"
    assert raw(devcloud, "bob", "GET", f"/chats/{chat_id}").status_code == 403


def test_adding_a_member_answers_201_with_a_location_for_group_chats_only(devcloud: DevCloud) -> None:
    bind = {
        "@odata.type": "#microsoft.graph.aadUserConversationMember",
        "user@odata.bind": f"https://graph.microsoft.com/v1.0/users('{APRIL}')",
        "visibleHistoryStartDateTime": "0001-01-01T00:00:00Z",
        "roles": ["owner"],
    }
    answer = raw(devcloud, "bob", "POST", f"/chats/{q3(devcloud)}/members", bind)
    assert answer.status_code == 201 and answer.json()["userId"] == APRIL
    assert answer.headers["location"].endswith(f"/members('{answer.json()['id']}')")
    assert raw(devcloud, "bob", "POST", f"/chats/{q3(devcloud)}/members", bind).status_code == 400
    assert raw(devcloud, "bob", "POST", f"/chats/{ab(devcloud)}/members", bind).status_code == 400
    assert raw(devcloud, "bob", "POST", f"/chats/{q3(devcloud)}/members", bind, SEND_ONLY).status_code == 403
    stranger = {**bind, "user@odata.bind": f"https://graph.microsoft.com/v1.0/users('{USERS['charlie'][1]}')"}
    assert raw(devcloud, "bob", "POST", f"/chats/{q3(devcloud)}/members", stranger).status_code == 404


# membership, tenants, throttling ------------------------------------------------------------
ENDPOINTS = [
    ("POST", "/messages/replyWithQuote", {"messageIds": ["1"], "replyMessage": {"body": {"content": "x"}}}),
    ("PATCH", "/messages/1", {"body": {"content": "x"}}),
    ("POST", "/messages/1/softDelete", None),
    ("POST", "/messages/1/undoSoftDelete", None),
    ("POST", "/messages/1/setReaction", {"reactionType": "👍"}),
    ("POST", "/messages/1/unsetReaction", {"reactionType": "👍"}),
    ("GET", "/messages/1/hostedContents", None),
    ("POST", "/markChatReadForUser", {"user": {"id": BOB}}),
    ("POST", "/markChatUnreadForUser", {"user": {"id": BOB}}),
    ("POST", "/hideForUser", {"user": {"id": BOB}}),
    ("POST", "/unhideForUser", {"user": {"id": BOB}}),
    ("PATCH", "", {"topic": "x"}),
    ("POST", "/members", {"@odata.type": "#microsoft.graph.aadUserConversationMember"}),
    ("DELETE", "/members/bm9wZQ==", None),
]


@pytest.mark.parametrize(("method", "suffix", "body"), ENDPOINTS)
def test_only_members_reach_a_chat_and_other_tenants_chats_are_not_found(
    devcloud: DevCloud, method: str, suffix: str, body: Any
) -> None:
    scopes = [*CHAT_SCOPES, *MEMBERS]
    under = f"/users/{BOB}/chats" if suffix.lower().endswith("softdelete") else "/chats"
    not_mine = raw(devcloud, "bob", method, f"{under}/{chat_with(devcloud, 'alice', 'april')}{suffix}", body, scopes)
    assert not_mine.status_code == 403 and not_mine.json()["error"]["code"] == "Forbidden"
    elsewhere = raw(devcloud, "bob", method, f"{under}/{northwind_chat(devcloud)}{suffix}", body, scopes)
    assert elsewhere.status_code == 404 and elsewhere.json()["error"]["code"] == "NotFound"


def test_message_changes_count_against_the_chat_message_limits(devcloud: DevCloud) -> None:
    chat_id = ab(devcloud)
    target = say(devcloud, chat_id, "alice", "quick")
    devcloud.control("PUT", "/settings", json={"graph_chat_messages_per_chat_rps": 1, "graph_retry_after_omitted": 0})
    path = f"/chats/{chat_id}/messages/{target}/setReaction"
    assert raw(devcloud, "bob", "POST", path, {"reactionType": "👍"}).status_code == 204
    throttled = raw(devcloud, "bob", "POST", path, {"reactionType": "😮"})
    assert throttled.status_code == 429 and throttled.headers["retry-after"]
    # Read state and hiding are not chat message requests.
    assert raw(devcloud, "bob", "POST", f"/chats/{chat_id}/hideForUser", {"user": {"id": BOB}}).status_code == 204


# change notifications -----------------------------------------------------------------------
def test_every_change_notifies_the_chats_subscriptions(devcloud: DevCloud, webhook: Webhook) -> None:  # noqa: F811
    chat_id = q3(devcloud)
    target = say(devcloud, chat_id, "bob", "plan")
    bob = as_user(devcloud, "bob", [*CHAT_SCOPES, *MEMBERS])

    async def main() -> None:
        await subscribe(bob, subscription(webhook, chat_id))
        message = bob.chats.by_chat_id(chat_id).messages.by_chat_message_id(target)
        await message.set_reaction.post(SetReactionPostRequestBody(reaction_type="👍"))
        await message.patch(ChatMessage(body=html_body("<p>plan B</p>")))
        own = bob.users.by_user_id(BOB).chats.by_chat_id(chat_id).messages.by_chat_message_id(target)
        await own.soft_delete.post()
        await own.undo_soft_delete.post()
        quote_body = ReplyWithQuotePostRequestBody(
            message_ids=[target], reply_message=ChatMessage(body=html_body("ok"))
        )
        await bob.chats.by_chat_id(chat_id).messages.reply_with_quote.post(quote_body)
        await bob.chats.by_chat_id(chat_id).patch(Chat(topic="Renamed"))
        tom = next(m["id"] for m in dump(devcloud, chat_id)["members"] if m["userId"] == USERS["tom"][1])
        await bob.chats.by_chat_id(chat_id).members.by_conversation_member_id(tom).delete()

    run(main())
    got = [only(n) for n in webhook.wait_for(7)]
    changes = [(n["changeType"], n["resourceData"]["id"] == target) for n in got]
    assert changes == [
        ("updated", True),  # the reaction
        ("updated", True),  # the edit
        ("deleted", True),
        ("updated", True),  # undone
        ("created", False),  # the quoted reply
        ("created", False),  # chatRenamed
        ("created", False),  # membersDeleted
    ]
    events = [m["eventDetail"] for m in dump(devcloud, chat_id)["messages"][-2:]]
    assert [e["@odata.type"].split(".")[-1] for e in events] == [
        "chatRenamedEventMessageDetail",
        "membersDeletedEventMessageDetail",
    ]
