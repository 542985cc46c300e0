from allauth.socialaccount.models import SocialApp
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from portal.health import health


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    sign_in_ready = SocialApp.objects.filter(provider="microsoft").exists()
    return render(request, "portal/home.html", {"sign_in_ready": sign_in_ready})


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    checks = health()
    healthy = all(value == "ok" for value in checks.values())
    return JsonResponse({"status": "ok" if healthy else "error", "checks": checks}, status=200 if healthy else 503)
