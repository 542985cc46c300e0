"""URLs that route allauth's social providers, for the allauth-against-devcloud test only."""

from django.urls import include, path

urlpatterns = [
    path("accounts/", include("allauth.urls")),
    path("", include("tenants.urls")),
]
