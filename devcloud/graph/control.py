"""Control API for chats under `/_devcloud/`: what users do in Teams, bulk tenants, subscriptions.

Messages posted, edited, deleted, restored or reacted to here, chats renamed, read, hidden and
members removed, are as if done in Teams: they raise change notifications like any other change,
and are not throttled. Graph's own checks of a message (mentions, inline images, quotes) apply.
"""

from __future__ import annotations

import html
import re
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from devcloud.control_http import GENERATED_PASSWORD, bad, json_object, state_of
from devcloud.directory import User
from devcloud.graph import compose, subscriptions
from devcloud.graph import resources as res
from devcloud.graph.errors import GraphError
from devcloud.graph.store import Chat, Message, StoreError
from devcloud.state import State

MAX_GENERATED = {"users": 1000, "chats": 5000, "messages": 10000}
MAX_GENERATED_MESSAGES = 1_000_000
AT_TEXT = re.compile(r"<at[^>]*>(.*?)</at>", re.IGNORECASE | re.DOTALL)


async def _body(request: Request) -> dict[str, Any]:
    try:
        return await json_object(request)
    except ValueError as exc:
        raise StoreError(str(exc)) from exc


def _user(state: State, ref: Any) -> User:
    return state.chats.user(str(ref or ""))


def _chat(state: State, request: Request) -> Chat:
    chat = state.chats.chat(request.path_params["chat_id"])
    if chat is None:
        raise StoreError(f"unknown chat: {request.path_params['chat_id']}")
    return chat


def _summary(chat: Chat) -> dict[str, Any]:
    return {
        "id": chat.id,
        "chatType": chat.chat_type,
        "topic": chat.topic,
        "tenantId": chat.tenant_id,
        "members": list(chat.members),
        "messages": len(chat.messages),
        "lastModifiedDateTime": res.iso(chat.clock_ms),
    }


async def _guarded(request: Request, action: Any) -> Response:
    try:
        result: Response = await action(state_of(request), request)
        return result
    except StoreError as exc:
        status = 404 if str(exc).startswith("unknown") else 400
        return bad(str(exc), status)
    except GraphError as exc:
        return bad(exc.message, exc.status)
    except ValueError as exc:
        return bad(str(exc))


async def _list_chats(state: State, request: Request) -> Response:
    user_ref = request.query_params.get("user")
    chats = list(state.chats.chats_of(_user(state, user_ref).id)) if user_ref else list(state.chats.chats.values())
    tenant = request.query_params.get("tenant")
    if tenant:
        chats = [c for c in chats if c.tenant_id == tenant]
    return JSONResponse({"chats": [_summary(c) for c in sorted(chats, key=lambda c: c.id)]})


async def _create_chat(state: State, request: Request) -> Response:
    body = await _body(request)
    refs = body.get("members") or []
    if not isinstance(refs, list) or not refs:
        raise StoreError("members: a list of user ids or UPNs")
    members = [_user(state, r) for r in refs]
    creator = _user(state, body["creator"]) if body.get("creator") else members[0]
    chat, created = state.chats.create_chat(
        creator=creator, members=members, chat_type=str(body.get("chatType", "group")), topic=body.get("topic")
    )
    return JSONResponse(_summary(chat), status_code=201 if created else 200)


async def _dump_chat(state: State, request: Request) -> Response:
    """The chat with members, each member's viewpoint, and every message in Graph's shape (with
    its hosted content ids), oldest first."""
    chat = _chat(state, request)
    base = _graph_base(state)
    viewer = next(iter(chat.members), "")
    body = res.chat(state.directory, chat, viewer=viewer, expand={"members"}, include_unknown_enums=True, base=base)
    body["members"] = [res.member(state.directory, chat, u) for u in chat.members]
    body["viewpoints"] = {u: _viewpoint(chat, u) for u in chat.members}
    body["hidden"] = sorted(chat.hidden)
    messages = sorted(chat.messages.values(), key=lambda m: m.created_ms)
    return JSONResponse({**body, "messages": [_message(state, m) for m in messages]})


def _graph_base(state: State) -> str:
    return f"{state.base_url}/v1.0"


def _message(state: State, message: Message) -> dict[str, Any]:
    body = res.message(state.directory, message, True, base=_graph_base(state))
    return {**body, "hostedContentIds": list(message.hosted)}


def _viewpoint(chat: Chat, user_id: str) -> dict[str, Any]:
    return {
        "isHidden": user_id in chat.hidden,
        "lastMessageReadDateTime": res.iso(chat.last_read_ms.get(user_id, chat.created_ms)),
    }


async def _add_member(state: State, request: Request) -> Response:
    body = await _body(request)
    by = _user(state, body["by"]) if body.get("by") else None
    chat = state.chats.add_member(chat_id=_chat(state, request).id, user=_user(state, body.get("user")), by=by)
    return JSONResponse(_summary(chat), status_code=201)


async def _post_message(state: State, request: Request) -> Response:
    """`{"from", "content", "contentType", "replyTo"?, "mentions"?: [user…], "images"?: [{"contentType",
    "contentBytes"}]}`: `<at id="N">` tags of the content name the mentioned users in order."""
    body = await _body(request)
    chat = _chat(state, request)
    images = _images(body.get("images"))
    content = body.get("content", "")
    if not isinstance(content, str) or not (content.strip() or images):
        raise StoreError("content: a non-empty string")
    content_type = str(body.get("contentType", "html"))
    if content_type not in ("html", "text"):
        raise StoreError("contentType: html or text")
    attachments = None
    if body.get("replyTo") is not None or images or body.get("mentions"):
        content = html.escape(content) if content_type == "text" else content
        content_type = "html"
    if body.get("replyTo") is not None:
        tags, attachments = compose.quoted(state.directory, chat, [str(body["replyTo"])])
        content = tags + content
    for n in range(1, len(images) + 1):
        if f"../hostedContents/{n}/$value" not in content:
            content += f'<p><img src="../hostedContents/{n}/$value" alt="image"></p>'
    mentions = compose.mentions(state.directory, chat, content, content_type, _mentions(state, content, body))
    message = state.chats.post(
        chat_id=chat.id,
        sender=_user(state, body.get("from")),
        content=content,
        content_type=content_type,
        mentions=mentions,
        attachments=attachments,
        hosted=compose.hosted_contents(content, images),
    )
    return JSONResponse(_message(state, message), status_code=201)


def _images(raw: Any) -> list[dict[str, Any]]:
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(i, dict) for i in raw):
        raise StoreError('images: a list of {"contentType", "contentBytes"}')
    return [{**image, compose.TEMPORARY_ID: str(n)} for n, image in enumerate(raw, start=1)]


def _mentions(state: State, content: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    """Graph's mentions of the users named, the n-th being `<at id="n">` of the content."""
    refs = body.get("mentions") or []
    if not isinstance(refs, list):
        raise StoreError("mentions: a list of user ids or UPNs")
    tags = list(dict.fromkeys(int(m[2]) for m in compose.AT_TAG.finditer(content)))
    if tags != list(range(len(refs))):
        raise StoreError('mentions: the content needs <at id="0">…</at>, <at id="1">… for them, in order')
    mentions = []
    for n, ref in enumerate(refs):
        user = _user(state, ref)
        text = AT_TEXT.search(content[content.index(f'<at id="{n}"') :]) if f'<at id="{n}"' in content else None
        mention_text = html.unescape(text[1]) if text else user.display_name
        mentioned = {"user": {"id": user.id, "displayName": user.display_name, "userIdentityType": "aadUser"}}
        mentions.append({"id": n, "mentionText": mention_text, "mentioned": mentioned})
    return mentions


async def _change_message(state: State, request: Request) -> Response:
    chat_id, message_id = _chat(state, request).id, request.path_params["message_id"]
    if request.method == "DELETE":
        message = state.chats.delete(chat_id=chat_id, message_id=message_id)
    else:
        content = (await _body(request)).get("content")
        if not isinstance(content, str) or not content.strip():
            raise StoreError("content: a non-empty string")
        message = state.chats.edit(chat_id=chat_id, message_id=message_id, content=content)
    return JSONResponse(_message(state, message))


async def _restore_message(state: State, request: Request) -> Response:
    message = state.chats.undelete(chat_id=_chat(state, request).id, message_id=request.path_params["message_id"])
    return JSONResponse(_message(state, message))


async def _react(state: State, request: Request) -> Response:
    """`{"user", "reactionType", "on"}`: a reaction set (or, with `"on": false`, unset)."""
    body = await _body(request)
    reaction = body.get("reactionType")
    if not isinstance(reaction, str) or not compose.is_emoji(reaction):
        raise StoreError("reactionType: a unicode emoji")
    message = state.chats.react(
        chat_id=_chat(state, request).id,
        message_id=request.path_params["message_id"],
        user=_member(state, request, body.get("user")),
        reaction=reaction,
        on=body.get("on", True) is not False,
    )
    return JSONResponse(_message(state, message))


def _member(state: State, request: Request, ref: Any) -> User:
    user = _user(state, ref)
    if user.id not in _chat(state, request).members:
        raise StoreError("user: not a member of the chat")
    return user


async def _viewpoint_change(state: State, request: Request) -> Response:
    """`read`, `unread` (`{"user", "lastMessageReadDateTime"?}`) or `hide` (`{"user", "hidden"}`)."""
    body, chat, action = await _body(request), _chat(state, request), request.path_params["action"]
    user = _member(state, request, body.get("user"))
    if action == "read":
        state.chats.mark_read(chat_id=chat.id, user=user)
    elif action == "unread":
        until = body.get("lastMessageReadDateTime")
        until_ms = int(res.parse_iso(str(until))) if until is not None else None
        state.chats.mark_unread(chat_id=chat.id, user=user, read_until_ms=until_ms)
    elif action == "hide":
        state.chats.hide(chat_id=chat.id, user=user, hidden=body.get("hidden", True) is not False)
    else:
        raise StoreError("action: read, unread or hide")
    return JSONResponse({"user": user.id, "viewpoint": _viewpoint(chat, user.id)})


async def _rename(state: State, request: Request) -> Response:
    """`{"topic", "by"}`: a group chat renamed, with its chatRenamed event message."""
    body = await _body(request)
    by = _member(state, request, body["by"]) if body.get("by") else None
    chat = state.chats.rename(chat_id=_chat(state, request).id, topic=str(body.get("topic") or ""), by=by)
    return JSONResponse(_summary(chat))


async def _remove_member(state: State, request: Request) -> Response:
    """`?by=user`: removed by another member, or leaving when `by` is the member himself."""
    ref = request.query_params.get("by")
    by = _user(state, ref) if ref else None
    user = _user(state, request.path_params["user"])
    chat = state.chats.remove_member(chat_id=_chat(state, request).id, user=user, by=by)
    return JSONResponse(_summary(chat))


async def _generate(state: State, request: Request) -> Response:
    """`{"users", "chats", "messages", "seed", "include", "prefix"}`: a tenant's chats, deterministic."""
    tenant = state.directory.tenant(request.path_params["tenant"]) or state.directory.tenant_by_name(
        request.path_params["tenant"]
    )
    if tenant is None:
        raise StoreError(f"unknown tenant: {request.path_params['tenant']}")
    body = await _body(request)
    sizes = {name: body.get(name, default) for name, default in (("users", 10), ("chats", 10), ("messages", 20))}
    for name, value in sizes.items():
        if not isinstance(value, int) or not 0 <= value <= MAX_GENERATED[name]:
            raise StoreError(f"{name}: an integer from 0 to {MAX_GENERATED[name]}")
    seed, prefix = body.get("seed", 1), str(body.get("prefix", "member")).lower()
    if not isinstance(seed, int) or not prefix.isalnum():
        raise StoreError("seed: an integer; prefix: letters and digits")
    if sizes["chats"] * sizes["messages"] > MAX_GENERATED_MESSAGES:
        raise StoreError(f"chats times messages: at most {MAX_GENERATED_MESSAGES}")
    include = [_user(state, r) for r in body.get("include") or []]
    if any(u.tenant_id != tenant.id for u in include):
        raise StoreError("include: users of this tenant only")
    started = time.monotonic()
    if sizes["users"]:
        pool = state.add_users(tenant_id=tenant.id, prefix=prefix, count=sizes["users"], password=GENERATED_PASSWORD)
        state.save()
    else:
        pool = [u for u in tenant.users if u not in include]
    counts = state.chats.generate(
        tenant=tenant, pool=pool, include=include, chats=sizes["chats"], messages=sizes["messages"], seed=seed
    )
    seconds = round(time.monotonic() - started, 3)
    return JSONResponse({**counts, "users": [u.id for u in pool], "seconds": seconds}, status_code=201)


async def _subscriptions(state: State, request: Request) -> Response:
    return JSONResponse({"subscriptions": list(subscriptions.live(state).values())})


async def _subscription_action(state: State, request: Request) -> Response:
    """`expire` (gone now, no event), `remove` (subscriptionRemoved) or `reauthorization-required`."""
    sub = subscriptions.live(state).get(request.path_params["sub_id"])
    if sub is None:
        raise StoreError(f"unknown subscription: {request.path_params['sub_id']}")
    action = request.path_params["action"]
    if action == "expire":
        subscriptions.expire_now(state, sub)
    elif action == "remove":
        del state.subscriptions[sub["id"]]
        subscriptions.lifecycle(state, sub, "subscriptionRemoved")
    elif action == "reauthorization-required":
        sub["reauthorization_required"] = True
        subscriptions.lifecycle(state, sub, "reauthorizationRequired")
    else:
        raise StoreError("action: expire, remove or reauthorization-required")
    state.save()
    return JSONResponse({"subscription": sub["id"], "action": action})


async def _notifications(state: State, request: Request) -> Response:
    if request.method == "DELETE":
        subscriptions.deliveries.clear()
    return JSONResponse({"deliveries": list(subscriptions.deliveries)})


def _route(path: str, action: Any, methods: list[str]) -> Route:
    async def endpoint(request: Request) -> Response:
        return await _guarded(request, action)

    endpoint.__name__ = action.__name__.lstrip("_")
    return Route(path, endpoint, methods=methods)


def routes() -> list[Route]:
    return [
        _route("/chats", _list_chats, ["GET"]),
        _route("/chats", _create_chat, ["POST"]),
        _route("/chats/{chat_id}", _dump_chat, ["GET"]),
        _route("/chats/{chat_id}", _rename, ["PATCH"]),
        _route("/chats/{chat_id}/members", _add_member, ["POST"]),
        _route("/chats/{chat_id}/members/{user}", _remove_member, ["DELETE"]),
        _route("/chats/{chat_id}/messages", _post_message, ["POST"]),
        _route("/chats/{chat_id}/messages/{message_id}", _change_message, ["PATCH", "DELETE"]),
        _route("/chats/{chat_id}/messages/{message_id}/restore", _restore_message, ["POST"]),
        _route("/chats/{chat_id}/messages/{message_id}/reactions", _react, ["POST"]),
        _route("/chats/{chat_id}/{action}", _viewpoint_change, ["POST"]),
        _route("/tenants/{tenant}/chats/generate", _generate, ["POST"]),
        _route("/subscriptions", _subscriptions, ["GET"]),
        _route("/subscriptions/{sub_id}/{action}", _subscription_action, ["POST"]),
        _route("/notifications", _notifications, ["GET", "DELETE"]),
    ]
