"""Docker's healthcheck of one portal process: exit 0 when it is healthy, 1 with one line saying why not."""

from __future__ import annotations

import http.client
import json
import math
import os
import socket
import time
from collections.abc import Callable
from typing import Any

from celery import current_app
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from kombu.exceptions import OperationalError

from core import coordination
from core.tasks import HEARTBEAT_MAX_AGE_SECONDS, last_heartbeat

# /healthz's checks of the other processes: each has a healthcheck of its own, and the web
# server is no less healthy when they fail (restarting it would not help them).
OTHER_PROCESSES = {"celery_worker", "beat"}


def check_web(timeout: float) -> str | None:
    """GET /healthz on this container's web server, over plain HTTP (exempt from SECURE_SSL_REDIRECT)."""
    port = int(os.environ.get("PORT", "8000"))
    url = f"http://127.0.0.1:{port}/healthz"
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        # Django answers only the host names it serves, whatever address the request reached.
        connection.request("GET", "/healthz", headers={"Host": served_host()})
        response = connection.getresponse()
        body = response.read()
    except (OSError, http.client.HTTPException) as exc:
        return f"web: nothing answers at {url} ({getattr(exc, 'strerror', None) or type(exc).__name__})"
    finally:
        connection.close()
    problems = failing(body)
    if response.status == 503 and problems and problems.keys() <= OTHER_PROCESSES:
        return None
    if response.status != 200:
        return f"web: {url} answered {response.status}{failing_checks(body)}"
    return None


def served_host() -> str:
    """A host name that ALLOWED_HOSTS accepts."""
    for host in settings.ALLOWED_HOSTS:
        if host != "*":
            return host.lstrip(".")
    return "localhost"


def failing(body: bytes) -> dict[str, str]:
    """/healthz's failing checks, or nothing when the body says no more."""
    try:
        checks = json.loads(body)["checks"]
        return {str(name): str(value) for name, value in checks.items() if value != "ok"}
    except (ValueError, KeyError, TypeError, AttributeError):
        return {}


def failing_checks(body: bytes) -> str:
    """`(database: OperationalError)` from /healthz's 503, or nothing when the body says no more."""
    checks = failing(body)
    return f" ({', '.join(f'{name}: {value}' for name, value in checks.items())})" if checks else ""


def check_worker(timeout: float) -> str | None:
    """A Celery ping to this container's worker, by its default node name."""
    node = f"celery@{socket.gethostname()}"
    try:
        with current_app.connection_for_write() as connection:
            # One attempt: kombu would otherwise retry a broker that does not answer.
            connection.ensure_connection(max_retries=0, timeout=math.ceil(timeout))
            replies = current_app.control.ping(destination=[node], timeout=timeout, connection=connection)
    except (OperationalError, OSError) as exc:
        return f"worker: the broker does not answer ({exc})"
    if not any(node in reply for reply in replies or []):
        return f"worker: {node} did not answer a ping within {timeout:g} s"
    return None


def check_beat(timeout: float) -> str | None:
    """The heartbeat that beat schedules every minute; a worker runs it, so this needs one too.

    One Redis read, bounded by the coordination client's own timeouts."""
    try:
        last = last_heartbeat()
    except coordination.RedisError as exc:
        return f"beat: Redis does not answer ({type(exc).__name__})"
    if last is None:
        return "beat: no heartbeat yet (beat sends core.tasks.heartbeat every 60 s; a worker must run it)"
    age = time.time() - last
    if age > HEARTBEAT_MAX_AGE_SECONDS:
        return f"beat: the last heartbeat is {age:.0f} s old (beat stopped, or no worker runs its tasks)"
    return None


CHECKS: dict[str, Callable[[float], str | None]] = {"web": check_web, "worker": check_worker, "beat": check_beat}


class Command(BaseCommand):
    help = (
        "Check one portal process for Docker's healthcheck: web (GET /healthz on 127.0.0.1:$PORT), "
        "worker (this container's Celery worker answers a ping), beat (its heartbeat is under 3 minutes "
        "old; a worker runs it). Exit 0 if healthy, else 1 with the reason."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("process", choices=sorted(CHECKS))
        parser.add_argument("--timeout", type=float, default=3.0, help="seconds to wait for an answer (default 3)")

    def handle(self, *args: Any, **options: Any) -> None:
        problem = CHECKS[options["process"]](options["timeout"])
        if problem:
            raise CommandError(problem)
        self.stdout.write(f"{options['process']}: healthy")
