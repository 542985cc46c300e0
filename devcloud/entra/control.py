"""Control API for app credentials under `/_devcloud/apps/{client_id}/…`, as a vendor manages them
in the admin center (App registrations → Certificates & secrets).

A secret's value is shown once, when it is added, never again (only its first three characters,
`hint`). A certificate is uploaded as its public PEM; its validity is the certificate's own, and an
expired certificate is accepted, as Entra keeps credentials that have expired.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from devcloud import credentials
from devcloud.control_http import bad, json_object, state_of
from devcloud.directory import App


def _app(request: Request) -> App | None:
    return state_of(request).directory.apps.get(request.path_params["client_id"].lower())


def _listing(app: App, request: Request) -> dict[str, Any]:
    held = state_of(request).credentials[app.client_id]
    return {"client_id": app.client_id, **held.summary(dt.datetime.now(dt.UTC))}


async def list_credentials(request: Request) -> Response:
    app = _app(request)
    if app is None:
        return bad("unknown app", 404)
    return JSONResponse(_listing(app, request))


async def add_certificate(request: Request) -> Response:
    """`{"certificate": PEM, "display_name"}`: the public certificate, as uploaded in the admin center."""
    app = _app(request)
    if app is None:
        return bad("unknown app", 404)
    try:
        body = await json_object(request)
        certificate = credentials.certificate_from_pem(
            str(body.get("certificate", "")), display_name=body.get("display_name") or None
        )
    except ValueError as exc:
        return bad(str(exc))
    state = state_of(request)
    if state.credentials[app.client_id].certificate(sha1=certificate.thumbprint) is not None:
        return bad(f"a certificate with thumbprint {certificate.thumbprint} is already registered", 409)
    state.add_certificate(app, certificate)
    return JSONResponse(certificate.summary(dt.datetime.now(dt.UTC)), status_code=201)


async def remove_certificate(request: Request) -> Response:
    app = _app(request)
    if app is None:
        return bad("unknown app", 404)
    removed = state_of(request).remove_certificate(app, request.path_params["thumbprint"])
    if removed is None:
        return bad("no certificate with this thumbprint", 404)
    return JSONResponse({"removed": removed.thumbprint, **_listing(app, request)})


async def add_secret(request: Request) -> Response:
    """`{"display_name", "end_date_time"}`: a new secret, its value in `secret_text` (shown this once).
    Without `end_date_time` it lasts two years, as Graph's addPassword; a past one stands for a
    secret that has since expired."""
    app = _app(request)
    if app is None:
        return bad("unknown app", 404)
    try:
        body = await json_object(request)
        end = body.get("end_date_time")
        secret = credentials.new_secret(
            display_name=str(body.get("display_name", "")),
            end=credentials.parse_time(str(end)) if end else None,
        )
    except ValueError as exc:
        return bad(str(exc))
    state_of(request).add_secret(app, secret)
    return JSONResponse(
        {**secret.summary(dt.datetime.now(dt.UTC)), "secret_text": secret.value},
        status_code=201,
        headers={"Cache-Control": "no-store"},
    )


async def remove_secret(request: Request) -> Response:
    app = _app(request)
    if app is None:
        return bad("unknown app", 404)
    removed = state_of(request).remove_secret(app, request.path_params["key_id"])
    if removed is None:
        return bad("no secret with this key id", 404)
    return JSONResponse({"removed": removed.key_id, **_listing(app, request)})


def routes() -> list[Any]:
    return [
        Route("/apps/{client_id}/credentials", list_credentials, methods=["GET"]),
        Route("/apps/{client_id}/certificates", add_certificate, methods=["POST"]),
        Route("/apps/{client_id}/certificates/{thumbprint}", remove_certificate, methods=["DELETE"]),
        Route("/apps/{client_id}/secrets", add_secret, methods=["POST"]),
        Route("/apps/{client_id}/secrets/{key_id}", remove_secret, methods=["DELETE"]),
    ]
