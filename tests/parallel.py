"""Parallel runs (`pytest -n 2`, as `make test` runs): each worker has Redis databases of its own.

pytest-django gives each worker its own test database (`test_portal_gw1`, …). The tests, the
channel layer and the benchmarks the tests run clear their Redis database, so worker n uses the
databases 3·n after TEST_REDIS_URL's and BENCH_REDIS_URL's (gw0 keeps 1 and 2, gw1 takes 4 and
5, …: five workers fit Redis's 16). Loaded with `-p` (see pyproject.toml): it runs after
pytest-env has set the environment and before Django reads it.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

import pytest

REDIS_DATABASES_PER_WORKER = 3
BENCH_REDIS_URL = "redis://127.0.0.1:6379/2"  # bench/harness.py's default


def _shifted(url: str, by: int) -> str:
    parts = urlsplit(url)
    database = int(parts.path.lstrip("/") or 0) + by
    if database > 15:
        raise pytest.UsageError(f"{url}: no Redis database {database} for this worker (Redis has 16)")
    return urlunsplit(parts._replace(path=f"/{database}"))


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw") or worker == "gw0":
        return
    by = REDIS_DATABASES_PER_WORKER * int(worker.removeprefix("gw"))
    os.environ["TEST_REDIS_URL"] = os.environ["REDIS_URL"] = _shifted(os.environ["REDIS_URL"], by)
    os.environ["BENCH_REDIS_URL"] = _shifted(os.environ.get("BENCH_REDIS_URL", BENCH_REDIS_URL), by)
