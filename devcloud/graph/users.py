"""`/me` and `/users/{id}`: enough for django-allauth's Microsoft provider and a directory picker."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from devcloud.directory import User
from devcloud.graph.auth import caller
from devcloud.graph.errors import GraphError, not_found
from devcloud.state import State

ODATA_JSON = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
READ_SELF = ("User.Read", "User.ReadWrite", "User.ReadBasic.All", "User.Read.All", "Directory.Read.All")
READ_OTHERS = ("User.ReadBasic.All", "User.Read.All", "Directory.Read.All")


def user_resource(user: User) -> dict[str, Any]:
    given, _, surname = user.display_name.partition(" ")
    return {
        "businessPhones": [],
        "displayName": user.display_name,
        "givenName": given,
        "jobTitle": None,
        "mail": user.upn,
        "mobilePhone": None,
        "officeLocation": None,
        "preferredLanguage": "en-US",
        "surname": surname or None,
        "userPrincipalName": user.upn,
        "id": user.id,
    }


def _extended(user: User) -> dict[str, Any]:
    """Properties Graph returns only when `$select` names them."""
    return {"mailNickname": user.upn.split("@", 1)[0], "companyName": None, "accountEnabled": True}


def _select(user: User, request: Request) -> dict[str, Any]:
    default = user_resource(user)
    wanted = request.query_params.get("$select")
    if not wanted:
        return default
    known = {**default, **_extended(user)}
    names = [n.strip() for n in wanted.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise GraphError(
            400, "Request_BadRequest", f"Could not find a property named '{unknown[0]}' on type 'microsoft.graph.user'."
        )
    return {name: known[name] for name in names}


def _answer(request: Request, context: str, user: User) -> Response:
    base = str(request.base_url).rstrip("/")
    body = {"@odata.context": f"{base}/v1.0/$metadata#{context}", **_select(user, request)}
    return JSONResponse(body, media_type=ODATA_JSON)


async def me(request: Request) -> Response:
    state: State = request.app.state.devcloud
    try:
        who = caller(state, request)
        who.require(*READ_SELF)
        assert who.user is not None
        return _answer(request, "users/$entity", who.user)
    except GraphError as exc:
        return exc.response(request)


async def user(request: Request) -> Response:
    state: State = request.app.state.devcloud
    user_id = request.path_params["user_id"]
    try:
        who = caller(state, request)
        own = who.user is not None and user_id.lower() in (who.user.id, who.user.upn.lower())
        who.require(*(READ_SELF if own else READ_OTHERS))
        found = state.directory.user(user_id)
        if found is None or found.tenant_id != who.tenant_id:
            raise not_found(user_id)
        return _answer(request, "users/$entity", found)
    except GraphError as exc:
        return exc.response(request)


def routes() -> list[Any]:
    return [
        Route("/v1.0/me", me),
        Route("/v1.0/users/{user_id}", user),
    ]
