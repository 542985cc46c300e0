from django.contrib import admin
from django.urls import include, path

from chat import webhooks
from portal import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    # allauth keeps accounts and sessions (sign-out); sign-in itself is identity.views.
    path("accounts/", include("allauth.account.urls")),
    path("admin/", admin.site.urls),
    # Microsoft Graph's webhooks (GRAPH_NOTIFICATION_URL + these paths).
    path("graph/notifications/", webhooks.notifications, name="graph_notifications"),
    path("graph/lifecycle/", webhooks.lifecycle, name="graph_lifecycle"),
    path("", include("identity.urls")),
    path("", include("chat.urls")),
    path("", include("tenants.urls")),
]
