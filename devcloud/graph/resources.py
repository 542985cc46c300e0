"""Chats, members and messages in the JSON shapes Graph v1.0 returns."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any
from urllib.parse import quote

from devcloud.directory import Directory
from devcloud.graph.model import GRAPH_URL, Chat, Hosted, Message

NO_HISTORY_LIMIT = "0001-01-01T00:00:00Z"


def iso(ms: int | None) -> str | None:
    """Graph's timestamps: UTC, milliseconds, `Z`."""
    if ms is None:
        return None
    moment = dt.datetime.fromtimestamp(ms // 1000, dt.UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{ms % 1000:03d}Z"


def parse_iso(value: str) -> float:
    """A `$filter` or body timestamp → milliseconds since the epoch (sub-millisecond kept)."""
    moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp() * 1000


def identity(directory: Directory, user_id: str, *, named: bool = True) -> dict[str, Any]:
    user = directory.user(user_id)
    return {
        "@odata.type": "#microsoft.graph.teamworkUserIdentity",
        "id": user_id,
        "displayName": user.display_name if user and named else None,
        "userIdentityType": "aadUser",
        "tenantId": user.tenant_id if user else None,
    }


def member_id(chat: Chat, user_id: str) -> str:
    raw = f"1#{chat.id}#{user_id}#{chat.tenant_id}"
    return base64.b64encode(raw.encode()).decode()


def member(directory: Directory, chat: Chat, user_id: str) -> dict[str, Any]:
    user = directory.user(user_id)
    return {
        "@odata.type": "#microsoft.graph.aadUserConversationMember",
        "id": member_id(chat, user_id),
        "roles": ["owner"],
        "displayName": user.display_name if user else None,
        "visibleHistoryStartDateTime": NO_HISTORY_LIMIT,
        "userId": user_id,
        "email": user.upn if user else None,
        "tenantId": user.tenant_id if user else chat.tenant_id,
    }


EVENT_TYPES = {
    "membersAdded": "#microsoft.graph.membersAddedEventMessageDetail",
    "membersDeleted": "#microsoft.graph.membersDeletedEventMessageDetail",
    "membersLeft": "#microsoft.graph.membersLeftEventMessageDetail",
    "chatRenamed": "#microsoft.graph.chatRenamedEventMessageDetail",
}


def _initiator(directory: Directory, user_id: str | None) -> dict[str, Any]:
    user = identity(directory, user_id, named=False) if user_id else None
    return {"application": None, "device": None, "user": user}


def _event_detail(directory: Directory, message: Message) -> dict[str, Any] | None:
    event = message.event
    if event is None:
        return None
    kind = event["kind"]
    detail: dict[str, Any] = {"@odata.type": EVENT_TYPES[kind]}
    if kind == "chatRenamed":
        detail |= {"chatDisplayName": event["topic"], "chatId": message.chat_id}
    else:
        if kind == "membersAdded":
            detail["visibleHistoryStartDateTime"] = NO_HISTORY_LIMIT
        detail["members"] = [identity(directory, u, named=False) for u in event["members"]]
    detail["initiator"] = _initiator(directory, event.get("initiator"))
    return detail


def _reaction(directory: Directory, reaction: dict[str, Any]) -> dict[str, Any]:
    return {
        "reactionType": reaction["type"],
        "displayName": reaction["type"],
        "reactionContentUrl": None,
        "createdDateTime": iso(reaction["at"]),
        "user": {"application": None, "device": None, "user": identity(directory, reaction["user"], named=False)},
    }


def _history(directory: Directory, item: dict[str, Any]) -> dict[str, Any]:
    return {
        "modifiedDateTime": iso(item["at"]),
        "actions": item["action"],
        "reaction": _reaction(directory, item["reaction"]),
    }


def _mention(directory: Directory, chat_id: str, item: dict[str, Any]) -> dict[str, Any]:
    mentioned: dict[str, Any] = {"application": None, "device": None, "conversation": None, "tag": None, "user": None}
    if "conversation" in item:
        mentioned["conversation"] = {
            "id": chat_id,
            "displayName": "Everyone",
            "conversationIdentityType": "chat",
        }
    else:
        user = directory.user(item["user"])
        mentioned["user"] = {
            "@odata.type": "#microsoft.graph.teamworkUserIdentity",
            "id": item["user"],
            "displayName": user.display_name if user else None,
            "userIdentityType": "aadUser",
            "tenantId": user.tenant_id if user else None,
        }
    return {"id": item["id"], "mentionText": item["text"], "mentioned": mentioned}


def _from(directory: Directory, message: Message) -> dict[str, Any] | None:
    if message.sender_id is None:
        return None
    return {"application": None, "device": None, "user": identity(directory, message.sender_id)}


def _body(message: Message, base: str = GRAPH_URL) -> dict[str, str]:
    if message.deleted_ms is not None:
        return {"contentType": "html", "content": ""}
    content = message.content
    if message.hosted and base != GRAPH_URL:
        # Inline images are served by whoever answers: Graph, or devcloud at its own address.
        prefix = f"/chats/{message.chat_id}/messages/{message.id}/hostedContents/"
        content = content.replace(GRAPH_URL + prefix, base + prefix)
    return {"contentType": message.content_type, "content": content}


def stored_content(content: str, chat_id: str, base: str) -> str:
    """An edited body as stored: inline images' URLs with Graph's base, whatever the client read."""
    prefix = f"/chats/{chat_id}/messages/"
    return content.replace(base + prefix, GRAPH_URL + prefix) if base != GRAPH_URL else content


def _message_type(item: Message, include_unknown_enums: bool) -> str:
    """`systemEventMessage` is an evolvable enum member: without `Prefer: include-unknown-enum-members`
    Graph sends `unknownFutureValue` in its place."""
    if item.event is None:
        return "message"
    return "systemEventMessage" if include_unknown_enums else "unknownFutureValue"


def message(
    directory: Directory, item: Message, include_unknown_enums: bool = False, *, base: str = GRAPH_URL
) -> dict[str, Any]:
    deleted = item.deleted_ms is not None
    return {
        "id": item.id,
        "replyToId": None,
        "etag": str(item.modified_ms),
        "messageType": _message_type(item, include_unknown_enums),
        "createdDateTime": iso(item.created_ms),
        "lastModifiedDateTime": iso(item.modified_ms),
        "lastEditedDateTime": iso(item.edited_ms),
        "deletedDateTime": iso(item.deleted_ms),
        "subject": None,
        "summary": None,
        "chatId": item.chat_id,
        "importance": "normal",
        "locale": "en-us",
        "webUrl": None,
        "channelIdentity": None,
        "policyViolation": None,
        "eventDetail": _event_detail(directory, item),
        "from": _from(directory, item),
        "body": _body(item, base),
        "attachments": [] if deleted else item.attachments,
        "mentions": [] if deleted else [_mention(directory, item.chat_id, m) for m in item.mentions],
        "reactions": [_reaction(directory, r) for r in item.reactions],
        "messageHistory": [_history(directory, h) for h in item.history],
    }


def hosted_content(item: Hosted) -> dict[str, Any]:
    """A hosted content as Graph lists it: the bytes only through `/$value`."""
    return {"id": item.id, "contentType": item.content_type, "contentBytes": None}


def message_preview(
    directory: Directory, item: Message, include_unknown_enums: bool = False, *, base: str = GRAPH_URL
) -> dict[str, Any]:
    return {
        "id": item.id,
        "createdDateTime": iso(item.created_ms),
        "isDeleted": item.deleted_ms is not None,
        "messageType": _message_type(item, include_unknown_enums),
        "eventDetail": _event_detail(directory, item),
        "body": _body(item, base),
        "from": _from(directory, item),
    }


def web_url(chat: Chat) -> str:
    return f"https://teams.microsoft.com/l/chat/{quote(chat.id, safe='')}/0?tenantId={chat.tenant_id}"


MAX_EXPANDED_MEMBERS = 25


def chat(
    directory: Directory,
    item: Chat,
    *,
    viewer: str,
    expand: set[str],
    include_unknown_enums: bool = False,
    base: str = GRAPH_URL,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": item.id,
        "topic": item.topic,
        "createdDateTime": iso(item.created_ms),
        "lastUpdatedDateTime": iso(item.updated_ms),
        "chatType": item.chat_type,
        "webUrl": web_url(item),
        "tenantId": item.tenant_id,
        "isHiddenForAllMembers": False,
        "onlineMeetingInfo": None,
        "viewpoint": {
            "isHidden": viewer in item.hidden,
            "lastMessageReadDateTime": iso(item.last_read_ms.get(viewer, item.created_ms)),
        },
    }
    if "members" in expand:
        # Graph's documented limit: `$expand=members` returns at most 25 members; more need /members.
        body["members"] = [member(directory, item, u) for u in list(item.members)[:MAX_EXPANDED_MEMBERS]]
    if "lastMessagePreview" in expand:
        last = item.last_message()
        body["lastMessagePreview"] = (
            message_preview(directory, last, include_unknown_enums, base=base) if last else None
        )
    return body
