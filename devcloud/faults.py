"""Faults on demand: status codes, `Retry-After`, latency, per service, with a probability."""

from __future__ import annotations

import json
import random
from typing import Any

from starlette.responses import Response

from devcloud.entra.errors import EntraError
from devcloud.graph.errors import error_body

SERVICES = ("entra", "acs", "graph")
FIELDS = {"service", "path", "method", "status", "probability", "retry_after", "latency_ms", "count"}


def service_of(path: str) -> str:
    if path.startswith("/_devcloud"):
        return "control"
    if path.startswith(("/v1.0/", "/beta/")) or path.startswith("/$batch"):
        return "graph"
    if path.startswith(("/teamsUser/", "/identities")):
        return "acs"
    return "entra"


def validate(rule: dict[str, Any]) -> dict[str, Any]:
    unknown = set(rule) - FIELDS
    if unknown:
        raise ValueError(f"unknown fault fields: {sorted(unknown)}")
    if rule.get("service") not in SERVICES:
        raise ValueError(f"service must be one of {SERVICES}")
    status = rule.get("status")
    if status is not None and not (isinstance(status, int) and 400 <= status <= 599):
        raise ValueError("status must be an HTTP error status (400-599)")
    if status is None and not rule.get("latency_ms"):
        raise ValueError("a fault needs a status, a latency_ms or both")
    count = rule.get("count")
    if count is not None and not (isinstance(count, int) and count >= 1):
        raise ValueError("count must be a positive integer (or absent: every request)")
    for name in ("retry_after", "latency_ms"):
        value = rule.get(name)
        if value is not None and not (isinstance(value, int) and value >= 0):
            raise ValueError(f"{name} must be a non-negative integer")
    probability = float(rule.get("probability", 1.0))
    if not 0.0 <= probability <= 1.0:
        raise ValueError("probability must be between 0 and 1")
    return {
        "service": rule["service"],
        "path": rule.get("path", ""),
        "method": (rule.get("method") or "").upper(),
        "status": status,
        "probability": probability,
        "retry_after": rule.get("retry_after"),
        "latency_ms": int(rule.get("latency_ms", 0)),
        "count": rule.get("count"),
    }


def pick(faults: list[dict[str, Any]], service: str, method: str, path: str) -> dict[str, Any] | None:
    for rule in faults:
        if rule["service"] != service or not path.startswith(rule["path"]):
            continue
        if rule["method"] and rule["method"] != method:
            continue
        if rule["count"] is not None and rule["count"] <= 0:
            continue
        if random.random() >= rule["probability"]:
            continue
        if rule["count"] is not None:
            rule["count"] -= 1
        return rule
    return None


def _body(service: str, status: int) -> dict[str, Any]:
    if service == "entra":
        if status == 429:
            err = EntraError(
                "temporarily_unavailable",
                50196,
                "The server terminated an operation because it encountered a client request loop. Please contact your app vendor.",
                status=status,
            )
        else:
            err = EntraError(
                "temporarily_unavailable", 90033, "A transient error has occurred. Please try again.", status=status
            )
        return err.body()
    if service == "graph":
        return graph_body(status)
    if status == 429:
        code, message = "TooManyRequests", "Too many requests."
    elif status >= 500:
        code, message = "ServiceUnavailable", "The service is temporarily unavailable."
    else:
        code, message = "BadRequest", "Injected fault."
    return {"error": {"code": code, "message": message}}


def graph_body(status: int) -> dict[str, Any]:
    """Graph's own error bodies for throttling and outages, with `innerError`."""
    if status == 429:
        return error_body("TooManyRequests", "Too Many Requests")
    if status >= 500:
        return error_body("serviceNotAvailable", "Service unavailable")
    return error_body("BadRequest", "Injected fault.")


def response(rule: dict[str, Any], service: str) -> Response:
    headers = {}
    if rule["retry_after"] is not None:
        headers["Retry-After"] = str(rule["retry_after"])
    return Response(
        json.dumps(_body(service, rule["status"])),
        status_code=rule["status"],
        media_type="application/json",
        headers=headers,
    )
