"""The chat thread page (`/chats/<id>/`, `chat.views.chats_page`) as bob opens it: its database
queries and server time for threads of 10, 1 000 and 10 000 messages, against the home page.

    python bench/chat_page.py [--sizes 10,1000,10000] [--requests 50] [--warmup 5] [--profile]

bob of Fabrikam (alice connects Contoso's portal, bob signs in, his demo chats are synced once
from devcloud so that his sync state is real and idle) then gets one group chat per size, written
straight into the mirror: `chat.services.chats_upsert` (bob and alice as members) and
`chat.services.messages_upsert` fed Graph-shaped message JSON, 1 000 a call. Tables are ANALYZEd
afterwards, as autovacuum would have done by the time anyone reads them.

Queries: one GET of each thread page, counted with Django's `CaptureQueriesContext`; they must not
depend on the thread's length (`queries_constant`).

Server time: one GET through Django's test Client (middleware, session, user, view, template), in
process, timed with `perf_counter`. The baseline is a GET of the home page (`/`, `tenants.views.home`)
by the same client as the same signed-in bob: the same middleware, session and user, a page that
extends the same `base.html` with two small queries of its own. After `--warmup` GETs of each, the
pages are requested in turn, `--requests` rounds, and the medians compared
(`server_time_ratio` = page / home, per size). bob's sync state is marked freshly finished before
each round, so that the page never enqueues a sync (it would when the last one is 5 minutes old).
`bare_render_ms` is, for information, `render_to_string` of a template that only extends
`base.html`, with the same request, outside any request cycle.

The page keeps, per process, what sanitizing made of each message body it drew (the same thread
is drawn again and again: reloads, its other members, catch-ups), so the timed GETs above draw
bodies already sanitized. `cold_server_time_ratio_by_size` is, for information, the same
comparison with that memo emptied before each GET of the thread page: a process drawing these
messages for the first time.

At the largest size the slowest SELECT of the page is run again under EXPLAIN ANALYZE and its plan
printed; the time of every GET spent in the database is measured too (`db_ms_by_size`), and
`--profile` prints cProfile's busiest functions at the largest size. Prints its figures, the last
line JSON.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import statistics
import time
from typing import Any

import harness  # bench/ is on the path when this file runs

BATCH = 1000  # messages per messages_upsert call (13 parameters each)
SPACING = dt.timedelta(seconds=30)  # between two messages of a generated thread
BARE_TEMPLATE = '{% extends "base.html" %}{% block content %}<h1>bench</h1>{% endblock %}'


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10,1000,10000", help="thread lengths (default 10,1000,10000)")
    parser.add_argument("--requests", type=int, default=50, help="timed GETs of each page (default 50)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed GETs of each page first (default 5)")
    parser.add_argument(
        "--profile", action="store_true", help="also print cProfile's top functions at the largest size"
    )
    args = parser.parse_args()
    args.sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    return args


def set_up_bob(devcloud: Any) -> tuple[Any, Any]:
    """alice connects Fabrikam, bob signs in; his demo chats are synced once; his member row and browser."""
    from chat.models import ChatSyncState
    from chat.sync import chat_sync_member
    from tenants.models import TenantUser
    from tests.devcloud_server import USERS
    from tests.portal_flow import Person, load_vendors

    load_vendors(devcloud)
    Person(devcloud, USERS["alice"][0]).connect()
    bob = Person(devcloud, USERS["bob"][0])
    response: Any = bob.sign_in()
    assert getattr(response, "status_code", None) == 302, "bob could not sign in"
    member = TenantUser.objects.select_related("tenant__vendor").get(oid=USERS["bob"][1])
    state = chat_sync_member(member=member)
    assert state.status == ChatSyncState.Status.IDLE, (state.status, state.stopped_reason, state.last_error)
    return member, bob


def graph_time(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def graph_message(n: int, at: dt.datetime, chat_id: str, people: list[tuple[str, str]]) -> dict[str, Any]:
    """Message `n` of a thread as Graph lists it: mostly text from one of the members, a mention now and then."""
    oid, name = people[n % len(people)]
    mention = f'<at id="0">{people[(n + 1) % len(people)][1]}</at> ' if n % 7 == 0 else ""
    content = f'<p>{mention}Message {n} of the thread: <b>numbers</b> for the <a href="https://example.com/{n}">report</a>.</p>'
    return {
        "id": str(int(at.timestamp() * 1000)),
        "replyToId": None,
        "etag": str(int(at.timestamp() * 1000)),
        "messageType": "message",
        "createdDateTime": graph_time(at),
        "lastModifiedDateTime": graph_time(at),
        "lastEditedDateTime": None,
        "deletedDateTime": None,
        "subject": None,
        "summary": None,
        "chatId": chat_id,
        "importance": "normal",
        "locale": "en-us",
        "webUrl": None,
        "channelIdentity": None,
        "policyViolation": None,
        "eventDetail": None,
        "from": {
            "application": None,
            "device": None,
            "user": {
                "@odata.type": "#microsoft.graph.teamworkUserIdentity",
                "id": oid,
                "displayName": name,
                "userIdentityType": "aadUser",
                "tenantId": None,
            },
        },
        "body": {"contentType": "html", "content": content},
        "attachments": [],
        "mentions": [],
        "reactions": [],
    }


def chat_create(member: Any, size: int) -> Any:
    """One group chat of bob and alice with `size` messages, mirrored as a sync would write it."""
    from chat import services
    from tests.devcloud_server import FABRIKAM, USERS

    people = [(str(member.oid), member.display_name or "Bob"), (USERS["alice"][1], "Alice")]
    newest = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=1)
    first = newest - SPACING * (size - 1)
    graph_id = f"19:bench-{size}-{int(first.timestamp())}@thread.v2"
    item = {
        "id": graph_id,
        "chatType": "group",
        "topic": f"Thread of {size} messages",
        "createdDateTime": graph_time(first - SPACING),
        "lastUpdatedDateTime": graph_time(newest),
        "webUrl": f"https://teams.microsoft.com/l/chat/{graph_id}/0?tenantId={FABRIKAM}",
        "members": [{"userId": oid, "displayName": name, "email": ""} for oid, name in people],
        "lastMessagePreview": {"createdDateTime": graph_time(newest)},
    }
    chat = services.chats_upsert(member=member, items=[item], complete=False)[graph_id]
    messages = (graph_message(n, first + SPACING * n, graph_id, people) for n in range(size))
    while batch := [m for _, m in zip(range(BATCH), messages, strict=False)]:
        services.messages_upsert(chat=chat, items=batch)
    return chat


def analyze() -> None:
    from django.db import connection

    from chat.models import Chat, ChatMember, Message

    with connection.cursor() as cursor:
        for model in (Chat, ChatMember, Message):
            cursor.execute(f"ANALYZE {model._meta.db_table}")


def keep_sync_fresh(member: Any) -> None:
    """The page enqueues a sync when the last one finished over 5 minutes ago: it never has, here."""
    from chat.models import ChatSyncState

    ChatSyncState.objects.filter(member=member).update(finished_at=dt.datetime.now(dt.UTC))


class DatabaseClock:
    """Time spent in the database (queries and their round trips) during the requests it wraps."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds += time.perf_counter() - started


def get(client: Any, url: str) -> tuple[float, float]:
    """One GET: its server time and the part of it spent in the database (seconds)."""
    from django.db import connection

    clock = DatabaseClock()
    with connection.execute_wrapper(clock):
        started = time.perf_counter()
        response = client.get(url)
        seconds = time.perf_counter() - started
    assert response.status_code == 200, (url, response.status_code)
    return seconds, clock.seconds


def captured(client: Any, url: str) -> list[dict[str, str]]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200, url
    return list(queries.captured_queries)


def thread_messages(client: Any, url: str) -> int:
    """How many messages the page hands to its script (its `json_script` config)."""
    page = client.get(url).content.decode()
    config = re.search(r'<script id="chat-config" type="application/json">(.*?)</script>', page, re.DOTALL)
    assert config is not None, url
    return len(json.loads(config.group(1))["messages"])


def cold(client: Any, member: Any, targets: dict[str, str], requests: int) -> tuple[dict[str, float], dict[str, float]]:
    """Server time of each thread page over the home page's (medians, same rounds), the page's
    memo of sanitized bodies emptied before each of its GETs; and the pages' medians (ms)."""
    from chat import render

    times: dict[str, list[float]] = {name: [] for name in targets}
    for _ in range(requests):
        keep_sync_fresh(member)
        for name, url in targets.items():
            if name != "home":
                render.sanitized_forget()
            times[name].append(get(client, url)[0])
    medians = {name: statistics.median(t) * 1000 for name, t in times.items()}
    home = medians.pop("home")
    return {name: round(ms / home, 2) for name, ms in medians.items()}, {n: round(ms, 2) for n, ms in medians.items()}


def bare_render_ms(request_of: Any, rounds: int) -> float:
    from django.template import engines

    template = engines["django"].from_string(BARE_TEMPLATE)
    request = request_of()
    for _ in range(3):
        template.render({}, request)
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        template.render({}, request)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def signed_in_request(client: Any, member: Any) -> Any:
    """A request as bob's (session cookie, user), for the bare render."""
    from django.conf import settings
    from django.contrib.auth import get_user
    from django.contrib.sessions.backends.base import SessionBase
    from django.test import RequestFactory
    from django.utils.module_loading import import_string

    def make() -> Any:
        request = RequestFactory(SERVER_NAME="localhost").get("/")
        engine = import_string(settings.SESSION_ENGINE + ".SessionStore")
        session: SessionBase = engine(client.cookies[settings.SESSION_COOKIE_NAME].value)
        request.session = session
        request.user = get_user(request)
        assert request.user.pk == member.user_id
        return request

    return make


def explained(sql: str) -> tuple[float, list[str]]:
    """A SELECT run again under EXPLAIN ANALYZE: its execution time (ms) and plan."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
        plan = [row[0] for row in cursor.fetchall()]
    ms = next(float(line.split(":")[1].split()[0]) for line in plan if line.startswith("Execution Time"))
    return ms, plan


def slowest_select(queries: list[dict[str, str]]) -> tuple[float, str, list[str]]:
    """The page's slowest SELECT by EXPLAIN ANALYZE (the captured times are rounded to the millisecond)."""
    selects = [q["sql"] for q in queries if q["sql"].lstrip().upper().startswith("SELECT")]
    runs = [(*explained(sql), sql) for sql in selects]
    ms, plan, sql = max(runs, key=lambda run: run[0])
    return ms, sql, plan


def profile(client: Any, url: str, requests: int) -> None:
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(requests):
        client.get(url)
    profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(20)


def main() -> None:
    args = arguments()
    devcloud = harness.start("chat_page")
    from portal.startup import settle

    member, bob = set_up_bob(devcloud)

    started = time.perf_counter()
    chats = {size: chat_create(member, size) for size in args.sizes}
    analyze()
    total = sum(args.sizes)
    print(
        f"mirrored {len(chats)} chats of {args.sizes} messages ({total} in all) in {time.perf_counter() - started:.1f} s"
    )

    home = "/"
    urls = {size: f"/chats/{chat.pk}/" for size, chat in chats.items()}
    keep_sync_fresh(member)
    for size, url in urls.items():
        assert thread_messages(bob.client, url) == min(size, 50), (size, thread_messages(bob.client, url))

    queries = {size: captured(bob.client, url) for size, url in urls.items()}
    queries_by_size = {str(size): len(q) for size, q in queries.items()}
    baseline_queries = len(captured(bob.client, home))
    constant = len(set(queries_by_size.values())) == 1
    print(
        f"queries of one GET: {queries_by_size} ({'constant' if constant else 'NOT constant'}); home page {baseline_queries}"
    )

    targets = {"home": home, **{str(size): url for size, url in urls.items()}}
    for _ in range(args.warmup):
        for url in targets.values():
            get(bob.client, url)
    settle()  # as a web process does once started (portal.asgi)
    times: dict[str, list[float]] = {name: [] for name in targets}
    db_times: dict[str, list[float]] = {name: [] for name in targets}
    for _ in range(args.requests):
        keep_sync_fresh(member)
        for name, url in targets.items():
            seconds, db_seconds = get(bob.client, url)
            times[name].append(seconds)
            db_times[name].append(db_seconds)
    medians = {name: statistics.median(t) * 1000 for name, t in times.items()}
    cold_ratios, cold_ms = cold(bob.client, member, targets, args.requests)
    db_ms = {name: round(statistics.median(t) * 1000, 2) for name, t in db_times.items()}
    baseline_ms = medians.pop("home")
    server_ms = {name: round(ms, 2) for name, ms in medians.items()}
    ratios = {name: round(ms / baseline_ms, 2) for name, ms in medians.items()}
    bare_ms = bare_render_ms(signed_in_request(bob.client, member), args.requests)
    print(
        f"server time, median of {args.requests} GETs each (after {args.warmup} warm-up): thread page {server_ms} ms, "
        f"home page {baseline_ms:.2f} ms; ratio {ratios}; a bare render of base.html {bare_ms:.2f} ms"
    )
    print(f"  of which in the database (queries and round trips, median): {db_ms} ms")
    print(f"  with the sanitizer's memo emptied before each GET: thread page {cold_ms} ms; ratio {cold_ratios}")

    largest = max(args.sizes)
    slow_ms, slow_sql, plan = slowest_select(queries[largest])
    print(f"at {largest} messages, the page's {len(queries[largest])} queries:")
    for query in queries[largest]:
        print(f"  {query['sql'][:150]}")
    print(f"its slowest SELECT under EXPLAIN ANALYZE ({slow_ms:.3f} ms):")
    print(f"  {slow_sql}")
    for line in plan:
        print(f"    {line}")

    if args.profile:
        profile(bob.client, urls[largest], args.requests)

    print(
        json.dumps(
            {
                "sizes": args.sizes,
                "queries_by_size": queries_by_size,
                "queries_constant": constant,
                "baseline_queries": baseline_queries,
                "server_ms_by_size": server_ms,
                "baseline": "GET / (home page) by the same signed-in client",
                "baseline_ms": round(baseline_ms, 2),
                "server_time_ratio": ratios[str(largest)],
                "server_time_ratio_by_size": ratios,
                "bare_render_ms": round(bare_ms, 3),
                "requests": args.requests,
                "db_ms_by_size": {name: ms for name, ms in db_ms.items() if name != "home"},
                "baseline_db_ms": db_ms["home"],
                "largest_slowest_select_ms": round(slow_ms, 3),
                "cold_server_ms_by_size": cold_ms,
                "cold_server_time_ratio_by_size": cold_ratios,
            }
        )
    )


if __name__ == "__main__":
    main()
