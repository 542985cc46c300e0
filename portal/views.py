from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.cache import add_never_cache_headers
from django.views.csrf import csrf_failure as html_csrf_failure
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from portal.health import health


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    checks = health()
    healthy = all(value == "ok" for value in checks.values())
    return JsonResponse({"status": "ok" if healthy else "error", "checks": checks}, status=200 if healthy else 503)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """JSON callers get a JSON 403; pages get Django's page."""
    if "application/json" in request.headers.get("Accept", "") or request.path.startswith("/api/"):
        response = JsonResponse(
            {"error": "csrf_failed", "message": "The request was refused (CSRF check). Reload the page and try again."},
            status=403,
        )
        add_never_cache_headers(response)
        return response
    return html_csrf_failure(request, reason=reason)
