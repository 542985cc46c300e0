"""A sync killed with SIGKILL half-way, then run again, leaves the same rows as Graph, no duplicate."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from chat.models import Message
from chat.sync import chat_sync_member
from core import coordination
from tenants.models import TenantUser
from tests.chat.test_sync import BOB, expected, graph_truth, mirror
from tests.devcloud_server import FABRIKAM, USERS, DevCloud
from tests.portal_flow import Person, load_vendors

ROOT = Path(__file__).resolve().parents[2]
WORKER = """
import django
django.setup()
from chat.sync import chat_sync_member
from tenants.models import TenantUser
chat_sync_member(member=TenantUser.objects.select_related("tenant__vendor").get(pk={pk}))
"""


@pytest.mark.both_databases
@pytest.mark.django_db(transaction=True)
def test_a_sync_killed_half_way_and_run_again_mirrors_graph(devcloud_settings: DevCloud, settings: Any) -> None:
    load_vendors(devcloud_settings)
    Person(devcloud_settings, USERS["alice"][0]).connect()
    response: Any = Person(devcloud_settings, USERS["bob"][0]).sign_in()
    assert response.status_code == 302
    bob = TenantUser.objects.select_related("tenant__vendor").get(oid=BOB)
    body = {"users": 4, "chats": 6, "messages": 400, "seed": 11, "include": [BOB]}
    devcloud_settings.control("POST", f"/tenants/{FABRIKAM}/chats/generate", json=body)

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "DATABASE_URL": _database_url(),
        "ENTRA_LOGIN_URL": devcloud_settings.base_url,
        "GRAPH_URL": devcloud_settings.base_url,
        "MICROSOFT_CA_BUNDLE": devcloud_settings.ca_bundle,
        "CHAT_SYNC_LOCK_SECONDS": "2",
    }
    worker = subprocess.Popen([sys.executable, "-c", WORKER.format(pk=bob.pk)], cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 60
        while Message.objects.filter(tenant=bob.tenant).count() < 600:
            assert worker.poll() is None, "the sync finished before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    finally:
        if worker.poll() is None:
            worker.kill()
    truth = expected(graph_truth(devcloud_settings, BOB))
    half_way = Message.objects.filter(tenant=bob.tenant).count()
    assert 600 <= half_way < sum(len(c["messages"]) for c in truth.values())
    assert mirror(bob) != truth

    # The dead worker's lock expires (it was renewed at every round trip, for 2 s).
    lock_key = coordination.key(f"lock:chat-sync:{bob.pk}")
    deadline = time.monotonic() + 5
    while coordination.client().exists(lock_key):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    chat_sync_member(member=bob)
    assert mirror(bob) == truth
    assert Message.objects.filter(tenant=bob.tenant).count() == sum(len(c["messages"]) for c in truth.values())


def _database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
