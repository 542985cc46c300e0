"""The chat websocket: bob's open pages hear of changes; charlie of Northwind and strangers hear nothing."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Awaitable, Callable, Iterator
from typing import Any
from urllib.parse import quote

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings
from django.db import connections
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from chat.models import Chat
from chat.sync import chat_sync_member
from tenants.models import TenantUser
from tests.asgi_server import PortalServer, serve_portal
from tests.devcloud_server import USERS, DevCloud
from tests.portal_flow import Person

pytestmark = pytest.mark.django_db(transaction=True)
BOB, ALICE, CHARLIE = USERS["bob"][1], USERS["alice"][1], USERS["charlie"][1]


@pytest.fixture
def portal(devcloud_settings: DevCloud) -> Iterator[PortalServer]:
    with serve_portal(devcloud_settings) as server:
        yield server


def member(oid: str) -> TenantUser:
    return TenantUser.objects.select_related("tenant__vendor").get(oid=oid)


class Socket:
    """A browser's websocket to the served portal, with that person's session cookie."""

    def __init__(
        self,
        portal: PortalServer,
        devcloud: DevCloud,
        person: Person | None,
        path: str,
        origin: str = "",
        headers: dict[str, str] | None = None,
    ):
        headers = dict(headers or {})
        if person is not None:
            name = settings.SESSION_COOKIE_NAME
            cookies = [f"{name}={person.client.cookies[name].value}", headers.pop("Cookie", "")]
            headers["Cookie"] = "; ".join(c for c in cookies if c)
        self.connecting = connect(
            f"wss://{portal.host}{path}",
            ssl=devcloud.tls(),
            additional_headers=headers,
            origin=origin or portal.url,  # type: ignore[arg-type]
            open_timeout=5,
        )
        self.ws: ClientConnection | None = None

    async def connect(self) -> dict[str, Any]:
        """The first event (hello), or the close code when the portal refuses."""
        self.ws = await self.connecting
        try:
            return await self.receive()
        except ConnectionClosed as exc:
            return {"closed": exc.rcvd.code if exc.rcvd else None}

    async def receive(self, timeout: float = 5) -> dict[str, Any]:
        assert self.ws is not None
        event: dict[str, Any] = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        return event

    async def nothing(self, timeout: float = 0.5) -> bool:
        try:
            await self.receive(timeout)
        except TimeoutError:
            return True
        return False

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()


async def in_thread(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Sync code (the ORM) from the scenario, in a thread that closes its connections after."""

    def call() -> Any:
        try:
            return function(*args, **kwargs)
        finally:
            connections.close_all()

    return await asyncio.to_thread(call)


def run(test: Callable[[], Awaitable[Any]]) -> Any:
    return async_to_sync(test)()


async def events_until(socket: Socket, kind: str) -> list[dict[str, Any]]:
    """Events received until one of `kind` (inclusive)."""
    seen = []
    while True:
        event = await socket.receive()
        seen.append(event)
        if event["type"] == kind:
            return seen


def post_in_teams(devcloud: DevCloud, chat: Chat, sender: str, content: str) -> None:
    path = f"/chats/{quote(chat.graph_id, safe='')}/messages"
    devcloud.control("POST", path, json={"from": sender, "content": content})


def test_a_message_typed_in_teams_reaches_bobs_open_page_and_not_charlies(
    people: dict[str, Person], devcloud_settings: DevCloud, portal: PortalServer
) -> None:
    chat = Chat.objects.get(tenant=member(BOB).tenant, topic="Q3 launch")
    bob_member = member(BOB)

    async def scenario() -> tuple[list[dict[str, Any]], bool]:
        bob = Socket(portal, devcloud_settings, people["bob"], f"/ws/chat/{chat.pk}/")
        charlie = Socket(portal, devcloud_settings, people["charlie"], "/ws/chat/")
        assert (await bob.connect())["type"] == "hello"
        assert (await charlie.connect())["type"] == "hello"
        post_in_teams(devcloud_settings, chat, ALICE, "<p>from <b>Teams</b><script>x()</script></p>")
        await in_thread(chat_sync_member, member=bob_member, chat_ids=[chat.graph_id], only=True)
        events = await events_until(bob, "messages")
        quiet = await charlie.nothing()
        await bob.close()
        await charlie.close()
        return events, quiet

    events, charlie_heard_nothing = run(scenario)
    messages = events[-1]["messages"]
    assert events[-1]["chat"] == chat.pk
    assert [m["html"] for m in messages] == ["<p>from <b>Teams</b></p>"]
    assert not messages[0]["mine"] and messages[0]["sender"] == "Alice Anders"
    assert charlie_heard_nothing


def test_the_first_sync_reports_its_progress_live(
    people: dict[str, Person], devcloud_settings: DevCloud, portal: PortalServer
) -> None:
    bob_member = member(BOB)

    async def scenario() -> list[dict[str, Any]]:
        bob = Socket(portal, devcloud_settings, people["bob"], "/ws/chat/")
        await bob.connect()
        await in_thread(chat_sync_member, member=bob_member, full=True)
        events: list[dict[str, Any]] = []
        while not events or events[-1]["type"] != "sync" or events[-1]["status"] != "idle":
            events.append(await bob.receive())
        await bob.close()
        return events

    progress = [e for e in run(scenario) if e["type"] == "sync"]
    assert progress[0]["status"] == "running"
    assert progress[-1]["status"] == "idle"
    done = [e["chats_done"] for e in progress if e["status"] == "running"]
    assert done == sorted(done) and progress[-1]["chats_done"] == progress[-1]["chats_total"] > 0


def test_a_socket_for_a_chat_that_is_not_yours_is_refused_as_not_found(
    people: dict[str, Person], devcloud_settings: DevCloud, portal: PortalServer
) -> None:
    chat = Chat.objects.get(tenant=member(BOB).tenant, topic="Q3 launch")

    async def scenario() -> list[Any]:
        answers = []
        for path in (f"/ws/chat/{chat.pk}/", "/ws/chat/999999/"):
            answers.append(await Socket(portal, devcloud_settings, people["charlie"], path).connect())
        return answers

    assert run(scenario) == [{"closed": 4404}, {"closed": 4404}]


def test_a_socket_without_a_session_is_refused(
    people: dict[str, Person], devcloud_settings: DevCloud, portal: PortalServer
) -> None:
    async def scenario() -> Any:
        return await Socket(portal, devcloud_settings, None, "/ws/chat/").connect()

    assert run(scenario) == {"closed": 4401}


def test_a_socket_opened_by_another_site_is_refused(
    people: dict[str, Person], devcloud_settings: DevCloud, portal: PortalServer
) -> None:
    from websockets.exceptions import InvalidStatus

    async def scenario() -> Any:
        return await Socket(portal, devcloud_settings, people["bob"], "/ws/chat/", "https://evil.example").connect()

    with pytest.raises(InvalidStatus):
        run(scenario)


def test_a_message_bob_sends_reaches_alices_open_page(
    people: dict[str, Person], devcloud_settings: DevCloud, portal: PortalServer
) -> None:
    chat = Chat.objects.get(tenant=member(BOB).tenant, topic="Q3 launch")
    chat_sync_member(member=member(ALICE))

    async def scenario() -> list[dict[str, Any]]:
        alice = Socket(portal, devcloud_settings, people["alice"], f"/ws/chat/{chat.pk}/")
        await alice.connect()
        sent = await in_thread(
            people["bob"].client.post,
            f"/api/chats/{chat.pk}/messages/",
            '{"content": "hi Alice", "client_id": "5b0f3c1e-8a57-4a3e-9a4c-2f7d6f0c9b11"}',
            content_type="application/json",
        )
        assert sent.status_code == 201, sent.content
        events = await events_until(alice, "messages")
        await alice.close()
        return events

    messages = run(scenario)[-1]["messages"]
    assert [m["html"] for m in messages] == ["<p>hi Alice</p>"]
    assert messages[0]["sender"] == "Bob Baker" and not messages[0]["mine"]


def test_an_idle_socket_stays_open_and_still_hears_of_changes(
    people: dict[str, Person], devcloud_settings: DevCloud, portal: PortalServer
) -> None:
    """Longer than the channel layer's 5 s blocking read (once cut by the Redis client's timeout)."""
    chat = Chat.objects.get(tenant=member(BOB).tenant, topic="Q3 launch")
    bob_member = member(BOB)

    async def scenario() -> tuple[bool, list[dict[str, Any]]]:
        bob = Socket(portal, devcloud_settings, people["bob"], f"/ws/chat/{chat.pk}/")
        await bob.connect()
        quiet = await bob.nothing(timeout=7)
        post_in_teams(devcloud_settings, chat, ALICE, "<p>after a quiet while</p>")
        await in_thread(chat_sync_member, member=bob_member, chat_ids=[chat.graph_id], only=True)
        events = await events_until(bob, "messages")
        await bob.close()
        return quiet, events

    quiet, events = run(scenario)
    assert quiet
    assert [m["html"] for m in events[-1]["messages"]] == ["<p>after a quiet while</p>"]


def test_each_reader_gets_system_events_in_his_language(
    people: dict[str, Person], devcloud_settings: DevCloud, portal: PortalServer
) -> None:
    """The worker draws the event; bob chose German (the cookie), alice's browser asks for
    German (Accept-Language); another tab of alice's asks for English."""
    chat = Chat.objects.get(tenant=member(BOB).tenant, topic="Q3 launch")
    bob_member = member(BOB)
    chat_sync_member(member=member(ALICE))
    april = USERS["april"][1]

    async def scenario() -> list[list[dict[str, Any]]]:
        chosen = {"Cookie": f"{settings.LANGUAGE_COOKIE_NAME}=de"}
        bob = Socket(portal, devcloud_settings, people["bob"], f"/ws/chat/{chat.pk}/", headers=chosen)
        browser = {"Accept-Language": "de-DE,de;q=0.9,en;q=0.5"}
        alice = Socket(portal, devcloud_settings, people["alice"], f"/ws/chat/{chat.pk}/", headers=browser)
        english = Socket(portal, devcloud_settings, people["alice"], "/ws/chat/", headers={"Accept-Language": "en"})
        sockets = [bob, alice, english]
        for socket in sockets:
            assert (await socket.connect())["type"] == "hello"
        path = f"/chats/{quote(chat.graph_id, safe='')}/members"
        devcloud_settings.control("POST", path, json={"user": april, "by": ALICE})
        await in_thread(chat_sync_member, member=bob_member, chat_ids=[chat.graph_id], only=True)
        seen = [(await events_until(socket, "messages"))[-1]["messages"] for socket in sockets]
        for socket in sockets:
            await socket.close()
        return seen

    bobs, alices, englishs = run(scenario)
    assert [m["event"] for m in bobs] == ["April Appleton ist dem Chat beigetreten"]
    assert [m["event"] for m in alices] == ["April Appleton ist dem Chat beigetreten"]
    assert [m["event"] for m in englishs] == ["April Appleton joined the chat"]
    assert all("translated" not in m for m in bobs + alices + englishs)


def test_a_burst_of_sockets_waits_for_the_channel_layers_connections(
    people: dict[str, Person], devcloud_settings: DevCloud, portal: PortalServer, settings: Any
) -> None:
    """Thirty pages connecting at once with a pool of three Redis connections: each handshake
    waits for a connection (redis-py's own pool would refuse some: "Too many connections")."""
    layers = copy.deepcopy(settings.CHANNEL_LAYERS)
    layers["default"]["CONFIG"]["hosts"][0]["max_connections"] = 3
    settings.CHANNEL_LAYERS = layers

    async def scenario() -> list[dict[str, Any]]:
        sockets = [Socket(portal, devcloud_settings, people["bob"], "/ws/chat/") for _ in range(30)]
        try:
            return list(await asyncio.gather(*(socket.connect() for socket in sockets)))
        finally:
            await asyncio.gather(*(socket.close() for socket in sockets))

    assert [event.get("type") for event in run(scenario)] == ["hello"] * 30
