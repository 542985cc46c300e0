"""Graph's webhooks: the handshake, clientState checks, one queued sync per burst, a fast 202."""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

import pytest
from django.test import Client, TestCase

from chat import subscriptions
from chat.models import Chat, GraphSubscription
from core import coordination, metrics
from tenants.models import TenantUser
from tests.chat import test_sync
from tests.devcloud_server import FABRIKAM, NORTHWIND, USERS, DevCloud
from tests.portal_flow import Person

pytestmark = pytest.mark.django_db
NOTIFY = "/graph/notifications/"
LIFECYCLE = "/graph/lifecycle/"
SECRET = "the-client-state-of-this-test"
bob = test_sync.bob


def subscription_of(member: TenantUser, *, graph_id: str, chat_id: str, secret: str = SECRET) -> GraphSubscription:
    """A subscription row as `subscriptions_ensure` records it, for a secret the test knows."""
    chat, _ = Chat.objects.get_or_create(
        tenant=member.tenant,
        graph_id=chat_id,
        defaults={"chat_type": "group", "created_at": dt.datetime.now(dt.UTC)},
    )
    return GraphSubscription.objects.create(
        tenant=member.tenant,
        chat=chat,
        owner=member,
        graph_id=graph_id,
        client_state_hash=subscriptions.client_state_hash(secret),
        expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=2),
    )


def item(sub: GraphSubscription, *, client_state: str = SECRET, tenant: str = FABRIKAM, **extra: Any) -> dict[str, Any]:
    return {
        "subscriptionId": sub.graph_id,
        "changeType": "created",
        "resource": f"chats('{sub.chat.graph_id}')/messages('1')",
        "clientState": client_state,
        "tenantId": tenant,
        **extra,
    }


def post(url: str, *items: Any) -> Any:
    # The test's transaction never commits: run what the view left for after the commit.
    with TestCase.captureOnCommitCallbacks(execute=True):
        return Client().post(url, json.dumps({"value": list(items)}), content_type="application/json")


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[tuple[Any, ...]]]:
    """The tasks the webhooks enqueue (by name, their arguments), instead of the broker."""
    from chat import tasks

    calls: dict[str, list[tuple[Any, ...]]] = {"sync": [], "lifecycle": []}
    monkeypatch.setattr(tasks.sync_notified_chat, "delay", lambda *args: calls["sync"].append(args))
    monkeypatch.setattr(tasks.handle_subscription_lifecycle, "delay", lambda *args: calls["lifecycle"].append(args))
    return calls


@pytest.mark.parametrize("url", [NOTIFY, LIFECYCLE])
def test_it_answers_the_validation_handshake_with_the_token_as_plain_text(url: str) -> None:
    token = "Validation: Testing client application reachability for subscription Request-Id: 42 <&>"
    response = Client().post(url + "?" + "validationToken=" + token.replace(" ", "+").replace("&", "%26"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert response.content.decode() == token


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"value": 3}', b"\xff"])
def test_it_refuses_a_body_that_is_not_a_notification_list(body: bytes) -> None:
    assert Client().post(NOTIFY, body, content_type="application/json").status_code == 400
    assert Client().post(LIFECYCLE, body, content_type="application/json").status_code == 400


def test_it_answers_only_post() -> None:
    assert Client().get(NOTIFY).status_code == 405
    assert Client().get(LIFECYCLE + "?validationToken=x").status_code == 405


def test_it_queues_a_sync_of_the_chat_for_a_genuine_notification(bob: TenantUser, queued: dict[str, Any]) -> None:
    sub = subscription_of(bob, graph_id="sub-1", chat_id="19:chat-1@thread.v2")
    response = post(NOTIFY, item(sub))
    assert response.status_code == 202
    assert queued["sync"] == [(sub.pk,)]


def test_it_ignores_a_notification_with_a_wrong_client_state(
    bob: TenantUser, queued: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    sub = subscription_of(bob, graph_id="sub-1", chat_id="19:chat-1@thread.v2")
    wrong = [
        item(sub, client_state="guessed"),
        item(sub, client_state=None),
        {k: v for k, v in item(sub).items() if k != "clientState"},
    ]
    # Still 202: a retry would not make it genuine, and the answer tells a prober nothing.
    assert post(NOTIFY, *wrong).status_code == 202
    assert queued["sync"] == []
    assert "3 of 3 items ignored" in caplog.text and "guessed" not in caplog.text


def test_it_ignores_a_notification_for_an_unknown_subscription(bob: TenantUser, queued: dict[str, Any]) -> None:
    sub = subscription_of(bob, graph_id="sub-1", chat_id="19:chat-1@thread.v2")
    assert post(NOTIFY, {**item(sub), "subscriptionId": "sub-2"}, "not an object").status_code == 202
    assert queued["sync"] == []


def test_a_burst_of_notifications_for_one_chat_enqueues_one_task(bob: TenantUser, queued: dict[str, Any]) -> None:
    sub = subscription_of(bob, graph_id="sub-1", chat_id="19:chat-1@thread.v2")
    other = subscription_of(bob, graph_id="sub-2", chat_id="19:chat-2@thread.v2")
    # Graph may group several in one POST, or send each alone.
    assert post(NOTIFY, item(sub), item(sub), item(other)).status_code == 202
    for _ in range(10):
        assert post(NOTIFY, item(sub)).status_code == 202
    assert sorted(queued["sync"]) == sorted([(sub.pk,), (other.pk,)])
    # Once the queued sync starts reading, the next notification asks for another one.
    subscriptions.notification_unmark(subscription=sub)
    post(NOTIFY, item(sub))
    assert queued["sync"].count((sub.pk,)) == 2
    sub.refresh_from_db()
    assert sub.last_notified_at is not None


def test_a_notification_of_another_tenant_is_never_routed_to_fabrikams_chat(
    bob: TenantUser, devcloud_settings: DevCloud, queued: dict[str, Any]
) -> None:
    Person(devcloud_settings, "nina@northwind.example").connect()
    Person(devcloud_settings, USERS["charlie"][0]).sign_in()
    charlie = TenantUser.objects.get(oid=USERS["charlie"][1])
    fabrikam = subscription_of(bob, graph_id="sub-f", chat_id="19:fabrikam@thread.v2", secret="fabrikam-secret")
    northwind = subscription_of(charlie, graph_id="sub-n", chat_id="19:northwind@thread.v2", secret="northwind-secret")
    forged = [
        # Fabrikam's subscription id with charlie's own secret, in either tenant.
        item(fabrikam, client_state="northwind-secret", tenant=NORTHWIND),
        item(fabrikam, client_state="northwind-secret", tenant=FABRIKAM),
        # The right secret of Fabrikam's subscription, but sent as Northwind's.
        item(fabrikam, client_state="fabrikam-secret", tenant=NORTHWIND),
    ]
    assert post(NOTIFY, *forged).status_code == 202
    assert post(LIFECYCLE, *[{**f, "lifecycleEvent": "missed"} for f in forged]).status_code == 202
    assert queued == {"sync": [], "lifecycle": []}
    # Charlie's genuine notification naming Fabrikam's chat as its resource syncs his own chat.
    genuine = item(northwind, client_state="northwind-secret", tenant=NORTHWIND)
    genuine["resource"] = f"chats('{fabrikam.chat.graph_id}')/messages('1')"
    assert post(NOTIFY, genuine).status_code == 202
    assert queued["sync"] == [(northwind.pk,)]


def test_a_lifecycle_event_is_queued_with_its_subscription(bob: TenantUser, queued: dict[str, Any]) -> None:
    sub = subscription_of(bob, graph_id="sub-1", chat_id="19:chat-1@thread.v2")
    events = [{**item(sub), "lifecycleEvent": e} for e in ("reauthorizationRequired", "somethingNew")]
    assert post(LIFECYCLE, *events).status_code == 202
    assert queued["lifecycle"] == [(sub.pk, "reauthorizationRequired")]
    assert post(LIFECYCLE, {**item(sub, client_state="wrong"), "lifecycleEvent": "missed"}).status_code == 202
    assert len(queued["lifecycle"]) == 1


def test_the_webhook_answers_well_under_a_second_with_the_real_broker(bob: TenantUser) -> None:
    subs = [subscription_of(bob, graph_id=f"sub-{n}", chat_id=f"19:chat-{n}@thread.v2") for n in range(20)]
    client = Client()
    body = json.dumps({"value": [item(sub) for sub in subs]})
    started = time.perf_counter()
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = client.post(NOTIFY, body, content_type="application/json")
    elapsed = time.perf_counter() - started
    assert response.status_code == 202
    assert elapsed < 1.0, elapsed
    # The syncs wait in Redis for a worker; the request itself called nobody.
    assert coordination.client().llen("celery") == 20


def test_a_notification_that_could_not_be_queued_is_queued_on_graphs_retry(
    bob: TenantUser, queued: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from chat import tasks

    sub = subscription_of(bob, graph_id="sub-1", chat_id="19:chat-1@thread.v2")

    def broker_down(*args: Any) -> None:
        raise ConnectionError("broker down")

    with monkeypatch.context() as patch:
        patch.setattr(tasks.sync_notified_chat, "delay", broker_down)
        with pytest.raises(ConnectionError):  # Graph gets a 500, and sends it again
            post(NOTIFY, item(sub))
    assert post(NOTIFY, item(sub)).status_code == 202
    assert queued["sync"] == [(sub.pk,)]


def counted(kind: str, outcome: str) -> float:
    value: float = metrics.webhook_items.labels(kind=kind, outcome=outcome)._value.get()
    return value


def test_matched_and_refused_items_are_counted(bob: TenantUser, queued: dict[str, Any]) -> None:
    sub = subscription_of(bob, graph_id="sub-counted", chat_id="19:counted@thread.v2")
    before = counted("notifications", "matched"), counted("notifications", "refused")
    assert post(NOTIFY, item(sub), item(sub, client_state="wrong")).status_code == 202
    assert counted("notifications", "matched") - before[0] == 1
    assert counted("notifications", "refused") - before[1] == 1
