"""Error tracking with Sentry (or any service that takes its SDK's events), when SENTRY_DSN is set.

What leaves the portal: the exception, its stack and the request's method, path and safe
headers, tagged with the request id and the ids of the log context. Never a body, a cookie,
a query string (callback URLs carry OAuth codes) or an Authorization header.
"""

from __future__ import annotations

from typing import Any

import sentry_sdk
from sentry_sdk.integrations.celery import CeleryIntegration
from sentry_sdk.integrations.django import DjangoIntegration
from sentry_sdk.types import Event

from core import logs

DROPPED_HEADERS = {"authorization", "cookie", "proxy-authorization", "x-csrftoken", "set-cookie"}


def sentry_init(*, dsn: str, environment: str, release: str, transport: Any = None) -> None:
    """Send errors to `dsn` (a `transport` records them instead, in tests)."""
    options: dict[str, Any] = {"transport": transport} if transport is not None else {}
    sentry_sdk.init(
        dsn=dsn,
        environment=environment or None,
        release=release or None,
        # No personal data (send_default_pii, deprecated in this SDK, is False when unset), no
        # request body, and no frame variables: a stack's locals hold tokens and token caches.
        max_request_body_size="never",
        include_local_variables=False,
        traces_sample_rate=0,
        integrations=[DjangoIntegration(), CeleryIntegration()],
        before_send=scrub,
        **options,
    )


def scrub(event: Event, hint: dict[str, Any]) -> Event:
    """Drop what may hold a secret; tag the event with the log context's ids."""
    request = event.get("request")
    if isinstance(request, dict):
        for name in ("data", "cookies", "query_string", "env"):
            request.pop(name, None)
        url = request.get("url")
        if isinstance(url, str):
            request["url"] = url.split("?", 1)[0]
        headers = request.get("headers")
        if isinstance(headers, dict):
            request["headers"] = {k: v for k, v in headers.items() if k.lower() not in DROPPED_HEADERS}
    event.setdefault("tags", {}).update({key: str(value) for key, value in logs.current().items()})
    return event
