"""Health of what the portal cannot work without: the database, Redis, a Celery worker and beat."""

from __future__ import annotations

import math
import threading
import time

import redis
from celery import current_app
from django.conf import settings
from django.db import connection
from django.db.utils import Error as DatabaseError
from kombu.exceptions import OperationalError

from core import coordination
from core.tasks import HEARTBEAT_MAX_AGE_SECONDS, last_heartbeat


def check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        return type(exc).__name__
    return None


def check_redis(url: str | None = None) -> str | None:
    client = redis.Redis.from_url(url or settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        return type(exc).__name__
    finally:
        client.close()
    return None


def ping_workers(timeout: float) -> str | None:
    """A Celery ping to every worker; the first answer is enough."""
    try:
        with current_app.connection_for_write() as broker:
            # One attempt: kombu would otherwise retry a broker that does not answer.
            broker.ensure_connection(max_retries=0, timeout=math.ceil(timeout))
            replies = current_app.control.ping(timeout=timeout, limit=1, connection=broker)
    except (OperationalError, OSError) as exc:
        return f"the broker does not answer ({type(exc).__name__})"
    return None if replies else f"no worker answered within {timeout:g} s"


# A burst of health checks makes one ping per web process every few seconds; the others wait for it.
_worker_lock = threading.Lock()
_worker_answer: tuple[float, str | None] = (-math.inf, None)


def check_celery_worker() -> str | None:
    global _worker_answer
    with _worker_lock:
        asked_at, answer = _worker_answer
        if time.monotonic() - asked_at >= settings.HEALTHZ_CELERY_CACHE_SECONDS:
            answer = ping_workers(settings.HEALTHZ_CELERY_TIMEOUT)
            _worker_answer = (time.monotonic(), answer)
        return answer


def forget_worker_answer() -> None:
    """The next check pings again (tests)."""
    global _worker_answer
    with _worker_lock:
        _worker_answer = (-math.inf, None)


def check_beat() -> str | None:
    """Beat sends core.tasks.heartbeat every minute and a worker runs it: its age tells both."""
    try:
        last = last_heartbeat()
    except coordination.RedisError as exc:
        return type(exc).__name__
    if last is None:
        return "never ran (no heartbeat within a day)"
    age = time.time() - last
    if age <= HEARTBEAT_MAX_AGE_SECONDS:
        return None
    return f"last ran {age / 60:.0f} min ago" if age >= 90 else f"last ran {age:.0f} s ago"


def health() -> dict[str, str]:
    """`ok` or what is wrong, per check (never a URL or a password)."""
    checks = {"database": check_database(), "redis": check_redis()}
    if settings.HEALTHZ_CELERY:
        checks["celery_worker"] = check_celery_worker()
        checks["beat"] = check_beat()
    return {name: error or "ok" for name, error in checks.items()}
