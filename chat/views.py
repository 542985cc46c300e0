"""The chat pages and their JSON endpoints; every chat is reached through `access_chat` (the chat's
page through `access_open_chat`, the same check)."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import uuid
from collections.abc import Callable
from functools import lru_cache, wraps
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, get_script_prefix, get_urlconf, reverse
from django.utils import dateformat
from django.utils.dateparse import parse_datetime
from django.utils.timezone import localtime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from chat import chat_actions, selectors, sending, services
from chat.models import Chat, ChatMember, ChatSyncState, Message
from chat.render import json_script, message_payload
from chat.routing import SOCKET_PATH
from chat.tasks import sync_member_chats
from core.http import json_body, json_error, json_methods
from integrations import graph
from tenants import selectors as tenant_selectors
from tenants.api import member_or_error
from tenants.models import CustomerTenant, TenantUser

# Graph takes bodies up to 28 KB of HTML; escaped (`<` is `&lt;`), 4 000 characters always fit.
MAX_MESSAGE_CHARS = 4000
MAX_NEW_CHAT_PEOPLE = 20
MAX_IMAGES = 4
MAX_IMAGE_BYTES = 3 * 1024 * 1024
MAX_MENTIONS = 20
MAX_NAME_CHARS = 256
MAX_ID_CHARS = 64
# A send's body: its images in base64 (4/3 of their size), the text and the rest.
MAX_SEND_BODY = MAX_IMAGES * (MAX_IMAGE_BYTES * 4 // 3 + 4) + 256 * 1024
IMAGE_MAGIC = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
}
# The page asks for a sync when the last one finished longer ago than this.
STALE_AFTER = dt.timedelta(minutes=5)


MemberView = Callable[..., JsonResponse]


def member_json(*methods: str) -> Callable[[MemberView], Callable[..., JsonResponse]]:
    """A JSON endpoint for tenant members: JSON 405, 401 and 403 for others, JSON 404 for chats not theirs."""

    def decorator(view: MemberView) -> Callable[..., JsonResponse]:
        @never_cache
        @json_methods(*methods)
        @wraps(view)
        def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
            member = member_or_error(request, verb="chat")
            if isinstance(member, JsonResponse):
                return member
            try:
                return view(request, member, *args, **kwargs)
            except Http404:
                # The same answer for a chat that does not exist and one that is not yours.
                return json_error(404, "not_found", _("No such chat."))

        return checked

    return decorator


def _failed(exc: sending.ActionFailed) -> JsonResponse:
    retry_after = None if exc.retry_after is None else max(1, round(exc.retry_after))
    action = reverse("home") if exc.status == 401 else None
    return json_error(exc.status, exc.reason, exc.message, retry_after=retry_after, action_url=action)


# pages -----------------------------------------------------------------------------------
@login_required
@require_GET
def chats_page(request: HttpRequest, chat_id: int | None = None) -> HttpResponse:
    member = tenant_selectors.access_member(user=request.user)
    if member is None or member.tenant.status != CustomerTenant.Status.ACTIVE:
        reason = "not_a_tenant_user" if member is None else member.tenant.status
        refusal = {
            "heading": gettext_lazy("Chats aren't available"),
            "verb": "chat",
            "reason": reason,
            "member": member,
        }
        return render(request, "portal/unavailable.html", refusal, status=403)
    chat, members, state = None, [], None
    if chat_id is None:
        state = selectors.sync_state(member=member)
    else:
        opened = selectors.access_open_chat(member=member, chat_id=chat_id)
        chat, members, state = opened.chat, opened.members, opened.sync
    # The open chat is drawn read; the page records it with a POST (a GET changes nothing).
    entries, more = selectors.member_chats(member=member, seen=chat.pk if chat else None)
    context: dict[str, Any] = {
        "member": member,
        "entries": entries,
        "lines": _chat_lines(entries, current=chat.pk if chat else None),
        "more": more,
        "chat": chat,
        "state": state,
    }
    config: dict[str, Any] = {
        "socketPath": SOCKET_PATH,
        "listUrl": _link("chat_list"),
        "syncUrl": _link("chat_sync"),
        "peopleUrl": _link("chat_people"),
        "createUrl": _link("chat_create"),
        "chatUrl": _link("chat_page", 0),
        "maxChars": MAX_MESSAGE_CHARS,
        "searchUrl": _url("chat_search"),
        "reactions": list(sending.REACTIONS),
        "me": str(member.oid),
        "maxImages": MAX_IMAGES,
        "maxImageBytes": MAX_IMAGE_BYTES,
        "sync": _sync_json(state),
        "syncStale": _stale(state),
    }
    if chat is not None:
        read_at = dt.datetime.now(dt.UTC)  # before the read: catch-ups start here
        messages, older = selectors.thread_page(chat=chat)
        names = selectors.message_names(chat=chat, messages=messages, members=members)
        me = str(member.oid)
        context["title"] = selectors.thread_title(member=member, chat=chat, members=members)
        context["members"] = members
        # Graph's link to the chat in Teams; anything but https is not a link we follow.
        context["teams_url"] = chat.web_url if chat.web_url.startswith("https://") else ""
        config |= {
            "chat": chat.pk,
            "messagesUrl": _link("chat_messages", chat.pk),
            "changesUrl": _link("chat_changes", chat.pk),
            "readUrl": _link("chat_read", chat.pk),
            "messageUrl": _link("chat_message", chat.pk, "__id__"),
            "membersUrl": _url("chat_members", chat.pk),
            "unreadUrl": _url("chat_unread", chat.pk),
            "hideUrl": _url("chat_hide", chat.pk),
            "chatApiUrl": _url("chat_detail", chat.pk),
            "isGroup": chat.chat_type == "group",
            "topic": chat.topic,
            "messages": [message_payload(m, me=me, names=names) for m in messages],
            "now": read_at.isoformat(),
            "hasOlder": older,
        }
    context["chat_config"] = config
    context["chat_config_script"] = json_script(config, "chat-config")
    return render(request, "chat/chats.html", context)


def _chat_lines(entries: list[selectors.ChatEntry], *, current: int | None) -> list[dict[str, Any]]:
    """The chat list's lines, their links and times drawn here: the template's `{% url %}` and
    `|date` cost more per line than all the rest of it (a list is up to 50 lines)."""
    return [
        {
            "pk": entry.chat.pk,
            "url": _link("chat_page", entry.chat.pk),
            "title": entry.title,
            "at": entry.at.isoformat() if entry.at else "",
            "when": dateformat.format(localtime(entry.at), "M j, H:i") if entry.at else "",
            "preview": entry.preview,
            "unread": entry.unread,
            "current": entry.chat.pk == current,
        }
        for entry in entries
    ]


def _url(name: str, *args: Any) -> str | None:
    """The URL of a view that may not be installed (the page leaves out what it cannot reach)."""
    try:
        return _link(name, *args)
    except NoReverseMatch:
        return None


def _link(name: str, *args: Any) -> str:
    """`reverse(name, args=args)`, kept: the page names some twenty URLs each time, mostly the
    same ones, and each `reverse` costs as much as drawing a line of the list."""
    return _reversed(settings.ROOT_URLCONF, get_urlconf(), get_script_prefix(), name, args)


@lru_cache(maxsize=4096)
def _reversed(root: str, urlconf: str | None, prefix: str, name: str, args: tuple[Any, ...]) -> str:
    return reverse(name, args=args)


def _names(chat: Chat, messages: list[Message]) -> dict[str, str] | None:
    """Members' names, only when drawing `messages` needs them (system events, reactions)."""
    return selectors.message_names(chat=chat, messages=messages)


def _stale(state: ChatSyncState | None) -> bool:
    """Whether the page should ask for a sync: none ran lately (beat's resync covers the rest)."""
    if state is not None and state.status in (ChatSyncState.Status.RUNNING, ChatSyncState.Status.RETRYING):
        return False
    finished = state.finished_at if state else None
    return finished is None or dt.datetime.now(dt.UTC) - finished > STALE_AFTER


def _sync_json(state: ChatSyncState | None) -> dict[str, Any]:
    if state is None:
        return {"status": ChatSyncState.Status.NEVER, "chats_done": 0, "chats_total": 0, "messages": 0, "reason": ""}
    return {
        "status": state.status,
        "chats_done": state.chats_done,
        "chats_total": state.chats_total,
        "messages": state.messages_synced,
        "reason": state.stopped_reason,
    }


# JSON ------------------------------------------------------------------------------------
@member_json("GET")
def chat_list(request: HttpRequest, member: TenantUser) -> JsonResponse:
    """The chat list, rendered (the page swaps it in when a chat changes)."""
    try:
        page = max(1, int(request.GET.get("page", "1")))
    except ValueError:
        return json_error(400, "bad_page", "page must be a number.")
    current = _int(request.GET.get("current"))
    if current is not None:
        selectors.access_chat(member=member, chat_id=current)  # someone else's chat is a 404
    # The page shows this chat's thread to the person right now: drawn read (its POST records it).
    seen = current if request.GET.get("seen") == "1" else None
    entries, more = selectors.member_chats(member=member, page=page, seen=seen)
    context = {"lines": _chat_lines(entries, current=current), "more": more, "page": page}
    return JsonResponse({"html": render_to_string("chat/_chat_list.html", context, request=request), "more": more})


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


@member_json("GET", "POST")
def chat_messages(request: HttpRequest, member: TenantUser, chat_id: int) -> JsonResponse:
    chat = selectors.access_chat(member=member, chat_id=chat_id)
    if request.method == "POST":
        return _send(request, member, chat)
    before = None
    if request.GET.get("before_id"):
        at = parse_datetime(request.GET.get("before", ""))
        if at is None or at.tzinfo is None:
            return json_error(400, "bad_cursor", "before must be an ISO 8601 time with a zone.")
        before = (at, request.GET["before_id"][:64])
    messages, older = selectors.thread_page(chat=chat, before=before)
    me, names = str(member.oid), _names(chat, messages)
    payload = [message_payload(m, me=me, names=names) for m in messages]
    return JsonResponse({"messages": payload, "has_older": older})


def _send(request: HttpRequest, member: TenantUser, chat: Chat) -> JsonResponse:
    body = _large_json_body(request, MAX_SEND_BODY)
    if isinstance(body, JsonResponse):
        return body
    images = _images(body.get("images"))
    if isinstance(images, JsonResponse):
        return images
    text = body.get("content")
    if not isinstance(text, str) or (not text.strip() and not images):
        return json_error(400, "empty", _("Type a message first."))
    if len(text) > MAX_MESSAGE_CHARS:
        return json_error(400, "too_long", _too_long())
    client_id = _uuid(body.get("client_id"))
    if client_id is None:
        return json_error(400, "bad_client_id", "client_id must be a UUID, the same on every try of one message.")
    reply_to = _reply_to(chat, body.get("reply_to"))
    if isinstance(reply_to, JsonResponse):
        return reply_to
    mentions = _mentions(chat, body.get("mentions"))
    if isinstance(mentions, JsonResponse):
        return mentions
    draft = sending.Draft(text=text, reply_to=reply_to, mentions=mentions, images=images)
    try:
        message = sending.message_send(member=member, chat=chat, draft=draft, client_id=client_id)
    except sending.ActionFailed as exc:
        return _failed(exc)
    services.chat_mark_read(member=member, chat=chat)
    return JsonResponse({"message": message_payload(message, me=str(member.oid))}, status=201)


def _large_json_body(request: HttpRequest, limit: int) -> dict[str, Any] | JsonResponse:
    """`json_body` for a body that may pass Django's in-memory limit (images): read up to `limit`."""
    if request.content_type != "application/json":
        return json_body(request)
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > limit:
        return json_error(413, "too_big", _("This message is too large to send."))
    raw = request.read(limit + 1)
    if len(raw) > limit:
        return json_error(413, "too_big", _("This message is too large to send."))
    try:
        body = json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError):
        return json_error(400, "bad_json", _("The request body is not valid JSON."))
    return body if isinstance(body, dict) else json_error(400, "bad_json", "Send a JSON object.")


def _images(raw: Any) -> list[graph.Image] | JsonResponse:
    """Inline images: PNG, JPEG or GIF (by their first bytes, whatever they claim), each small enough."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        return json_error(400, "bad_image", "images must be a list.")
    if len(raw) > MAX_IMAGES:
        return json_error(400, "bad_image", f"A message can hold at most {MAX_IMAGES} images.")
    images = []
    for item in raw:
        content_type = item.get("content_type") if isinstance(item, dict) else None
        data = item.get("data") if isinstance(item, dict) else None
        if content_type not in IMAGE_MAGIC or not isinstance(data, str):
            return json_error(400, "bad_image", _("Images must be PNG, JPEG or GIF."))
        if len(data) > MAX_IMAGE_BYTES * 4 // 3 + 4:
            return json_error(
                400, "bad_image", _("An image can be at most %(size)d MB.") % {"size": MAX_IMAGE_BYTES // (1024 * 1024)}
            )
        try:
            decoded = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            return json_error(400, "bad_image", "An image is not valid base64.")
        if len(decoded) > MAX_IMAGE_BYTES:
            return json_error(
                400, "bad_image", _("An image can be at most %(size)d MB.") % {"size": MAX_IMAGE_BYTES // (1024 * 1024)}
            )
        if not decoded.startswith(IMAGE_MAGIC[content_type]):
            return json_error(400, "bad_image", _("An image is not the PNG, JPEG or GIF it claims to be."))
        images.append(graph.Image(content_type=content_type, data=decoded))
    return images


def _reply_to(chat: Chat, raw: Any) -> str | JsonResponse | None:
    """The quoted message: one of this chat's (not deleted, not a system event)."""
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str) or len(raw) > MAX_ID_CHARS or _message(chat, raw) is None:
        return json_error(400, "bad_reply", _("The message you reply to is not in this chat."))
    return raw


def _mentions(chat: Chat, raw: Any) -> list[tuple[str, str]] | JsonResponse:
    """(oid, name) of the people mentioned, each a member of the chat."""
    if raw is None:
        return []
    refused = json_error(400, "bad_mention", _("Only members of this chat can be mentioned."))
    if not isinstance(raw, list) or len(raw) > MAX_MENTIONS:
        return refused
    people: dict[str, str] = {}
    for item in raw:
        oid = _uuid(item.get("id")) if isinstance(item, dict) else None
        name = item.get("name") if isinstance(item, dict) else None
        if oid is None or not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME_CHARS:
            return refused
        people[oid] = name.strip()
    named = ChatMember.objects.filter(tenant_id=chat.tenant_id, chat=chat, oid__in=list(people))
    known = {str(oid): name for oid, name in named.values_list("oid", "display_name")}
    if set(people) - set(known):
        return refused
    # Teams shows the mentioned person's name as the chat lists it, whatever the page sent.
    return [(oid, known[oid] or name) for oid, name in people.items()]


def _message(chat: Chat, graph_id: str) -> Message | None:
    """One of the chat's messages that can still be acted on (not deleted, not a system event)."""
    return Message.objects.filter(
        tenant_id=chat.tenant_id, chat=chat, graph_id=graph_id, deleted_at__isnull=True, message_type="message"
    ).first()


# message actions ------------------------------------------------------------------------------
def _chat_message(member: TenantUser, chat_id: int, message_id: str) -> tuple[Chat, Message | None]:
    chat = selectors.access_chat(member=member, chat_id=chat_id)
    if len(message_id) > MAX_ID_CHARS:
        return chat, None
    return chat, Message.objects.filter(tenant_id=chat.tenant_id, chat=chat, graph_id=message_id).first()


def _no_message() -> JsonResponse:
    return json_error(404, "not_found", _("No such message."))


def _changed(member: TenantUser, chat: Chat, change: Callable[[], Message | None]) -> JsonResponse:
    try:
        message = change()
    except sending.ActionFailed as exc:
        return _failed(exc)
    if message is None:
        # Done in Teams; how the message looks now reaches the page live, once read back.
        return JsonResponse({"pending": True, "message": None}, status=202)
    names = _names(chat, [message])
    return JsonResponse({"message": message_payload(message, me=str(member.oid), names=names)})


@member_json("PATCH", "DELETE")
def chat_message(request: HttpRequest, member: TenantUser, chat_id: int, message_id: str) -> JsonResponse:
    """Edit (PATCH `{"content"}`) or delete (DELETE) one's own message."""
    chat, message = _chat_message(member, chat_id, message_id)
    if message is None:
        return _no_message()
    if request.method == "DELETE":
        return _changed(member, chat, lambda: sending.message_delete(member=member, chat=chat, message=message))
    body = json_body(request)
    if isinstance(body, JsonResponse):
        return body
    text = body.get("content")
    if not isinstance(text, str) or not text.strip():
        return json_error(400, "empty", _("A message cannot be empty; delete it instead."))
    if len(text) > MAX_MESSAGE_CHARS:
        return json_error(400, "too_long", _too_long())
    return _changed(member, chat, lambda: sending.message_edit(member=member, chat=chat, message=message, text=text))


@member_json("POST")
def chat_message_restore(request: HttpRequest, member: TenantUser, chat_id: int, message_id: str) -> JsonResponse:
    chat, message = _chat_message(member, chat_id, message_id)
    if message is None:
        return _no_message()
    return _changed(member, chat, lambda: sending.message_restore(member=member, chat=chat, message=message))


@member_json("POST")
def chat_message_reactions(request: HttpRequest, member: TenantUser, chat_id: int, message_id: str) -> JsonResponse:
    """`{"reaction": "👍", "on": true}` gives one's reaction, `"on": false` takes it back."""
    chat, message = _chat_message(member, chat_id, message_id)
    if message is None:
        return _no_message()
    body = json_body(request)
    if isinstance(body, JsonResponse):
        return body
    reaction, on = body.get("reaction"), body.get("on")
    if reaction not in sending.REACTIONS:
        return json_error(400, "bad_reaction", f"A reaction is one of {' '.join(sending.REACTIONS)}.")
    if not isinstance(on, bool):
        return json_error(400, "bad_on", "on must be true (react) or false (take it back).")
    return _changed(
        member, chat, lambda: sending.message_react(member=member, chat=chat, message=message, reaction=reaction, on=on)
    )


@member_json("GET")
def chat_changes(request: HttpRequest, member: TenantUser, chat_id: int) -> JsonResponse:
    """What changed in a thread since `since` (the page catches up after a reconnect)."""
    chat = selectors.access_chat(member=member, chat_id=chat_id)
    since = parse_datetime(request.GET.get("since", ""))
    if since is None or since.tzinfo is None:
        return json_error(400, "bad_since", "since must be an ISO 8601 time with a zone.")
    now = dt.datetime.now(dt.UTC)  # the next catch-up's `since`
    changes = selectors.thread_changes(chat=chat, since=since)
    me, names = str(member.oid), _names(chat, changes)
    full = len(changes) >= selectors.CHANGES_LIMIT
    payload = [message_payload(m, me=me, names=names) for m in changes]
    return JsonResponse({"messages": payload, "truncated": full, "now": now.isoformat()})


@member_json("POST")
def chat_read(request: HttpRequest, member: TenantUser, chat_id: int) -> JsonResponse:
    """Read up to now; in Teams too (`in_teams` false when Teams did not take it: read here all the same)."""
    chat = selectors.access_chat(member=member, chat_id=chat_id)
    shared = chat_actions.chat_read(member=member, chat=chat)
    return JsonResponse({"read": True, "in_teams": shared})


@member_json("GET")
def chat_people(request: HttpRequest, member: TenantUser) -> JsonResponse:
    query = request.GET.get("q", "").strip()[:100]
    people = selectors.tenant_people(member=member, query=query)
    return JsonResponse({"people": [{"id": p.oid, "name": p.name, "email": p.email} for p in people]})


@member_json("POST")
def chat_create(request: HttpRequest, member: TenantUser) -> JsonResponse:
    body = json_body(request)
    if isinstance(body, JsonResponse):
        return body
    raw = body.get("members")
    topic = body.get("topic") or ""
    if not isinstance(raw, list) or not raw or not all(isinstance(m, str) for m in raw):
        return json_error(400, "no_members", _("Choose at least one person."))
    if len(raw) > MAX_NEW_CHAT_PEOPLE:
        return json_error(
            400,
            "too_many_members",
            _("A new chat can start with at most %(count)d people.") % {"count": MAX_NEW_CHAT_PEOPLE},
        )
    if not isinstance(topic, str) or len(topic) > chat_actions.MAX_TOPIC_CHARS:
        return json_error(400, "bad_topic", chat_actions.topic_too_long())
    oids = _people(member, raw)
    if oids is None:
        return json_error(400, "unknown_person", _("Choose people of your organization."))
    try:
        chat = sending.chat_create(member=member, oids=oids, topic=topic.strip())
    except sending.ActionFailed as exc:
        return _failed(exc)
    return JsonResponse({"chat": chat.pk, "url": reverse("chat_page", args=[chat.pk])}, status=201)


def _uuid(value: Any) -> str | None:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        return None


def _people(member: TenantUser, raw: list[str]) -> list[str] | None:
    """Distinct oids of people of the member's own tenant (not himself), or None if any is not."""
    parsed = [_uuid(value) for value in raw]
    if None in parsed:
        return None
    oids = [oid for oid in dict.fromkeys(parsed) if oid is not None and oid != str(member.oid)]
    if not oids or set(oids) - selectors.people_known(member=member, oids=oids):
        return None
    return oids


@member_json("GET", "POST")
def chat_sync(request: HttpRequest, member: TenantUser) -> JsonResponse:
    """The member's sync: how far it got (GET), or run it now (POST)."""
    state = selectors.sync_state(member=member)
    if request.method == "POST":
        running = state is not None and state.status == ChatSyncState.Status.RUNNING
        if not running:
            transaction.on_commit(lambda: sync_member_chats.delay(member.pk))
        return JsonResponse({"queued": not running, "sync": _sync_json(state)}, status=202)
    return JsonResponse({"sync": _sync_json(state)})


def _too_long() -> str:
    return ngettext(
        "A message can have at most %(count)d character.",
        "A message can have at most %(count)d characters.",
        MAX_MESSAGE_CHARS,
    ) % {"count": MAX_MESSAGE_CHARS}
