"""A message's inline image, fetched from Graph with the member's own token and kept in the cache.

The page cannot fetch Graph's hosted-content URLs itself (they need the user's token), so the
message HTML points at this view instead (`render.hosted_images`). Only images of a message the
member can see, named in that message's body, are fetched; only image types are answered, and
under a content-security policy that runs nothing, so a hostile file is at most a broken image.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.core.cache import cache
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _

from chat import selectors, sending
from chat.models import Message
from chat.render import content_id_of, hosted_content_id, hosted_images
from chat.views import _failed
from core.http import json_error
from integrations import graph
from tenants.api import member_or_error
from tenants.models import TenantUser

log = logging.getLogger(__name__)
MAX_BYTES = 5 * 1024 * 1024
TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp"}
# Teams never changes an image once sent: a day in the browser, and a day in the server's cache
# for images up to CACHE_MAX_BYTES (larger ones would crowd the cache the rest of the portal uses).
BROWSER_SECONDS = 86400
CACHE_SECONDS = 86400
CACHE_MAX_BYTES = 1024 * 1024


def _member_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Like `views.member_json` (GET only), for a view that answers bytes the browser may keep."""

    @wraps(view)
    def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = _refusal(request) or _answer(view, request, *args, **kwargs)
        if isinstance(response, JsonResponse):
            add_never_cache_headers(response)
        return response

    return checked


def _refusal(request: HttpRequest) -> JsonResponse | None:
    if request.method != "GET":
        refused = json_error(405, "method_not_allowed", "Use GET.")
        refused["Allow"] = "GET"
        return refused
    return None


def _answer(view: Callable[..., HttpResponse], request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    member = member_or_error(request, verb="chat")
    if isinstance(member, JsonResponse):
        return member
    try:
        return view(request, member, *args, **kwargs)
    except Http404:
        # The same answer for an image, message or chat that does not exist and one that is not yours.
        return json_error(404, "not_found", "No such image.")


@_member_view
def message_hosted(
    request: HttpRequest, member: TenantUser, chat_id: int, message_id: str, content_token: str
) -> HttpResponse:
    chat = selectors.access_chat(member=member, chat_id=chat_id)
    message = Message.objects.filter(tenant_id=chat.tenant_id, chat=chat, graph_id=message_id[:64]).first()
    content_id = content_id_of(content_token)
    if message is None or message.deleted_at is not None or content_id is None or not _names_image(message, content_id):
        raise Http404("No such image")
    key = _key(chat.tenant_id, chat.pk, message.graph_id, content_id)
    kept = cache.get(key)
    if kept is None:
        try:
            kept = _fetch(member, chat.graph_id, message.graph_id, content_id)
        except sending.ActionFailed as exc:
            return _failed(exc)
        if isinstance(kept, JsonResponse):
            return kept
        if len(kept[1]) <= CACHE_MAX_BYTES:
            cache.set(key, kept, CACHE_SECONDS)
    content_type, data = kept
    response = HttpResponse(data, content_type=content_type)
    response["Cache-Control"] = f"private, max-age={BROWSER_SECONDS}"
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


def _names_image(message: Message, content_id: str) -> bool:
    """Whether the message's body shows this hosted content (only such are fetched)."""
    return any(hosted_content_id(url, message.graph_id) == content_id for url in hosted_images(message))


def _key(tenant_id: int, chat_id: int, message_id: str, content_id: str) -> str:
    # Hosted content ids are long opaque strings: hashed into a key of fixed length.
    digest = hashlib.sha256(f"{message_id}\x00{content_id}".encode()).hexdigest()
    return f"chat-hosted:{tenant_id}:{chat_id}:{digest}"


def _fetch(member: TenantUser, chat_id: str, message_id: str, content_id: str) -> tuple[str, bytes] | JsonResponse:
    """(content type, bytes) from Graph, or the JSON error to answer."""

    async def read(g: graph.GraphSession) -> graph.HostedContent | str:
        try:
            return await g.hosted_content(chat_id, message_id, content_id, limit=MAX_BYTES)
        except graph.ContentTooLarge:
            return "too_large"
        except graph.GraphError as exc:
            if exc.status == 404:
                return "not_found"
            raise

    found = sending._as_user(member, read)
    if found == "not_found":
        return json_error(404, "not_found", "No such image.")
    if found == "too_large" or not isinstance(found, graph.HostedContent):
        return json_error(502, "too_large", _("This image is too large to show here; open it in Teams."))
    content_type = found.content_type.split(";", 1)[0].strip().lower()
    if content_type not in TYPES:
        log.info("hosted content of type %r not shown", content_type[:100])
        return json_error(415, "unsupported_type", _("This file is not an image the portal shows; open it in Teams."))
    return content_type, found.data
