"""The portal's URLs plus the baseline views the benchmarks compare against."""

from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from portal.urls import urlpatterns as portal_urlpatterns


@never_cache
@require_POST
def bare(request: HttpRequest) -> JsonResponse:
    """An authenticated JSON view doing nothing else: the same middleware, session and user."""
    if not request.user.is_authenticated:
        return JsonResponse({"error": "not_signed_in"}, status=401)
    return JsonResponse({"user": request.user.pk})


urlpatterns = [path("bench/bare/", bare), *portal_urlpatterns]
