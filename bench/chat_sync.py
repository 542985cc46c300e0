"""The chat sync of one member (`chat.sync.chat_sync_member`): Graph requests against the API's
minimum, the write path against a raw PostgreSQL COPY, and what later syncs cost.

    python bench/chat_sync.py [--chats 100] [--messages 500] [--users 20] [--rounds 3]

bob of Fabrikam (alice connects Contoso's portal, bob signs in) gets `--chats` generated chats of
`--messages` messages on top of his demo chats. Graph requests are counted from devcloud's
request log as Graph counts them against its limits: each request inside a `$batch` is one, the
`$batch` envelope none (round trips are printed too). The minimum the API allows is one chat-list
page per 50 chats plus, per chat, ceil(messages / 50) message pages (at least one).

The syncs run with Graph's limits lifted, in devcloud and in the portal's send windows, so that
their timings measure our code; at Graph's real limits (20 message requests/s per tenant, 1/s per
chat) the first sync cannot be faster than the bound printed.

The write path (`chat.services.pages_upsert`, fed the batches of pages the first sync received, as
it received them: one call per `$batch` round) is timed against one `COPY` of the same rows into
the same table, the table truncated before each, alternating for `--rounds` rounds. Both pay for
the table's indexes and its search trigger. Prints its figures, the last line JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import harness  # bench/ is on the path when this file runs

PAGE = 50
GRAPH_TENANT_RPS = 20  # Graph's chat message limit per app and tenant
GRAPH_CHAT_RPS = 1  # and per chat
NO_LIMITS = {
    "graph_chat_messages_per_tenant_rps": 0,
    "graph_chat_messages_per_app_rps": 0,
    "graph_chat_messages_per_chat_rps": 0,
}
# The portal's send windows, wide enough never to wait (read when Django sets up).
LIFTED = {
    "GRAPH_CHAT_RPS_PER_TENANT": "1000000",
    "GRAPH_CHAT_RPS_PER_APP": "1000000",
    "GRAPH_CHAT_RPS_PER_CHAT": "1000000",
}


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chats", type=int, default=100, help="generated chats (default 100)")
    parser.add_argument("--messages", type=int, default=500, help="messages per generated chat (default 500)")
    parser.add_argument("--users", type=int, default=20, help="generated members to draw chats from (default 20)")
    parser.add_argument("--changed", type=int, default=10, help="chats that get a new message (default 10)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating upsert/COPY rounds (default 3)")
    return parser.parse_args()


@dataclass
class Recorder:
    """What the first sync handed to the write path, and the time spent there and waiting on Graph."""

    rounds: list[list[Any]] = field(default_factory=list)  # chat.services.Page, one list per call
    upsert_seconds: float = 0.0
    graph_seconds: float = 0.0


@contextmanager
def recording(recorder: Recorder) -> Iterator[None]:
    from chat import services
    from integrations import graph

    upsert, batch, chats_page = services.pages_upsert, graph.GraphSession.batch, graph.GraphSession.chats_page

    def recorded_upsert(*, pages: Any) -> int:
        pages = list(pages)
        recorder.rounds.append(pages)
        started = time.perf_counter()
        try:
            return upsert(pages=pages)
        finally:
            recorder.upsert_seconds += time.perf_counter() - started

    def timed(method: Any) -> Any:
        async def call(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await method(*args, **kwargs)
            finally:
                recorder.graph_seconds += time.perf_counter() - started

        return call

    services.pages_upsert = recorded_upsert  # type: ignore[assignment]
    graph.GraphSession.batch = timed(batch)  # type: ignore[method-assign]
    graph.GraphSession.chats_page = timed(chats_page)  # type: ignore[method-assign]
    try:
        yield
    finally:
        services.pages_upsert = upsert
        graph.GraphSession.batch = batch  # type: ignore[method-assign]
        graph.GraphSession.chats_page = chats_page  # type: ignore[method-assign]


def set_up_bob(devcloud: Any) -> Any:
    from tenants.models import TenantUser
    from tests.devcloud_server import USERS
    from tests.portal_flow import Person, load_vendors

    load_vendors(devcloud)
    Person(devcloud, USERS["alice"][0]).connect()
    response: Any = Person(devcloud, USERS["bob"][0]).sign_in()
    assert getattr(response, "status_code", None) == 302, "bob could not sign in"
    return TenantUser.objects.select_related("tenant__vendor").get(oid=USERS["bob"][1])


def counted(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """Graph's count (every request, inside a batch or not; not the envelope) and round trips."""
    requests = [e for e in entries if e["endpoint"] != "graph.batch"]
    return {
        "requests": len(requests),
        "round_trips": sum(1 for e in entries if not e.get("in_batch")),
        "batches": sum(1 for e in entries if e["endpoint"] == "graph.batch"),
        "endpoints": dict(Counter(e["endpoint"] for e in requests)),
        "not_ok": sum(1 for e in entries if e["status"] >= 400),
    }


def sync(devcloud: Any, member: Any) -> dict[str, Any]:
    from chat.models import ChatSyncState
    from chat.sync import chat_sync_member

    devcloud.control("DELETE", "/requests")
    started = time.perf_counter()
    state = chat_sync_member(member=member)
    seconds = time.perf_counter() - started
    assert state.status == ChatSyncState.Status.IDLE, (state.status, state.stopped_reason, state.last_error)
    return {"seconds": seconds, **counted(devcloud.requests(service="graph"))}


def minimum_requests(chats: list[dict[str, Any]]) -> int:
    return math.ceil(len(chats) / PAGE) + sum(max(1, math.ceil(c["messages"] / PAGE)) for c in chats)


def mirrored_messages(member: Any) -> int:
    from chat.models import Message

    return Message.objects.filter(tenant=member.tenant, chat__members__oid=member.oid).count()


def change_chats(devcloud: Any, chats: list[dict[str, Any]], bob: str, count: int) -> None:
    """A new message in each of `count` chats, typed in Teams by another member."""
    for chat in chats[:count]:
        sender = next((m for m in chat["members"] if m != bob), bob)
        path = f"/chats/{quote(chat['id'], safe='')}/messages"
        devcloud.control("POST", path, json={"from": sender, "content": "<p>a change for the benchmark</p>"})


def upsert_round(rounds: list[list[Any]]) -> float:
    from chat import services

    truncate()
    started = time.perf_counter()
    for pages in rounds:
        services.pages_upsert(pages=pages)
    return time.perf_counter() - started


def copy_round(rows: list[tuple[Any, ...]]) -> float:
    from django.db import connection

    from chat.models import Message
    from chat.services import MESSAGE_COLUMNS

    truncate()
    connection.ensure_connection()
    sql = f"COPY {Message._meta.db_table} ({', '.join(MESSAGE_COLUMNS)}) FROM STDIN"
    started = time.perf_counter()
    with connection.connection.cursor() as cursor, cursor.copy(sql) as copy:
        for row in rows:
            copy.write_row(row)
    return time.perf_counter() - started


def truncate() -> None:
    from django.db import connection

    from chat.models import Message

    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {Message._meta.db_table}")


def written_rows() -> list[tuple[Any, ...]]:
    """The rows the write path stored, as they are in the table (JSON columns as their text)."""
    from django.db import connection

    from chat.models import Message
    from chat.services import MESSAGE_COLUMNS

    json_columns = {"event", "attachments", "mentions", "reactions"}
    columns = ", ".join(f"{c}::text" if c in json_columns else c for c in MESSAGE_COLUMNS)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {columns} FROM {Message._meta.db_table} ORDER BY id")  # noqa: S608 - constants
        return list(cursor.fetchall())


def upsert_vs_copy(batches: list[list[Any]], rounds: int) -> dict[str, float]:
    rows_total = sum(len(page.items) for pages in batches for page in pages)
    upsert_round(batches)  # warm-up; leaves the rows COPY will write
    rows = written_rows()
    assert len(rows) == rows_total, (len(rows), rows_total)
    upserts, copies = [], []
    for _ in range(rounds):
        upserts.append(rows_total / upsert_round(batches))
        copies.append(rows_total / copy_round(rows))
    upsert_round(batches)  # the mirror as the sync left it
    ratios = [u / c for u, c in zip(upserts, copies, strict=True)]
    return {
        "rows": rows_total,
        "upsert_rps": statistics.median(upserts),
        "copy_rps": statistics.median(copies),
        "ratio": statistics.median(ratios),
    }


def main() -> None:
    args = arguments()
    os.environ.update(LIFTED)
    devcloud = harness.start("chat_sync")

    from tests.devcloud_server import FABRIKAM, USERS

    bob_oid = USERS["bob"][1]
    devcloud.control("PUT", "/settings", json=NO_LIMITS)
    bob = set_up_bob(devcloud)
    body = {"users": args.users, "chats": args.chats, "messages": args.messages, "seed": 1, "include": [bob_oid]}
    generated = devcloud.control("POST", f"/tenants/{FABRIKAM}/chats/generate", json=body)
    chats = devcloud.control("GET", "/chats", params={"user": bob_oid})["chats"]
    messages = sum(c["messages"] for c in chats)
    minimum = minimum_requests(chats)
    print(
        f"generated {generated['chats']} chats of {args.messages} messages in {generated['seconds']:.1f} s; "
        f"bob has {len(chats)} chats, {messages} messages; the API's minimum for a full read: {minimum} requests"
    )

    recorder = Recorder()
    with recording(recorder):
        first = sync(devcloud, bob)
    assert mirrored_messages(bob) == messages, (mirrored_messages(bob), messages)
    message_requests = first["requests"] - first["endpoints"].get("graph.list_chats", 0)
    bound = max(message_requests / GRAPH_TENANT_RPS, max(math.ceil(c["messages"] / PAGE) for c in chats) - 1)
    print(
        f"first sync: {first['requests']} Graph requests ({first['endpoints']}) in {first['round_trips']} round trips "
        f"({first['batches']} batches), {first['not_ok']} refused; {first['seconds']:.2f} s, "
        f"{messages / first['seconds']:.0f} messages/s, of which {recorder.graph_seconds:.2f} s waiting on Graph "
        f"and {recorder.upsert_seconds:.2f} s in pages_upsert"
    )
    print(
        "  Graph's limits were lifted (devcloud settings 0, portal windows 1e6/s): the timing is our code's. "
        f"At Graph's limits ({GRAPH_TENANT_RPS} message requests/s per tenant, {GRAPH_CHAT_RPS}/s per chat) "
        f"it takes at least {bound:.0f} s."
    )

    second = sync(devcloud, bob)
    print(
        f"second sync, nothing changed: {second['requests']} requests {second['endpoints']}, {second['seconds']:.2f} s"
    )

    changed = min(args.changed, len(chats))
    change_chats(devcloud, chats, bob_oid, changed)
    third = sync(devcloud, bob)
    assert mirrored_messages(bob) == messages + changed
    print(
        f"sync after {changed} chats got a message: {third['requests']} requests {third['endpoints']}, "
        f"{third['seconds']:.2f} s"
    )

    writes = upsert_vs_copy(recorder.rounds, args.rounds)
    pages = sum(len(batch) for batch in recorder.rounds)
    print(
        f"write path: pages_upsert {writes['upsert_rps']:.0f} rows/s, {pages} pages in {len(recorder.rounds)} calls, "
        f"one COPY of the same {writes['rows']} rows {writes['copy_rps']:.0f} rows/s "
        f"(medians of {args.rounds} alternating rounds, table truncated before each)"
    )
    list_pages = math.ceil(len(chats) / PAGE)
    print(
        json.dumps(
            {
                "chats": len(chats),
                "messages": messages,
                "graph_requests": first["requests"],
                "graph_min_requests": minimum,
                "graph_request_ratio": round(first["requests"] / minimum, 3),
                "graph_round_trips": first["round_trips"],
                "first_sync_seconds": round(first["seconds"], 2),
                "first_sync_messages_per_second": round(messages / first["seconds"]),
                "first_sync_graph_seconds": round(recorder.graph_seconds, 2),
                "first_sync_upsert_seconds": round(recorder.upsert_seconds, 2),
                "graph_limits_lifted": True,
                "at_graph_limits_min_seconds": round(bound, 1),
                "nochange_requests": second["requests"],
                "nochange_expected": list_pages,
                "ten_changed_requests": third["requests"],
                "ten_changed_expected": list_pages + changed,
                "changed_chats": changed,
                "upsert_rows_per_second": round(writes["upsert_rps"]),
                "copy_rows_per_second": round(writes["copy_rps"]),
                "upsert_vs_copy_ratio": round(writes["ratio"], 3),
            }
        )
    )


if __name__ == "__main__":
    main()
