"""The portal's ASGI application (HTTP and websockets) served by uvicorn in a thread of the test
process: over HTTPS with devcloud's certificate for devcloud's change notifications (it trusts
its own CA), or over plain HTTP for Chromium (Entra accepts any port only for http loopback
redirect URIs).

The server thread uses the test database, so tests that use it are `transaction=True`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import uvicorn
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

from tests.devcloud_server import DevCloud, free_port


@dataclass
class PortalServer:
    url: str
    server: uvicorn.Server
    thread: threading.Thread

    @property
    def host(self) -> str:
        return self.url.split("://", 1)[1]


@contextmanager
def serve_portal(devcloud: DevCloud, *, tls: bool = True) -> Iterator[PortalServer]:
    from portal.asgi import application

    port = free_port()
    config = uvicorn.Config(
        ASGIStaticFilesHandler(application),
        host="127.0.0.1",
        port=port,
        ssl_certfile=str(devcloud.state_dir / "server.pem") if tls else None,
        ssl_keyfile=str(devcloud.state_dir / "server-key.pem") if tls else None,
        log_level="warning",
        lifespan="off",
        ws="websockets-sansio",
        # devcloud and browsers keep connections alive: don't wait for them at the end of a test.
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="portal-asgi", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the portal's ASGI server did not start")
        time.sleep(0.05)
    try:
        yield PortalServer(f"{'https' if tls else 'http'}://127.0.0.1:{port}", server, thread)
    finally:
        server.should_exit = True
        thread.join(10)
