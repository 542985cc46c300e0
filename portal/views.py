import hmac

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _
from django.views.csrf import csrf_failure as html_csrf_failure
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from core import metrics as portal_metrics
from portal.health import health


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    checks = health()
    healthy = all(value == "ok" for value in checks.values())
    return JsonResponse({"status": "ok" if healthy else "error", "checks": checks}, status=200 if healthy else 503)


@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text for a scraper holding METRICS_TOKEN; a 404 for anyone else (whatever the
    method), or when it is unset."""
    expected = settings.METRICS_TOKEN
    given = request.headers.get("Authorization", "")
    if not expected or not hmac.compare_digest(given.encode(), f"Bearer {expected}".encode()):
        raise Http404
    if request.method != "GET":
        return HttpResponseNotAllowed(["GET"])
    body, content_type = portal_metrics.scrape()
    return HttpResponse(body, content_type=content_type)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """JSON callers get a JSON 403; pages get Django's page."""
    if "application/json" in request.headers.get("Accept", "") or request.path.startswith("/api/"):
        response = JsonResponse(
            {
                "error": "csrf_failed",
                "message": _("The request was refused (CSRF check). Reload the page and try again."),
            },
            status=403,
        )
        add_never_cache_headers(response)
        return response
    return html_csrf_failure(request, reason=reason)
