"""Bearer tokens for Graph: issued by devcloud's Entra, for Graph's audience, unexpired, with a scope."""

from __future__ import annotations

from dataclasses import dataclass

from devcloud import scopes as sc
from devcloud.directory import User
from devcloud.graph.errors import GraphError, access_denied, invalid_token
from devcloud.keys import InvalidToken, verify
from devcloud.state import State

MESSAGES = {
    "expired": "Lifetime validation failed, the token is expired.",
    "invalid audience": "Access token validation failure. Invalid audience.",
}


@dataclass(frozen=True)
class Caller:
    user: User | None
    tenant_id: str
    client_id: str
    scopes: frozenset[str]

    def require(self, *any_of: str) -> User:
        """The signed-in user, when the token carries one of the scopes (delegated only)."""
        if self.user is None or not self.scopes.intersection(any_of):
            raise access_denied()
        return self.user


def caller(state: State, header: str) -> Caller:
    if not header:
        raise invalid_token("Access token is empty.")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or token.count(".") != 2:
        raise invalid_token(
            "IDX14100: JWT is not well formed, there are no dots (.). The token needs to be in JWS or JWE Compact Serialization Format."
        )
    try:
        claims = verify(state.keys, token, audience=sc.GRAPH)
    except InvalidToken as exc:
        raise invalid_token(MESSAGES.get(str(exc), "Access token validation failure.")) from exc
    if claims["iss"] != f"{state.base_url}/{claims['tid']}/v2.0":
        raise invalid_token("Access token validation failure. Invalid issuer.")
    user = state.directory.user(claims["oid"]) if claims.get("idtyp") == "user" else None
    return Caller(
        user=user,
        tenant_id=claims["tid"],
        client_id=claims.get("appid", ""),
        scopes=frozenset(claims.get("scp", "").split()),
    )


def require_teams(who: Caller, *any_of: str) -> User:
    """Teams APIs name the scopes they wanted, unlike directory APIs."""
    if who.user is None:
        raise GraphError(403, "Forbidden", "This API supports delegated (user) tokens only in devcloud.")
    if not who.scopes.intersection(any_of):
        wanted, held = ", ".join(any_of), ", ".join(sorted(who.scopes))
        raise GraphError(
            403,
            "Forbidden",
            f"Missing scope permissions on the request. API requires one of '{wanted}'. Scopes on the request '{held}'",
        )
    return who.user
