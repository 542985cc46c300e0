"""The ACS token endpoint: warm-cache throughput against a bare authenticated JSON view, cold-path
requests to Entra and ACS per user (from devcloud's request log), and 50 concurrent requests for
one cold user.

    python bench/acs_token.py [--users 50] [--rounds 7] [--requests 20] [--profile]

The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import harness  # bench/ is on the path when this file runs

ENDPOINT = "/api/acs-token/"
BARE_URL = "/bench/bare/"
FABRIKAM = "fabrikam"


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=50, help="signed-in users (default 50)")
    parser.add_argument("--rounds", type=int, default=7, help="alternating timed rounds per view (default 7)")
    parser.add_argument("--requests", type=int, default=20, help="requests per user per round (default 20)")
    parser.add_argument("--profile", action="store_true", help="print each view's cProfile (warm) before the JSON")
    return parser.parse_args()


def profile(people: list[Any], url: str, requests: int) -> None:
    """cProfile `requests` warm requests of each person to `url`; the heaviest functions by own time."""
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(requests):
        for person in people:
            person.client.post(url)
    profiler.disable()
    print(f"--- {url}: {requests * len(people)} requests")
    stats = pstats.Stats(profiler)
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(40)
    stats.print_callees("calling.py|services.py|coordination.py|crypto.py")


def main() -> None:
    args = arguments()
    devcloud = harness.start("acs_token")

    from django.conf import settings
    from django.db import connections
    from django.test import Client

    from portal.startup import settle
    from tests.devcloud_server import USERS
    from tests.portal_flow import Person, load_vendors

    settings.ROOT_URLCONF = "bench.urls"
    load_vendors(devcloud)
    Person(devcloud, USERS["alice"][0]).connect()
    generated = devcloud.control(
        "POST",
        f"/tenants/{FABRIKAM}/users",
        json={"count": args.users + 1, "prefix": "bench", "password": "Fabrikam-Demo-1"},
    )["users"]
    started = time.perf_counter()
    people = []
    for user in generated:
        person = Person(devcloud, user["upn"])
        response = person.sign_in()
        assert getattr(response, "status_code", None) == 302, f"{user['upn']} could not sign in"
        people.append(person)
    print(f"{len(people)} users signed in in {time.perf_counter() - started:.1f} s")
    cold_users, concurrent_user = people[:-1], people[-1]

    def log_id() -> int:
        entries = devcloud.requests()
        return int(entries[-1]["id"]) if entries else 0

    def counted(since: int, endpoint: str) -> int:
        return len(devcloud.requests(endpoint=endpoint, since=str(since)))

    # Cold path: each user's first request.
    entra_counts, exchange_counts = [], []
    for person in cold_users:
        since = log_id()
        response = person.client.post(ENDPOINT)
        assert response.status_code == 200, response.content
        entra_counts.append(counted(since, "entra.token.token"))
        exchange_counts.append(counted(since, "acs.exchange"))
    print(
        f"cold users: Entra token requests per user {sorted(set(entra_counts))}, exchanges {sorted(set(exchange_counts))}"
    )

    # 50 concurrent requests for one cold user.
    since = log_id()
    barrier = threading.Barrier(50)

    def concurrent_request(_: int) -> int:
        client = Client(SERVER_NAME="localhost")
        client.cookies = concurrent_user.client.cookies
        barrier.wait()
        try:
            return client.post(ENDPOINT).status_code
        finally:
            connections.close_all()

    with ThreadPoolExecutor(50) as pool:
        statuses = list(pool.map(concurrent_request, range(50)))
    concurrent_exchanges = counted(since, "acs.exchange")
    print(
        f"50 concurrent requests for one cold user: statuses {sorted(set(statuses))}, exchanges {concurrent_exchanges}"
    )

    # Warm path against the bare view: the same users and stack. Each view is timed over a block
    # of requests (every user, `--requests` times), the blocks alternating and each round starting
    # with the other view, so that whatever else the machine does weighs on both alike. A block,
    # not each request: the garbage collector's passes then fall in each view's time as its own
    # allocations call for them (timed one by one, in turn, they fell on one view's requests more
    # than on the other's, by the rhythm of the two, not by their cost).
    rounds_done = 0

    def timed_round() -> tuple[float, float]:
        nonlocal rounds_done
        spent = {BARE_URL: 0.0, ENDPOINT: 0.0}
        order = [BARE_URL, ENDPOINT] if rounds_done % 2 == 0 else [ENDPOINT, BARE_URL]
        rounds_done += 1
        for url in order:
            started = time.perf_counter()
            for _ in range(args.requests):
                for person in cold_users:
                    response = person.client.post(url)
                    assert response.status_code == 200
            spent[url] = time.perf_counter() - started
        count = len(cold_users) * args.requests
        return count / spent[ENDPOINT], count / spent[BARE_URL]

    timed_round()  # warm-up: connections, imports, caches
    settle()  # as a web process does once started (portal.asgi)
    if args.profile:
        for url in (BARE_URL, ENDPOINT):
            profile(cold_users, url, args.requests)
    since = log_id()
    ratios, token_rates, bare_rates = [], [], []
    for _ in range(args.rounds):
        token, bare = timed_round()
        bare_rates.append(bare)
        token_rates.append(token)
        ratios.append(token / bare)
    warm_calls = counted(since, "acs.exchange") + counted(since, "entra.token.token")
    print(
        f"warm: token endpoint {statistics.median(token_rates):.0f} req/s, bare view "
        f"{statistics.median(bare_rates):.0f} req/s (median of {args.rounds} rounds); "
        f"calls to Entra or ACS while warm: {warm_calls}"
    )
    print(
        json.dumps(
            {
                "warm_ratio": round(statistics.median(ratios), 3),
                "warm_token_rps": round(statistics.median(token_rates)),
                "warm_bare_rps": round(statistics.median(bare_rates)),
                "warm_outbound_calls": warm_calls,
                "entra_requests_per_cold_user": statistics.mean(entra_counts),
                "exchanges_per_cold_user": statistics.mean(exchange_counts),
                "exchanges_for_50_concurrent": concurrent_exchanges,
                "users": len(cold_users),
            }
        )
    )


if __name__ == "__main__":
    main()
