"""Control API for chats under `/_devcloud/`: what users do in Teams, bulk tenants, subscriptions.

Messages posted, edited or deleted here are as if typed in Teams: they raise change
notifications like any other change, and are not throttled.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from devcloud.control_http import GENERATED_PASSWORD, bad, json_object, state_of
from devcloud.directory import User
from devcloud.graph import resources as res
from devcloud.graph import subscriptions
from devcloud.graph.store import Chat, StoreError
from devcloud.state import State

MAX_GENERATED = {"users": 1000, "chats": 5000, "messages": 10000}
MAX_GENERATED_MESSAGES = 1_000_000


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
    """The chat with members, and every message in Graph's shape, oldest first."""
    chat = _chat(state, request)
    viewer = next(iter(chat.members))
    body = res.chat(state.directory, chat, viewer=viewer, expand={"members"}, include_unknown_enums=True)
    body["members"] = [res.member(state.directory, chat, u) for u in chat.members]
    messages = sorted(chat.messages.values(), key=lambda m: m.created_ms)
    return JSONResponse({**body, "messages": [res.message(state.directory, m, True) for m in messages]})


async def _add_member(state: State, request: Request) -> Response:
    body = await _body(request)
    by = _user(state, body["by"]) if body.get("by") else None
    chat = state.chats.add_member(chat_id=_chat(state, request).id, user=_user(state, body.get("user")), by=by)
    return JSONResponse(_summary(chat), status_code=201)


async def _post_message(state: State, request: Request) -> Response:
    body = await _body(request)
    content = body.get("content")
    if not isinstance(content, str) or not content.strip():
        raise StoreError("content: a non-empty string")
    content_type = str(body.get("contentType", "html"))
    if content_type not in ("html", "text"):
        raise StoreError("contentType: html or text")
    sender = _user(state, body.get("from"))
    message = state.chats.post(
        chat_id=_chat(state, request).id, sender=sender, content=content, content_type=content_type
    )
    return JSONResponse(res.message(state.directory, message, True), status_code=201)


async def _change_message(state: State, request: Request) -> Response:
    chat_id, message_id = _chat(state, request).id, request.path_params["message_id"]
    if request.method == "DELETE":
        message = state.chats.delete(chat_id=chat_id, message_id=message_id)
    else:
        content = (await _body(request)).get("content")
        if not isinstance(content, str) or not content.strip():
            raise StoreError("content: a non-empty string")
        message = state.chats.edit(chat_id=chat_id, message_id=message_id, content=content)
    return JSONResponse(res.message(state.directory, message, True))


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
        _route("/chats/{chat_id}/members", _add_member, ["POST"]),
        _route("/chats/{chat_id}/messages", _post_message, ["POST"]),
        _route("/chats/{chat_id}/messages/{message_id}", _change_message, ["PATCH", "DELETE"]),
        _route("/tenants/{tenant}/chats/generate", _generate, ["POST"]),
        _route("/subscriptions", _subscriptions, ["GET"]),
        _route("/subscriptions/{sub_id}/{action}", _subscription_action, ["POST"]),
        _route("/notifications", _notifications, ["GET", "DELETE"]),
    ]
