"""Chats, members and messages (delegated): list, read, send, create.

A user sees only the chats he is a member of. Chat message requests count against Graph's
limits (`throttle.py`).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from devcloud.directory import User
from devcloud.graph import odata
from devcloud.graph import resources as res
from devcloud.graph.api import Call, Reply, route
from devcloud.graph.auth import require_teams
from devcloud.graph.errors import GraphError, not_found
from devcloud.graph.store import Chat, Message, StoreError

READ_CHATS = ("Chat.ReadBasic", "Chat.Read", "Chat.ReadWrite")
READ_MEMBERS = ("ChatMember.Read", "ChatMember.ReadWrite", "Chat.ReadBasic", "Chat.Read", "Chat.ReadWrite")
READ_MESSAGES = ("Chat.Read", "Chat.ReadWrite")
SEND_MESSAGES = ("ChatMessage.Send", "Chat.ReadWrite")
CREATE_CHATS = ("Chat.Create", "Chat.ReadWrite")
MAX_MESSAGE_BYTES = 28 * 1024
USER_BIND = re.compile(r"/users(?:\('([^']+)'\)|/([^/?']+))$")


def access_chat(call: Call, user: User) -> Chat:
    chat = call.state.chats.chat(call.params["chat_id"])
    if chat is None or chat.tenant_id != user.tenant_id:
        raise GraphError(404, "NotFound", f"Chat '{call.params['chat_id']}' was not found.")
    if user.id not in chat.members:
        raise GraphError(403, "Forbidden", "Forbidden: the user is not a member of this chat.")
    return chat


def _own_path(call: Call, user: User) -> None:
    """`/users/{id}/chats…` with a delegated token: only the signed-in user's own."""
    ref = call.params.get("user_id")
    if ref is None or ref.lower() in (user.id, user.upn.lower()):
        return
    other = call.state.directory.user(ref)
    if other is None or other.tenant_id != user.tenant_id:
        raise not_found(ref)
    raise GraphError(403, "Forbidden", "Forbidden: a delegated token may list only the signed-in user's chats.")


def _throttle(call: Call, chat: Chat) -> None:
    who = call.caller
    call.state.throttle.check(call.state.settings, app=who.client_id, tenant=who.tenant_id, chat=chat.id)


def _message_context(chat: Chat) -> str:
    return f"chats('{quote(chat.id, safe='')}')/messages"


# chats ----------------------------------------------------------------------------------
@route("GET", "/chats")
@route("GET", "/me/chats")
@route("GET", "/users/{user_id}/chats")
async def list_chats(call: Call) -> Reply:
    user = require_teams(call.caller, *READ_CHATS)
    _own_path(call, user)
    odata.only_options(call.query, {"$top", "$expand", "$orderby", "$skiptoken"})
    expand = odata.expand(call.query, {"members", "lastMessagePreview"})
    size = odata.top(call.query, default=20)
    by_last_message = _chat_order(call.query.get("$orderby"))

    def key(chat: Chat) -> odata.SortKey:
        last = chat.last_message() if by_last_message else None
        return (float(last.created_ms if last else chat.created_ms), chat.id)

    chats = list(call.state.chats.chats_of(user.id))
    page = odata.page(chats, key=key, size=size, token=call.query.get("$skiptoken"))
    directory = call.state.directory
    body = {
        **call.context(f"users('{user.id}')/chats"),
        **odata.next_link(call.base, call.path, call.query, page.next_token),
        "value": [
            res.chat(directory, c, viewer=user.id, expand=expand, include_unknown_enums=call.include_unknown_enums)
            for c in page.items
        ],
    }
    return Reply(200, body)


def _chat_order(raw: str | None) -> bool:
    if not raw:
        return False
    if raw.strip() != "lastMessagePreview/createdDateTime desc":
        raise odata.bad_request("Invalid $orderby: only 'lastMessagePreview/createdDateTime desc' is supported.")
    return True


@route("GET", "/chats/{chat_id}")
@route("GET", "/me/chats/{chat_id}")
@route("GET", "/users/{user_id}/chats/{chat_id}")
async def get_chat(call: Call) -> Reply:
    user = require_teams(call.caller, *READ_CHATS)
    _own_path(call, user)
    odata.only_options(call.query, {"$expand"})
    expand = odata.expand(call.query, {"members", "lastMessagePreview"})
    chat = access_chat(call, user)
    body = res.chat(
        call.state.directory, chat, viewer=user.id, expand=expand, include_unknown_enums=call.include_unknown_enums
    )
    return Reply(200, {**call.context("chats/$entity"), **body})


@route("GET", "/chats/{chat_id}/members")
@route("GET", "/me/chats/{chat_id}/members")
@route("GET", "/users/{user_id}/chats/{chat_id}/members")
async def list_members(call: Call) -> Reply:
    user = require_teams(call.caller, *READ_MEMBERS)
    _own_path(call, user)
    chat = access_chat(call, user)
    members = [res.member(call.state.directory, chat, u) for u in chat.members]
    context = call.context(f"chats('{quote(chat.id, safe='')}')/members")
    return Reply(200, {**context, "@odata.count": len(members), "value": members})


@route("POST", "/chats")
async def create_chat(call: Call) -> Reply:
    user = require_teams(call.caller, *CREATE_CHATS)
    body = call.body if isinstance(call.body, dict) else {}
    chat_type = body.get("chatType")
    if chat_type not in ("oneOnOne", "group"):
        raise odata.bad_request("chatType must be 'oneOnOne' or 'group'.")
    raw_members = body.get("members")
    if not isinstance(raw_members, list):
        raise odata.bad_request("members must be a list of #microsoft.graph.aadUserConversationMember.")
    members = [_bound_user(call, m) for m in raw_members]
    if user.id not in {m.id for m in members}:
        raise odata.bad_request("The members must include the signed-in user.")
    others = [m for m in members if m.id != user.id]
    topic = body.get("topic")
    if topic is not None and chat_type != "group":
        raise odata.bad_request("The chat title can be provided only if the chat is of group type.")
    if topic is not None and (not isinstance(topic, str) or len(topic) > 250):
        raise odata.bad_request("topic must be a string of at most 250 characters.")
    try:
        chat, _created = call.state.chats.create_chat(creator=user, members=others, chat_type=chat_type, topic=topic)
    except StoreError as exc:
        raise odata.bad_request(str(exc)) from exc
    body = res.chat(call.state.directory, chat, viewer=user.id, expand=set())
    return Reply(201, {**call.context("chats/$entity"), **body})


def _bound_user(call: Call, member: Any) -> User:
    if not isinstance(member, dict) or member.get("@odata.type") != "#microsoft.graph.aadUserConversationMember":
        raise odata.bad_request("Each member must be a #microsoft.graph.aadUserConversationMember.")
    bind = str(member.get("user@odata.bind", ""))
    match = USER_BIND.search(bind)
    user = call.state.directory.user(match.group(1) or match.group(2)) if match else None
    if user is None or user.tenant_id != call.caller.tenant_id:
        # Users of other tenants are not found (federation is out of devcloud's scope).
        raise GraphError(404, "NotFound", f"The user '{bind}' was not found.")
    return user


# messages -------------------------------------------------------------------------------
@route("GET", "/chats/{chat_id}/messages")
@route("GET", "/me/chats/{chat_id}/messages")
@route("GET", "/users/{user_id}/chats/{chat_id}/messages")
async def list_messages(call: Call) -> Reply:
    user = require_teams(call.caller, *READ_MESSAGES)
    _own_path(call, user)
    chat = access_chat(call, user)
    _throttle(call, chat)
    odata.only_options(call.query, {"$top", "$orderby", "$filter", "$skiptoken"})
    size = odata.top(call.query, default=20)
    order = odata.message_order(call.query.get("$orderby"))
    clauses = odata.message_filter(call.query.get("$filter"))
    items = _filtered(list(chat.messages.values()), order, clauses)

    def key(message: Message) -> odata.SortKey:
        return (float(message.created_ms if order == "createdDateTime" else message.modified_ms), message.id)

    page = odata.page(items, key=key, size=size, token=call.query.get("$skiptoken"))
    body = {
        **call.context(_message_context(chat)),
        "@odata.count": len(page.items),
        **odata.next_link(call.base, call.path, call.query, page.next_token),
        "value": [res.message(call.state.directory, m, call.include_unknown_enums) for m in page.items],
    }
    return Reply(200, body)


def _filtered(items: list[Message], order: str | None, clauses: list[odata.Clause]) -> list[Message]:
    """Graph applies `$filter` only with an `$orderby` on the property every clause names."""
    if not clauses or order is None or any(c.prop != order for c in clauses):
        return items
    for clause in clauses:
        attr = "modified_ms" if clause.prop == "lastModifiedDateTime" else "created_ms"
        if clause.op == "gt":
            items = [m for m in items if getattr(m, attr) > clause.value_ms]
        else:
            items = [m for m in items if getattr(m, attr) < clause.value_ms]
    return items


@route("GET", "/chats/{chat_id}/messages/{message_id}")
@route("GET", "/me/chats/{chat_id}/messages/{message_id}")
async def get_message(call: Call) -> Reply:
    user = require_teams(call.caller, *READ_MESSAGES)
    chat = access_chat(call, user)
    _throttle(call, chat)
    message = chat.messages.get(call.params["message_id"])
    if message is None:
        raise GraphError(404, "NotFound", f"Message '{call.params['message_id']}' was not found.")
    body = res.message(call.state.directory, message, call.include_unknown_enums)
    return Reply(200, {**call.context(_message_context(chat) + "/$entity"), **body})


@route("POST", "/chats/{chat_id}/messages")
@route("POST", "/me/chats/{chat_id}/messages")
async def send_message(call: Call) -> Reply:
    user = require_teams(call.caller, *SEND_MESSAGES)
    chat = access_chat(call, user)
    _throttle(call, chat)
    content, content_type = _message_body(call.body)
    message = call.state.chats.post(chat_id=chat.id, sender=user, content=content, content_type=content_type)
    body = res.message(call.state.directory, message, call.include_unknown_enums)
    return Reply(201, {**call.context(_message_context(chat) + "/$entity"), **body})


def _message_body(body: Any) -> tuple[str, str]:
    item = body.get("body") if isinstance(body, dict) else None
    if not isinstance(item, dict) or not isinstance(item.get("content"), str) or not item["content"].strip():
        raise odata.bad_request("The message body must have non-empty 'content'.")
    content_type = str(item.get("contentType") or "text").lower()
    if content_type not in ("text", "html"):
        raise odata.bad_request("body.contentType must be 'text' or 'html'.")
    if len(item["content"].encode()) > MAX_MESSAGE_BYTES:
        raise GraphError(413, "RequestEntityTooLarge", "The message is larger than Teams allows (about 28 KB).")
    return item["content"], content_type
