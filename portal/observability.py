"""Each request and each Celery task in its log context; the access log; request and task metrics.

The access log is one line per request (logger `portal.access`): method, path without its
query (callback URLs carry OAuth codes), status, duration, request id and the ids of the
session's member when the request loaded him. Never the query, a cookie or a header.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import suppress
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.core.exceptions import FieldDoesNotExist
from django.db.models import Model
from django.http import HttpRequest, HttpResponseBase
from django.utils.functional import empty

from core import logs, metrics

access_log = logging.getLogger("portal.access")
REQUEST_ID_HEADER = "X-Request-ID"
REQUEST_ID_META = "HTTP_X_REQUEST_ID"  # read from META: request.headers copies every header


def member_ids(request: HttpRequest) -> Mapping[str, Any]:
    """The session's user, member, tenant and vendor ids, if the request loaded them (no query)."""
    user = getattr(request, "user", None)
    user = getattr(user, "_wrapped", user)  # the lazy user, unless something asked for him
    if user is None or user is empty or not user.is_authenticated:
        return {}
    ids: dict[str, Any] = {"user": user.pk}
    member = _loaded(user, "tenant_user")
    if member is not None:
        ids.update(member=member.pk, tenant=member.tenant_id)
        tenant = _loaded(member, "tenant")
        ids["vendor"] = getattr(tenant, "vendor_id", None)
    staff = _loaded(user, "vendor_membership")
    if staff is not None:
        ids["vendor"] = staff.vendor_id
    return {key: value for key, value in ids.items() if value is not None}


def _loaded(instance: Model, name: str) -> Any:
    """A related object already loaded with `instance`, else None (never a query)."""
    try:
        field = instance._meta.get_field(name)
    except FieldDoesNotExist:
        return None
    return field.get_cached_value(instance) if field.is_cached(instance) else None  # type: ignore[union-attr]


def view_name(request: HttpRequest) -> str:
    """A bounded label: the URL pattern's name, `static`, or `unmatched`."""
    match = getattr(request, "resolver_match", None)
    if match is not None:
        return str(match.view_name or match._func_path)
    return "static" if request.path.startswith("/static/") else "unmatched"


class RequestObservability:
    """First middleware: opens the request's log context, answers its id, logs and counts it."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self._acall(request)
        started = time.perf_counter()
        request_id = logs.request_id(request.META.get(REQUEST_ID_META))
        with logs.scope(request_id=request_id, resolve=lambda: member_ids(request)):
            response: HttpResponseBase = self.get_response(request)
            _done(request, response, request_id, started)
        return response

    async def _acall(self, request: HttpRequest) -> HttpResponseBase:
        started = time.perf_counter()
        request_id = logs.request_id(request.META.get(REQUEST_ID_META))
        with logs.scope(request_id=request_id, resolve=lambda: member_ids(request)):
            get_response: Callable[[HttpRequest], Awaitable[HttpResponseBase]] = self.get_response
            response = await get_response(request)
            _done(request, response, request_id, started)
        return response


def _done(request: HttpRequest, response: HttpResponseBase, request_id: str, started: float) -> None:
    elapsed = time.perf_counter() - started
    response[REQUEST_ID_HEADER] = request_id
    view, method, status = view_name(request), request.method or "", response.status_code
    metrics.http_requests.labels(view=view, method=method, status=metrics.status_class(status)).inc()
    metrics.http_duration.labels(view=view, method=method).observe(elapsed)
    duration_ms = round(elapsed * 1000, 1)
    access_log.info(
        "%s %s %s %s ms",
        method,
        request.path,
        status,
        duration_ms,
        extra={"method": method, "path": request.path, "status": status, "duration_ms": duration_ms, "view": view},
    )


# Celery ----------------------------------------------------------------------------------------
# A task runs in the context of its id, its name, the request that queued it and the member it
# is about (a `member_id` argument); the services add the tenant and vendor once they load them.
_task_scopes: dict[str, Any] = {}


def task_started(task_id: str, task: Any, args: Any = (), kwargs: Any = None, **_: Any) -> None:
    member = (kwargs or {}).get("member_id")
    if member is None and args and _first_parameter(task) == "member_id":
        member = args[0]
    scope = logs.scope(task_id=task_id, task=task.name, request_id=_queued_by(task.request), member=member)
    scope.__enter__()
    _task_scopes[task_id] = scope


def task_finished(task_id: str, task: Any, state: str | None = None, **_: Any) -> None:
    metrics.celery_tasks.labels(task=task.name, state=state or "UNKNOWN").inc()
    scope = _task_scopes.pop(task_id, None)
    if scope is not None:
        with suppress(ValueError):  # not this context's: nothing of it to undo here
            scope.__exit__(None, None, None)


def _queued_by(request: Any) -> str | None:
    """The request id a task's message carries (a worker makes its headers attributes; `apply` does not)."""
    found = getattr(request, "request_id", None) or (getattr(request, "headers", None) or {}).get("request_id")
    return found if isinstance(found, str) and logs.REQUEST_ID.fullmatch(found) else None


def task_published(headers: dict[str, Any] | None = None, **_: Any) -> None:
    """A task queued while handling a request carries the request's id."""
    request_id = logs.current().get("request_id")
    if headers is not None and request_id:
        headers.setdefault("request_id", request_id)


def _first_parameter(task: Any) -> str | None:
    code = getattr(getattr(task, "run", None), "__code__", None)
    if code is None:
        return None
    names = code.co_varnames[: code.co_argcount]
    names = names[1:] if names and names[0] == "self" else names
    return names[0] if names else None
