"""What every benchmark needs: its own database, devcloud, Django set up against both.

Benchmarks run against real PostgreSQL and Redis (as production does), on a database and key
prefix of their own, so that they never touch the portal's or the tests' data.
"""

from __future__ import annotations

import atexit
import os
import secrets
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.devcloud_server import DevCloud  # noqa: E402


def _database_url(name: str) -> str:
    base = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    parts = urlsplit(base)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _recreate_database(url: str) -> None:
    import psycopg

    name = urlsplit(url).path.lstrip("/")
    admin_url = urlunsplit(urlsplit(url)._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def portal_environment(name: str, devcloud: DevCloud) -> dict[str, str]:
    """The portal's settings for a benchmark `name`: its own database and Redis, devcloud as Microsoft."""
    return {
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "DEBUG": "false",
        "STATIC_MANIFEST": "false",
        "SECRET_KEY": secrets.token_urlsafe(40),
        "ENCRYPTION_KEYS": secrets.token_urlsafe(32)[:43],
        "DATABASE_URL": _database_url(f"portal_bench_{name}"),
        # A Redis database of their own: clearing the cache flushes it.
        "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/2"),
        "CACHE_KEY_PREFIX": f"portal-bench-{name}",
        "CHANNELS_PREFIX": f"portal-bench-{name}:channels",
        "ALLOWED_HOSTS": "localhost,testserver,127.0.0.1",
        "ENTRA_LOGIN_URL": devcloud.base_url,
        "GRAPH_URL": devcloud.base_url,
        "MICROSOFT_CA_BUNDLE": devcloud.ca_bundle,
        "LOG_LEVEL": "WARNING",
    }


def django_start(env: dict[str, str]) -> None:
    """Django in this process with `env`, on its database made afresh and migrated, its cache empty."""
    _recreate_database(env["DATABASE_URL"])
    os.environ.update(env)
    import django
    from django.core.cache import cache
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    cache.clear()


def start(name: str) -> DevCloud:
    """devcloud on a free port and Django on a fresh database `portal_bench_<name>`; returns devcloud."""
    devcloud = DevCloud.start(Path(tempfile.mkdtemp(prefix=f"bench-{name}-")))
    atexit.register(devcloud.stop)
    django_start(portal_environment(name, devcloud))
    return devcloud
