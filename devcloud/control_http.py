"""What every control-API endpoint needs: devcloud's state, JSON bodies, plain errors."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from devcloud.state import State

GENERATED_PASSWORD = "Generated-Demo-1"


def state_of(request: Request) -> State:
    state: State = request.app.state.devcloud
    return state


def bad(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def json_object(request: Request) -> dict[str, Any]:
    """The body as a JSON object (empty: `{}`); anything else is a ValueError."""
    body = await request.body()
    if not body:
        return {}
    data = await request.json()
    if not isinstance(data, dict):
        raise ValueError("the body must be a JSON object")
    return data
