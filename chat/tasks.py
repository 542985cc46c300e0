"""Celery tasks: thin, take ids, call one service, safe to run twice."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.conf import settings

from chat.sync import SyncDeferred, chat_sync_member
from tenants.models import TenantUser

# Redis redelivers an unacknowledged task after its visibility timeout: a countdown must stay
# below it, or the task would run twice at once.
MAX_COUNTDOWN = 300


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True, max_retries=8)
def sync_member_chats(self: Any, member_id: int, full: bool = False, chat_ids: list[str] | None = None) -> str:
    member = TenantUser.objects.select_related("tenant__vendor").filter(pk=member_id).first()
    if member is None:
        return "gone"
    try:
        state = chat_sync_member(member=member, full=full, chat_ids=chat_ids)
    except SyncDeferred as exc:
        limit = min(MAX_COUNTDOWN, settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] // 2)
        raise self.retry(countdown=min(limit, max(1.0, exc.countdown))) from exc
    return str(state.status)
