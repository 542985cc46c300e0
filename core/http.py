"""What every view may share: JSON errors and method checks, JSON bodies, safe return URLs."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _

JsonView = Callable[..., JsonResponse]


def json_error(status: int, error: str, message: str, **extra: Any) -> JsonResponse:
    """`{"error", "message", …}`; a `retry_after` (seconds) is also sent as `Retry-After`."""
    response = JsonResponse(
        {"error": error, "message": message, **{k: v for k, v in extra.items() if v is not None}}, status=status
    )
    if extra.get("retry_after") is not None:
        response["Retry-After"] = str(extra["retry_after"])
    return response


def json_methods(*methods: str) -> Callable[[JsonView], JsonView]:
    """Like require_http_methods, answering other methods with a JSON 405."""

    def decorator(view: JsonView) -> JsonView:
        @wraps(view)
        def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
            if request.method not in methods:
                response = json_error(405, "method_not_allowed", f"Use {' or '.join(methods)}.")
                response["Allow"] = ", ".join(methods)
                return response
            return view(request, *args, **kwargs)

        return checked

    return decorator


def json_body(request: HttpRequest) -> dict[str, Any] | JsonResponse:
    """The request's JSON object, or the JSON error to answer."""
    if request.content_type != "application/json":
        return json_error(415, "json_expected", "Send JSON (Content-Type: application/json).")
    try:
        body = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        return json_error(400, "bad_json", _("The request body is not valid JSON."))
    return body if isinstance(body, dict) else json_error(400, "bad_json", "Send a JSON object.")


def safe_next(request: HttpRequest, value: str) -> str:
    """A page of this site to return to (after sign-in, say), or ""."""
    if value.startswith("/") and url_has_allowed_host_and_scheme(value, allowed_hosts={request.get_host()}):
        return value
    return ""
