from __future__ import annotations

import pytest

from chat.sync import chat_sync_member
from tenants.models import TenantUser
from tests.devcloud_server import USERS, DevCloud
from tests.portal_flow import Person, load_vendors


@pytest.fixture
def people(devcloud_settings: DevCloud) -> dict[str, Person]:
    """The cast: alice connects Fabrikam, bob signs in; nina connects Northwind, charlie signs in;
    bob's and charlie's chats are synced."""
    load_vendors(devcloud_settings)
    alice = Person(devcloud_settings, USERS["alice"][0])
    alice.connect()
    bob = Person(devcloud_settings, USERS["bob"][0])
    bob.sign_in()
    Person(devcloud_settings, "nina@northwind.example").connect()
    charlie = Person(devcloud_settings, USERS["charlie"][0])
    charlie.sign_in()
    for who in ("bob", "charlie"):
        chat_sync_member(member=TenantUser.objects.select_related("tenant__vendor").get(oid=USERS[who][1]))
    return {"alice": alice, "bob": bob, "charlie": charlie}
