from django.contrib import admin
from django.urls import include, path
from django.views.i18n import JavaScriptCatalog

from chat import webhooks
from portal import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    # Prometheus text, for a scraper holding METRICS_TOKEN (else 404).
    path("metrics", views.metrics, name="metrics"),
    # allauth keeps accounts and sessions (sign-out); sign-in itself is identity.views.
    path("accounts/", include("allauth.account.urls")),
    path("admin/", admin.site.urls),
    # The language switcher (set_language, POST) and the JavaScript strings' catalog.
    path("i18n/", include("django.conf.urls.i18n")),
    # Not cacheable by a Last-Modified: the language comes from a cookie, which Vary can't name.
    path("i18n/jsi18n/", JavaScriptCatalog.as_view(), name="javascript_catalog"),
    # Microsoft Graph's webhooks (GRAPH_NOTIFICATION_URL + these paths).
    path("graph/notifications/", webhooks.notifications, name="graph_notifications"),
    path("graph/lifecycle/", webhooks.lifecycle, name="graph_lifecycle"),
    path("", include("identity.urls")),
    path("", include("chat.urls")),
    path("", include("tenants.urls")),
]
