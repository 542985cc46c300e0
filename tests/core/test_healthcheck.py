"""`manage.py healthcheck web|worker|beat`: Docker's healthchecks, each failing with one line saying why."""

from __future__ import annotations

import io
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from core import coordination, tasks


def healthcheck(*args: str) -> str:
    out = io.StringIO()
    call_command("healthcheck", *args, stdout=out)
    return out.getvalue().strip()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serving(status: int, body: bytes = b"{}", seen: list[str] | None = None) -> Iterator[int]:
    """A server on 127.0.0.1 answering every GET with `status`; the Host headers it got go to `seen`."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if seen is not None:
                seen.append(self.headers["Host"])
            self.send_response(status)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_beat_is_unhealthy_without_a_heartbeat() -> None:
    with pytest.raises(CommandError, match=r"^beat: no heartbeat yet .*a worker must run it"):
        healthcheck("beat")


def test_beat_is_healthy_once_the_heartbeat_ran() -> None:
    tasks.heartbeat()
    assert healthcheck("beat") == "beat: healthy"


def test_beat_is_unhealthy_when_its_heartbeat_is_old() -> None:
    coordination.put(tasks.HEARTBEAT, str(time.time() - 600), seconds=60)
    with pytest.raises(CommandError, match=r"^beat: the last heartbeat is 60\d s old"):
        healthcheck("beat")


def test_web_is_unhealthy_when_nothing_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    monkeypatch.setenv("PORT", str(port))
    with pytest.raises(CommandError, match=rf"^web: nothing answers at http://127.0.0.1:{port}/healthz \("):
        healthcheck("web", "--timeout", "1")


def test_web_is_healthy_when_healthz_answers_200_to_a_host_it_serves(
    monkeypatch: pytest.MonkeyPatch, settings: pytest.FixtureRequest
) -> None:
    settings.ALLOWED_HOSTS = [".portal.example.com", "127.0.0.1"]  # type: ignore[attr-defined]
    seen: list[str] = []
    with serving(200, seen=seen) as port:
        monkeypatch.setenv("PORT", str(port))
        assert healthcheck("web") == "web: healthy"
    assert seen == ["portal.example.com"]


def test_web_is_unhealthy_when_healthz_names_a_failing_check(monkeypatch: pytest.MonkeyPatch) -> None:
    body = b'{"status": "error", "checks": {"database": "OperationalError", "redis": "ok"}}'
    with serving(503, body) as port:
        monkeypatch.setenv("PORT", str(port))
        with pytest.raises(CommandError, match=r"answered 503 \(database: OperationalError\)$"):
            healthcheck("web")


def test_web_is_unhealthy_when_healthz_redirects(monkeypatch: pytest.MonkeyPatch) -> None:
    with serving(301) as port:
        monkeypatch.setenv("PORT", str(port))
        with pytest.raises(CommandError, match=r"answered 301$"):
            healthcheck("web")


def test_worker_is_unhealthy_when_no_worker_answers() -> None:
    with pytest.raises(CommandError, match=r"^worker: celery@\S+ did not answer a ping within 0.5 s$"):
        healthcheck("worker", "--timeout", "0.5")


def test_web_is_healthy_when_only_the_other_processes_checks_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker's and beat's own healthchecks report those; restarting web would not help them."""
    body = b'{"status": "error", "checks": {"database": "ok", "redis": "ok", "celery_worker": "no worker answered within 1 s", "beat": "last ran 7 min ago"}}'
    with serving(503, body) as port:
        monkeypatch.setenv("PORT", str(port))
        assert healthcheck("web") == "web: healthy"


def test_web_is_unhealthy_when_its_own_check_fails_beside_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    body = b'{"status": "error", "checks": {"database": "OperationalError", "redis": "ok", "celery_worker": "no worker answered within 1 s", "beat": "ok"}}'
    with serving(503, body) as port:
        monkeypatch.setenv("PORT", str(port))
        with pytest.raises(CommandError, match=r"answered 503 \(database: OperationalError, celery_worker: no worker"):
            healthcheck("web")
