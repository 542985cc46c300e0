"""Chat messages (delegated): list, read, send (mentions, inline images), quote, edit, soft delete
and undo, reactions, hosted contents.

Each but hosted contents counts against Graph's chat message limits (`throttle.py`). Changes raise change
notifications through the store's listeners.
"""

from __future__ import annotations

import base64
import html
from typing import Any

from devcloud.directory import User
from devcloud.graph import compose, odata
from devcloud.graph import resources as res
from devcloud.graph.api import Call, Reply
from devcloud.graph.chats import (
    CHATS_PATH,
    READ_MESSAGES,
    SEND_MESSAGES,
    USERS_PATH,
    WRITE_CHATS,
    _message_context,
    _throttle,
    chat_route,
    member_call,
)
from devcloud.graph.errors import GraphError
from devcloud.graph.model import Hosted
from devcloud.graph.store import Chat, Message

QUOTE_MESSAGES = ("ChatMessage.Send",)


def _message(call: Call, chat: Chat) -> Message:
    message = chat.messages.get(call.params["message_id"])
    if message is None:
        raise GraphError(404, "NotFound", f"Message '{call.params['message_id']}' was not found.")
    return message


def _message_reply(call: Call, chat: Chat, message: Message, status: int = 200) -> Reply:
    body = res.message(call.state.directory, message, call.include_unknown_enums, base=call.base)
    return Reply(status, {**call.context(_message_context(chat) + "/$entity"), **body})


def _own_message(call: Call, chat: Chat, user: User) -> Message:
    message = _message(call, chat)
    if message.sender_id != user.id:
        raise GraphError(403, "Forbidden", "Forbidden: only the sender of a message may change it.")
    return message


# reading ----------------------------------------------------------------------------------
@chat_route("GET", "/messages")
async def list_messages(call: Call) -> Reply:
    _user, chat = member_call(call, *READ_MESSAGES)
    _throttle(call, chat)
    odata.only_options(call.query, {"$top", "$orderby", "$filter", "$skiptoken"})
    size = odata.top(call.query, default=20)
    order = odata.message_order(call.query.get("$orderby"))
    clauses = odata.message_filter(call.query.get("$filter"))
    items = _filtered(list(chat.messages.values()), order, clauses)

    def key(message: Message) -> odata.SortKey:
        return (float(message.created_ms if order == "createdDateTime" else message.modified_ms), message.id)

    page = odata.page(items, key=key, size=size, token=call.query.get("$skiptoken"))
    directory = call.state.directory
    body = {
        **call.context(_message_context(chat)),
        "@odata.count": len(page.items),
        **odata.next_link(call.base, call.path, call.query, page.next_token),
        "value": [res.message(directory, m, call.include_unknown_enums, base=call.base) for m in page.items],
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


@chat_route("GET", "/messages/{message_id}")
async def get_message(call: Call) -> Reply:
    _user, chat = member_call(call, *READ_MESSAGES)
    _throttle(call, chat)
    return _message_reply(call, chat, _message(call, chat))


# sending ----------------------------------------------------------------------------------
@chat_route("POST", "/messages")
async def send_message(call: Call) -> Reply:
    user, chat = member_call(call, *SEND_MESSAGES)
    _throttle(call, chat)
    raw = call.body if isinstance(call.body, dict) else {}
    content, content_type = compose.body(raw)
    message = _post(call, chat, user, raw, content, content_type)
    return _message_reply(call, chat, message, 201)


def _post(
    call: Call,
    chat: Chat,
    user: User,
    raw: dict[str, Any],
    content: str,
    content_type: str,
    attachments: list[dict[str, Any]] | None = None,
) -> Message:
    directory = call.state.directory
    mentions = compose.mentions(directory, chat, content, content_type, raw.get("mentions"))
    hosted = compose.hosted_contents(content, raw.get("hostedContents"))
    return call.state.chats.post(
        chat_id=chat.id,
        sender=user,
        content=content,
        content_type=content_type,
        mentions=mentions,
        hosted=hosted,
        attachments=attachments,
    )


@chat_route("POST", "/messages/replyWithQuote", under=CHATS_PATH)
async def reply_with_quote(call: Call) -> Reply:
    """A reply quoting 1 to 10 messages of the chat: `<attachment>` tags, then the reply."""
    user, chat = member_call(call, *QUOTE_MESSAGES)
    _throttle(call, chat)
    body = call.body if isinstance(call.body, dict) else {}
    tags, attachments = compose.quoted(call.state.directory, chat, body.get("messageIds"))
    reply: dict[str, Any] = body["replyMessage"] if isinstance(body.get("replyMessage"), dict) else {}
    content, content_type = compose.body(reply)
    if content_type == "text":
        content = html.escape(content)
    message = _post(call, chat, user, reply, tags + content, "html", attachments=attachments)
    return _message_reply(call, chat, message, 201)


# changing ---------------------------------------------------------------------------------
@chat_route("PATCH", "/messages/{message_id}", under=CHATS_PATH)
async def update_message(call: Call) -> Reply:
    """Edit one's own message: 204 with a delegated token."""
    user, chat = member_call(call, *WRITE_CHATS)
    _throttle(call, chat)
    message = _message(call, chat)
    if message.sender_id is None:
        raise odata.bad_request("System messages cannot be edited.")
    message = _own_message(call, chat, user)
    if message.deleted_ms is not None:
        raise odata.bad_request("A deleted message cannot be edited.")
    raw = call.body if isinstance(call.body, dict) else {}
    if raw.get("hostedContents"):
        raise odata.bad_request("New hosted contents cannot be added by an edit in devcloud.")
    content, content_type = compose.body(raw)
    mentions = compose.mentions(call.state.directory, chat, content, content_type, raw.get("mentions"))
    content = res.stored_content(content, chat.id, call.base)
    call.state.chats.edit(chat_id=chat.id, message_id=message.id, content=content, mentions=mentions)
    return Reply(204)


@chat_route("POST", "/messages/{message_id}/softDelete", under=USERS_PATH)
async def soft_delete(call: Call) -> Reply:
    user, chat = member_call(call, *WRITE_CHATS)
    _throttle(call, chat)
    message = _own_message(call, chat, user)
    if message.deleted_ms is not None:
        raise odata.bad_request("The message is already deleted.")
    call.state.chats.delete(chat_id=chat.id, message_id=message.id)
    return Reply(204)


@chat_route("POST", "/messages/{message_id}/undoSoftDelete", under=USERS_PATH)
async def undo_soft_delete(call: Call) -> Reply:
    user, chat = member_call(call, *WRITE_CHATS)
    _throttle(call, chat)
    message = _own_message(call, chat, user)
    if message.deleted_ms is None:
        raise odata.bad_request("The message is not deleted.")
    call.state.chats.undelete(chat_id=chat.id, message_id=message.id)
    return Reply(204)


async def _react(call: Call, on: bool) -> Reply:
    user, chat = member_call(call, *SEND_MESSAGES)
    _throttle(call, chat)
    reaction = compose.reaction_type(call.body)
    message = _message(call, chat)
    if message.deleted_ms is not None or message.sender_id is None:
        raise odata.bad_request("Deleted and system messages take no reactions.")
    call.state.chats.react(chat_id=chat.id, message_id=message.id, user=user, reaction=reaction, on=on)
    return Reply(204)


@chat_route("POST", "/messages/{message_id}/setReaction", under=CHATS_PATH)
async def set_reaction(call: Call) -> Reply:
    return await _react(call, True)


@chat_route("POST", "/messages/{message_id}/unsetReaction", under=CHATS_PATH)
async def unset_reaction(call: Call) -> Reply:
    return await _react(call, False)


# hosted contents --------------------------------------------------------------------------
def _hosted_message(call: Call) -> tuple[Chat, Message]:
    # Hosted contents are among Teams' "other GET" requests, not the chat message ones.
    _user, chat = member_call(call, *READ_MESSAGES)
    message = _message(call, chat)
    if message.deleted_ms is not None:
        raise GraphError(404, "NotFound", "The message was deleted.")
    return chat, message


@chat_route("GET", "/messages/{message_id}/hostedContents")
async def list_hosted_contents(call: Call) -> Reply:
    chat, message = _hosted_message(call)
    context = call.context(f"{_message_context(chat)}('{message.id}')/hostedContents")
    value = [res.hosted_content(h) for h in message.hosted.values()]
    return Reply(200, {**context, "@odata.count": len(value), "value": value})


def _hosted(call: Call, message: Message) -> Hosted:
    hosted = message.hosted.get(call.params["hosted_id"])
    if hosted is None:
        raise GraphError(404, "NotFound", f"Hosted content '{call.params['hosted_id']}' was not found.")
    return hosted


@chat_route("GET", "/messages/{message_id}/hostedContents/{hosted_id}")
async def get_hosted_content(call: Call) -> Reply:
    chat, message = _hosted_message(call)
    context = call.context(f"{_message_context(chat)}('{message.id}')/hostedContents/$entity")
    return Reply(200, {**context, **res.hosted_content(_hosted(call, message))})


@chat_route("GET", "/messages/{message_id}/hostedContents/{hosted_id}/\\$value")
async def get_hosted_content_value(call: Call) -> Reply:
    _chat, message = _hosted_message(call)
    hosted = _hosted(call, message)
    return Reply(200, base64.b64decode(hosted.content_bytes), {"Content-Type": hosted.content_type})
