from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.test import override_settings

from core import crypto
from tenants.models import Vendor
from tenants.services import vendor_entra_app, vendor_save

OLD = crypto.new_key()
NEW = crypto.new_key()


def test_a_sealed_value_opens_in_its_context_only() -> None:
    sealed = crypto.seal("refresh-token-value", context="entra-token-cache:tid-a:oid-a")
    assert "refresh-token-value" not in sealed
    assert crypto.unseal(sealed, context="entra-token-cache:tid-a:oid-a") == "refresh-token-value"
    with pytest.raises(crypto.DecryptionError):
        crypto.unseal(sealed, context="entra-token-cache:tid-a:oid-b")


def test_a_tampered_value_does_not_open() -> None:
    sealed = crypto.seal("secret", context="c")
    tampered = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    with pytest.raises(crypto.DecryptionError):
        crypto.unseal(tampered, context="c")


def test_keys_rotate_newest_first() -> None:
    with override_settings(ENCRYPTION_KEYS=[OLD]):
        sealed = crypto.seal("secret", context="c")
    with override_settings(ENCRYPTION_KEYS=[NEW, OLD]):
        assert crypto.unseal(sealed, context="c") == "secret"
        assert not sealed.startswith(crypto.current_prefix())
        assert crypto.seal("secret", context="c").startswith(crypto.current_prefix())
        assert crypto.unseal(crypto.reseal(sealed, context="c"), context="c") == "secret"
    with override_settings(ENCRYPTION_KEYS=[NEW]), pytest.raises(crypto.DecryptionError, match="unknown key"):
        crypto.unseal(sealed, context="c")


@pytest.mark.django_db
def test_vendor_secrets_are_encrypted_at_rest_and_re_encrypted_by_the_command() -> None:
    with override_settings(ENCRYPTION_KEYS=[OLD]):
        vendor_save(
            name="V",
            slug="v",
            client_id="85d2ab3f-c604-4d0d-841d-1b66ee5b1d94",
            client_secret="s3cret-value",
            acs_connection_string="endpoint=https://x/;accesskey=k",
        )
    row = Vendor.objects.get(slug="v")
    assert "s3cret-value" not in row.entra_client_secret_sealed
    with override_settings(ENCRYPTION_KEYS=[NEW, OLD]):
        out = io.StringIO()
        call_command("rotate_encryption", stdout=out)
        assert "vendor client secrets: 1 re-sealed" in out.getvalue()
    with override_settings(ENCRYPTION_KEYS=[NEW]):
        assert vendor_entra_app(Vendor.objects.get(slug="v")).client_secret == "s3cret-value"
