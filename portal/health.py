"""Health of the services the portal cannot work without: the database and Redis."""

from __future__ import annotations

import redis
from django.conf import settings
from django.db import connection
from django.db.utils import Error as DatabaseError


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


def health() -> dict[str, str]:
    """`ok` or the name of the error, per service (never a URL or a password)."""
    checks = {"database": check_database(), "redis": check_redis()}
    return {name: error or "ok" for name, error in checks.items()}
