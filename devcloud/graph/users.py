"""`/me` and `/users/{id}`: enough for django-allauth's Microsoft provider and a directory picker."""

from __future__ import annotations

from typing import Any

from devcloud.directory import User
from devcloud.graph.api import Call, Reply, route
from devcloud.graph.errors import GraphError, not_found

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


def _select(user: User, query: dict[str, str]) -> dict[str, Any]:
    default = user_resource(user)
    wanted = query.get("$select")
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


@route("GET", "/me")
async def me(call: Call) -> Reply:
    who = call.caller
    who.require(*READ_SELF)
    assert who.user is not None
    return Reply(200, {**call.context("users/$entity"), **_select(who.user, call.query)})


@route("GET", "/users/{user_id}")
async def user(call: Call) -> Reply:
    user_id = call.params["user_id"]
    who = call.caller
    own = who.user is not None and user_id.lower() in (who.user.id, who.user.upn.lower())
    who.require(*(READ_SELF if own else READ_OTHERS))
    found = call.state.directory.user(user_id)
    if found is None or found.tenant_id != who.tenant_id:
        raise not_found(user_id)
    return Reply(200, {**call.context("users/$entity"), **_select(found, call.query)})
