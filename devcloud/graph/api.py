"""Graph v1.0 requests, from HTTP or from a JSON `$batch`, routed to their handlers.

A request is a `Call` and its answer a `Reply`, so that `$batch` answers each of its requests
exactly as it would answer them alone: authorization, faults and throttling included.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import random
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from devcloud import faults
from devcloud.graph.auth import Caller, caller
from devcloud.graph.errors import GraphError
from devcloud.state import State

log = logging.getLogger(__name__)
ODATA_JSON = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
BATCH_LIMIT = 20


@dataclass
class Call:
    state: State
    method: str
    path: str  # after `/v1.0`, percent-decoded
    query: dict[str, str]
    body: Any
    base: str  # `https://host:port/v1.0`
    authorization: str
    prefer: str = ""
    params: dict[str, str] = field(default_factory=dict)
    _caller: Caller | None = None

    @property
    def caller(self) -> Caller:
        if self._caller is None:
            self._caller = caller(self.state, self.authorization)
        return self._caller

    @property
    def include_unknown_enums(self) -> bool:
        return "include-unknown-enum-members" in self.prefer.lower()

    def context(self, fragment: str) -> dict[str, str]:
        return {"@odata.context": f"{self.base}/$metadata#{fragment}"}


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Call], Awaitable[Reply]]
ROUTES: list[tuple[str, re.Pattern[str], Handler]] = []


def route(method: str, pattern: str) -> Callable[[Handler], Handler]:
    """Register a handler; `{name}` in the pattern is one path segment."""
    regex = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "/?$")

    def register(handler: Handler) -> Handler:
        ROUTES.append((method, regex, handler))
        return handler

    return register


def _resolve(method: str, path: str) -> tuple[Handler, dict[str, str]]:
    allowed = False
    for verb, regex, handler in ROUTES:
        match = regex.match(path)
        if match:
            if verb == method:
                return handler, match.groupdict()
            allowed = True
    if allowed:
        raise GraphError(405, "Request_BadRequest", f"The HTTP method '{method}' is not allowed for this resource.")
    segment = next((s for s in path.split("/") if s), "")
    raise GraphError(400, "BadRequest", f"Resource not found for the segment '{segment}'.")


async def dispatch(call: Call) -> tuple[Reply, str]:
    """The reply, and the handler's name for the request log."""
    name = "graph.unmatched"
    try:
        handler, call.params = _resolve(call.method, call.path)
        name = f"graph.{handler.__name__}"
        return await handler(call), name
    except GraphError as exc:
        return Reply(exc.status, exc.body(), exc.headers), name
    except Exception:  # a bug in devcloud: answer as Graph does, and keep serving the batch
        log.exception("devcloud Graph handler failed: %s %s", call.method, call.path)
        return Reply(500, GraphError(500, "InternalServerError", "An internal server error occurred.").body()), name


def query_options(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """OData option names are case-insensitive (`$orderBy` is `$orderby`); one of each."""
    query: dict[str, str] = {}
    for name, value in pairs:
        key = name.lower() if name.startswith("$") else name
        if key in query:
            raise GraphError(400, "BadRequest", f"Query option '{name}' was specified more than once.")
        query[key] = value
    return query


async def _json_body(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise GraphError(
            400,
            "BadRequest",
            "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.",
        ) from exc


def _http_reply(request: Request, reply: Reply) -> Response:
    request_id = str(uuid.uuid4())
    headers = {
        "request-id": request_id,
        "client-request-id": request.headers.get("client-request-id", request_id),
        **reply.headers,
    }
    if reply.body is None:
        return Response(status_code=reply.status, headers=headers)
    if isinstance(reply.body, bytes):  # a stream (`/$value`), its type in the headers
        return Response(reply.body, status_code=reply.status, headers=headers)
    return JSONResponse(reply.body, status_code=reply.status, headers=headers, media_type=ODATA_JSON)


async def endpoint(request: Request) -> Response:
    state: State = request.app.state.devcloud
    path = "/" + request.path_params["rest"]
    try:
        raw = await request.body()
        if raw and not request.headers.get("content-type", "").lower().startswith("application/json"):
            raise GraphError(400, "BadRequest", "Content-Type 'application/json' is required for a request body.")
        body = await _json_body(raw)
        query = query_options(request.query_params.multi_items())
    except GraphError as exc:
        return exc.response(request)
    call = Call(
        state=state,
        method=request.method,
        path=path,
        query=query,
        body=body,
        base=str(request.base_url).rstrip("/") + "/v1.0",
        authorization=request.headers.get("authorization", ""),
        prefer=request.headers.get("prefer", ""),
    )
    if path == "/$batch":
        reply, name = await batch(call), "graph.batch"
    else:
        reply, name = await dispatch(call)
    request.state.log_detail = {"endpoint": name}
    return _http_reply(request, reply)


# $batch ---------------------------------------------------------------------------------
def _sub_call(parent: Call, item: dict[str, Any]) -> Call:
    url = str(item.get("url", ""))
    parts = urlsplit(url)
    if parts.scheme or parts.netloc:
        # Graph wants URLs relative to the version root; an absolute one is an unknown segment.
        raise GraphError(400, "BadRequest", f"Resource not found for the segment '{parts.scheme}:'.")
    path = unquote(parts.path if parts.path.startswith("/") else "/" + parts.path)
    headers = {str(k).lower(): str(v) for k, v in (item.get("headers") or {}).items()}
    if item.get("body") is not None and not headers.get("content-type", "").startswith("application/json"):
        raise GraphError(400, "BadRequest", "A batch request with a body needs a 'Content-Type' header.")
    return Call(
        state=parent.state,
        method=str(item.get("method", "")).upper(),
        path=path,
        query=query_options(parse_qsl(parts.query, keep_blank_values=True)),
        body=item.get("body"),
        base=parent.base,
        authorization=parent.authorization,
        prefer=headers.get("prefer", parent.prefer),
    )


def _validate_batch(body: Any) -> list[dict[str, Any]]:
    requests = body.get("requests") if isinstance(body, dict) else None
    if not isinstance(requests, list) or not requests:
        raise GraphError(400, "BadRequest", "Invalid batch payload format.")
    if len(requests) > BATCH_LIMIT:
        raise GraphError(400, "BadRequest", f"Number of batch requests exceeds the limit of {BATCH_LIMIT}.")
    ids = [r.get("id") if isinstance(r, dict) else None for r in requests]
    if any(not isinstance(i, str) or not i for i in ids):
        raise GraphError(400, "BadRequest", "Each batch request needs a non-empty string 'id'.")
    folded = [str(i).lower() for i in ids]
    if len(set(folded)) != len(folded):
        raise GraphError(400, "BadRequest", "Batch request ids must be unique (they are not case-sensitive).")
    if any(not isinstance(r.get("method"), str) or not isinstance(r.get("url"), str) for r in requests):
        raise GraphError(400, "BadRequest", "Each batch request needs a 'method' and a 'url'.")
    for r in requests:
        depends = r.get("dependsOn", [])
        if not isinstance(depends, list) or any(not isinstance(d, str) or d.lower() not in folded for d in depends):
            raise GraphError(400, "BadRequest", "'dependsOn' must list ids of requests in the same batch.")
    return requests


async def _answer_item(parent: Call, item: dict[str, Any], failed: set[str]) -> dict[str, Any]:
    depends = [d.lower() for d in item.get("dependsOn") or []]
    if any(d in failed for d in depends):
        reply = Reply(424, GraphError(424, "FailedDependency", "A dependent request failed.").body())
    else:
        reply, name = await _run_item(parent, item)
        parent.state.record_request(
            {
                "service": "graph",
                "endpoint": name,
                "method": item.get("method"),
                "path": item.get("url"),
                "status": reply.status,
                "in_batch": True,
            }
        )
    if reply.status >= 400:
        failed.add(item["id"].lower())
    headers = {"Content-Type": "application/json" if reply.body is not None else "text/plain", **reply.headers}
    answer = {"id": item["id"], "status": reply.status, "headers": headers}
    if isinstance(reply.body, bytes):
        # JSON batching carries other media base64-encoded.
        answer["body"] = base64.b64encode(reply.body).decode()
    elif reply.body is not None:
        answer["body"] = reply.body
    return answer


async def _run_item(parent: Call, item: dict[str, Any]) -> tuple[Reply, str]:
    try:
        call = _sub_call(parent, item)
    except GraphError as exc:
        return Reply(exc.status, exc.body(), exc.headers), "graph.unmatched"
    rule = faults.pick(parent.state.faults, "graph", call.method, "/v1.0" + call.path)
    if rule and rule["latency_ms"]:
        await asyncio.sleep(rule["latency_ms"] / 1000)
    if rule and rule["status"]:
        headers = {"Retry-After": str(rule["retry_after"])} if rule["retry_after"] is not None else {}
        return Reply(rule["status"], faults.graph_body(rule["status"]), headers), "fault"
    return await dispatch(call)


async def batch(call: Call) -> Reply:
    """JSON batching: up to 20 requests, answered in order, each on its own."""
    try:
        if call.method != "POST":
            raise GraphError(405, "Request_BadRequest", "The HTTP method is not allowed for $batch.")
        call.caller  # noqa: B018 - a bad token fails the whole batch, as Graph does
        requests = _validate_batch(call.body)
    except GraphError as exc:
        return Reply(exc.status, exc.body(), exc.headers)
    failed: set[str] = set()
    responses = [await _answer_item(call, item, failed) for item in requests]
    # Graph may answer in any order: clients must match responses by id.
    random.shuffle(responses)
    return Reply(200, {"responses": responses})


def routes() -> list[Route]:
    # Handlers register themselves on import.
    from devcloud.graph import chats, messages, subscriptions, users  # noqa: F401

    return [Route("/v1.0/{rest:path}", endpoint, methods=["GET", "POST", "PATCH", "DELETE"])]
