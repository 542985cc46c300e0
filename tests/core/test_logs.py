"""Log lines: the context's ids on every record, as JSON keys or after a plain line."""

from __future__ import annotations

import json
import logging

import pytest

from core import logs


def record(message: str = "synced %d chats", *args: object, **extra: object) -> logging.LogRecord:
    made = logging.getLogger("chat.sync").makeRecord(
        "chat.sync", logging.INFO, __file__, 1, message, args or (3,), None
    )
    for key, value in extra.items():
        setattr(made, key, value)
    logs.ContextFilter().filter(made)
    return made


def test_a_json_line_holds_the_message_the_context_and_plain_extras() -> None:
    with logs.scope(request_id="r-12345678", tenant=7), logs.bound(member=9):
        line = json.loads(logs.JsonFormatter().format(record(status=200, request=object())))
    assert line["message"] == "synced 3 chats"
    assert line["logger"] == "chat.sync" and line["level"] == "INFO"
    assert (line["request_id"], line["tenant"], line["member"], line["status"]) == ("r-12345678", 7, 9, 200)
    assert "request" not in line  # objects (Django's request, its query with it) are left out


def test_a_plain_line_ends_with_the_context() -> None:
    with logs.scope(task_id="t-1", member=9):
        line = logs.PlainFormatter().format(record())
    assert line.endswith("INFO chat.sync synced 3 chats [task_id=t-1 member=9]")


def test_a_scope_ends_with_its_block_and_a_resolver_adds_ids_known_later() -> None:
    known: dict[str, object] = {}
    with logs.scope(request_id="r-12345678", resolve=lambda: known):
        assert logs.current() == {"request_id": "r-12345678"}
        known["user"] = 5
        assert logs.current() == {"request_id": "r-12345678", "user": 5}
    assert "request_id" not in logs.current()


def test_only_a_well_formed_request_id_is_kept() -> None:
    assert logs.request_id("0f8fad5b-d9cb-469f-a165-70867728950e") == "0f8fad5b-d9cb-469f-a165-70867728950e"
    for bad in (None, "", "short", "x" * 200, "has space 12345", 'quote"12345678', "line\nbreak12345"):
        assert logs.request_id(bad) != bad and len(logs.request_id(bad)) == 32


def test_uvicorn_access_lines_with_their_query_strings_never_reach_a_handler(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """uvicorn's access log prints the query (OAuth codes of the sign-in callbacks): whatever its
    options, the portal's logging keeps it silent; portal.access logs requests without queries."""
    import logging.config

    from django.conf import settings

    # As in `make run`: uvicorn set its loggers up, then the portal's settings configured logging.
    logging.getLogger("uvicorn.access").propagate = False
    logging.config.dictConfig(settings.LOGGING)
    logging.getLogger("uvicorn.access").info('127.0.0.1 - "GET /auth/callback/?code=SECRET-CODE HTTP/1.1" 302')
    captured = capsys.readouterr()
    assert "SECRET-CODE" not in captured.err + captured.out
    access = logging.getLogger("uvicorn.access")
    assert not access.propagate and not access.handlers and not access.isEnabledFor(logging.INFO)
