"""JSON endpoints for a chat as a whole: rename, members (add, remove, leave), unread, hide."""

from __future__ import annotations

import uuid
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.urls import reverse
from django.utils.translation import gettext as _

from chat import chat_actions, selectors
from chat.models import Chat
from chat.sending import ActionFailed
from chat.views import _failed, _uuid, member_json
from core.http import json_body, json_error
from tenants.models import TenantUser


def _members_json(member: TenantUser, chat: Chat) -> list[dict[str, Any]]:
    return [
        {"id": str(m.oid), "name": m.display_name or m.email, "email": m.email, "me": m.oid == member.oid}
        for m in selectors.chat_members(chat=chat)
    ]


@member_json("PATCH")
def chat_detail(request: HttpRequest, member: TenantUser, chat_id: int) -> JsonResponse:
    """Rename a group chat: `{"topic": "…"}`."""
    chat = selectors.access_chat(member=member, chat_id=chat_id)
    body = json_body(request)
    if isinstance(body, JsonResponse):
        return body
    topic = body.get("topic")
    if not isinstance(topic, str) or not topic.strip():
        return json_error(400, "bad_topic", _("Give the chat a name."))
    if len(topic.strip()) > chat_actions.MAX_TOPIC_CHARS:
        return json_error(400, "bad_topic", chat_actions.topic_too_long())
    try:
        chat = chat_actions.chat_rename(member=member, chat=chat, topic=topic)
    except ActionFailed as exc:
        return _failed(exc)
    members = selectors.chat_members(chat=chat)
    title = selectors.thread_title(member=member, chat=chat, members=members)
    return JsonResponse({"chat": {"id": chat.pk, "title": title}})


@member_json("GET", "POST")
def chat_members(request: HttpRequest, member: TenantUser, chat_id: int) -> JsonResponse:
    """The chat's members (GET); add someone of the organization to a group chat (POST `{"id": oid}`)."""
    chat = selectors.access_chat(member=member, chat_id=chat_id)
    if request.method == "GET":
        return JsonResponse({"members": _members_json(member, chat)})
    body = json_body(request)
    if isinstance(body, JsonResponse):
        return body
    oid = _uuid(body.get("id")) if isinstance(body.get("id"), str) else None
    if oid is None:
        return json_error(400, "bad_person", "id must be the person's id (a UUID).")
    try:
        chat = chat_actions.chat_member_add(member=member, chat=chat, oid=oid)
    except ActionFailed as exc:
        return _failed(exc)
    return JsonResponse({"members": _members_json(member, chat)}, status=201)


@member_json("DELETE")
def chat_member(request: HttpRequest, member: TenantUser, chat_id: int, oid: uuid.UUID) -> JsonResponse:
    """Remove someone from a group chat; oneself: leave it."""
    chat = selectors.access_chat(member=member, chat_id=chat_id)
    try:
        left = chat_actions.chat_member_remove(member=member, chat=chat, oid=str(oid))
    except ActionFailed as exc:
        return _failed(exc)
    if left:
        return JsonResponse({"left": True, "url": reverse("chats")})
    return JsonResponse({"members": _members_json(member, chat)})


@member_json("POST")
def chat_unread(request: HttpRequest, member: TenantUser, chat_id: int) -> JsonResponse:
    chat = selectors.access_chat(member=member, chat_id=chat_id)
    try:
        chat_actions.chat_unread(member=member, chat=chat)
    except ActionFailed as exc:
        return _failed(exc)
    return JsonResponse({"unread": True})


@member_json("POST")
def chat_hide(request: HttpRequest, member: TenantUser, chat_id: int) -> JsonResponse:
    """Hide the chat from the list until a new message comes (`{"hidden": true}`), or show it again."""
    chat = selectors.access_chat(member=member, chat_id=chat_id)
    body = json_body(request)
    if isinstance(body, JsonResponse):
        return body
    hidden = body.get("hidden")
    if not isinstance(hidden, bool):
        return json_error(400, "bad_hidden", "hidden must be true or false.")
    try:
        chat_actions.chat_hide(member=member, chat=chat, hidden=hidden)
    except ActionFailed as exc:
        return _failed(exc)
    return JsonResponse({"hidden": hidden})
