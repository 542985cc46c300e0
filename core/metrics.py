"""Metrics an operator scrapes: Prometheus text at /metrics (portal.views.metrics).

Every portal process on a host (web workers, Celery workers and their pool processes, beat)
writes its figures to files under PROMETHEUS_MULTIPROC_DIR when it is set (prometheus_client's
multiprocess mode), and a scrape of any web process reads them all. Processes are told apart by
host name and pid, so containers sharing the directory on a volume do not write each other's
files. Unset: each process keeps its own, and /metrics shows the web process that answered.
Celery's queue depths are read from the broker at each scrape.

Labels are ids and bounded words (a view's name, a status class), never a path, a name or a token.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import redis
from celery import current_app
from django.conf import settings
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import values as prometheus_values
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from core import logs

log = logging.getLogger(__name__)
_HOST = socket.gethostname().replace("_", "-")  # "_" separates the parts of the files' names


def multiprocess_dir() -> str:
    """PROMETHEUS_MULTIPROC_DIR if it is set and exists (made if only its last part is missing)."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    if directory and not os.path.isdir(directory):
        try:
            os.mkdir(directory)
        except OSError as exc:
            log.warning("metrics: PROMETHEUS_MULTIPROC_DIR cannot be made (%s): this process's own only", exc)
            return ""
    return directory


def _process() -> str:
    return f"{_HOST}-{os.getpid()}"


_MULTIPROCESS = bool(multiprocess_dir())
# Chosen here, not by prometheus_client from the environment: files named by host and pid, and a
# process's own values when the directory cannot be had.
prometheus_values.ValueClass = (
    prometheus_values.MultiProcessValue(_process)  # type: ignore[no-untyped-call]
    if _MULTIPROCESS
    else prometheus_values.MutexValue
)

TENANT = ("vendor", "tenant")
SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
SYNC_SECONDS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900)
LAG_SECONDS = (1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 24 * 3600)
WAIT_SECONDS = (0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10)

http_requests = Counter(
    "portal_http_requests",
    "HTTP requests answered, by view name, method and status class.",
    ["view", "method", "status"],
)
http_duration = Histogram(
    "portal_http_request_duration_seconds", "Time to answer an HTTP request.", ["view", "method"], buckets=SECONDS
)
graph_requests = Counter(
    "portal_graph_requests",
    "Requests to Microsoft Graph (each request in a $batch counts) by status class; 429 on its own; error: no answer.",
    [*TENANT, "status"],
)
bucket_waits = Histogram(
    "portal_bucket_wait_seconds",
    "Waits for a turn under a limit kept in Redis (token bucket or send window), by kind.",
    ["bucket"],
    buckets=WAIT_SECONDS,
)
bucket_refusals = Counter(
    "portal_bucket_refusals", "Turns not given: the wait would have been over the caller's limit.", ["bucket"]
)
graph_slot_waits = Histogram(
    "portal_graph_slot_wait_seconds",
    "Waits for a turn under Graph's chat message limits (tenant, app and chat windows).",
    TENANT,
    buckets=WAIT_SECONDS,
)
graph_slot_deferrals = Counter(
    "portal_graph_slot_deferrals", "Graph requests put off: their turn was too far away.", TENANT
)
chat_syncs = Counter("portal_chat_syncs", "Chat syncs of a member, by kind and outcome.", ["kind", "outcome"])
chat_sync_duration = Histogram(
    "portal_chat_sync_duration_seconds", "Time a member's chat sync took, by kind.", ["kind"], buckets=SYNC_SECONDS
)
chat_sync_messages = Counter("portal_chat_sync_messages", "Messages written to the mirror by syncs.", TENANT)
chat_sync_lag = Histogram(
    "portal_chat_sync_lag_seconds",
    "Per sync that brought changes to mirrored chats: from the newest change in Teams to its arrival in the mirror.",
    buckets=LAG_SECONDS,
)
chat_sync_staleness = Histogram(
    "portal_chat_sync_staleness_seconds",
    "Age of the member's mirror (since his last successful sync) when a sync of his chats begins.",
    buckets=LAG_SECONDS,
)
webhook_items = Counter(
    "portal_graph_webhook_items",
    "Items of Graph's change notification and lifecycle deliveries: matched a subscription, or refused.",
    ["kind", "outcome"],
)
acs_exchanges = Counter(
    "portal_acs_token_exchanges",
    "Entra → ACS token exchanges, by outcome (ok or the reason given) and the service that refused.",
    [*TENANT, "outcome", "source"],
)
acs_exchange_duration = Histogram(
    "portal_acs_token_exchange_duration_seconds", "Time an ACS token exchange took, Entra included.", buckets=SECONDS
)
celery_tasks = Counter("portal_celery_tasks", "Celery tasks run, by task and state.", ["task", "state"])


def status_class(status: int) -> str:
    """`2xx`, `4xx`…; `429` on its own; `error` when nothing answered (0)."""
    if status == 429:
        return "429"
    return f"{status // 100}xx" if status >= 100 else "error"


def tenant_labels() -> dict[str, str]:
    """The vendor and tenant of the work at hand (from the log context), "" when unknown."""
    context = logs.current()
    return {"vendor": str(context.get("vendor", "")), "tenant": str(context.get("tenant", ""))}


def tenant_labels_of(tenant: Any) -> dict[str, str]:
    """A customer tenant's labels (its row's and its vendor's ids)."""
    return {"vendor": str(tenant.vendor_id), "tenant": str(tenant.pk)}


def graph_request(status: int) -> None:
    graph_requests.labels(**tenant_labels(), status=status_class(status)).inc()


def webhook_delivery(kind: str, *, matched: int, refused: int) -> None:
    """One delivery of Graph's (`notifications` or `lifecycle`): its items that matched a
    subscription and those refused (unknown subscription, wrong clientState, unknown event)."""
    webhook_items.labels(kind=kind, outcome="matched").inc(matched)
    webhook_items.labels(kind=kind, outcome="refused").inc(refused)


def bucket_waited(name: str, wait: float, max_wait: float) -> None:
    """One `bucket_take` or `window_take`: the kind is the name's first part (`graph-tenant:…`)."""
    kind = name.partition(":")[0]
    if wait > max_wait:
        bucket_refusals.labels(bucket=kind).inc()
    else:
        bucket_waits.labels(bucket=kind).observe(wait)


class CeleryQueues(Collector):
    """Tasks waiting in each Celery queue and tasks taken but not yet acknowledged, from Redis."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        url = settings.CELERY_BROKER_URL
        if not url.startswith(("redis://", "rediss://", "unix://")):
            return
        waiting = GaugeMetricFamily("portal_celery_queue_length", "Tasks waiting in a Celery queue.", labels=["queue"])
        unacked = GaugeMetricFamily(
            "portal_celery_unacked_tasks", "Tasks a worker has taken and not acknowledged yet (running or reserved)."
        )
        try:
            lengths, taken = _queue_lengths(url)
        except redis.RedisError as exc:
            log.warning("metrics: the broker does not answer (%s)", type(exc).__name__)
            return
        for queue, length in lengths.items():
            waiting.add_metric([queue], length)
        unacked.add_metric([], taken)
        yield waiting
        yield unacked


# kombu's Redis transport keeps a queue's tasks of priority 3, 6 and 9 in lists of their own.
PRIORITY_SEPARATOR = "\x06\x16"
PRIORITY_STEPS = ("", *(f"{PRIORITY_SEPARATOR}{step}" for step in (3, 6, 9)))


@lru_cache(maxsize=2)
def _broker(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


def _queue_lengths(url: str) -> tuple[dict[str, int], int]:
    queues = sorted(current_app.amqp.queues.keys())
    pipe = _broker(url).pipeline(transaction=False)
    for queue in queues:
        for step in PRIORITY_STEPS:
            pipe.llen(f"{queue}{step}")
    pipe.hlen(str(settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("unacked_key", "unacked")))
    answers = pipe.execute()
    per_queue = len(PRIORITY_STEPS)
    lengths = {queue: sum(answers[n * per_queue : (n + 1) * per_queue]) for n, queue in enumerate(queues)}
    return lengths, int(answers[-1])


_scraped = CollectorRegistry()  # collected at scrapes only (describing would read the broker)
_scraped.register(CeleryQueues())


def scrape() -> tuple[bytes, str]:
    """The exposition of every process's figures (or this one's) and of the queues: body, content type."""
    if _MULTIPROCESS:
        processes = CollectorRegistry()
        MultiProcessCollector(processes)  # type: ignore[no-untyped-call]
        figures = generate_latest(processes)
    else:
        figures = generate_latest(REGISTRY)
    return figures + generate_latest(_scraped), CONTENT_TYPE_LATEST
