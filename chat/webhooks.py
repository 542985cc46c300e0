"""Graph's change-notification and lifecycle webhooks.

Graph cannot send a CSRF token: the secret `clientState` authenticates each item instead.
Nothing here calls Graph: items are checked against our records, syncs are queued, and Graph
gets its 202 at once (it retries slow or failed deliveries, and drops them in the end).
An item we do not recognise is still answered 202: a retry would not make it ours, and a
different answer would tell a prober which subscription ids exist.
"""

from __future__ import annotations

import json
import logging
from functools import partial
from typing import Any

from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from chat import subscriptions, tasks
from chat.models import GraphSubscription
from core import metrics

log = logging.getLogger(__name__)
# Graph groups a few notifications in one POST; this many is not Graph.
MAX_ITEMS = 1000


def _handshake(request: HttpRequest) -> HttpResponse | None:
    """Graph validates a URL by POSTing `validationToken`: it wants it back, exactly, as text/plain."""
    token = request.GET.get("validationToken")
    if token is None:
        return None
    return HttpResponse(token, content_type="text/plain; charset=utf-8")


def _items(request: HttpRequest) -> list[Any] | HttpResponse:
    """The items of Graph's POST, or the answer to give: the handshake's, or a 400."""
    if (answer := _handshake(request)) is not None:
        return answer
    try:
        body = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        body = None
    items = body.get("value") if isinstance(body, dict) else None
    if not isinstance(items, list):
        return HttpResponseBadRequest("expected a JSON object with a 'value' list", content_type="text/plain")
    if len(items) > MAX_ITEMS:
        return HttpResponse("too many items in one request", status=413, content_type="text/plain")
    return items


def _ignored(kind: str, ignored: int, total: int) -> None:
    if ignored:
        # Counts only: an item's clientState is a secret, right or wrong.
        log.warning(
            "graph %s: %d of %d items ignored (unknown subscription or clientState mismatch)", kind, ignored, total
        )


def _queue_sync(sub: GraphSubscription) -> None:
    try:
        tasks.sync_notified_chat.delay(sub.pk)
    except Exception:
        # Not queued (the broker is down): without the mark, Graph's retry of this
        # notification (it gets our 500) queues it.
        subscriptions.notification_forget(subscription=sub)
        raise


@csrf_exempt
@require_POST
def notifications(request: HttpRequest) -> HttpResponse:
    items = _items(request)
    if isinstance(items, HttpResponse):
        return items
    accepted, ignored = subscriptions.notifications_accept(items=items)
    _ignored("notifications", ignored, len(items))
    metrics.webhook_delivery("notifications", matched=len(accepted), refused=ignored)
    for sub in {a.subscription.pk: a.subscription for a in accepted}.values():
        if subscriptions.notification_mark(subscription=sub):
            transaction.on_commit(partial(_queue_sync, sub))
    return HttpResponse(status=202)


@csrf_exempt
@require_POST
def lifecycle(request: HttpRequest) -> HttpResponse:
    items = _items(request)
    if isinstance(items, HttpResponse):
        return items
    accepted, ignored = subscriptions.notifications_accept(items=items)
    events = [(a.subscription.pk, a.item.get("lifecycleEvent")) for a in accepted]
    known = [(pk, event) for pk, event in events if event in subscriptions.LIFECYCLE_EVENTS]
    refused = ignored + len(events) - len(known)
    _ignored("lifecycle events", refused, len(items))
    metrics.webhook_delivery("lifecycle", matched=len(known), refused=refused)
    for pk, event in known:
        transaction.on_commit(partial(tasks.handle_subscription_lifecycle.delay, pk, str(event)))
    return HttpResponse(status=202)
