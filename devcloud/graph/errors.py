"""Graph's error shape: `{"error": {"code", "message", "innerError": {…}}}`."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse


class GraphError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def body(self, request_id: str | None = None, client_request_id: str | None = None) -> dict[str, Any]:
        return error_body(self.code, self.message, request_id, client_request_id)

    def response(self, request: Request) -> JSONResponse:
        request_id = str(uuid.uuid4())
        client_request_id = request.headers.get("client-request-id", request_id)
        headers = {"request-id": request_id, "client-request-id": client_request_id, **self.headers}
        return JSONResponse(self.body(request_id, client_request_id), status_code=self.status, headers=headers)


def error_body(
    code: str, message: str, request_id: str | None = None, client_request_id: str | None = None
) -> dict[str, Any]:
    request_id = request_id or str(uuid.uuid4())
    return {
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                "request-id": request_id,
                "client-request-id": client_request_id or request_id,
            },
        }
    }


def invalid_token(message: str) -> GraphError:
    return GraphError(
        401,
        "InvalidAuthenticationToken",
        message,
        headers={
            "WWW-Authenticate": 'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"'
        },
    )


def access_denied() -> GraphError:
    return GraphError(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")


def not_found(resource_id: str) -> GraphError:
    return GraphError(
        404,
        "Request_ResourceNotFound",
        f"Resource '{resource_id}' does not exist or one of its queried reference-property objects are not present.",
    )
