"""The per-user Entra → ACS token exchange against devcloud: cache, margin, locks, limits, failures."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import jwt
import pytest
from django.contrib import admin
from django.core.cache import cache
from django.db import connections
from django.test import Client

from core import crypto
from identity import services
from identity.models import EntraTokenCache
from tenants.models import AuditEvent, ConsentRecord, CustomerTenant, TenantUser
from tenants.tasks import confirm_tenant_consent
from tests.devcloud_server import CONTOSO_APP, FABRIKAM, USERS, DevCloud
from tests.portal_flow import Person, load_vendors

pytestmark = pytest.mark.django_db

TOKEN_URL = "/api/acs-token/"


@pytest.fixture
def connected(devcloud_settings: DevCloud) -> DevCloud:
    """Fabrikam connected to Contoso by alice."""
    load_vendors(devcloud_settings)
    Person(devcloud_settings, USERS["alice"][0]).connect()
    return devcloud_settings


def signed_in(devcloud: DevCloud, who: str) -> Person:
    person = Person(devcloud, USERS[who][0])
    response: Any = person.sign_in()
    assert response.status_code == 302 and response["Location"] == "/", response
    return person


@pytest.fixture
def bob(connected: DevCloud) -> Person:
    return signed_in(connected, "bob")


def member(who: str) -> TenantUser:
    return TenantUser.objects.select_related("tenant__vendor").get(oid=USERS[who][1])


def exchanges(devcloud: DevCloud) -> int:
    return len(devcloud.requests(endpoint="acs.exchange"))


def refreshes(devcloud: DevCloud) -> int:
    return len(devcloud.requests(endpoint="entra.token.token"))


def forget_cached_tokens() -> None:
    """Redis emptied, and this process's copies with it: the next request exchanges anew."""
    cache.clear()
    services.forget_local_tokens()


def last_refusal() -> AuditEvent:
    return AuditEvent.objects.filter(kind=AuditEvent.Kind.TOKEN_REFUSED).latest("created_at")


def test_the_first_request_exchanges_and_the_second_is_served_from_the_cache(bob: Person, connected: DevCloud) -> None:
    before_entra, before_acs = refreshes(connected), exchanges(connected)
    first = bob.client.post(TOKEN_URL)
    second = bob.client.post(TOKEN_URL)
    assert first.status_code == 200 and second.status_code == 200
    body = first.json()
    assert second.json() == body
    assert refreshes(connected) - before_entra == 1
    assert exchanges(connected) - before_acs == 1
    claims = jwt.decode(body["token"], options={"verify_signature": False})
    assert claims["skypeid"] == f"orgid:{USERS['bob'][1]}"
    assert dt.datetime.fromisoformat(body["expires_on"]).timestamp() == claims["exp"]
    assert body["teams_user"] == {"id": USERS["bob"][1], "raw_id": f"8:orgid:{USERS['bob'][1]}", "cloud": "public"}
    assert "no-store" in first["Cache-Control"]


def test_the_exchange_is_counted_on_the_tenant_and_shown_to_the_admin(bob: Person, connected: DevCloud) -> None:
    bob.client.post(TOKEN_URL)
    tenant = CustomerTenant.objects.get(tid=FABRIKAM)
    assert tenant.acs_exchanges == 1 and tenant.last_acs_exchange_at is not None
    alice = signed_in(connected, "alice")
    page = alice.client.get("/tenant/").content.decode()
    assert "token exchanges: <strong>1</strong>" in page


def test_a_token_within_the_margin_is_exchanged_again(bob: Person, connected: DevCloud, settings: Any) -> None:
    first = bob.client.post(TOKEN_URL).json()
    lifetime = dt.datetime.fromisoformat(first["expires_on"]) - dt.datetime.now(dt.UTC)
    settings.ACS_TOKEN_MARGIN_SECONDS = int(lifetime.total_seconds()) + 5
    before_entra, before_acs = refreshes(connected), exchanges(connected)
    second = bob.client.post(TOKEN_URL).json()
    # The Entra token had no more time left than the ACS token: a fresh one was fetched.
    assert (refreshes(connected) - before_entra, exchanges(connected) - before_acs) == (1, 1)
    assert second["token"] != first["token"]


def test_the_token_cache_is_sealed_and_bound_to_its_user(bob: Person, connected: DevCloud) -> None:
    alice = signed_in(connected, "alice")
    bobs, alices = (
        EntraTokenCache.objects.get(member=member("bob")),
        EntraTokenCache.objects.get(member=member("alice")),
    )
    assert bobs.sealed.startswith("v1.") and "RefreshToken" not in bobs.sealed
    assert "RefreshToken" in services.token_cache_load(member=member("bob"))
    # Bob's ciphertext copied onto alice's row does not decrypt as hers.
    EntraTokenCache.objects.filter(pk=alices.pk).update(sealed=bobs.sealed)
    with pytest.raises(crypto.DecryptionError):
        services.token_cache_load(member=member("alice"))
    response = alice.client.post(TOKEN_URL)
    assert response.status_code == 401 and response.json()["error"] == "sign_in_again"
    assert exchanges(connected) == 0


def test_the_token_cache_is_written_back_only_when_msal_changed_it(bob: Person) -> None:
    before = EntraTokenCache.objects.get(member=member("bob")).updated_at
    services.entra_token_for_user(member=member("bob"), scopes=["https://graph.microsoft.com/User.Read"])
    # The Graph token from sign-in was still in the cache: nothing to write.
    assert EntraTokenCache.objects.get(member=member("bob")).updated_at == before
    services.entra_token_for_user(member=member("bob"), scopes=services.ACS_SCOPES)
    assert EntraTokenCache.objects.get(member=member("bob")).updated_at > before


@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_requests_for_a_cold_user_make_one_exchange(bob: Person, connected: DevCloud) -> None:
    before = exchanges(connected)
    cookies = bob.client.cookies
    start = threading.Barrier(50)

    def request(_: int) -> tuple[int, str]:
        client = Client(SERVER_NAME="localhost")
        client.cookies = cookies
        start.wait()
        try:
            response = client.post(TOKEN_URL)
            return response.status_code, response.json().get("token", "")
        finally:
            connections.close_all()

    with ThreadPoolExecutor(50) as pool:
        results = list(pool.map(request, range(50)))
    assert {status for status, _ in results} == {200}
    assert len({token for _, token in results}) == 1
    assert exchanges(connected) - before == 1


def test_revoked_consent_marks_the_tenant_and_tells_the_user(bob: Person, connected: DevCloud) -> None:
    connected.control("POST", f"/tenants/{FABRIKAM}/apps/{CONTOSO_APP}/revoke-consent", json={"remove_app": False})
    response = bob.client.post(TOKEN_URL)
    assert response.status_code == 403
    assert response.json()["error"] == "consent_revoked"
    assert "consent for Contoso was revoked" in response.json()["message"]
    assert "action_url" not in response.json()  # a member can't fix it; an admin gets a link
    tenant = CustomerTenant.objects.get(tid=FABRIKAM)
    assert tenant.status == CustomerTenant.Status.CONSENT_REVOKED and tenant.scopes_granted == []
    assert ConsentRecord.objects.filter(tenant=tenant, kind=ConsentRecord.Kind.REVOKED).count() == 1
    refusal = last_refusal()
    assert (refusal.reason, refusal.details["codes"]) == ("consent_revoked", [65001])
    # From now on the tenant's status answers, without asking Entra again.
    before = refreshes(connected)
    assert bob.client.post(TOKEN_URL).json()["error"] == "consent_revoked"
    assert refreshes(connected) == before


def test_an_admin_is_pointed_to_the_page_where_consent_is_granted_again(bob: Person, connected: DevCloud) -> None:
    alice = signed_in(connected, "alice")
    connected.control("POST", f"/tenants/{FABRIKAM}/apps/{CONTOSO_APP}/revoke-consent")
    assert bob.client.post(TOKEN_URL).json()["error"] == "consent_revoked"
    response = alice.client.post(TOKEN_URL).json()
    assert (response["error"], response["action_url"]) == ("consent_revoked", "/tenant/")
    assert "Grant consent again" in alice.client.get("/tenant/").content.decode()


@pytest.mark.parametrize(
    ("control", "code"),
    [
        (("POST", "/users/bob@fabrikam.example/revoke-sessions", None), 50173),
        (("POST", "/users/bob@fabrikam.example/require-mfa", None), 50076),
        (("PUT", "/settings", {"refresh_token_lifetime": 0}), 700082),
    ],
    ids=["refresh-token-revoked", "mfa-required", "refresh-token-expired"],
)
def test_a_refresh_token_that_no_longer_works_asks_the_user_to_sign_in_again(
    bob: Person, connected: DevCloud, control: tuple[str, str, Any], code: int
) -> None:
    method, path, body = control
    connected.control(method, path, json=body)
    response = bob.client.post(TOKEN_URL)
    assert response.status_code == 401
    assert response.json()["error"] == "sign_in_again"
    assert response.json()["action_url"] == "/v/contoso/?next=%2Fcall%2F"
    assert (last_refusal().reason, last_refusal().details["codes"]) == ("sign_in_again", [code])
    assert CustomerTenant.objects.get(tid=FABRIKAM).status == CustomerTenant.Status.ACTIVE
    if code != 700082:
        # Signing in again gives a refresh token that works.
        assert signed_in(connected, "bob").client.post(TOKEN_URL).status_code == 200


def test_acs_unavailable_is_a_retryable_error(bob: Person, connected: DevCloud) -> None:
    connected.control("POST", "/faults", json={"service": "acs", "path": "/teamsUser", "status": 503, "count": 1})
    response = bob.client.post(TOKEN_URL)
    assert response.status_code == 503
    assert response.json()["error"] == "acs_unavailable" and int(response["Retry-After"]) >= 1
    assert (last_refusal().reason, last_refusal().details) == (
        "acs_unavailable",
        {"status": 503, "code": "ServiceUnavailable"},
    )


def test_entra_unavailable_is_a_retryable_error(bob: Person, connected: DevCloud) -> None:
    connected.control("POST", "/faults", json={"service": "entra", "path": "/", "status": 503, "count": 5})
    response = bob.client.post(TOKEN_URL)
    assert response.status_code == 503 and response.json()["error"] == "acs_unavailable"


def test_an_acs_429_is_honoured_for_the_whole_resource(bob: Person, connected: DevCloud) -> None:
    connected.control(
        "POST", "/faults", json={"service": "acs", "path": "/teamsUser", "status": 429, "retry_after": 30, "count": 1}
    )
    response = bob.client.post(TOKEN_URL)
    assert response.status_code == 503
    assert response.json()["error"] == "acs_busy" and response["Retry-After"] == "30"
    # Another user of the same ACS resource waits too: ACS is not asked again before Retry-After.
    alice = signed_in(connected, "alice")
    before_acs, before_entra = len(connected.requests(service="acs")), refreshes(connected)
    response = alice.client.post(TOKEN_URL)
    assert response.json()["error"] == "acs_busy" and 25 <= int(response["Retry-After"]) <= 30
    assert len(connected.requests(service="acs")) == before_acs
    assert refreshes(connected) == before_entra


def test_the_token_bucket_keeps_exchanges_under_the_resource_limit(
    bob: Person, connected: DevCloud, settings: Any
) -> None:
    settings.ACS_EXCHANGES_PER_30_SECONDS = 1
    settings.ACS_EXCHANGE_MAX_WAIT_SECONDS = 0
    assert bob.client.post(TOKEN_URL).status_code == 200
    alice = signed_in(connected, "alice")
    response = alice.client.post(TOKEN_URL)
    assert response.status_code == 503 and response.json()["error"] == "acs_busy"
    assert 25 <= int(response["Retry-After"]) <= 30
    assert exchanges(connected) == 1


def test_no_token_reaches_the_logs(bob: Person, connected: DevCloud, caplog: pytest.LogCaptureFixture) -> None:
    # Our loggers at DEBUG; the SDKs' at the levels settings.LOGGING gives them.
    caplog.set_level(logging.DEBUG)
    token = bob.client.post(TOKEN_URL).json()["token"]
    forget_cached_tokens()
    connected.control("POST", "/faults", json={"service": "acs", "path": "/teamsUser", "status": 503, "count": 1})
    assert bob.client.post(TOKEN_URL).status_code == 503
    EntraTokenCache.objects.filter(member=member("bob")).update(sealed="v1.unknown.x")
    forget_cached_tokens()
    assert bob.client.post(TOKEN_URL).status_code == 401
    text = caplog.text + "".join(str(r.args) for r in caplog.records)
    assert caplog.records, "nothing was logged at all"
    assert token not in text and "eyJ" not in text


def test_tokens_are_not_in_the_admin() -> None:
    assert EntraTokenCache not in admin.site._registry


def test_the_endpoint_refuses_anonymous_users_and_get_and_a_missing_csrf_token(bob: Person) -> None:
    anonymous = Client().post(TOKEN_URL)
    assert anonymous.status_code == 401 and anonymous.json()["error"] == "not_signed_in"
    wrong_method = bob.client.get(TOKEN_URL)
    assert wrong_method.status_code == 405 and wrong_method.json()["error"] == "method_not_allowed"
    assert wrong_method["Allow"] == "POST"
    strict = Client(enforce_csrf_checks=True, SERVER_NAME="localhost")
    strict.cookies = bob.client.cookies
    refused = strict.post(TOKEN_URL, HTTP_ACCEPT="application/json")
    assert refused.status_code == 403 and refused.json()["error"] == "csrf_failed"
    strict.get("/")
    allowed = strict.post(TOKEN_URL, HTTP_X_CSRFTOKEN=strict.cookies["csrftoken"].value)
    assert allowed.status_code == 200


def test_users_of_a_tenant_that_is_not_active_get_403(bob: Person, connected: DevCloud) -> None:
    CustomerTenant.objects.filter(tid=FABRIKAM).update(status=CustomerTenant.Status.CONSENT_REVOKED)
    response = bob.client.post(TOKEN_URL)
    assert response.status_code == 403 and response.json()["error"] == "consent_revoked"
    assert bob.client.get("/call/").status_code == 403
    CustomerTenant.objects.filter(tid=FABRIKAM).update(status=CustomerTenant.Status.PENDING)
    assert bob.client.post(TOKEN_URL).json()["error"] == "tenant_not_active"
    assert exchanges(connected) == 0


def test_vendor_staff_cannot_get_a_token(connected: DevCloud) -> None:
    staff = Person(connected, "support@contoso.example")
    staff.sign_in()
    response = staff.client.post(TOKEN_URL)
    assert response.status_code == 403 and response.json()["error"] == "not_a_tenant_user"


def test_people_lists_only_the_callers_tenant(bob: Person, connected: DevCloud) -> None:
    nina = Person(connected, "nina@northwind.example")
    nina.connect()
    signed_in(connected, "alice")
    people = bob.client.get("/call/people/").json()
    assert [p["name"] for p in people["people"]] == ["Alice Anders"]
    assert bob.client.get("/call/people/", {"q": "nina"}).json() == {"people": [], "has_more": False}
    assert nina.client.get("/call/people/").json()["people"] == []


def test_a_cached_token_is_not_served_once_the_tenant_is_no_longer_active(
    bob: Person, connected: DevCloud, django_capture_on_commit_callbacks: Any
) -> None:
    assert bob.client.post(TOKEN_URL).status_code == 200
    connected.control("POST", f"/tenants/{FABRIKAM}/apps/{CONTOSO_APP}/revoke-consent")
    with django_capture_on_commit_callbacks(execute=True):
        assert confirm_tenant_consent(CustomerTenant.objects.get(tid=FABRIKAM).pk) == "revoked"
    response = bob.client.post(TOKEN_URL)
    assert response.status_code == 403 and response.json()["error"] == "consent_revoked"


def test_a_cached_token_is_not_served_once_the_member_is_removed(
    bob: Person, django_capture_on_commit_callbacks: Any
) -> None:
    assert bob.client.post(TOKEN_URL).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        member("bob").delete()  # as the Django admin would; the portal user and session remain
    response = bob.client.post(TOKEN_URL)
    assert response.status_code == 403 and response.json()["error"] == "not_a_tenant_user"


def test_an_exchange_that_ends_after_the_tenant_was_deactivated_leaves_nothing_cached(bob: Person) -> None:
    bobs = member("bob")
    CustomerTenant.objects.filter(tid=FABRIKAM).update(status=CustomerTenant.Status.CONSENT_REVOKED)
    services._exchange(bobs)  # the exchange had loaded the member while the tenant was active
    CustomerTenant.objects.filter(tid=FABRIKAM).update(status=CustomerTenant.Status.ACTIVE)
    assert services.cached_acs_token(member=member("bob")) is None


def test_a_token_cached_before_a_bulk_status_change_is_never_served_again(bob: Person) -> None:
    assert bob.client.post(TOKEN_URL).status_code == 200
    exchanges = CustomerTenant.objects.get(tid=FABRIKAM).acs_exchanges
    # Bulk updates, as an operator's script would: no model code runs.
    CustomerTenant.objects.filter(tid=FABRIKAM).update(status=CustomerTenant.Status.DISCONNECTED)
    assert bob.client.post(TOKEN_URL).status_code == 403
    CustomerTenant.objects.filter(tid=FABRIKAM).update(status=CustomerTenant.Status.ACTIVE)
    assert bob.client.post(TOKEN_URL).status_code == 200
    # The token cached before was out of reach: a new one was exchanged.
    assert CustomerTenant.objects.get(tid=FABRIKAM).acs_exchanges == exchanges + 1


def test_the_warm_path_makes_no_query_beyond_the_sessions_user(bob: Person, django_assert_num_queries: Any) -> None:
    assert bob.client.post(TOKEN_URL).status_code == 200
    with django_assert_num_queries(2):  # the session, and the user with his membership and tenant
        assert bob.client.post(TOKEN_URL).status_code == 200


def redis_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names read from Redis by `coordination.get` from now on (the real reads, counted)."""
    read: list[str] = []
    real = services.coordination.get

    def counted(name: str) -> str | None:
        read.append(name)
        return real(name)

    monkeypatch.setattr(services.coordination, "get", counted)
    return read


def test_the_warm_path_makes_no_redis_round_trip_once_the_process_holds_the_token(
    bob: Person, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = bob.client.post(TOKEN_URL).json()
    reads = redis_reads(monkeypatch)
    assert [bob.client.post(TOKEN_URL).json() for _ in range(3)] == [first] * 3
    assert reads == []


def test_a_token_cached_by_another_process_is_read_from_redis_once(
    bob: Person, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = bob.client.post(TOKEN_URL).json()
    services.forget_local_tokens()  # as in another web process: only Redis holds it
    reads = redis_reads(monkeypatch)
    assert bob.client.post(TOKEN_URL).json() == first
    assert bob.client.post(TOKEN_URL).json() == first
    assert len(reads) == 1


def test_the_process_keeps_the_token_sealed(bob: Person) -> None:
    token = bob.client.post(TOKEN_URL).json()["token"]
    [(key, (sealed, _))] = services._local.items()
    assert sealed.startswith(crypto.current_prefix()) and token not in sealed
    assert sealed == services.coordination.get(key)


def test_a_role_change_makes_the_kept_token_unreachable_at_once(bob: Person, connected: DevCloud) -> None:
    assert bob.client.post(TOKEN_URL).status_code == 200
    before = exchanges(connected)
    # A bulk update, as an operator's script would: the database moves the member's version.
    TenantUser.objects.filter(oid=USERS["bob"][1]).update(portal_role=TenantUser.Role.ADMIN)
    assert bob.client.post(TOKEN_URL).status_code == 200
    assert exchanges(connected) - before == 1
    assert bob.client.post(TOKEN_URL).status_code == 200
    assert exchanges(connected) - before == 1


def test_a_kept_token_within_the_margin_gives_way_to_the_newer_one_in_redis(
    bob: Person, connected: DevCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = bob.client.post(TOKEN_URL).json()
    [key] = services._local
    # This process's copy is about to expire; another process exchanged since (what Redis holds).
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=60)
    payload = f'{{"token": "old", "expires_at": "{soon.isoformat()}", "oid": "{USERS["bob"][1]}"}}'
    services._local_put(key, crypto.seal(payload, context=key))
    before = exchanges(connected)
    reads = redis_reads(monkeypatch)
    assert bob.client.post(TOKEN_URL).json() == first
    assert exchanges(connected) == before and len(reads) == 1
    assert services._local[key][0] == services.coordination.get(key)


def test_a_kept_token_is_forgotten_after_local_seconds(
    bob: Person, connected: DevCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert bob.client.post(TOKEN_URL).status_code == 200
    cache.clear()  # Redis lost it: this process serves its copy for LOCAL_SECONDS at most
    before = exchanges(connected)
    assert bob.client.post(TOKEN_URL).status_code == 200
    assert exchanges(connected) == before
    now = services.time.monotonic
    monkeypatch.setattr(services.time, "monotonic", lambda: now() + services.LOCAL_SECONDS)
    assert bob.client.post(TOKEN_URL).status_code == 200
    assert exchanges(connected) - before == 1


def test_the_process_keeps_at_most_local_tokens(
    bob: Person, connected: DevCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(services, "LOCAL_TOKENS", 1)
    alice = signed_in(connected, "alice")
    assert bob.client.post(TOKEN_URL).status_code == 200
    assert alice.client.post(TOKEN_URL).status_code == 200
    [key] = services._local
    assert key.startswith(f"acs-token:{member('alice').pk}:")
    reads = redis_reads(monkeypatch)
    assert bob.client.post(TOKEN_URL).status_code == 200  # from Redis again
    assert len(reads) == 1
