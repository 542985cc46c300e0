"""Celery tasks of core: the heartbeat that shows beat is scheduling tasks and a worker runs them."""

from __future__ import annotations

import time

from celery import shared_task

from core import coordination

HEARTBEAT = "beat:heartbeat"
# Beat sends the heartbeat every 60 s: three missed beats make beat unhealthy (/healthz, healthcheck beat).
HEARTBEAT_MAX_AGE_SECONDS = 180
# Kept far longer than the healthcheck accepts, so that a stale heartbeat is reported with its age.
HEARTBEAT_KEPT_SECONDS = 24 * 3600


@shared_task(ignore_result=True)
def heartbeat() -> None:
    """Beat, every minute: the time it last ran (by the worker's clock) for /healthz and `healthcheck beat`."""
    coordination.put(HEARTBEAT, str(time.time()), seconds=HEARTBEAT_KEPT_SECONDS)


def last_heartbeat() -> float | None:
    """When `heartbeat` last ran (Unix time), or None if it has not within a day."""
    value = coordination.get(HEARTBEAT)
    return float(value) if value else None
