"""One user's chat sync: Graph → the mirror, within Graph's limits, safe to run twice or to kill.

1. List the user's chats (`/me/chats`, members and last message preview, 50 a page).
2. For each chat with something newer than its watermark (or every chat, in a full sync), ask
   for the changes after it: `lastModifiedDateTime gt W`, newest first, 50 a page. First pages of
   up to 20 chats go in one `$batch`; so do the next pages.
3. A batch's pages are upserted together as they come (newer wins; one transaction: COPY into a
   staging table and one merge). A chat's watermark moves only with its last page, in the same
   transaction: a sync killed half-way leaves rows that the next one upserts again, never a gap.

Every Graph request for messages first takes its turn in Redis, counted as Graph counts: sliding
windows of the tenant's requests (Graph allows 20/s per app per tenant), the app's across tenants
(200/s) and the chat's (1/s), at the times they may reach Graph (their turn plus the lateness
seen lately, until answered). A `$batch` takes one turn for all its requests, which reach Graph
together. A 429 holds that chat for its `Retry-After` (or a jittered backoff when Teams sends none).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import random
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from redis.exceptions import LockError
from redis.lock import Lock

from chat import live, services
from chat.models import Chat, ChatSyncState, Message
from core import coordination, logs, metrics
from identity import services as identity_services
from integrations import entra, graph
from tenants import services as tenant_services
from tenants.models import CustomerTenant, TenantUser

log = logging.getLogger(__name__)


class SyncDeferred(Exception):
    """Graph or Entra asked us to wait: run the sync again after `countdown` seconds."""

    def __init__(self, countdown: float, reason: str) -> None:
        super().__init__(reason)
        self.countdown = countdown
        self.reason = reason


class SyncStopped(Exception):
    """The sync cannot go on until someone acts (consent, sign-in): it says why."""


@dataclass
class Cursor:
    chat: Chat
    since: str | None
    next_link: str | None = None
    newest: dt.datetime | None = None
    not_before: float = 0.0
    throttles: int = 0
    messages: int = 0


@dataclass
class Progress:
    state: ChatSyncState
    lease: Lock
    requests: int = 0
    messages: int = 0
    pending: list[Cursor] = field(default_factory=list)
    # A targeted sync (a notification's chat) leaves the member's progress as the last full one left it.
    quiet: bool = False
    # The newest change written to a chat mirrored before (for the lag metric).
    changed_at: dt.datetime | None = None


def backoff(attempt: int, retry_after: float | None) -> float:
    """`Retry-After` when Graph sends it; else exponential with full jitter, capped."""
    if retry_after is not None:
        return retry_after
    return random.uniform(0.5, min(60.0, 2.0 ** min(attempt, 6)))  # noqa: S311 - jitter, not security


@contextmanager
def graph_turn(tenant: CustomerTenant, chats: Sequence[Chat], *, max_wait: float | None = None) -> Iterator[float]:
    """A turn for one chat-message request per chat, all at once (one `$batch`), counted as Graph
    counts them: per tenant, across the app's tenants and per chat. Gives the seconds to wait
    before sending; the block sends, and the turn is over when it ends (answered or not).
    SyncDeferred when the wait would be over `max_wait` (GRAPH_MAX_WAIT_SECONDS). The sync and
    the composer share these windows, and the lateness of the app's sends."""
    limit = settings.GRAPH_MAX_WAIT_SECONDS if max_wait is None else max_wait
    rates = [
        coordination.Rate(
            f"graph-tenant:{tenant.vendor_id}:{tenant.tid}", settings.GRAPH_CHAT_RPS_PER_TENANT, len(chats)
        ),
        coordination.Rate(f"graph-app:{tenant.vendor_id}", settings.GRAPH_CHAT_RPS_PER_APP, len(chats)),
        *(
            coordination.Rate(f"graph-chat:{tenant.vendor_id}:{chat.graph_id}", settings.GRAPH_CHAT_RPS_PER_CHAT)
            for chat in chats
        ),
    ]
    turn = coordination.window_take(rates, lateness=f"graph-app:{tenant.vendor_id}", max_wait=limit)
    labels = {"vendor": tenant.vendor_id, "tenant": tenant.pk}
    if not turn.reserved:
        metrics.graph_slot_deferrals.labels(**labels).inc()
        raise SyncDeferred(turn.wait, "graph_busy")
    metrics.graph_slot_waits.labels(**labels).observe(turn.wait)
    try:
        yield turn.wait
    finally:
        coordination.window_done(turn)


def graph_batch_size() -> int:
    """How many chats' requests one `$batch` may carry within Graph's limits (and the batch's)."""
    return min(
        graph.BATCH_LIMIT,
        coordination.window_capacity(settings.GRAPH_CHAT_RPS_PER_TENANT),
        coordination.window_capacity(settings.GRAPH_CHAT_RPS_PER_APP),
    )


class PermissionMissing(Exception):
    """The tenant has not consented to a permission asked for beyond the chat scopes."""


def member_token(member: TenantUser, *, also: str | None = None) -> str:
    """The member's Graph token for chats; SyncStopped or SyncDeferred say why there is none.

    `also`: a permission the token must hold besides the chat scopes (one the tenant may have
    consented to after this token was cached, or not at all: PermissionMissing, and nothing else
    is concluded from it).
    """
    scopes = graph.CHAT_SCOPES if also is None else [*graph.CHAT_SCOPES, also]
    try:
        token = identity_services.entra_token_for_user(member=member, scopes=scopes, min_valid_seconds=900)
    except entra.EntraError as exc:
        if also is not None and exc.consent_revoked:
            raise PermissionMissing(also) from exc
        if exc.consent_revoked:
            tenant_services.tenant_mark_consent_revoked(
                tenant=member.tenant, detected_by="user token refresh (Graph chat scopes)", codes=exc.codes
            )
            raise SyncStopped("consent_revoked") from exc
        if exc.transient:
            raise SyncDeferred(30, "entra_unavailable") from exc
        raise SyncStopped("sign_in_again") from exc
    return token.access_token


def _state(member: TenantUser) -> ChatSyncState | None:
    """The member's sync state, made at his first sync; None once his tenant is not active."""
    state = ChatSyncState.objects.filter(tenant=member.tenant, member=member).first()
    if state is not None:
        return state
    try:
        with transaction.atomic():
            services.tenant_hold(tenant_id=member.tenant_id)
            state, _ = ChatSyncState.objects.get_or_create(member=member, defaults={"tenant": member.tenant})
    except services.TenantGone:
        return None
    return state


def _save(state: ChatSyncState, **values: Any) -> None:
    for name, value in values.items():
        setattr(state, name, value)
    # An UPDATE, not save(): a disconnection may have removed the row meanwhile.
    ChatSyncState.objects.filter(pk=state.pk, tenant_id=state.tenant_id).update(**values)


def chat_sync_member(
    *, member: TenantUser, full: bool = False, chat_ids: list[str] | None = None, only: bool = False
) -> ChatSyncState:
    """Sync one member's chats (all that changed; `full`: every chat; `chat_ids`: those too).

    With `only`, just the chats `chat_ids` (a change notification named them): the chat list is
    not read again. Such a sync takes a lock of those chats, not the member's: it runs beside
    the member's own sync (newer wins and the watermark only moves forward, so two readers of one
    chat are safe), and neither waits for the other. If the same chats are being synced, the
    caller is asked to retry: that sync may have read them before the change.
    """
    kind = "targeted" if only else "full" if full else "incremental"
    started, outcome = time.monotonic(), "error"
    try:
        with logs.bound(vendor=member.tenant.vendor_id, tenant=member.tenant_id, member=member.pk):
            state = _sync_member(member, full=full, chat_ids=chat_ids, only=only)
        outcome = "ok" if state.status == ChatSyncState.Status.IDLE else str(state.status)
    except SyncDeferred:
        outcome = "deferred"
        raise
    finally:
        metrics.chat_syncs.labels(kind=kind, outcome=outcome).inc()
        metrics.chat_sync_duration.labels(kind=kind).observe(time.monotonic() - started)
    return state


def _sync_member(member: TenantUser, *, full: bool, chat_ids: list[str] | None, only: bool) -> ChatSyncState:
    state = _state(member)
    if state is None or member.tenant.status != CustomerTenant.Status.ACTIVE:
        return _not_active(member, state)
    targets = set(chat_ids or ())
    try:
        lock = _lock_name(member, targets if only else None)
        with coordination.held(lock, timeout=settings.CHAT_SYNC_LOCK_SECONDS, wait=0) as lease:
            _run(member, state, lease, full=full, targets=targets, only=only)
    except coordination.Busy:
        log.info("chat sync of member %s already running", member.pk)
        if only:
            raise SyncDeferred(2, "sync_running") from None
    except SyncStopped as exc:
        _save(state, status=ChatSyncState.Status.STOPPED, stopped_reason=str(exc), finished_at=_now())
        live.publish_progress(state)
    except SyncDeferred as exc:
        if not only:  # a targeted sync is retried by its task; the member's sync is not waiting
            _save(state, status=ChatSyncState.Status.RETRYING, last_error=exc.reason[:500], finished_at=_now())
            live.publish_progress(state)
        raise
    except (services.TenantGone, ChatSyncState.DoesNotExist):
        # Disconnected while syncing: the mirror is gone, and nothing of it is written again.
        log.info("chat sync of member %s ends: the tenant is no longer active", member.pk)
    return state


def sync_stop(*, member: TenantUser, reason: str) -> None:
    """The member's sync cannot go on (consent revoked, sign in again): say why, as the sync does."""
    state = _state(member)
    if state is not None:
        _save(state, status=ChatSyncState.Status.STOPPED, stopped_reason=reason, finished_at=_now())
        live.publish_progress(state)


def _not_active(member: TenantUser, state: ChatSyncState | None) -> ChatSyncState:
    stopped = {"status": ChatSyncState.Status.STOPPED, "stopped_reason": "tenant_not_active"}
    if state is None:
        return ChatSyncState(tenant=member.tenant, member=member, **stopped)
    _save(state, **stopped)
    live.publish_progress(state)
    return state


def _lock_name(member: TenantUser, targets: set[str] | None) -> str:
    """The member's sync lock, or that of a targeted sync of these chats."""
    if targets is None:
        return f"chat-sync:{member.pk}"
    digest = hashlib.sha256("|".join(sorted(targets)).encode()).hexdigest()[:32]
    return f"chat-sync-chats:{member.pk}:{digest}"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _run(member: TenantUser, state: ChatSyncState, lease: Lock, *, full: bool, targets: set[str], only: bool) -> None:
    progress = Progress(state, lease, quiet=only)
    if not only:
        if state.last_success_at is not None:
            metrics.chat_sync_staleness.observe((_now() - state.last_success_at).total_seconds())
        _save(state, status=ChatSyncState.Status.RUNNING, started_at=_now(), chats_done=0, stopped_reason="")
        live.publish_progress(state)
    with asyncio.Runner() as runner:
        session = graph.GraphSession.open(member_token(member))
        try:
            if only:
                chats = list(Chat.objects.filter(tenant=member.tenant, members__oid=member.oid, graph_id__in=targets))
            else:
                chats = _list_chats(runner, session, member, progress)
                live.publish_list(member)  # the list shows them now; previews fill in as pages land
            progress.pending = [
                Cursor(chat, services.graph_time(chat.watermark) if chat.watermark else None)
                for chat in chats
                if full or chat.graph_id in targets or _changed(chat)
            ]
            if not only:
                _save(state, chats_total=len(progress.pending))
            while progress.pending:
                _round(runner, session, member.tenant, progress)
        except graph.GraphError as exc:
            _graph_failure(exc, progress)
        finally:
            runner.run(session.aclose())
    if progress.changed_at is not None:
        metrics.chat_sync_lag.observe(max(0.0, (_now() - progress.changed_at).total_seconds()))
    done = {"finished_at": _now()} if not only else {}
    _save(
        state,
        status=ChatSyncState.Status.IDLE,
        stopped_reason="",
        last_error="",
        last_success_at=_now(),
        requests_made=F("requests_made") + progress.requests,
        **done,
    )
    state.refresh_from_db(fields=["requests_made", "chats_done", "messages_synced"])
    if not only:
        live.publish_progress(state)


def _changed(chat: Chat) -> bool:
    return chat.watermark is None or (chat.last_message_at is not None and chat.last_message_at > chat.watermark)


def _graph_failure(exc: graph.GraphError, progress: Progress) -> None:
    if exc.status == 401:
        raise SyncStopped("sign_in_again") from exc
    if exc.status == 403:
        raise SyncStopped("forbidden") from exc
    if exc.transient:
        raise SyncDeferred(backoff(1, exc.retry_after), f"graph_{exc.status or 'unreachable'}") from exc
    raise exc


def _list_chats(
    runner: asyncio.Runner, session: graph.GraphSession, member: TenantUser, progress: Progress
) -> list[Chat]:
    items, next_link = [], None
    while True:
        page = runner.run(session.chats_page(next_link))
        progress.requests += 1
        items += page.get("value", [])
        next_link = page.get("@odata.nextLink")
        if not next_link:
            break
    for item in items:
        if len(item.get("members") or []) >= graph.EXPANDED_MEMBERS_LIMIT:
            item["members"] = _all_members(runner, session, item["id"], progress)
    return list(services.chats_upsert(member=member, items=items).values())


def _all_members(
    runner: asyncio.Runner, session: graph.GraphSession, chat_id: str, progress: Progress
) -> list[dict[str, Any]]:
    """Every member of a large chat: `$expand=members` stops at 25."""
    members: list[dict[str, Any]] = []
    next_link = None
    while True:
        _renew(progress)
        page = runner.run(session.members_page(chat_id, next_link))
        progress.requests += 1
        members += page.get("value", [])
        next_link = page.get("@odata.nextLink")
        if not next_link:
            return members


# System events after which a chat's members or topic are not what the mirror has.
ROSTER_EVENTS = (
    "membersAddedEventMessageDetail",
    "membersDeletedEventMessageDetail",
    "membersJoinedEventMessageDetail",
    "membersLeftEventMessageDetail",
    "chatRenamedEventMessageDetail",
)


def _roster_changed(items: list[dict[str, Any]]) -> bool:
    return any(str((item.get("eventDetail") or {}).get("@odata.type", "")).endswith(ROSTER_EVENTS) for item in items)


def _rosters(runner: asyncio.Runner, session: graph.GraphSession, progress: Progress, chats: list[Chat]) -> None:
    """Chats whose new messages say that members came or went, or that the chat was renamed:
    each read again with its members, into the mirror before those messages are shown (the page
    then draws the new members and topic with them). A chat that cannot be read now is left to
    the member's next listing of his chats."""
    items = []
    for chat in chats:
        _renew(progress)
        try:
            item = runner.run(session.chat_with_members(chat.graph_id))
            progress.requests += 1
        except graph.GraphError as exc:
            log.info("chat %s not read again after a change of its members: %s", chat.pk, exc.status)
            continue
        items.append(item)
    if items:
        services.chats_upsert(member=progress.state.member, items=items, complete=False)


def _renew(progress: Progress) -> None:
    try:
        progress.lease.reacquire()  # still ours, for another CHAT_SYNC_LOCK_SECONDS
    except LockError as exc:
        raise SyncDeferred(settings.CHAT_SYNC_LOCK_SECONDS, "sync_lock_lost") from exc


def _round(runner: asyncio.Runner, session: graph.GraphSession, tenant: CustomerTenant, progress: Progress) -> None:
    """One round trip: the next page of up to 20 chats whose turn has come."""
    _renew(progress)
    now = time.monotonic()
    ready = [c for c in progress.pending if c.not_before <= now][: graph_batch_size()]
    if not ready:
        time.sleep(max(0.0, min(c.not_before for c in progress.pending) - now))
        return
    requests = [session.messages_request(c.chat.graph_id, c.since, c.next_link) for c in ready]
    with graph_turn(tenant, [c.chat for c in ready]) as wait:
        time.sleep(wait)
        # Even a single page goes as a batch: one round trip either way, and one way to read answers.
        answers = runner.run(session.batch(requests))
    progress.requests += len(ready)
    pages = [
        (cursor, body)
        for cursor, (status, body, headers) in zip(ready, answers, strict=True)
        if _answer(cursor, status, body, headers, progress)
    ]
    if progress.quiet:
        # A notified change: the chat list was not read, so members and topic come from here.
        changed = [c.chat for c, body in pages if c.since is not None and _roster_changed(body.get("value", []))]
        _rosters(runner, session, progress, changed)
    _pages(pages, progress)
    if not progress.quiet:
        progress.state.refresh_from_db(fields=["chats_done", "chats_total", "messages_synced"])
        live.publish_progress(progress.state)


def _answer(cursor: Cursor, status: int, body: dict[str, Any], headers: dict[str, str], progress: Progress) -> bool:
    """Whether the answer is a page to write; else what it means for the chat is done."""
    if status == 200:
        return True
    error = graph.error_from(status, body, headers)
    if status in (403, 404):
        # The chat is gone or no longer the user's: nothing more to read.
        progress.pending.remove(cursor)
        return False
    if error.transient:
        cursor.throttles += 1
        cursor.not_before = time.monotonic() + backoff(cursor.throttles, error.retry_after)
        if cursor.throttles > settings.GRAPH_MAX_THROTTLES_PER_CHAT:
            raise SyncDeferred(backoff(cursor.throttles, error.retry_after), "graph_throttled")
        return False
    raise error


def _pages(answered: list[tuple[Cursor, dict[str, Any]]], progress: Progress) -> None:
    """A round's pages, written together (one transaction); each chat's watermark with its last page."""
    if not answered:
        return
    pages = []
    for cursor, body in answered:
        items = body.get("value", [])
        for item in items:
            modified = services.parse_time(item.get("lastModifiedDateTime") or item.get("createdDateTime"))
            if modified and (cursor.newest is None or modified > cursor.newest):
                cursor.newest = modified
        cursor.next_link = body.get("@odata.nextLink")
        cursor.throttles = 0
        done = cursor.next_link is None
        pages.append(services.Page(cursor.chat, items, cursor.newest if done else None))
    count = services.pages_upsert(pages=pages)
    finished = []
    for (cursor, _), page in zip(answered, pages, strict=True):
        cursor.messages += len(page.items)
        if cursor.since is not None and page.items:
            # Changes to a chat already mirrored: open threads show them. (A first sync shows progress.)
            _publish_changes(cursor.chat, page.items)
            if cursor.newest is not None and (progress.changed_at is None or cursor.newest > progress.changed_at):
                progress.changed_at = cursor.newest
        elif cursor.next_link is None:
            finished.append(cursor.chat)
        if cursor.next_link is None:
            progress.pending.remove(cursor)
    if finished:
        live.publish_chats(finished)
    progress.messages += count
    metrics.chat_sync_messages.labels(**metrics.tenant_labels()).inc(count)
    done_now = sum(1 for cursor, _ in answered if cursor.next_link is None)
    chats_done = {"chats_done": F("chats_done") + done_now} if done_now and not progress.quiet else {}
    _save(progress.state, messages_synced=F("messages_synced") + count, **chats_done)


def _publish_changes(chat: Chat, items: list[dict[str, Any]]) -> None:
    ids = [item["id"] for item in items]
    live.publish_messages(
        chat,
        Message.objects.filter(tenant_id=chat.tenant_id, chat=chat, graph_id__in=ids).order_by(
            "created_at", "graph_id"
        ),
    )
