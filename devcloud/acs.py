"""ACS identity (api-version 2023-10-01): HMAC-signed requests, Teams token exchange, identities."""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import hashlib
import hmac
import json
import time
import uuid
from collections import deque
from typing import Any
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from devcloud import scopes as sc
from devcloud.directory import AcsResource
from devcloud.keys import InvalidToken, verify
from devcloud.state import State

API_VERSIONS = ("2021-03-07", "2022-06-01", "2022-10-01", "2023-10-01")
DATE_SKEW = 300
TEAMS_SCOPES = {"Teams.ManageCalls", "Teams.ManageChats"}
TOKEN_SCOPES = ("chat", "voip", "chat.join", "chat.join.limited", "voip.join")


class AcsError(Exception):
    def __init__(
        self, status: int, code: str, message: str, target: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.target = status, code, message, target
        self.headers = headers or {}

    def response(self) -> Response:
        error: dict[str, str] = {"code": self.code, "message": self.message}
        if self.target:
            error["target"] = self.target
        body = json.dumps({"error": error}, separators=(",", ":"))
        return Response(body, status_code=self.status, media_type="application/json", headers=self.headers)


def denied(message: str = "Denied by the resource provider.") -> AcsError:
    return AcsError(401, "Denied", message)


def validation(message: str, target: str | None = None) -> AcsError:
    return AcsError(400, "ValidationError", message, target)


def expires_on(ts: float) -> str:
    """ACS writes `expiresOn` with 7 fractional digits, trailing zeros trimmed, and `+00:00`."""
    moment = dt.datetime.fromtimestamp(ts, dt.UTC)
    fraction = f"{moment.microsecond:06d}0".rstrip("0")
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if fraction else "") + "+00:00"


# HMAC ---------------------------------------------------------------------------------------
def _signature(key: str, text: str) -> str:
    digest = hmac.new(base64.b64decode(key), text.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def authenticate(state: State, request: Request, body: bytes) -> AcsResource:
    """The resource whose access key signed the request; the signature names the resource."""
    auth = request.headers.get("authorization", "")
    date = request.headers.get("x-ms-date", "")
    content_hash = request.headers.get("x-ms-content-sha256", "")
    if not auth.startswith("HMAC-SHA256 ") or not date or not content_hash:
        raise denied()
    fields = dict(part.split("=", 1) for part in auth[len("HMAC-SHA256 ") :].split("&") if "=" in part)
    if fields.get("SignedHeaders", "").lower() != "x-ms-date;host;x-ms-content-sha256":
        raise denied()
    if base64.b64encode(hashlib.sha256(body).digest()).decode() != content_hash:
        raise denied("Request 'x-ms-content-sha256' differs from generated content hash.")
    try:
        sent = email.utils.parsedate_to_datetime(date).timestamp()
    except (TypeError, ValueError):
        raise denied() from None
    if abs(time.time() - sent) > DATE_SKEW:
        raise denied(
            "The given request could not be resolved.\nThe time difference between the originating "
            "client and the server is greater than the allowed margin of 5 minutes."
        )
    raw_path = request.scope.get("raw_path", request.url.path.encode()).decode()
    query = request.scope.get("query_string", b"").decode()
    host = request.headers.get("host", "")
    signature = fields.get("Signature", "")
    for path in dict.fromkeys((raw_path, unquote(raw_path))):
        text = f"{request.method}\n{path}{'?' + query if query else ''}\n{date};{host};{content_hash}"
        for resource in state.directory.acs_resources:
            if hmac.compare_digest(_signature(resource.access_key, text), signature):
                return resource
    raise denied()


def _check_api_version(request: Request) -> None:
    version = request.query_params.get("api-version")
    if version is None:
        raise AcsError(
            400,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        )
    if version not in API_VERSIONS:
        raise AcsError(
            400,
            "UnsupportedApiVersion",
            f"The HTTP resource that matches the request URI '{request.url}' does not support the API version '{version}'.",
        )


def _throttle(state: State, resource: AcsResource, kind: str, limit_key: str) -> None:
    window = float(state.settings["acs_exchange_window"])
    limit = int(state.settings[limit_key])
    calls = state.acs_calls.setdefault(f"{resource.id}:{kind}", deque())
    now = time.monotonic()
    while calls and calls[0] <= now - window:
        calls.popleft()
    if len(calls) >= limit:
        retry = max(1, int(calls[0] + window - now) + 1)
        raise AcsError(
            429,
            "TooManyRequests",
            "The number of requests exceeded the limit. Please retry later.",
            headers={"Retry-After": str(retry)},
        )
    calls.append(now)


async def _authenticated(request: Request) -> tuple[State, AcsResource, Any]:
    state: State = request.app.state.devcloud
    body = await request.body()
    resource = authenticate(state, request, body)
    _check_api_version(request)
    try:
        payload = json.loads(body) if body else None
    except ValueError:
        payload = None
    return state, resource, payload


def _ok(body: dict[str, Any], status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers={"api-supported-versions": ", ".join(API_VERSIONS)})


# Teams user exchange ----------------------------------------------------------------------------
def _validate_entra_token(state: State, token: str) -> dict[str, Any]:
    invalid = AcsError(401, "InvalidAccessToken", "Provided access token is not valid.")
    try:
        claims = verify(state.keys, token, audience=sc.ACS)
    except InvalidToken:
        raise invalid from None
    if claims["iss"] != f"{state.base_url}/{claims['tid']}/v2.0" or claims.get("idtyp") != "user":
        raise invalid
    if not set(claims.get("scp", "").split()) >= TEAMS_SCOPES:
        raise invalid
    return claims


def _guid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


async def exchange(request: Request) -> Response:
    try:
        state, resource, payload = await _authenticated(request)
        request.state.log_detail = {"resource": resource.name}
        if not isinstance(payload, dict) or payload.get("token") is None:
            raise validation("The body is either missing or doesn't contain any token.")
        _throttle(state, resource, "exchange", "acs_exchange_limit")
        claims = _validate_entra_token(state, str(payload["token"]))
        app_id, user_id = payload.get("appId"), payload.get("userId")
        if not app_id:
            raise validation("AppId: The AppId field is required.", "AppId")
        if not user_id:
            raise validation("UserId: The UserId field is required.", "UserId")
        if not _guid(str(app_id)):
            raise validation("Provided AppId has invalid format.", "appId")
        if not _guid(str(user_id)):
            raise validation("Provided UserId has invalid format.", "userId")
        if str(app_id).lower() not in (claims.get("appid", "").lower(), claims.get("azp", "").lower()):
            raise validation("AAD application is not the expected one.", "appId")
        if str(user_id).lower() != claims["oid"].lower():
            raise validation("Provided AAD token issued for unexpected user.", "userId")
    except AcsError as exc:
        return exc.response()
    now = int(time.time())
    acs_claims = {
        "skypeid": f"orgid:{claims['oid']}",
        "scp": 1024,
        "csi": str(now),
        "exp": claims["exp"],
        "rgn": "amer",
        "tid": claims["tid"],
        "acsScope": "voip,chat",
        "resourceId": resource.id,
        "resourceLocation": "unitedstates",
        "aadiat": claims["iat"],
        "aaduti": claims.get("uti", ""),
        "aadappid": claims.get("appid", ""),
        "iat": now,
    }
    return _ok({"token": state.acs_keys.sign(acs_claims), "expiresOn": expires_on(claims["exp"])})


# identities ---------------------------------------------------------------------------------------
def _acs_token(state: State, resource: AcsResource, identity: str, scopes: list[str], minutes: int) -> dict[str, str]:
    now = int(time.time())
    expires = now + minutes * 60
    claims = {
        "skypeid": identity.removeprefix("8:"),
        "scp": 1792,
        "csi": str(now),
        "exp": expires,
        "rgn": "amer",
        "acsScope": ",".join(scopes),
        "resourceId": resource.id,
        "resourceLocation": "unitedstates",
        "iat": now,
    }
    return {"token": state.acs_keys.sign(claims), "expiresOn": expires_on(expires)}


def _token_request(payload: Any, scopes_key: str) -> tuple[list[str], int]:
    payload = payload if isinstance(payload, dict) else {}
    scopes = payload.get(scopes_key)
    if not scopes:
        name = scopes_key[0].upper() + scopes_key[1:]
        raise validation(f"{name}: The {name} field is required.", name)
    bad = [s for s in scopes if s not in TOKEN_SCOPES]
    if bad:
        raise validation(f"Scopes value '{bad[0]}' is invalid.", "Scopes")
    minutes = payload.get("expiresInMinutes") or 1440
    if not isinstance(minutes, int) or not 60 <= minutes <= 1440:
        raise validation(
            f"ExpiresInMinutes value {minutes} is invalid. Value must be within the [60, 1440] interval.",
            "ExpiresInMinutes",
        )
    return list(scopes), minutes


def _identity(state: State, resource: AcsResource, identity_id: str) -> dict[str, Any]:
    found = state.acs_identities.get(identity_id)
    if found is None or found["resource"] != resource.id:
        raise AcsError(404, "IdentityNotFound", f"Identity '{identity_id}' was not found.")
    return found


async def create_identity(request: Request) -> Response:
    try:
        state, resource, payload = await _authenticated(request)
        _throttle(state, resource, "identity", "acs_identity_limit")
        identity = f"8:acs:{resource.id}_00000024-{str(uuid.uuid4())[9:]}"
        body: dict[str, Any] = {"identity": {"id": identity}}
        if isinstance(payload, dict) and payload.get("createTokenWithScopes"):
            scopes, minutes = _token_request(payload, "createTokenWithScopes")
            body["accessToken"] = _acs_token(state, resource, identity, scopes, minutes)
    except AcsError as exc:
        return exc.response()
    state.acs_identities[identity] = {"resource": resource.id, "created": time.time()}
    state.save()
    return _ok(body, status=201)


async def issue_access_token(request: Request) -> Response:
    try:
        state, resource, payload = await _authenticated(request)
        _throttle(state, resource, "identity", "acs_identity_limit")
        identity_id = request.path_params["identity_id"]
        _identity(state, resource, identity_id)
        scopes, minutes = _token_request(payload, "scopes")
        return _ok(_acs_token(state, resource, identity_id, scopes, minutes))
    except AcsError as exc:
        return exc.response()


async def revoke_access_tokens(request: Request) -> Response:
    try:
        state, resource, _ = await _authenticated(request)
        _identity(state, resource, request.path_params["identity_id"])["revoked"] = time.time()
    except AcsError as exc:
        return exc.response()
    state.save()
    return Response(status_code=204)


async def delete_identity(request: Request) -> Response:
    try:
        state, resource, _ = await _authenticated(request)
        identity_id = request.path_params["identity_id"]
        _identity(state, resource, identity_id)
    except AcsError as exc:
        return exc.response()
    del state.acs_identities[identity_id]
    state.save()
    return Response(status_code=204)


def routes() -> list[Any]:
    return [
        Route("/teamsUser/:exchangeAccessToken", exchange, methods=["POST"]),
        Route("/identities", create_identity, methods=["POST"]),
        Route("/identities/{identity_id}/:issueAccessToken", issue_access_token, methods=["POST"]),
        Route("/identities/{identity_id}/:revokeAccessTokens", revoke_access_tokens, methods=["POST"]),
        Route("/identities/{identity_id}", delete_identity, methods=["DELETE"]),
    ]
