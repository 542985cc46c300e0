"""Per-user Entra tokens (the sealed MSAL cache) and the Entra → ACS token exchange."""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.utils.translation import gettext_lazy
from django.views.decorators.debug import sensitive_variables

from core import coordination, crypto, logs, metrics, rotation
from identity.models import EntraTokenCache
from integrations import acs, entra
from tenants import services as tenant_services
from tenants.models import AuditEvent, CustomerTenant, TenantUser
from tenants.scopes import ACS_SCOPES

logger = logging.getLogger(__name__)
LOCK_TIMEOUT = 60  # a holder killed mid-exchange frees the lock after this


# the sealed token cache ----------------------------------------------------------------------
def token_cache_context(member: TenantUser) -> str:
    return _cache_context(member.tenant.tid, member.oid)


def _cache_context(tid: object, oid: object) -> str:
    # The person, not the row: a value copied to another user's row does not decrypt.
    return f"entra-token-cache:{tid}:{oid}"


def _cache_lock(member: TenantUser) -> AbstractContextManager[object]:
    # Web requests wait for a worker's refresh at most as long as one outgoing call.
    return coordination.held(f"token-cache:{member.pk}", timeout=LOCK_TIMEOUT, wait=2 * settings.OUTBOUND_TIMEOUT)


@sensitive_variables("serialized")
def token_cache_seed(*, member: TenantUser, serialized: str) -> None:
    """Keep the MSAL cache of a new sign-in (its refresh token), over whatever was there."""
    with _cache_lock(member):
        token_cache_store(member=member, serialized=serialized)


@sensitive_variables("serialized")
def token_cache_store(*, member: TenantUser, serialized: str) -> None:
    """Seal and keep the user's MSAL cache; callers hold the user's cache lock."""
    EntraTokenCache.objects.update_or_create(
        member=member,
        defaults={"tenant": member.tenant, "sealed": crypto.seal(serialized, context=token_cache_context(member))},
    )
    cache.delete(_failure_key(member))


SEALED_TOKEN_CACHES = rotation.SealedColumn(
    "token caches",
    EntraTokenCache,
    "sealed",
    lambda row: _cache_context(row.tenant.tid, row.member.oid),
    related=("tenant", "member"),
)


def token_cache_load(*, member: TenantUser) -> str:
    """The user's MSAL cache, or "" when there is none; DecryptionError if it is not this user's."""
    row = EntraTokenCache.objects.filter(member=member, tenant=member.tenant).first()
    return crypto.unseal(row.sealed, context=token_cache_context(member)) if row else ""


@contextmanager
def _user_tokens(member: TenantUser) -> Iterator[str]:
    """The user's cache, held so that web and workers never write it back over each other."""
    with _cache_lock(member):
        try:
            serialized = token_cache_load(member=member)
        except crypto.DecryptionError:
            # Not sealed for this user (copied from another row) or with a key no longer listed.
            logger.warning("token cache of tenant user %s does not decrypt", member.pk)
            raise entra.EntraError("cache_not_readable", []) from None
        yield serialized


@sensitive_variables("serialized", "token")
def entra_token_for_user(*, member: TenantUser, scopes: list[str], min_valid_seconds: int = 300) -> entra.UserToken:
    """An Entra access token for one resource, silently; the cache is written back only if msal changed it.

    The work at hand is the member's from here on: his ids go into the log context (and label
    the Graph metrics) until the request or task ends."""
    logs.bind(vendor=member.tenant.vendor_id, tenant=member.tenant_id, member=member.pk)
    with _user_tokens(member) as serialized:
        token = entra.acquire_user_token(
            tenant_services.vendor_entra_app(member.tenant.vendor),
            cache=serialized,
            tid=str(member.tenant.tid),
            oid=str(member.oid),
            scopes=scopes,
            min_valid_seconds=min_valid_seconds,
        )
        if token.cache is not None:
            token_cache_store(member=member, serialized=token.cache)
    return token


# the ACS token ------------------------------------------------------------------------------
@dataclass(frozen=True)
class TeamsUserToken:
    token: str = field(repr=False)
    expires_at: dt.datetime
    oid: str


class TokenUnavailable(Exception):
    """Why no ACS token can be given now, and what the user can do about it."""

    status = 503
    reason = "acs_unavailable"
    message = gettext_lazy("The calling service is not available right now. Try again in a moment.")

    def __init__(self, retry_after: float | None = None) -> None:
        super().__init__(self.reason)
        self.retry_after = retry_after


class ConsentRevoked(TokenUnavailable):
    status = 403
    reason = CustomerTenant.Status.CONSENT_REVOKED.value
    message = tenant_services.CONSENT_REVOKED_MESSAGE


class SignInAgain(TokenUnavailable):
    status = 401
    reason = "sign_in_again"
    message = gettext_lazy("Your Microsoft sign-in has expired or needs to be confirmed. Sign in again to call.")


class AcsBusy(TokenUnavailable):
    reason = "acs_busy"
    message = gettext_lazy("The calling service is busy. Try again in a few seconds.")


# A cached ACS token is keyed by the member and by the versions of his tenant's status and of
# his role, which the database moves on every change (tenants.triggers), bulk or not: once the
# tenant stops being active, no token cached before is reachable. The warm path reads them from
# the session's user, loaded with his membership and tenant (identity.backends): no query.
def _token_key(member: TenantUser) -> str:
    return f"acs-token:{member.pk}:{member.tenant.token_version}:{member.token_version}"


def _failure_key(member: TenantUser) -> str:
    return f"acs-token-failure:{member.pk}"


def _margin() -> dt.timedelta:
    return dt.timedelta(seconds=settings.ACS_TOKEN_MARGIN_SECONDS)


# Each process also keeps the sealed values it read or wrote, under the same versioned keys: the
# warm path then makes no Redis round trip either (on a busy host that round trip was most of
# what the endpoint cost beyond the session's user). A key's versions come from the database with
# the session's user on every request, so a revocation is seen at once here too; the copy is
# sealed like the value in Redis and unsealed per request, and it is kept at most LOCAL_SECONDS,
# so that a token Redis no longer holds (flushed, evicted) is forgotten soon by every process.
LOCAL_TOKENS = 4096  # at most this many kept per process (least recently used first out): ~6 MB
LOCAL_SECONDS = 60.0
_local: OrderedDict[str, tuple[str, float]] = OrderedDict()
_local_lock = threading.Lock()


def _local_get(key: str) -> str | None:
    with _local_lock:
        kept = _local.get(key)
        if kept is None:
            return None
        if kept[1] <= time.monotonic():
            del _local[key]
            return None
        _local.move_to_end(key)
        return kept[0]


def _local_put(key: str, sealed: str) -> None:
    with _local_lock:
        _local[key] = (sealed, time.monotonic() + LOCAL_SECONDS)
        _local.move_to_end(key)
        while len(_local) > LOCAL_TOKENS:
            _local.popitem(last=False)


def _local_forget(key: str) -> None:
    with _local_lock:
        _local.pop(key, None)


def forget_local_tokens() -> None:
    """Forget this process's copies: with Redis emptied, every token is exchanged anew (tests)."""
    with _local_lock:
        _local.clear()


@sensitive_variables("sealed", "payload")
def _valid_token(sealed: str, key: str) -> TeamsUserToken | None:
    """The token sealed under `key` if it decrypts there and is valid beyond the margin."""
    try:
        payload = json.loads(crypto.unseal(sealed, context=key))
    except crypto.DecryptionError:
        return None
    token = TeamsUserToken(
        token=payload["token"], expires_at=dt.datetime.fromisoformat(payload["expires_at"]), oid=payload["oid"]
    )
    return token if token.expires_at - _margin() > dt.datetime.now(dt.UTC) else None


@sensitive_variables("sealed", "token")
def cached_acs_token(*, member: TenantUser) -> TeamsUserToken | None:
    """The member's ACS token if one is cached and valid beyond the margin (no database query;
    no Redis round trip either once this process holds it)."""
    if member.tenant.status != CustomerTenant.Status.ACTIVE:
        return None
    key = _token_key(member)
    sealed = _local_get(key)
    if sealed is not None:
        token = _valid_token(sealed, key)
        if token is not None:
            return token
        _local_forget(key)  # within the margin or unreadable: Redis may hold a newer one
    sealed = coordination.get(key)
    if sealed is None:
        return None
    token = _valid_token(sealed, key)
    if token is not None:
        _local_put(key, sealed)
    return token


@sensitive_variables("token", "payload", "sealed")
def _cache_token(member: TenantUser, token: TeamsUserToken) -> None:
    ttl = (token.expires_at - _margin() - dt.datetime.now(dt.UTC)).total_seconds()
    if ttl < 1:
        return
    payload = json.dumps({"token": token.token, "expires_at": token.expires_at.isoformat(), "oid": token.oid})
    key = _token_key(member)
    sealed = crypto.seal(payload, context=key)
    coordination.put(key, sealed, seconds=int(ttl))
    _local_put(key, sealed)


def acs_token_for_user(*, member: TenantUser) -> TeamsUserToken:
    """The user's ACS token: cached while valid beyond the margin, else exchanged (one at a time per user)."""
    token = cached_acs_token(member=member)
    if token is not None:
        return token
    # The lock outlives everything its holder may wait for: the cache lock and three calls out.
    try:
        with coordination.held(f"acs-exchange:{member.pk}", timeout=LOCK_TIMEOUT, wait=4 * settings.OUTBOUND_TIMEOUT):
            # Whoever held the lock may have just cached a token, or just failed.
            token = cached_acs_token(member=member)
            if token is not None:
                return token
            failure = cache.get(_failure_key(member))
            if failure is not None:
                raise _unavailable(failure["reason"], failure.get("retry_after"))
            return _exchange(member)
    except coordination.Busy:
        raise AcsBusy(retry_after=1) from None
    except coordination.RedisError:
        raise TokenUnavailable(retry_after=5) from None


def _unavailable(reason: str, retry_after: float | None) -> TokenUnavailable:
    kinds: dict[str, type[TokenUnavailable]] = {
        cls.reason: cls for cls in (TokenUnavailable, ConsentRevoked, SignInAgain, AcsBusy)
    }
    return kinds.get(reason, TokenUnavailable)(retry_after=retry_after)


@sensitive_variables("token")
def _exchange(member: TenantUser) -> TeamsUserToken:
    """One exchange, in the member's log context, counted and timed (metrics)."""
    started = time.monotonic()
    try:
        with logs.bound(vendor=member.tenant.vendor_id, tenant=member.tenant_id, member=member.pk):
            token = _exchange_once(member)
    finally:
        metrics.acs_exchange_duration.observe(time.monotonic() - started)
    metrics.acs_exchanges.labels(**metrics.tenant_labels_of(member.tenant), outcome="ok", source="").inc()
    return token


@sensitive_variables("entra_token", "acs_token")
def _exchange_once(member: TenantUser) -> TeamsUserToken:
    tenant = member.tenant
    try:
        # Our turn under the resource's limit first: no Entra request for an exchange that must wait.
        _take_exchange_slot(tenant)
        entra_token = entra_token_for_user(
            member=member,
            scopes=ACS_SCOPES,
            min_valid_seconds=settings.ACS_TOKEN_MARGIN_SECONDS + 60,
        )
        acs_token = acs.exchange_teams_token(
            tenant_services.vendor_acs_resource(tenant.vendor),
            entra_token=entra_token.access_token,
            client_id=str(tenant.vendor.entra_client_id),
            oid=str(member.oid),
        )
    except entra.EntraError as exc:
        raise _failed(member, _entra_failure(member, exc), "entra", codes=exc.codes, entra_error=exc.error) from None
    except acs.AcsError as exc:
        raise _failed(member, _acs_failure(tenant, exc), "acs", status=exc.status, code=exc.code) from None
    except TokenUnavailable as exc:
        raise _failed(member, exc, "portal") from None
    token = TeamsUserToken(token=acs_token.token, expires_at=acs_token.expires_at, oid=str(member.oid))
    # Under the versions read before the exchange: should the tenant have stopped being active
    # meanwhile, its version moved and this token is out of reach.
    _cache_token(member, token)
    tenant_services.tenant_record_exchange(tenant=tenant)
    return token


def _entra_failure(member: TenantUser, exc: entra.EntraError) -> TokenUnavailable:
    if exc.consent_revoked:
        tenant_services.tenant_mark_consent_revoked(
            tenant=member.tenant, detected_by="user token refresh (ACS scopes)", codes=exc.codes
        )
        return ConsentRevoked()
    if exc.transient:
        return TokenUnavailable(retry_after=5)
    # invalid_grant (expired or revoked refresh token), interaction_required (MFA), no cache.
    return SignInAgain()


def _acs_failure(tenant: CustomerTenant, exc: acs.AcsError) -> TokenUnavailable:
    if exc.throttled:
        wait = exc.retry_after if exc.retry_after is not None else 5.0
        coordination.block(_resource_name(tenant), seconds=wait)
        return AcsBusy(retry_after=wait)
    return TokenUnavailable(retry_after=5)


def _resource_name(tenant: CustomerTenant) -> str:
    return f"acs-resource:{tenant.vendor_id}"


def _take_exchange_slot(tenant: CustomerTenant) -> None:
    """Stay under ACS's limit per resource; honour a Retry-After that ACS gave anyone."""
    name = _resource_name(tenant)
    blocked = coordination.blocked_for(name)
    if blocked:
        raise AcsBusy(retry_after=blocked)
    max_wait = settings.ACS_EXCHANGE_MAX_WAIT_SECONDS
    limit = settings.ACS_EXCHANGES_PER_30_SECONDS
    # A burst of a tenth: in any 30 s, at most limit/10 + limit exchanges (495 for 450 < 500).
    wait = coordination.bucket_take(name, rate=limit / 30, burst=max(1, limit // 10), max_wait=max_wait)
    if wait > max_wait:
        raise AcsBusy(retry_after=wait)
    time.sleep(wait)


def _failed(member: TenantUser, error: TokenUnavailable, source: str, **details: Any) -> TokenUnavailable:
    """Audit and count the failure (never the token) and let waiting requests of this user see it.

    `source`: who refused, entra, acs or portal (ACS's limit, kept here)."""
    metrics.acs_exchanges.labels(**metrics.tenant_labels_of(member.tenant), outcome=error.reason, source=source).inc()
    # Long enough for the requests waiting on this exchange, no longer than the advice given.
    memo = min(10, math.ceil(error.retry_after)) if error.retry_after is not None else 10
    cache.set(_failure_key(member), {"reason": error.reason, "retry_after": error.retry_after}, timeout=max(1, memo))
    tenant_services.audit(
        vendor=member.tenant.vendor,
        kind=AuditEvent.Kind.TOKEN_REFUSED,
        tenant=member.tenant,
        oid=str(member.oid),
        reason=error.reason,
        **details,
    )
    return error
