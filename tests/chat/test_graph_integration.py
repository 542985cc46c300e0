"""integrations/graph.py against devcloud: the SDK's pipeline, plain JSON pages, batches, errors."""

from __future__ import annotations

import asyncio
from urllib.parse import quote

import pytest

from integrations import graph
from tests.devcloud.test_acs_identity import mint
from tests.devcloud_server import FABRIKAM, USERS, DevCloud

BOB = USERS["bob"][1]
pytestmark = pytest.mark.usefixtures("devcloud_settings")


def session_for(devcloud: DevCloud, who: str) -> graph.GraphSession:
    return graph.GraphSession.open(mint(devcloud, who, graph.CHAT_SCOPES))


def test_chats_and_changed_messages_come_back_as_graphs_json(devcloud: DevCloud) -> None:
    devcloud.control("PUT", "/settings", json={"graph_chat_messages_per_chat_rps": 0})

    async def main() -> tuple[dict, dict, dict]:
        session = session_for(devcloud, "bob")
        try:
            chats = await session.chats_page()
            chat_id = next(c["id"] for c in chats["value"] if c["topic"] == "Q3 launch")
            everything = await session.messages_page(chat_id, None)
            newest = everything["value"][0]["lastModifiedDateTime"]
            devcloud.control(
                "POST", f"/chats/{quote(chat_id, safe='')}/messages", json={"from": BOB, "content": "<p>later</p>"}
            )
            changed = await session.messages_page(chat_id, newest)
            return chats, everything, changed
        finally:
            await session.aclose()

    chats, everything, changed = asyncio.run(main())
    assert len(chats["value"]) == 4 and all(c["members"] and "lastMessagePreview" in c for c in chats["value"])
    assert len(everything["value"]) == 7 and "@odata.nextLink" not in everything
    assert [m["body"]["content"] for m in changed["value"]] == ["<p>later</p>"]


def test_next_links_and_batches(devcloud: DevCloud) -> None:
    devcloud.control("PUT", "/settings", json={"graph_chat_messages_per_chat_rps": 0})
    body = {"users": 3, "chats": 3, "messages": 60, "seed": 3, "include": [BOB]}
    devcloud.control("POST", f"/tenants/{FABRIKAM}/chats/generate", json=body)

    async def main() -> tuple[list, dict]:
        session = session_for(devcloud, "bob")
        try:
            chats = (await session.chats_page())["value"]
            requests = [session.messages_request(c["id"], None) for c in chats]
            answers = await session.batch(requests)
            big = next(b for s, b, _ in answers if "@odata.nextLink" in b)
            following = await session.messages_page("ignored", None, big["@odata.nextLink"])
            return answers, following
        finally:
            await session.aclose()

    answers, following = asyncio.run(main())
    assert [status for status, _, _ in answers] == [200] * 7
    paged = [b for _, b, _ in answers if "@odata.nextLink" in b]
    # The 3 generated chats hold 60 messages (and a members-added event in group chats): 2 pages each.
    assert len(paged) == 3 and all(len(b["value"]) == 50 for b in paged)
    assert len(following["value"]) in (10, 11) and "@odata.nextLink" not in following


def test_graph_errors_become_ours(devcloud: DevCloud) -> None:
    devcloud.control("PUT", "/settings", json={"graph_retry_after_omitted": 0.0})
    not_mine = next(
        c["id"]
        for c in devcloud.control("GET", "/chats", params={"user": USERS["alice"][1]})["chats"]
        if BOB not in c["members"]
    )

    async def main() -> list[graph.GraphError]:
        session = session_for(devcloud, "bob")
        errors = []
        try:
            chat_id = (await session.chats_page())["value"][0]["id"]
            await session.messages_page(chat_id, None)
            for target in (chat_id, not_mine):
                try:
                    await session.messages_page(target, None)
                except graph.GraphError as exc:
                    errors.append(exc)
        finally:
            await session.aclose()
        return errors

    throttled, forbidden = asyncio.run(main())
    assert throttled.throttled and throttled.retry_after == 1.0 and throttled.transient
    assert (forbidden.status, forbidden.code) == (403, "Forbidden") and not forbidden.transient
