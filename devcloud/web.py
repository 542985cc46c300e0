"""The ASGI app: Entra, ACS and Graph routes behind the request log and fault injection."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from devcloud import acs, control, faults
from devcloud.entra import authorize, meta, token
from devcloud.graph import api, subscriptions
from devcloud.state import State


def _endpoint_name(scope: MutableMapping[str, Any]) -> str:
    endpoint = scope.get("endpoint")
    if endpoint is None:
        return "unmatched"
    return f"{endpoint.__module__.removeprefix('devcloud.')}.{endpoint.__name__}"


class RecordAndFault(BaseHTTPMiddleware):
    """Logs every request (never its body or tokens) and applies the faults that match it."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        state: State = request.app.state.devcloud
        service = faults.service_of(request.url.path)
        if service == "control":
            return await call_next(request)
        started = time.monotonic()
        rule = faults.pick(state.faults, service, request.method, request.url.path)
        if rule and rule["latency_ms"]:
            await asyncio.sleep(rule["latency_ms"] / 1000)
        if rule and rule["status"]:
            response = faults.response(rule, service)
            endpoint = "fault"
        else:
            response = await call_next(request)
            endpoint = _endpoint_name(request.scope)
        state.record_request(
            {
                "service": service,
                "endpoint": endpoint,
                "method": request.method,
                "path": request.url.path,
                "status": response.status_code,
                "duration_ms": round((time.monotonic() - started) * 1000, 2),
                **getattr(request.state, "log_detail", {}),
            }
        )
        return response


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


@asynccontextmanager
async def _lifespan(app: Starlette) -> AsyncIterator[None]:
    yield
    app.state.devcloud.flush(pending_only=True)


def create_app(state: State) -> Starlette:
    routes = [
        Route("/_devcloud/health", health),
        Mount("/_devcloud", routes=control.routes()),
        *api.routes(),
        *acs.routes(),
        *meta.routes(),
        *token.routes(),
        *authorize.routes(),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(RecordAndFault)], lifespan=_lifespan)
    app.state.devcloud = state
    subscriptions.attach(state)
    return app
