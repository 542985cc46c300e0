"""Graph change notifications for `/chats/{id}/messages` (delegated), driven with msgraph-sdk.

An HTTPS webhook in the test process (devcloud's own server certificate, which devcloud trusts)
answers the validation handshake and records the notifications devcloud delivers.
"""

from __future__ import annotations

import datetime as dt
import json
import ssl
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from msgraph.generated.models.body_type import BodyType
from msgraph.generated.models.chat_message import ChatMessage
from msgraph.generated.models.item_body import ItemBody
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.subscription import Subscription
from msgraph.graph_service_client import GraphServiceClient

from tests.devcloud.graph_sdk import CHAT_SCOPES, as_user, graph_client, odata_error, run
from tests.devcloud_server import FABRIKAM, LITWARE_APP, USERS, DevCloud, free_port

WAIT = 5.0


# The webhook ---------------------------------------------------------------------------------
@dataclass
class Received:
    path: str
    body: dict[str, Any]
    status: int


@dataclass
class Webhook:
    """Answers validation per path (`echo`, `wrong` token or `error` 500) and records POSTs.

    Its URLs start with a prefix of their own, so that nothing meant for an earlier test's webhook
    on the same port is ever counted here.
    """

    base_url: str
    prefix: str = field(default_factory=lambda: "/" + uuid.uuid4().hex)
    validation: dict[str, str] = field(default_factory=dict)
    fail_next: int = 0  # notification POSTs to answer with 500 before accepting
    validations: list[tuple[str, str]] = field(default_factory=list)  # (path, token)
    attempts: list[Received] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def url(self, path: str = "/notify") -> str:
        return self.base_url + self.prefix + path

    def accepted(self, path: str = "/notify") -> list[dict[str, Any]]:
        with self.changed:
            return [r.body for r in self.attempts if r.path == path and r.status < 300]

    def wait_for(self, count: int, path: str = "/notify") -> list[dict[str, Any]]:
        """The first `count` notifications accepted on `path`, waiting up to a few seconds."""
        with self.changed:
            arrived = self.changed.wait_for(lambda: len(self.accepted(path)) >= count, timeout=WAIT)
            got = self.accepted(path)
        assert arrived, f"{len(got)} of {count} notifications arrived on {path}: {got}"
        return got

    def answer(self, path: str, query: str, body: bytes) -> tuple[int, bytes, str]:
        if not path.startswith(self.prefix + "/"):
            return 410, b"", "text/plain"
        path = path.removeprefix(self.prefix)
        tokens = parse_qs(query).get("validationToken")
        if tokens is not None:
            token = tokens[0]
            with self.changed:
                self.validations.append((path, token))
                self.changed.notify_all()
            mode = self.validation.get(path, "echo")
            if mode == "error":
                return 500, b"broken", "text/plain"
            return 200, (token if mode == "echo" else token + "-wrong").encode(), "text/plain; charset=utf-8"
        with self.changed:
            status = 202
            if self.fail_next > 0:
                self.fail_next -= 1
                status = 500
            self.attempts.append(Received(path, json.loads(body), status))
            self.changed.notify_all()
        return status, b"", "text/plain"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    hook: Webhook


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        parts = urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status, reply, content_type = cast(_Server, self.server).hook.answer(parts.path, parts.query, body)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def serving_webhook(state_dir: Path) -> Iterator[Webhook]:
    """A webhook over HTTPS with the certificate of the devcloud whose state dir is given."""
    port = free_port()
    server = _Server(("127.0.0.1", port), _Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(state_dir / "server.pem", state_dir / "server-key.pem")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.hook = Webhook(base_url=f"https://127.0.0.1:{port}")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.hook
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def webhook(devcloud: DevCloud) -> Iterator[Webhook]:
    with serving_webhook(devcloud.state_dir) as hook:
        yield hook


# Helpers -------------------------------------------------------------------------------------
CHAT_READ_ONLY = ["https://graph.microsoft.com/User.Read"]


def one_on_one(devcloud: DevCloud, a: str, b: str) -> str:
    """The seed's one-on-one chat of two users, found with the control API."""
    chats = devcloud.control("GET", "/chats", params={"user": USERS[a][0]})["chats"]
    pair = {USERS[a][1], USERS[b][1]}
    (chat,) = [c for c in chats if c["chatType"] == "oneOnOne" and set(c["members"]) == pair]
    return str(chat["id"])


@pytest.fixture
def chat_id(devcloud: DevCloud) -> str:
    """Alice and Bob's chat."""
    return one_on_one(devcloud, "alice", "bob")


def path_of(chat_id: str) -> str:
    return quote(chat_id, safe="")


def in_minutes(minutes: float) -> dt.datetime:
    return dt.datetime.now(dt.UTC) + dt.timedelta(minutes=minutes)


def subscription(
    webhook: Webhook,
    chat_id: str,
    *,
    minutes: float = 30,
    change_type: str = "created,updated,deleted",
    path: str = "/notify",
    lifecycle: str | None = None,
    client_state: str | None = "secret-state",
) -> Subscription:
    return Subscription(
        change_type=change_type,
        notification_url=webhook.url(path),
        lifecycle_notification_url=lifecycle,
        resource=f"/chats/{chat_id}/messages",
        expiration_date_time=in_minutes(minutes),
        client_state=client_state,
    )


async def subscribe(client: GraphServiceClient, body: Subscription) -> Subscription:
    created = await client.subscriptions.post(body)
    assert created is not None and created.id
    return created


def say(devcloud: DevCloud, chat_id: str, text: str, who: str = "alice") -> str:
    """A message typed in Teams (the control API); its id."""
    body = {"from": USERS[who][0], "content": f"<p>{text}</p>"}
    return str(devcloud.control("POST", f"/chats/{path_of(chat_id)}/messages", json=body)["id"])


def deliveries(devcloud: DevCloud, sub_id: str, count: int = 0) -> list[dict[str, Any]]:
    """devcloud's own log of delivery attempts for one subscription, once `count` of them are
    answered (devcloud notes the status after the webhook's answer reaches it)."""
    deadline = time.monotonic() + WAIT
    while True:
        log = [d for d in devcloud.control("GET", "/notifications")["deliveries"] if d.get("subscription") == sub_id]
        if len([d for d in log if "status" in d]) >= count or time.monotonic() > deadline:
            return log
        time.sleep(0.02)


async def error_of(pending: Awaitable[Any]) -> tuple[int, str, str]:
    with pytest.raises(ODataError) as excinfo:
        await pending
    return odata_error(excinfo.value)


def only(notification: dict[str, Any]) -> dict[str, Any]:
    assert len(notification["value"]) == 1, notification
    item: dict[str, Any] = notification["value"][0]
    return item


def other_app(devcloud: DevCloud) -> GraphServiceClient:
    """bob through Litware's app: Graph allows one subscription per app and chat, so a second
    subscription on the same chat (a witness that a change was delivered) needs another app."""
    body = {"user": USERS["bob"][1], "client_id": LITWARE_APP, "scopes": CHAT_SCOPES}
    return graph_client(devcloud, str(devcloud.control("POST", "/tokens", json=body)["access_token"]))


# Tests ---------------------------------------------------------------------------------------
def test_a_subscription_is_validated_and_notified_of_created_updated_and_deleted_messages(
    devcloud: DevCloud, webhook: Webhook, chat_id: str
) -> None:
    bob = as_user(devcloud, "bob")

    async def scenario() -> None:
        created = await subscribe(bob, subscription(webhook, chat_id))
        assert len(webhook.validations) == 1
        assert webhook.validations[0][0] == "/notify"
        assert webhook.validations[0][1].startswith("Validation: ")
        assert created.resource == f"/chats/{chat_id}/messages"
        assert created.change_type == "created,updated,deleted"
        assert created.client_state == "secret-state"
        assert created.notification_url == webhook.url()
        assert created.expiration_date_time is not None
        assert abs((created.expiration_date_time - in_minutes(30)).total_seconds()) < 5
        assert created.creator_id == USERS["bob"][1]
        listed = await bob.subscriptions.get()
        assert listed is not None and [s.id for s in listed.value or []] == [created.id]

        message_id = say(devcloud, chat_id, "hi")
        webhook.wait_for(1)
        chat = path_of(chat_id)
        devcloud.control("PATCH", f"/chats/{chat}/messages/{message_id}", json={"content": "<p>hi again</p>"})
        webhook.wait_for(2)
        devcloud.control("DELETE", f"/chats/{chat}/messages/{message_id}")
        webhook.wait_for(3)
        sent = await bob.chats.by_chat_id(chat_id).messages.post(
            ChatMessage(body=ItemBody(content="from bob", content_type=BodyType.Text))
        )
        assert sent is not None and sent.id
        got = [only(n) for n in webhook.wait_for(4)]

        assert [n["changeType"] for n in got] == ["created", "updated", "deleted", "created"]
        for item, mid in zip(got, [message_id, message_id, message_id, sent.id], strict=True):
            assert item["subscriptionId"] == created.id
            assert item["clientState"] == "secret-state"
            assert item["tenantId"] == FABRIKAM
            assert item["resource"] == f"chats('{chat_id}')/messages('{mid}')"
            assert item["resourceData"]["id"] == mid
            assert item["resourceData"]["@odata.type"] == "#Microsoft.Graph.chatMessage"
            assert item["resourceData"]["@odata.id"] == item["resource"]
            assert dt.datetime.fromisoformat(item["subscriptionExpirationDateTime"]) == created.expiration_date_time
        # Exactly one delivery per change: devcloud spawned no other (its log has them all by now).
        log = deliveries(devcloud, str(created.id), 4)
        assert [(d["kind"], d["attempt"], d.get("status")) for d in log] == [
            ("created", 1, 202),
            ("updated", 1, 202),
            ("deleted", 1, 202),
            ("created", 1, 202),
        ]
        assert len(webhook.attempts) == 4

    run(scenario())


def test_a_subscription_is_told_only_of_the_change_types_it_asked_for(
    devcloud: DevCloud, webhook: Webhook, chat_id: str
) -> None:
    bob = as_user(devcloud, "bob")

    async def scenario() -> None:
        created_only = await subscribe(bob, subscription(webhook, chat_id, change_type="created"))
        witness = await subscribe(
            other_app(devcloud), subscription(webhook, chat_id, change_type="updated", path="/witness")
        )
        message_id = say(devcloud, chat_id, "first")
        webhook.wait_for(1)
        devcloud.control("PATCH", f"/chats/{path_of(chat_id)}/messages/{message_id}", json={"content": "<p>x</p>"})
        assert only(webhook.wait_for(1, "/witness")[0])["changeType"] == "updated"
        assert [d["kind"] for d in deliveries(devcloud, str(created_only.id))] == ["created"]
        assert [d["kind"] for d in deliveries(devcloud, str(witness.id))] == ["updated"]
        assert len(webhook.accepted()) == 1

    run(scenario())


@pytest.mark.parametrize(
    ("notify_mode", "lifecycle_mode", "message"),
    [
        ("wrong", None, "Response must exactly match validationToken query parameter."),
        ("error", None, "Notification endpoint must respond with 200 OK to validation request."),
        ("echo", "wrong", "Response must exactly match validationToken query parameter."),
    ],
    ids=["wrong-token", "http-500", "lifecycle-wrong-token"],
)
def test_a_failed_validation_handshake_refuses_the_subscription_and_stores_nothing(
    devcloud: DevCloud, webhook: Webhook, chat_id: str, notify_mode: str, lifecycle_mode: str | None, message: str
) -> None:
    webhook.validation = {"/notify": notify_mode, "/lifecycle": lifecycle_mode or "echo"}
    lifecycle = webhook.url("/lifecycle") if lifecycle_mode else None
    bob = as_user(devcloud, "bob")

    async def scenario() -> None:
        status, code, text = await error_of(bob.subscriptions.post(subscription(webhook, chat_id, lifecycle=lifecycle)))
        assert (status, code) == (400, "ValidationError")
        assert text.startswith("Subscription validation request failed.")
        assert message in text
        expected = ["/notify", "/lifecycle"] if lifecycle_mode else ["/notify"]
        assert [path for path, _ in webhook.validations] == expected
        listed = await bob.subscriptions.get()
        assert listed is not None and listed.value == []
        assert devcloud.control("GET", "/subscriptions")["subscriptions"] == []

    run(scenario())


def test_an_unreachable_notification_url_refuses_the_subscription(devcloud: DevCloud, chat_id: str) -> None:
    bob = as_user(devcloud, "bob")
    body = Subscription(
        change_type="created",
        notification_url=f"https://127.0.0.1:{free_port()}/notify",
        resource=f"/chats/{chat_id}/messages",
        expiration_date_time=in_minutes(30),
    )

    async def scenario() -> None:
        status, code, text = await error_of(bob.subscriptions.post(body))
        assert (status, code) == (400, "ValidationError")
        assert "Notification endpoint must be reachable" in text

    run(scenario())
    assert devcloud.control("GET", "/subscriptions")["subscriptions"] == []


def test_a_notification_url_over_plain_http_is_refused(devcloud: DevCloud, webhook: Webhook, chat_id: str) -> None:
    bob = as_user(devcloud, "bob")
    body = subscription(webhook, chat_id)
    body.notification_url = webhook.url().replace("https://", "http://")

    async def scenario() -> None:
        status, code, text = await error_of(bob.subscriptions.post(body))
        assert (status, code) == (400, "ValidationError")
        assert "notificationUrl must be an https URL" in text

    run(scenario())
    assert webhook.validations == []
    assert devcloud.control("GET", "/subscriptions")["subscriptions"] == []


@pytest.mark.parametrize(
    ("minutes", "with_lifecycle", "message"),
    [
        (120, False, "lifecycleNotificationUrl is a required property"),
        (4330, True, "Subscription expiration can only be 4320 minutes in the future."),
        (-5, False, "Subscription expiration must be in the future."),
    ],
    ids=["over-an-hour-without-lifecycle-url", "over-4320-minutes", "in-the-past"],
)
def test_an_expiration_out_of_bounds_is_refused(
    devcloud: DevCloud, webhook: Webhook, chat_id: str, minutes: float, with_lifecycle: bool, message: str
) -> None:
    bob = as_user(devcloud, "bob")
    lifecycle = webhook.url("/lifecycle") if with_lifecycle else None

    async def scenario() -> None:
        status, _code, text = await error_of(
            bob.subscriptions.post(subscription(webhook, chat_id, minutes=minutes, lifecycle=lifecycle))
        )
        assert status == 400
        assert message in text

    run(scenario())
    assert webhook.validations == []
    assert devcloud.control("GET", "/subscriptions")["subscriptions"] == []


def test_an_expiration_over_an_hour_is_accepted_with_a_validated_lifecycle_url(
    devcloud: DevCloud, webhook: Webhook, chat_id: str
) -> None:
    bob = as_user(devcloud, "bob")

    async def scenario() -> None:
        created = await subscribe(
            bob, subscription(webhook, chat_id, minutes=4300, lifecycle=webhook.url("/lifecycle"))
        )
        assert created.lifecycle_notification_url == webhook.url("/lifecycle")
        assert created.expiration_date_time is not None
        assert abs((created.expiration_date_time - in_minutes(4300)).total_seconds()) < 5
        assert [path for path, _ in webhook.validations] == ["/notify", "/lifecycle"]
        fetched = await bob.subscriptions.by_subscription_id(str(created.id)).get()
        assert fetched is not None and fetched.expiration_date_time == created.expiration_date_time

    run(scenario())


def test_a_failing_endpoint_gets_the_notification_on_the_third_attempt(
    devcloud: DevCloud, webhook: Webhook, chat_id: str
) -> None:
    devcloud.control("PUT", "/settings", json={"graph_notification_backoff": 0.1, "graph_notification_attempts": 4})
    webhook.fail_next = 2
    bob = as_user(devcloud, "bob")

    async def scenario() -> None:
        created = await subscribe(bob, subscription(webhook, chat_id))
        message_id = say(devcloud, chat_id, "are you there?")
        item = only(webhook.wait_for(1)[0])
        assert item["resourceData"]["id"] == message_id
        assert [a.status for a in webhook.attempts] == [500, 500, 202]
        assert all(a.body == webhook.attempts[-1].body for a in webhook.attempts)
        log = deliveries(devcloud, str(created.id), 3)
        assert [(d["attempt"], d.get("status")) for d in log] == [(1, 500), (2, 500), (3, 202)]
        # The delay doubles: 0.1 s, then 0.2 s.
        assert log[1]["time"] - log[0]["time"] >= 0.1
        assert log[2]["time"] - log[1]["time"] >= 0.2

    run(scenario())


def test_reauthorization_required_pauses_notifications_until_reauthorized_and_removal_is_announced(
    devcloud: DevCloud, webhook: Webhook, chat_id: str
) -> None:
    bob = as_user(devcloud, "bob")

    async def scenario() -> None:
        created = await subscribe(bob, subscription(webhook, chat_id, minutes=600, lifecycle=webhook.url("/lifecycle")))
        sub_id = str(created.id)
        litware = other_app(devcloud)
        witness = await subscribe(litware, subscription(webhook, chat_id, path="/witness"))
        devcloud.control("POST", f"/subscriptions/{sub_id}/reauthorization-required")
        event = only(webhook.wait_for(1, "/lifecycle")[0])
        assert event["lifecycleEvent"] == "reauthorizationRequired"
        assert event["subscriptionId"] == sub_id
        assert event["clientState"] == "secret-state"
        assert event["tenantId"] == FABRIKAM

        paused = say(devcloud, chat_id, "while paused")
        assert only(webhook.wait_for(1, "/witness")[0])["resourceData"]["id"] == paused
        # Every delivery of that change was spawned with the witness's: none for the paused one.
        assert [d["kind"] for d in deliveries(devcloud, sub_id)] == ["reauthorizationRequired"]
        assert webhook.accepted() == []

        await bob.subscriptions.by_subscription_id(sub_id).reauthorize.post()
        assert [r["status"] for r in devcloud.requests(endpoint="graph.reauthorize_subscription")] == [204]
        resumed = say(devcloud, chat_id, "after reauthorizing")
        assert only(webhook.wait_for(1)[0])["resourceData"]["id"] == resumed
        assert len(webhook.wait_for(2, "/witness")) == 2

        devcloud.control("POST", f"/subscriptions/{sub_id}/remove")
        removed = only(webhook.wait_for(2, "/lifecycle")[1])
        assert removed["lifecycleEvent"] == "subscriptionRemoved"
        assert removed["subscriptionId"] == sub_id
        assert removed["clientState"] == "secret-state"
        status, code, _ = await error_of(bob.subscriptions.by_subscription_id(sub_id).get())
        assert (status, code) == (404, "ResourceNotFound")
        listed = await bob.subscriptions.get()
        assert listed is not None and listed.value == []
        listed = await litware.subscriptions.get()
        assert listed is not None and [s.id for s in listed.value or []] == [witness.id]
        after = say(devcloud, chat_id, "after removal")
        assert only(webhook.wait_for(3, "/witness")[2])["resourceData"]["id"] == after
        kinds = [d["kind"] for d in deliveries(devcloud, sub_id)]
        assert kinds == ["reauthorizationRequired", "created", "subscriptionRemoved"]

    run(scenario())


def test_renewal_extends_a_subscription_and_expiry_or_deletion_ends_it(
    devcloud: DevCloud, webhook: Webhook, chat_id: str
) -> None:
    bob = as_user(devcloud, "bob")

    async def scenario() -> None:
        created = await subscribe(bob, subscription(webhook, chat_id, minutes=10, lifecycle=webhook.url("/lifecycle")))
        sub_id = str(created.id)
        item = bob.subscriptions.by_subscription_id(sub_id)
        renewed = await item.patch(Subscription(expiration_date_time=in_minutes(2000)))
        assert renewed is not None and renewed.expiration_date_time is not None
        assert abs((renewed.expiration_date_time - in_minutes(2000)).total_seconds()) < 5
        fetched = await item.get()
        assert fetched is not None and fetched.expiration_date_time == renewed.expiration_date_time
        status, _, text = await error_of(item.patch(Subscription(expiration_date_time=in_minutes(4330))))
        assert (status, text) == (400, "Subscription expiration can only be 4320 minutes in the future.")

        litware = other_app(devcloud)
        witness = await subscribe(litware, subscription(webhook, chat_id, path="/witness"))
        witness_item = litware.subscriptions.by_subscription_id(str(witness.id))
        # Past an hour, a renewal needs a lifecycle URL, as a creation does.
        status, _, text = await error_of(witness_item.patch(Subscription(expiration_date_time=in_minutes(120))))
        assert status == 400 and "lifecycleNotificationUrl is a required property" in text

        devcloud.control("POST", f"/subscriptions/{sub_id}/expire")
        status, code, _ = await error_of(item.get())
        assert (status, code) == (404, "ResourceNotFound")
        status, _, _ = await error_of(item.patch(Subscription(expiration_date_time=in_minutes(30))))
        assert status == 404
        later = say(devcloud, chat_id, "anyone?")
        assert only(webhook.wait_for(1, "/witness")[0])["resourceData"]["id"] == later
        # Expiry is silent (no lifecycle event) and ends notifications.
        assert deliveries(devcloud, sub_id) == []
        assert [r.path for r in webhook.attempts] == ["/witness"]

        await witness_item.delete()
        status, code, _ = await error_of(witness_item.get())
        assert (status, code) == (404, "ResourceNotFound")
        listed = await bob.subscriptions.get()
        assert listed is not None and listed.value == []
        say(devcloud, chat_id, "nobody listens")
        assert len(deliveries(devcloud, str(witness.id))) == 1

    run(scenario())
    assert devcloud.control("GET", "/subscriptions")["subscriptions"] == []


def test_subscriptions_need_a_member_a_chat_scope_and_stay_their_creators(
    devcloud: DevCloud, webhook: Webhook, chat_id: str
) -> None:
    bob = as_user(devcloud, "bob")
    bob_basic = as_user(devcloud, "bob", CHAT_READ_ONLY)
    alice = as_user(devcloud, "alice")

    async def scenario() -> None:
        status, code, _ = await error_of(
            bob.subscriptions.post(subscription(webhook, one_on_one(devcloud, "alice", "april")))
        )
        assert (status, code) == (403, "Forbidden")
        status, code, text = await error_of(bob_basic.subscriptions.post(subscription(webhook, chat_id)))
        assert (status, code) == (403, "Forbidden")
        assert "Chat.Read" in text
        assert webhook.validations == []

        created = await subscribe(bob, subscription(webhook, chat_id))
        sub_id = str(created.id)
        theirs = alice.subscriptions.by_subscription_id(sub_id)
        attempts: list[Callable[[], Awaitable[Any]]] = [
            theirs.get,
            lambda: theirs.patch(Subscription(expiration_date_time=in_minutes(45))),
            theirs.delete,
            theirs.reauthorize.post,
        ]
        for attempt in attempts:
            status, code, _ = await error_of(attempt())
            assert (status, code) == (404, "ResourceNotFound")
        listed = await alice.subscriptions.get()
        assert listed is not None and listed.value == []
        mine = await bob.subscriptions.by_subscription_id(sub_id).get()
        assert mine is not None and mine.expiration_date_time == created.expiration_date_time

    run(scenario())


def test_retries_stop_once_the_subscription_is_deleted(devcloud: DevCloud, webhook: Webhook, chat_id: str) -> None:
    devcloud.control("PUT", "/settings", json={"graph_notification_backoff": 0.1, "graph_notification_attempts": 6})
    webhook.fail_next = 100
    bob = as_user(devcloud, "bob")

    async def scenario() -> str:
        created = await subscribe(bob, subscription(webhook, chat_id))
        say(devcloud, chat_id, "anyone?")
        assert len(deliveries(devcloud, str(created.id), 1)) >= 1
        await bob.subscriptions.by_subscription_id(str(created.id)).delete()
        return str(created.id)

    sub_id = run(scenario())
    attempts = len(deliveries(devcloud, sub_id))
    time.sleep(0.1 + 0.2 + 0.4 + 0.1)  # the next three retries, had they been kept
    assert len(deliveries(devcloud, sub_id)) == attempts <= 2
    assert len(webhook.attempts) == attempts


def test_rich_notifications_need_an_encryption_certificate(devcloud: DevCloud, webhook: Webhook, chat_id: str) -> None:
    body = subscription(webhook, chat_id)
    body.include_resource_data = True

    async def scenario() -> tuple[int, str, str]:
        return await error_of(as_user(devcloud, "bob").subscriptions.post(body))

    status, code, message = run(scenario())
    assert (status, code) == (400, "ValidationError") and "encryptionCertificate" in message
    assert webhook.validations == []


def test_a_percent_encoded_resource_and_a_new_notification_url(
    devcloud: DevCloud, webhook: Webhook, chat_id: str
) -> None:
    body = subscription(webhook, chat_id)
    body.resource = f"/chats/{path_of(chat_id)}/messages"
    bob = as_user(devcloud, "bob")

    async def scenario() -> None:
        created = await subscribe(bob, body)
        moved = Subscription(notification_url=webhook.url("/moved"))
        renewed = await bob.subscriptions.by_subscription_id(str(created.id)).patch(moved)
        assert renewed is not None and renewed.notification_url == webhook.url("/moved")
        assert renewed.expiration_date_time == created.expiration_date_time

    run(scenario())
    assert [p for p, _ in webhook.validations] == ["/notify", "/moved"]
    message_id = say(devcloud, chat_id, "over here")
    assert only(webhook.wait_for(1, "/moved")[0])["resourceData"]["id"] == message_id
    assert webhook.accepted("/notify") == []


def test_one_subscription_per_app_and_chat(devcloud: DevCloud, webhook: Webhook, chat_id: str) -> None:
    async def scenario() -> tuple[int, str, str]:
        await subscribe(as_user(devcloud, "bob"), subscription(webhook, chat_id))
        return await error_of(
            as_user(devcloud, "alice").subscriptions.post(subscription(webhook, chat_id, path="/again"))
        )

    status, code, _ = run(scenario())
    assert (status, code) == (403, "ExtensionError")
    assert [p for p, _ in webhook.validations] == ["/notify"]


def test_subscriptions_made_just_before_a_stop_are_there_after_the_restart(tmp_path: Path) -> None:
    # devcloud writes its state a moment after a change (many subscriptions at once are written
    # together); stopping it writes what is still pending.
    server = DevCloud.start(tmp_path)
    try:
        with serving_webhook(tmp_path) as hook:
            alice = as_user(server, "alice")
            chats = [one_on_one(server, "alice", "bob"), one_on_one(server, "alice", "april")]

            async def scenario() -> list[str]:
                return [str((await subscribe(alice, subscription(hook, chat))).id) for chat in chats]

            created = run(scenario())
    finally:
        server.stop()
    server = DevCloud.start(tmp_path)
    try:
        kept = server.control("GET", "/subscriptions")["subscriptions"]
        assert sorted(s["id"] for s in kept) == sorted(created)
    finally:
        server.stop()
