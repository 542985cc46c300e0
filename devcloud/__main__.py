"""`python -m devcloud [--port 8443] [--state-dir var/devcloud] [--seed devcloud/seeds/demo.json]
[--certificates-only]`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket
from pathlib import Path

import uvicorn

from devcloud.directory import DEFAULT_SEED, load_directory
from devcloud.pki import ensure_pki
from devcloud.state import State
from devcloud.web import create_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="devcloud", description=__doc__)
    parser.add_argument("--port", type=int, default=8443)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--state-dir", type=Path, default=Path("var/devcloud"))
    parser.add_argument("--seed", type=Path, default=DEFAULT_SEED)
    parser.add_argument("--log-level", default="warning")
    parser.add_argument(
        "--certificates-only", action="store_true", help="create the CA and HTTPS certificate (if missing), then exit"
    )
    args = parser.parse_args(argv)

    ensure_pki(args.state_dir)
    if args.certificates_only:
        return
    directory = load_directory(args.seed, port=args.port)
    state = State(directory=directory, state_dir=args.state_dir, base_url=f"https://{args.host}:{args.port}")
    logging.basicConfig(level=args.log_level.upper())
    print(f"devcloud: https://{args.host}:{args.port} (CA {args.state_dir / 'ca.pem'})", flush=True)
    config = uvicorn.Config(
        create_app(state),
        host=args.host,
        port=args.port,
        ssl_certfile=str(args.state_dir / "server.pem"),
        ssl_keyfile=str(args.state_dir / "server-key.pem"),
        log_level=args.log_level,
        access_log=False,
        timeout_graceful_shutdown=2,
    )
    Server(config).run()


class Server(uvicorn.Server):
    """uvicorn, stopping at once when only idle connections are left.

    Closing an idle TLS connection waits for the client's close_notify, which a client holding
    the connection in its pool never sends: the shutdown would sit out its whole timeout and end
    with an error. A connection between requests is aborted instead (a request under way still
    finishes).
    """

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        async def abort_idle() -> None:
            await asyncio.sleep(0.2)  # after uvicorn asked every connection to close
            for connection in list(self.server_state.connections):
                cycle = getattr(connection, "cycle", None)
                transport = getattr(connection, "transport", None)
                if transport is not None and (cycle is None or cycle.response_complete):
                    transport.abort()

        aborting = asyncio.ensure_future(abort_idle())
        try:
            await super().shutdown(sockets)
        finally:
            aborting.cancel()


if __name__ == "__main__":
    main()
