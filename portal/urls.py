from django.contrib import admin
from django.urls import include, path

from portal import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    # allauth keeps accounts and sessions (sign-out); sign-in itself is identity.views.
    path("accounts/", include("allauth.account.urls")),
    path("admin/", admin.site.urls),
    path("", include("identity.urls")),
    path("", include("chat.urls")),
    path("", include("tenants.urls")),
]
