"""Syncs running at once stay within Graph's limits, counted as Graph counts them."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection

from chat.models import ChatSyncState
from chat.sync import chat_sync_member
from tenants.models import TenantUser
from tests.devcloud_server import FABRIKAM, USERS, DevCloud
from tests.portal_flow import Person, load_vendors

pytestmark = pytest.mark.django_db(transaction=True)
MEMBERS = ("bob", "april", "tom")


def test_members_synced_at_once_get_no_429(devcloud_settings: DevCloud, settings: Any) -> None:
    """Three first syncs in parallel, their `$batch`es and single requests interleaved, at a
    tenant limit of 8 a second: not one request is refused."""
    load_vendors(devcloud_settings)
    Person(devcloud_settings, USERS["alice"][0]).connect()
    oids = [USERS[name][1] for name in MEMBERS]
    for name in MEMBERS:
        Person(devcloud_settings, USERS[name][0]).sign_in()
    body = {"users": 3, "chats": 3, "messages": 90, "seed": 11, "include": oids}
    devcloud_settings.control("POST", f"/tenants/{FABRIKAM}/chats/generate", json=body)
    devcloud_settings.control("PUT", "/settings", json={"graph_chat_messages_per_tenant_rps": 8})
    settings.GRAPH_CHAT_RPS_PER_TENANT = 8
    devcloud_settings.control("DELETE", "/requests")
    members = list(TenantUser.objects.select_related("tenant__vendor").filter(oid__in=oids))
    assert len(members) == len(MEMBERS)
    states: dict[str, str] = {}

    def sync(member: TenantUser) -> None:
        try:
            states[str(member.oid)] = chat_sync_member(member=member).status
        finally:
            connection.close()

    threads = [threading.Thread(target=sync, args=(member,)) for member in members]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert states == dict.fromkeys(oids, ChatSyncState.Status.IDLE)
    reads = [e for e in devcloud_settings.requests(service="graph") if "/messages" in e["path"]]
    assert len(reads) > 20
    assert [e["status"] for e in reads if e["status"] == 429] == []
