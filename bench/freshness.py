"""Freshness at scale: how soon a message typed in Teams is in the mirror, and on an open page.

    python bench/freshness.py [--tenants 10] [--members 100] [--chats-per-member 20] [--rate 5] [--seconds 60]
                              [--sockets 100] [--worker-concurrency 10] [--web-workers 1]

The portal runs as deployed: its ASGI server (uvicorn, HTTPS with devcloud's certificate: Graph
notifies https URLs only, and the pages' websockets come to the same server), a Celery worker and
beat, each a process of its own against PostgreSQL (`portal_bench_freshness`) and the bench's
Redis database (`BENCH_REDIS_URL`). The worker runs 10 processes by default (the Procfile's 2
make the first syncs of 1,000 members take far longer: they sleep while waiting for their turns
under Graph's limits). devcloud keeps Graph's real limits (20 chat-message requests per second
per tenant, 200 across tenants, 1 per chat) and delivers change notifications.

1. devcloud starts with a seed of its demo tenants plus `--tenants` organizations (`bench01.example`…),
   each with a Global Administrator; its generator gives each organization `--members` members and
   enough group chats of 2 to 4 of them that a member is in `--chats-per-member` chats on average.
2. Each organization's admin connects it (sign-in, Entra's admin consent, the portal's callback);
   then every member signs in through the same sign-in flow (the portal's views driven by Django's
   test client in this process, `--sign-in-threads` at a time, the organizations interleaved,
   against devcloud's Entra pages; the broker, worker and database are the real ones). Each sign-in
   queues the member's first sync; a sync ending well queues the member's subscriptions. The bench
   waits until every generated chat is mirrored and has its subscription, then until the broker
   is empty and Graph quiet, and says how long that took and what it cost in Graph requests.
3. `--sockets` members chosen at random open the chat websocket with their session cookie, as
   their browser would (20 connecting at a time).
4. Messages are typed in Teams (devcloud's control API) at `--rate` per second for `--seconds`,
   each in a chat of a member with an open socket, by a member of it, with a unique marker.
   For each: Teams → mirror is the row's `mirrored_at` (set by PostgreSQL when the sync writes it)
   minus the message's `createdDateTime` (devcloud's clock: the same machine's); Teams → websocket
   is when the first socket of a member of the chat received it, minus the same.

Graph requests are counted from devcloud's request log as Graph counts them against its limits
(each request inside a `$batch` is one, the envelope none); the log is read as it grows, so none
is lost; the Graph requests of the whole run and of the steady phase are left as JSON in the
bench's temporary directory, beside the processes' logs. Every process the bench starts is stopped
at exit (also on Ctrl-C and SIGTERM; should the bench be killed, Linux stops them). Prints
progress, then its figures, the last line JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import ctypes
import datetime as dt
import itertools
import json
import math
import os
import random
import re
import secrets
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import harness  # bench/ is on the path when this file runs; it puts the project root there too
import requests

from tests.devcloud_server import PASSWORDS, DevCloud, free_port

ROOT = harness.ROOT
NAME = "freshness"
PASSWORD = "Generated-Demo-1"  # noqa: S105 - devcloud's password for generated members; the admins get it too
GOAL_P95_SECONDS = 2.0
CONNECTS_AT_ONCE = 20
MARKER = re.compile(r"fresh-[0-9a-f]{6}-\d{5}")
STARTED = time.monotonic()


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--tenants", type=int, default=10, help="organizations (default 10)")
    add("--members", type=int, default=100, help="members per organization, all signed in (default 100)")
    add("--chats-per-member", type=int, default=20, help="chats per member, on average (default 20)")
    add("--history", type=int, default=5, help="messages already in each generated chat (default 5)")
    add("--rate", type=float, default=5.0, help="messages typed in Teams per second, all organizations (default 5)")
    add("--seconds", type=float, default=60.0, help="how long messages are typed (default 60)")
    add("--sockets", type=int, default=100, help="members with an open websocket (default 100)")
    add("--drain", type=float, default=60.0, help="seconds to wait for the last deliveries (default 60)")
    add("--worker-concurrency", type=int, default=10, help="Celery worker processes (default 10; the Procfile runs 2)")
    add("--web-workers", type=int, default=1, help="uvicorn workers, WEB_CONCURRENCY (default 1)")
    add("--sign-in-threads", type=int, default=4, help="members signing in at once (default 4)")
    add("--setup-timeout", type=float, default=900.0, help="seconds allowed for first syncs and subscriptions")
    add("--seed", type=int, default=1)
    return parser.parse_args()


def say(message: str) -> None:
    print(f"[{time.monotonic() - STARTED:6.1f} s] {message}", flush=True)


# processes ------------------------------------------------------------------------------------
PR_SET_PDEATHSIG = 1
LIBC = ctypes.CDLL(None, use_errno=True)


def _die_with_bench() -> None:
    """In the child before exec: Linux sends it SIGTERM should the bench die, even of SIGKILL."""
    if sys.platform == "linux":
        LIBC.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)


@dataclass
class Processes:
    """The processes the bench started, each the leader of a process group (a Celery worker's
    children, uvicorn's workers) stopped with it: SIGTERM, then SIGKILL for what is left."""

    logs: Path
    running: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        with (self.logs / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(
                argv,
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_bench,  # no threads yet when the processes start
            )
        self.running.append((name, process))
        return process

    def check(self) -> None:
        for name, process in self.running:
            if process.poll() is not None:
                tail = (self.logs / f"{name}.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{name} exited ({process.returncode}):\n{tail}")

    def stop(self) -> None:
        for _, process in reversed(self.running):
            self._signal(process, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for _, process in reversed(self.running):
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(max(0.1, deadline - time.monotonic()))
            self._signal(process, signal.SIGKILL)  # the group: a worker's children, if any are left
        for _, process in self.running:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(5)
        self.running.clear()

    @staticmethod
    def _signal(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)


def _terminate(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # atexit stops the processes


# devcloud -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Org:
    number: int
    tid: str
    domain: str

    @property
    def admin(self) -> str:
        return f"admin@{self.domain}"


def organizations(count: int) -> list[Org]:
    return [
        Org(n, str(uuid.uuid5(uuid.NAMESPACE_URL, f"bench-freshness-tenant-{n}")), f"bench{n:02d}.example")
        for n in range(1, count + 1)
    ]


def write_seed(path: Path, orgs: list[Org]) -> None:
    """devcloud's demo seed plus the organizations, each with a Global Administrator."""
    seed = json.loads((ROOT / "devcloud" / "seeds" / "demo.json").read_text())
    for org in orgs:
        admin = {
            "upn": org.admin,
            "password": PASSWORD,
            "display_name": f"Admin {org.number:02d}",
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"bench-freshness-admin-{org.number}")),
            "roles": ["Global Administrator"],
        }
        name = f"bench{org.number:02d}"
        seed["tenants"].append(
            {
                "name": name,
                "display_name": f"Bench {org.number:02d}",
                "id": org.tid,
                "domain": org.domain,
                "users": [admin],
            }
        )
        PASSWORDS[org.domain] = PASSWORD  # the password book the sign-in helpers read
    path.write_text(json.dumps(seed))


def devcloud_start(processes: Processes, state_dir: Path, seed: Path) -> DevCloud:
    return DevCloud.start(state_dir, seed=seed, spawn=lambda argv: processes.start("devcloud", argv))


class RequestLog(threading.Thread):
    """devcloud's request log, read as it grows (it keeps the last 20 000 entries only)."""

    def __init__(self, devcloud: DevCloud) -> None:
        super().__init__(name="request-log", daemon=True)
        self.url = f"{devcloud.base_url}/_devcloud/requests"
        self.http = devcloud.session()
        self.entries: list[dict[str, Any]] = []
        self.last = 0
        self.lock = threading.Lock()
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(1.0):
            self.read()

    def read(self) -> None:
        with self.lock:
            response = self.http.get(self.url, params={"since": str(self.last)}, timeout=30)
            response.raise_for_status()
            new = response.json()["requests"]
            if new:
                self.entries += new
                self.last = new[-1]["id"]

    def between(self, start: float, end: float, service: str = "graph") -> list[dict[str, Any]]:
        self.read()
        with self.lock:
            return [e for e in self.entries if e["service"] == service and start <= e["time"] <= end]


def graph_counts(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """Graph's count (each request, inside a batch or not; not the envelope), round trips, 429s."""
    counted = [e for e in entries if e["endpoint"] != "graph.batch"]
    return {
        "requests": len(counted),
        "round_trips": sum(1 for e in entries if not e.get("in_batch")),
        "throttled": sum(1 for e in entries if e["status"] == 429),
        "endpoints": dict(Counter(e["endpoint"] for e in counted).most_common()),
        "statuses": dict(Counter(e["status"] for e in counted)),
    }


def generate_chats(devcloud: DevCloud, orgs: list[Org], args: argparse.Namespace) -> dict[str, list[dict[str, Any]]]:
    """Each organization's members and chats. Group chats of 2 to 4 members (a draw of 1 is
    skipped): 3 on average, kept 3 times in 4, so a member is in chats * 2.25 / members of them."""
    wanted = math.ceil(args.members * args.chats_per_member / 2.25)
    chats = {}
    for org in orgs:
        body = {"users": args.members, "chats": wanted, "messages": args.history, "seed": args.seed + org.number}
        devcloud.control("POST", f"/tenants/{org.tid}/chats/generate", json=body)
        chats[org.tid] = devcloud.control("GET", "/chats", params={"tenant": org.tid})["chats"]
    return chats


# the portal ------------------------------------------------------------------------------------
def portal_environment(devcloud: DevCloud, web_port: int, var_dir: Path) -> dict[str, str]:
    return {
        **harness.portal_environment(NAME, devcloud),
        "ACS_ENDPOINT_DOMAINS": "127.0.0.1",
        "GRAPH_NOTIFICATION_URL": f"https://127.0.0.1:{web_port}",
        "VAR_DIR": str(var_dir),  # beat's schedule file
        "PYTHONUNBUFFERED": "1",
    }


def portal_start(processes: Processes, env: dict[str, str], devcloud: DevCloud, port: int, args: Any) -> None:
    """The Procfile's web, worker and beat (web over HTTPS: devcloud notifies it)."""
    python = [sys.executable, "-m"]
    web = [
        *["uvicorn", "portal.asgi:application", "--host", "127.0.0.1", "--port", str(port)],
        *["--workers", str(args.web_workers), "--no-access-log", "--log-level", "warning"],
        *["--ssl-certfile", str(devcloud.state_dir / "server.pem")],
        *["--ssl-keyfile", str(devcloud.state_dir / "server-key.pem")],
    ]
    worker = ["celery", "-A", "portal", "worker", "-l", "warning", "--concurrency", str(args.worker_concurrency)]
    processes.start("web", python + web, env)
    processes.start("worker", [*python, *worker, "-n", f"{NAME}@%h"], env)
    processes.start("beat", [*python, "celery", "-A", "portal", "beat", "-l", "warning"], env)
    http = devcloud.session()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        processes.check()
        try:
            if http.get(f"https://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the portal did not answer /healthz within 60 s")


@dataclass
class SignedIn:
    tid: str
    oid: str
    upn: str
    session: str  # the portal's session cookie


def connect(devcloud: DevCloud, orgs: list[Org]) -> None:
    from tests.portal_flow import Person, load_vendors

    load_vendors(devcloud)
    for org in orgs:
        response: Any = Person(devcloud, org.admin).connect()
        assert getattr(response, "status_code", None) == 302, f"{org.admin} could not connect"


def sign_in_all(devcloud: DevCloud, members: list[tuple[str, str, str]], threads: int) -> list[SignedIn]:
    """Every member through the portal's sign-in flow (Entra's pages, the callback, the session)."""
    from django.db import connection

    from tests.portal_flow import Person

    def one(member: tuple[str, str, str]) -> SignedIn:
        tid, oid, upn = member
        try:
            person = Person(devcloud, upn)
            response: Any = person.sign_in()
            assert getattr(response, "status_code", None) == 302, f"{upn} could not sign in"
            return SignedIn(tid, oid, upn, person.client.cookies["sessionid"].value)
        finally:
            connection.close()  # this thread's

    done: list[SignedIn] = []
    pool = ThreadPoolExecutor(threads)
    try:
        for signed in pool.map(one, members):
            done.append(signed)
            if len(done) % 100 == 0:
                say(f"  {len(done)} of {len(members)} members signed in")
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # Ctrl-C: only the sign-ins under way finish
    return done


def setup_progress(tids: list[str]) -> dict[str, int]:
    from chat.models import Chat, ChatSyncState, GraphSubscription
    from tenants.models import CustomerTenant

    tenants = list(CustomerTenant.objects.filter(tid__in=tids).values_list("pk", flat=True))
    synced = ChatSyncState.objects.filter(tenant__in=tenants, last_success_at__isnull=False)
    return {
        "synced": synced.count(),
        "chats": Chat.objects.filter(tenant__in=tenants).count(),
        "subscribed": GraphSubscription.objects.filter(tenant__in=tenants).count(),
    }


def wait_for_subscriptions(
    tids: list[str], members: int, chats: int, timeout: float, processes: Processes
) -> dict[str, int]:
    deadline, last_print = time.monotonic() + timeout, 0.0
    while True:
        processes.check()
        progress = setup_progress(tids)
        if progress["synced"] >= members and progress["chats"] >= chats and progress["subscribed"] >= chats:
            return progress
        if time.monotonic() > deadline:
            raise RuntimeError(f"not every chat was subscribed within {timeout:.0f} s: {progress}")
        if time.monotonic() - last_print > 10:
            say(
                f"  {progress['synced']}/{members} members synced, {progress['chats']}/{chats} chats mirrored, "
                f"{progress['subscribed']} subscribed"
            )
            last_print = time.monotonic()
        time.sleep(1)


def wait_until_quiet(log: RequestLog, timeout: float, quiet: float = 3.0) -> float:
    """Until the broker holds no task (queued, reserved or waiting for its countdown) and Graph has
    had no request for `quiet` seconds: the first syncs' tail (the chats read again once subscribed,
    retries after a 429) is over. Returns when that was."""
    import redis
    from django.conf import settings

    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pending = broker.llen("celery") + broker.hlen("unacked")
        recent = log.between(time.time() - quiet, time.time())
        if not pending and not recent:
            return time.time() - quiet
        time.sleep(0.5)
    raise RuntimeError(f"the portal was still busy {timeout:.0f} s after the subscriptions")


# websockets -------------------------------------------------------------------------------------
class Sockets(threading.Thread):
    """Open chat pages: one websocket per member, authenticated by his session cookie."""

    def __init__(self, url: str, ca: str, members: list[SignedIn]) -> None:
        super().__init__(name="sockets", daemon=True)
        self.url, self.ca, self.members = url, ca, members
        self.origin = url.replace("wss://", "https://").split("/ws/", 1)[0]
        self.ready = threading.Event()
        self.failed: list[str] = []
        self.opened = 0
        self.open_oids: set[str] = set()
        self.arrivals: dict[str, dict[str, float]] = defaultdict(dict)  # marker → oid → first arrival
        self.loop: asyncio.AbstractEventLoop | None = None
        self.closing: asyncio.Event | None = None

    def run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self.loop, self.closing = asyncio.get_running_loop(), asyncio.Event()
        context = ssl.create_default_context(cafile=self.ca)
        # Pages open over a few seconds, not all in one instant (see the report: a burst of 100
        # connects at once exhausts the web process's channel-layer connection pool).
        self.connecting = asyncio.Semaphore(CONNECTS_AT_ONCE)
        tasks = [asyncio.create_task(self._listen(m, context)) for m in self.members]
        await self.closing.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _listen(self, member: SignedIn, context: ssl.SSLContext) -> None:
        from websockets.asyncio.client import connect as ws_connect

        try:
            await self.connecting.acquire()
            async with ws_connect(
                self.url,
                ssl=context,
                origin=self.origin,  # type: ignore[arg-type]
                additional_headers={"Cookie": f"sessionid={member.session}"},
                open_timeout=30,
                ping_interval=20,
            ) as socket:
                hello = json.loads(await socket.recv())
                if hello.get("type") != "hello":
                    raise RuntimeError(f"no hello: {hello}")
                self.open_oids.add(member.oid)
                self.connecting.release()
                self._opened()
                async for frame in socket:
                    now = time.time()
                    for marker in MARKER.findall(str(frame)):
                        self.arrivals[marker].setdefault(member.oid, now)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if member.oid not in self.open_oids:
                self.connecting.release()
            self.failed.append(f"{member.upn}: {type(exc).__name__}: {exc}")
            self._opened()

    def _opened(self) -> None:
        self.opened += 1
        if self.opened >= len(self.members):
            self.ready.set()

    def close(self) -> None:
        if self.loop is not None and self.closing is not None:
            self.loop.call_soon_threadsafe(self.closing.set)
        self.join(10)


# the steady phase ---------------------------------------------------------------------------------
@dataclass
class Posted:
    marker: str
    tid: str
    chat_id: str
    message_id: str
    created: float  # devcloud's createdDateTime, epoch seconds
    watchers: frozenset[str]  # oids of members of the chat with an open socket


def plan_messages(
    chats: dict[str, list[dict[str, Any]]], watched: set[str], count: int, rng: random.Random
) -> list[tuple[str, dict[str, Any], str]]:
    """(tid, chat, sender) for each message: organizations in turn, a chat with an open socket."""
    candidates = {tid: [c for c in cs if watched & set(c["members"])] for tid, cs in chats.items()}
    tids = [tid for tid, cs in candidates.items() if cs]
    plan = []
    for n in range(count):
        tid = tids[n % len(tids)]
        chat = rng.choice(candidates[tid])
        plan.append((tid, chat, rng.choice(chat["members"])))
    return plan


def post_steadily(
    devcloud: DevCloud, plan: list[tuple[str, dict[str, Any], str]], rate: float, run_id: str, watched: set[str]
) -> list[Posted]:
    posted: list[Posted] = []
    start = time.monotonic()
    for n, (tid, chat, sender) in enumerate(plan):
        delay = start + n / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        marker = f"fresh-{run_id}-{n:05d}"
        body = {"from": sender, "content": f"<p>{marker} typed in Teams for the freshness benchmark</p>"}
        message = devcloud.control("POST", f"/chats/{quote(chat['id'], safe='')}/messages", json=body)
        created = dt.datetime.fromisoformat(message["createdDateTime"]).timestamp()
        posted.append(
            Posted(marker, tid, chat["id"], message["id"], created, frozenset(watched & set(chat["members"])))
        )
        if (n + 1) % max(1, int(rate * 10)) == 0:
            say(f"  {n + 1} of {len(plan)} messages typed")
    return posted


def mirrored_times(posted: list[Posted]) -> dict[str, float]:
    """marker → when the sync wrote the row (PostgreSQL's clock: this machine's)."""
    from chat.models import Message
    from tenants.models import CustomerTenant

    tenants = dict(CustomerTenant.objects.filter(tid__in={p.tid for p in posted}).values_list("tid", "pk"))
    found: dict[tuple[str, str], float] = {}
    by_tenant: dict[str, list[Posted]] = defaultdict(list)
    for p in posted:
        by_tenant[p.tid].append(p)
    for tid, items in by_tenant.items():
        rows = Message.objects.filter(
            tenant_id=tenants[uuid.UUID(tid)], graph_id__in=[p.message_id for p in items]
        ).values_list("chat__graph_id", "graph_id", "mirrored_at")
        found.update({(chat, mid): at.timestamp() for chat, mid, at in rows})
    return {p.marker: found[(p.chat_id, p.message_id)] for p in posted if (p.chat_id, p.message_id) in found}


def wait_for_deliveries(posted: list[Posted], sockets: Sockets, drain: float) -> tuple[dict[str, float], float]:
    deadline = time.monotonic() + drain
    while True:
        mirrored = mirrored_times(posted)
        delivered = sum(1 for p in posted if p.marker in sockets.arrivals or not p.watchers)
        if (len(mirrored) == len(posted) and delivered == len(posted)) or time.monotonic() > deadline:
            return mirrored, time.time()
        time.sleep(0.5)


def percentiles(values: Iterable[float]) -> dict[str, float | None]:
    data = sorted(values)
    if not data:
        return {"p50": None, "p95": None, "max": None, "n": 0}
    p95 = data[min(len(data) - 1, math.ceil(0.95 * len(data)) - 1)]
    return {"p50": round(statistics.median(data), 3), "p95": round(p95, 3), "max": round(data[-1], 3), "n": len(data)}


def notification_times(devcloud: DevCloud, posted: list[Posted]) -> dict[str, float]:
    """marker → when devcloud first POSTed its notification, for chats with one message posted."""
    from chat.models import GraphSubscription

    by_chat: dict[str, list[Posted]] = defaultdict(list)
    for p in posted:
        by_chat[p.chat_id].append(p)
    subscription_chat = dict(
        GraphSubscription.objects.filter(
            tenant__tid__in={p.tid for p in posted}, chat__graph_id__in=list(by_chat)
        ).values_list("graph_id", "chat__graph_id")
    )
    first: dict[str, float] = {}
    for entry in devcloud.control("GET", "/notifications")["deliveries"]:
        chat = subscription_chat.get(entry.get("subscription", ""))
        if entry.get("kind") == "created" and chat and len(by_chat[chat]) == 1:
            first.setdefault(by_chat[chat][0].marker, entry["time"])
    return first


def task_start_times(posted: list[Posted]) -> dict[str, float]:
    """marker → when the notified sync started reading (the subscription's `last_notified_at`), for
    chats with one message posted."""
    from chat.models import GraphSubscription

    once = Counter(p.chat_id for p in posted)
    rows = dict(
        GraphSubscription.objects.filter(
            tenant__tid__in={p.tid for p in posted}, chat__graph_id__in=[c for c, n in once.items() if n == 1]
        ).values_list("chat__graph_id", "last_notified_at")
    )
    return {p.marker: rows[p.chat_id].timestamp() for p in posted if rows.get(p.chat_id) is not None}


# main -----------------------------------------------------------------------------------------------
def main() -> None:
    args = arguments()
    signal.signal(signal.SIGTERM, _terminate)
    work = Path(tempfile.mkdtemp(prefix=f"bench-{NAME}-"))
    processes = Processes(work)
    atexit.register(processes.stop)
    rng = random.Random(args.seed)  # noqa: S311 - a sample, not a secret
    run_id = secrets.token_hex(3)

    orgs = organizations(args.tenants)
    write_seed(work / "seed.json", orgs)
    devcloud = devcloud_start(processes, work / "devcloud", work / "seed.json")
    web_port = free_port()
    env = portal_environment(devcloud, web_port, work)
    harness.django_start(env)
    portal_start(processes, {**os.environ, **env}, devcloud, web_port, args)
    say(
        f"devcloud at Graph's limits, the portal (web, {args.worker_concurrency} worker processes, beat) on :{web_port}; logs in {work}"
    )
    log = RequestLog(devcloud)
    log.start()
    atexit.register(log.stopping.set)

    started = time.time()
    chats = generate_chats(devcloud, orgs, args)
    total_chats = sum(len(c) for c in chats.values())
    memberships = Counter(m for cs in chats.values() for c in cs for m in c["members"])
    directory = {t["id"]: t for t in devcloud.control("GET", "/directory")["tenants"]}
    # Members of every organization sign in at the same time, as they would in the morning.
    per_org = [
        [(org.tid, u["id"], u["upn"]) for u in directory[org.tid]["users"] if u["upn"] != org.admin] for org in orgs
    ]
    members = [m for turn in itertools.zip_longest(*per_org) for m in turn if m is not None]
    say(
        f"{len(orgs)} organizations, {len(members)} members, {total_chats} chats of {args.history} messages; "
        f"chats per member: mean {statistics.mean(memberships.values()):.1f}, min {min(memberships.values())}, "
        f"max {max(memberships.values())}"
    )

    connect(devcloud, orgs)
    say(f"{len(orgs)} admins connected their organizations")
    sign_in_started = time.time()
    signed = sign_in_all(devcloud, members, args.sign_in_threads)
    sign_in_seconds = time.time() - sign_in_started
    say(f"{len(signed)} members signed in in {sign_in_seconds:.0f} s; waiting for first syncs and subscriptions")
    progress = wait_for_subscriptions(
        [o.tid for o in orgs], len(orgs) + len(signed), total_chats, args.setup_timeout, processes
    )
    subscribe_seconds = time.time() - sign_in_started
    say(
        f"every chat mirrored and subscribed ({progress['subscribed']} subscriptions) {subscribe_seconds:.0f} s after "
        "the first sign-in; waiting for the syncs' tail"
    )
    setup_end = wait_until_quiet(log, args.setup_timeout)
    quiet_seconds = setup_end - sign_in_started
    setup = graph_counts(log.between(started, setup_end))
    say(
        f"quiet {quiet_seconds:.0f} s after the first sign-in; set-up took {setup['requests']} Graph requests "
        f"{setup['endpoints']}, {setup['throttled']} answered 429"
    )

    sample = rng.sample(signed, min(args.sockets, len(signed)))
    sockets = Sockets(f"wss://127.0.0.1:{web_port}/ws/chat/", devcloud.ca, sample)
    sockets.start()
    sockets.ready.wait(120)
    say(f"{sockets.opened - len(sockets.failed)} websockets open, {len(sockets.failed)} failed {sockets.failed[:3]}")

    watched = set(sockets.open_oids)
    count = int(args.rate * args.seconds)
    plan = plan_messages(chats, watched, count, rng)
    devcloud.control("DELETE", "/notifications")
    steady_start = time.time()
    say(f"typing {count} messages in Teams at {args.rate:g}/s for {args.seconds:g} s")
    posted = post_steadily(devcloud, plan, args.rate, run_id, watched)
    mirrored, steady_end = wait_for_deliveries(posted, sockets, args.drain)
    steady_entries = log.between(steady_start, steady_end)
    steady = graph_counts(steady_entries)
    (work / "steady-requests.json").write_text(json.dumps(steady_entries, indent=0))
    sockets.close()
    notified = notification_times(devcloud, posted)
    task_started = task_start_times(posted)
    log.stopping.set()

    to_mirror = percentiles(mirrored[p.marker] - p.created for p in posted if p.marker in mirrored)
    to_socket = percentiles(
        min(sockets.arrivals[p.marker].values()) - p.created for p in posted if p.marker in sockets.arrivals
    )
    expected_deliveries = sum(len(p.watchers) for p in posted)
    socket_deliveries = sum(len(sockets.arrivals.get(p.marker, {})) for p in posted)
    all_sockets = percentiles(t - p.created for p in posted for t in sockets.arrivals.get(p.marker, {}).values())
    # Written by the notified sync (it started before the row was written), not by another (a resync).
    by_notified_sync = [
        p.marker for p in posted if p.marker in task_started and task_started[p.marker] <= mirrored.get(p.marker, 0)
    ]
    stages = {
        "teams_to_notification": percentiles(notified[m] - p.created for p in posted if (m := p.marker) in notified),
        "notification_to_task": percentiles(task_started[m] - notified[m] for m in by_notified_sync if m in notified),
        "task_to_mirror": percentiles(mirrored[m] - task_started[m] for m in by_notified_sync),
        "mirror_to_socket": percentiles(
            min(sockets.arrivals[m].values()) - mirrored[m]
            for p in posted
            if (m := p.marker) in mirrored and m in sockets.arrivals
        ),
    }
    delivered = len(mirrored)
    total = graph_counts(log.between(started, steady_end))
    (work / "graph-requests.json").write_text(json.dumps(log.between(started, steady_end)))
    print(
        f"Teams → mirror: p50 {to_mirror['p50']} s, p95 {to_mirror['p95']} s, max {to_mirror['max']} s "
        f"({delivered} of {len(posted)} mirrored)"
    )
    print(
        f"Teams → open websocket: p50 {to_socket['p50']} s, p95 {to_socket['p95']} s, max {to_socket['max']} s "
        f"({to_socket['n']} of {len(posted)}; every socket of a member of the chat: {socket_deliveries} of "
        f"{expected_deliveries} deliveries, p95 {all_sockets['p95']} s)"
    )
    print(
        "where the time goes (messages alone in their chat during the run; "
        f"{len(task_started) - len(by_notified_sync)} of them written by another sync before the notified one started):"
    )
    for stage, figures in stages.items():
        print(f"  {stage}: p50 {figures['p50']} s, p95 {figures['p95']} s, max {figures['max']} s (n={figures['n']})")
    print(
        f"steady phase: {steady['requests']} Graph requests ({steady['endpoints']}) in {steady['round_trips']} round "
        f"trips for {delivered} messages: {steady['requests'] / max(1, delivered):.2f} per message; "
        f"{steady['throttled']} answered 429 (whole run: {total['throttled']})"
    )
    print(
        json.dumps(
            {
                "tenants": len(orgs),
                "members": len(signed),
                "chats": total_chats,
                "chats_per_member_mean": round(statistics.mean(memberships.values()), 1),
                "subscriptions": progress["subscribed"],
                "sign_in_seconds": round(sign_in_seconds, 1),
                "subscribed_seconds_after_first_sign_in": round(subscribe_seconds, 1),
                "quiet_seconds_after_first_sign_in": round(quiet_seconds, 1),
                "setup_graph_requests": setup["requests"],
                "setup_429s": setup["throttled"],
                "worker_concurrency": args.worker_concurrency,
                "sockets_open": sockets.opened - len(sockets.failed),
                "rate_per_second": args.rate,
                "steady_seconds": args.seconds,
                "messages_posted": len(posted),
                "messages_mirrored": delivered,
                "messages_on_socket": to_socket["n"],
                "mirror_p50": to_mirror["p50"],
                "mirror_p95": to_mirror["p95"],
                "mirror_max": to_mirror["max"],
                "socket_p50": to_socket["p50"],
                "socket_p95": to_socket["p95"],
                "socket_max": to_socket["max"],
                "stages_p50": {k: v["p50"] for k, v in stages.items()},
                "stages_p95": {k: v["p95"] for k, v in stages.items()},
                "graph_requests_per_message": round(steady["requests"] / max(1, delivered), 3),
                "steady_graph_endpoints": steady["endpoints"],
                "steady_429s": steady["throttled"],
                "total_429s": total["throttled"],
                "goal_p95_met": bool(
                    to_mirror["p95"] is not None
                    and to_socket["p95"] is not None
                    and max(to_mirror["p95"], to_socket["p95"]) <= GOAL_P95_SECONDS
                ),
                "goal_no_429_met": total["throttled"] == 0,
            }
        )
    )


if __name__ == "__main__":
    main()
