"""Log records that say whose work they are about: a context of ids, and JSON or plain lines.

A request or a Celery task opens a context (`scope`) with its request id or task id; the code
that learns whom the work is for adds the ids it knows (`bind`: vendor, tenant, member, user
primary keys). Every record carries the context: JSON keys, or `[key=value …]` after a plain
line. Ids only, never a name, an address or a token.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any

_EMPTY: Mapping[str, Any] = MappingProxyType({})
Resolver = Callable[[], Mapping[str, Any]]
_context: ContextVar[Mapping[str, Any]] = ContextVar("portal_log_context", default=_EMPTY)
# Ids known only once something is loaded (the session's user): asked for each time they are needed.
_resolver: ContextVar[Resolver | None] = ContextVar("portal_log_resolver", default=None)
# An incoming X-Request-ID is kept when it looks like an id (a proxy's or a load balancer's);
# anything else (too long, spaces, quotes, control characters) is replaced by our own.
REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{7,127}")
# The attributes every LogRecord has: the rest came from `extra=` and go into the JSON.
# (uvicorn adds `color_message`, the message with terminal colours.)
_RECORD_FIELDS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "context", "color_message"}
_PLAIN = (str, int, float, bool)


def current() -> Mapping[str, Any]:
    resolve = _resolver.get()
    return {**resolve(), **_context.get()} if resolve is not None else _context.get()


def bind(**ids: Any) -> None:
    """Add ids to the current context, until it ends (None values are left out)."""
    _context.set(_with(ids))


@contextmanager
def bound(**ids: Any) -> Iterator[None]:
    """Add ids to the current context for the block."""
    token = _context.set(_with(ids))
    try:
        yield
    finally:
        _context.reset(token)


def _with(ids: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType({**_context.get(), **{k: v for k, v in ids.items() if v is not None}})


@contextmanager
def scope(*, resolve: Resolver | None = None, **ids: Any) -> Iterator[None]:
    """A fresh context for one request or task; the previous one is back afterwards.

    `resolve` gives ids that become known along the way (it must be cheap: it runs per record)."""
    token = _context.set(MappingProxyType({k: v for k, v in ids.items() if v is not None}))
    resolver = _resolver.set(resolve)
    try:
        yield
    finally:
        _resolver.reset(resolver)
        _context.reset(token)


def request_id(incoming: str | None) -> str:
    """The caller's id when it is well-formed, else a new one."""
    if incoming and REQUEST_ID.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


class ContextFilter(logging.Filter):
    """Puts the context on each record (`record.context`), whichever logger made it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "context"):
            record.context = dict(current())
        return True


class PlainFormatter(logging.Formatter):
    """`time LEVEL logger message [request_id=… tenant=…]`: for a person at a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = {**getattr(record, "context", {}), **_extra(record)}
        if not context:
            return line
        suffix = " ".join(f"{key}={value}" for key, value in context.items())
        first, newline, rest = line.partition("\n")
        return f"{first} [{suffix}]{newline}{rest}"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the context, `extra=` fields, exc."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **getattr(record, "context", {}),
            **_extra(record),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def _extra(record: logging.LogRecord) -> dict[str, Any]:
    """Plain values given with `extra=`; objects are left out (Django's `request` would show its query)."""
    fields = vars(record)
    return {
        key: fields[key]
        for key in sorted(fields.keys() - _RECORD_FIELDS)
        if not key.startswith("_") and isinstance(fields[key], _PLAIN)
    }
