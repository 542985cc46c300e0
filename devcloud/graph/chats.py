"""Chats and their members (delegated): list, read, create, rename, add and remove members, and
each member's viewpoint (read up to, hidden).

A user sees only the chats he is a member of. Messages are in `messages.py`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from devcloud.directory import User
from devcloud.graph import odata
from devcloud.graph import resources as res
from devcloud.graph.api import Call, Handler, Reply, route
from devcloud.graph.auth import require_teams
from devcloud.graph.errors import GraphError, not_found
from devcloud.graph.store import MAX_TOPIC, Chat, StoreError

READ_CHATS = ("Chat.ReadBasic", "Chat.Read", "Chat.ReadWrite")
READ_MEMBERS = ("ChatMember.Read", "ChatMember.ReadWrite", "Chat.ReadBasic", "Chat.Read", "Chat.ReadWrite")
READ_MESSAGES = ("Chat.Read", "Chat.ReadWrite")
SEND_MESSAGES = ("ChatMessage.Send", "Chat.ReadWrite")
CREATE_CHATS = ("Chat.Create", "Chat.ReadWrite")
WRITE_CHATS = ("Chat.ReadWrite",)
ADD_MEMBERS = ("ChatMember.ReadWrite", "Chat.ReadWrite")
REMOVE_MEMBERS = ("ChatMember.ReadWrite",)
USER_BIND = re.compile(r"/users(?:\('([^']+)'\)|/([^/?']+))$")


EVERY_PATH = ("/chats/{chat_id}", "/me/chats/{chat_id}", "/users/{user_id}/chats/{chat_id}")
# Most of what changes a chat is documented (and answered) under `/chats/{id}` only.
CHATS_PATH = ("/chats/{chat_id}",)
USERS_PATH = ("/users/{user_id}/chats/{chat_id}",)


def chat_route(method: str, suffix: str = "", *, under: tuple[str, ...] = EVERY_PATH) -> Callable[[Handler], Handler]:
    """A chat's resource under the paths Graph documents for it: reads under `/chats/{id}`,
    `/me/chats/{id}` and `/users/{id}/chats/{id}`; most writes under one of them."""

    def register(handler: Handler) -> Handler:
        for prefix in under:
            route(method, prefix + suffix)(handler)
        return handler

    return register


def member_call(call: Call, *scopes: str) -> tuple[User, Chat]:
    """The signed-in user (with one of the scopes) and the chat of the path, of which he is a member."""
    user = require_teams(call.caller, *scopes)
    _own_path(call, user)
    return user, access_chat(call, user)


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
            res.chat(
                directory,
                c,
                viewer=user.id,
                expand=expand,
                include_unknown_enums=call.include_unknown_enums,
                base=call.base,
            )
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


@chat_route("GET")
async def get_chat(call: Call) -> Reply:
    user = require_teams(call.caller, *READ_CHATS)
    _own_path(call, user)
    odata.only_options(call.query, {"$expand"})
    expand = odata.expand(call.query, {"members", "lastMessagePreview"})
    chat = access_chat(call, user)
    return _chat_reply(call, user, chat, expand)


def _chat_reply(call: Call, user: User, chat: Chat, expand: set[str], status: int = 200) -> Reply:
    body = res.chat(
        call.state.directory,
        chat,
        viewer=user.id,
        expand=expand,
        include_unknown_enums=call.include_unknown_enums,
        base=call.base,
    )
    return Reply(status, {**call.context("chats/$entity"), **body})


@chat_route("GET", "/members")
async def list_members(call: Call) -> Reply:
    _user, chat = member_call(call, *READ_MEMBERS)
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
    return _chat_reply(call, user, chat, set(), 201)


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


# changes to a chat ----------------------------------------------------------------------
@chat_route("PATCH", under=CHATS_PATH)
async def update_chat(call: Call) -> Reply:
    """Rename a group chat (its topic is all a delegated PATCH changes): 200 with the chat."""
    user, chat = member_call(call, *WRITE_CHATS)
    body = call.body if isinstance(call.body, dict) else {}
    topic = body.get("topic")
    if chat.chat_type != "group":
        raise odata.bad_request("The topic can be set only for a chat of group type.")
    if not isinstance(topic, str) or not topic.strip() or len(topic) > MAX_TOPIC:
        raise odata.bad_request(f"topic must be a string of 1 to {MAX_TOPIC} characters.")
    if ":" in topic:
        raise odata.bad_request("The chat topic cannot contain ':'.")
    if topic != chat.topic:
        call.state.chats.rename(chat_id=chat.id, topic=topic, by=user)
    return _chat_reply(call, user, chat, set())


@chat_route("GET", "/members/{membership_id}")
async def get_member(call: Call) -> Reply:
    _user, chat = member_call(call, *READ_MEMBERS)
    member_id = _membership(chat, call.params["membership_id"])
    context = call.context(f"chats('{quote(chat.id, safe='')}')/members/$entity")
    return Reply(200, {**context, **res.member(call.state.directory, chat, member_id)})


@chat_route("POST", "/members", under=CHATS_PATH)
async def add_member(call: Call) -> Reply:
    user, chat = member_call(call, *ADD_MEMBERS)
    added = _bound_user(call, call.body)
    if chat.chat_type != "group":
        raise odata.bad_request("Members can be added to group chats only.")
    if added.id in chat.members:
        raise odata.bad_request("The user is already a member of the chat.")
    call.state.chats.add_member(chat_id=chat.id, user=added, by=user)
    member = res.member(call.state.directory, chat, added.id)
    location = f"{call.base}/chats('{chat.id}')/members('{member['id']}')"
    context = call.context(f"chats('{quote(chat.id, safe='')}')/members/$entity")
    return Reply(201, {**context, **member}, {"Location": location})


@chat_route("DELETE", "/members/{membership_id}", under=CHATS_PATH)
async def remove_member(call: Call) -> Reply:
    """Remove a member; removing oneself is leaving the chat."""
    user, chat = member_call(call, *REMOVE_MEMBERS)
    member_id = _membership(chat, call.params["membership_id"])
    if chat.chat_type != "group":
        raise odata.bad_request("Members can be removed from group chats only.")
    removed = call.state.chats.user(member_id)
    call.state.chats.remove_member(chat_id=chat.id, user=removed, by=user)
    return Reply(204)


def _membership(chat: Chat, membership_id: str) -> str:
    for user_id in chat.members:
        if res.member_id(chat, user_id) == membership_id:
            return user_id
    raise GraphError(404, "NotFound", f"Member '{membership_id}' was not found in the chat.")


# the signed-in user's viewpoint ---------------------------------------------------------
def _for_self(call: Call, user: User) -> dict[str, Any]:
    """The body's `user` (a teamworkUserIdentity): delegated, only the signed-in user himself."""
    body = call.body if isinstance(call.body, dict) else {}
    target = body.get("user")
    if not isinstance(target, dict) or not isinstance(target.get("id"), str):
        raise odata.bad_request("user (a teamworkUserIdentity with its id) is required.")
    tenant = target.get("tenantId")
    if target["id"].lower() != user.id or (tenant is not None and str(tenant).lower() != user.tenant_id):
        raise GraphError(403, "Forbidden", "Forbidden: a delegated request may act only for the signed-in user.")
    return body


@chat_route("POST", "/markChatReadForUser", under=CHATS_PATH)
async def mark_chat_read(call: Call) -> Reply:
    user, chat = member_call(call, *WRITE_CHATS)
    _for_self(call, user)
    call.state.chats.mark_read(chat_id=chat.id, user=user)
    return Reply(204)


@chat_route("POST", "/markChatUnreadForUser", under=CHATS_PATH)
async def mark_chat_unread(call: Call) -> Reply:
    user, chat = member_call(call, *WRITE_CHATS)
    raw = _for_self(call, user).get("lastMessageReadDateTime")
    read_until = None
    if raw is not None:
        try:
            read_until = int(res.parse_iso(str(raw)))
        except ValueError as exc:
            raise odata.bad_request(f"lastMessageReadDateTime '{raw}' is not a valid DateTimeOffset.") from exc
    call.state.chats.mark_unread(chat_id=chat.id, user=user, read_until_ms=read_until)
    return Reply(204)


@chat_route("POST", "/hideForUser", under=CHATS_PATH)
async def hide_chat(call: Call) -> Reply:
    user, chat = member_call(call, *WRITE_CHATS)
    _for_self(call, user)
    call.state.chats.hide(chat_id=chat.id, user=user, hidden=True)
    return Reply(204)


@chat_route("POST", "/unhideForUser", under=CHATS_PATH)
async def unhide_chat(call: Call) -> Reply:
    user, chat = member_call(call, *WRITE_CHATS)
    _for_self(call, user)
    call.state.chats.hide(chat_id=chat.id, user=user, hidden=False)
    return Reply(204)
