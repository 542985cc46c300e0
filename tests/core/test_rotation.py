"""`manage.py rotate_encryption`: every sealed value re-sealed with the newest key, in batches,
resumable; afterwards the old key can go and everything still decrypts."""

from __future__ import annotations

import io
import uuid
from typing import Any

import pytest
from django.apps import apps as django_apps
from django.core.management import CommandError, call_command

from chat import removal
from chat.models import SubscriptionRemoval
from core import crypto, rotation
from identity import services as identity_services
from identity.models import EntraTokenCache
from tenants.models import CustomerTenant, TenantUser, Vendor
from tenants.services import vendor_acs_resource, vendor_entra_app
from tests.devcloud_server import USERS, DevCloud
from tests.portal_flow import Person, load_vendors

pytestmark = pytest.mark.django_db
OLD, NEW = crypto.new_key(), crypto.new_key()


@pytest.fixture
def sealed(devcloud_settings: DevCloud, settings: Any) -> dict[str, Any]:
    """Vendors, two members' token caches and a kept cache of a disconnection, all under OLD."""
    settings.ENCRYPTION_KEYS = [OLD]
    load_vendors(devcloud_settings)
    Person(devcloud_settings, USERS["alice"][0]).connect()
    bob = Person(devcloud_settings, USERS["bob"][0])
    bob.sign_in()
    tenant = CustomerTenant.objects.get(users__oid=USERS["bob"][1])
    owner = uuid.uuid4()
    SubscriptionRemoval.objects.create(
        tenant=tenant,
        owner_oid=owner,
        graph_ids=["sub-1"],
        sealed_cache=crypto.seal("{}", context=removal._context(tenant, owner)),
    )
    return {"bob": bob}


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("rotate_encryption", *args, stdout=out, stderr=out)
    return out.getvalue()


def everything_decrypts() -> None:
    for vendor in Vendor.objects.all():
        assert vendor_entra_app(vendor).client_secret and vendor_acs_resource(vendor).connection_string
    for member in TenantUser.objects.select_related("tenant"):
        assert identity_services.token_cache_load(member=member)
    for row in SubscriptionRemoval.objects.select_related("tenant"):
        assert crypto.unseal(row.sealed_cache, context=removal._context(row.tenant, row.owner_oid)) == "{}"


def test_every_sealed_value_is_resealed_and_the_old_key_can_go(sealed: dict[str, Any], settings: Any) -> None:
    settings.ENCRYPTION_KEYS = [NEW, OLD]
    with pytest.raises(CommandError, match="older key"):
        run("--check")
    output = run("--batch-size", "1")
    assert "token caches: 2 of 2" in output and "vendor client secrets: 2 of 2" in output
    assert "Every sealed value uses the newest key" in output
    settings.ENCRYPTION_KEYS = [NEW]  # the old key removed
    everything_decrypts()
    assert "0 to re-seal" in run("--check")
    # The portal works on: bob's token cache serves an ACS token.
    assert sealed["bob"].client.post("/api/acs-token/").status_code == 200


def test_every_sealed_field_of_every_model_is_rotated() -> None:
    sealed_fields = {
        (model, field.name)
        for model in django_apps.get_models()
        for field in model._meta.get_fields()
        if "sealed" in field.name
    }
    assert len(sealed_fields) >= 4
    assert {(column.model, column.field) for column in rotation.columns()} == sealed_fields


def test_a_stopped_run_resumes_where_it_stopped(sealed: dict[str, Any], settings: Any) -> None:
    settings.ENCRYPTION_KEYS = [NEW, OLD]
    column = next(c for c in rotation.columns() if c.label == "token caches")
    first = next(rotation.reseal(column=column, batch_size=1))  # then the run is killed
    assert (first.done, first.total, first.resealed) == (1, 2, 1)
    assert rotation.stale(column=column).count() == 1
    again = list(rotation.reseal(column=column, batch_size=1))
    assert (again[-1].total, again[-1].resealed) == (1, 1)
    assert rotation.stale(column=column).count() == 0


def test_a_value_written_meanwhile_is_not_overwritten(sealed: dict[str, Any], settings: Any) -> None:
    settings.ENCRYPTION_KEYS = [NEW, OLD]
    column = next(c for c in rotation.columns() if c.label == "token caches")
    read = EntraTokenCache.objects.select_related("tenant", "member").order_by("pk").first()
    assert read is not None
    # A worker refreshes the cache after the rotation read it.
    fresh = crypto.seal('{"refreshed": true}', context=identity_services.token_cache_context(read.member))
    EntraTokenCache.objects.filter(pk=read.pk).update(sealed=fresh)
    progress = rotation.Progress(column.label, total=1)
    rotation._reseal_row(column, read, progress)
    assert progress.resealed == 0
    assert EntraTokenCache.objects.get(pk=read.pk).sealed == fresh


def test_a_value_no_key_opens_is_reported_and_the_rest_still_rotated(sealed: dict[str, Any], settings: Any) -> None:
    settings.ENCRYPTION_KEYS = [crypto.new_key()]
    lost = Vendor.objects.order_by("pk").first()
    assert lost is not None
    Vendor.objects.filter(pk=lost.pk).update(
        entra_client_secret_sealed=crypto.seal("x", context="vendor:elsewhere:client_secret")
    )
    settings.ENCRYPTION_KEYS = [NEW, OLD]
    with pytest.raises(CommandError, match="decrypt with no listed key"):
        run()
    settings.ENCRYPTION_KEYS = [NEW]
    assert identity_services.token_cache_load(member=TenantUser.objects.select_related("tenant").first())
