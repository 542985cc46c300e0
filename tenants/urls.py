from django.urls import path

from identity import views as identity_views
from tenants import views

urlpatterns = [
    path("", views.home, name="home"),
    path("v/<slug:slug>/", views.vendor_page, name="vendor_page"),
    path("v/<slug:slug>/sign-in/", identity_views.sign_in, name="sign_in"),
    path("v/<slug:slug>/connect/", views.connect, name="connect"),
    path("auth/callback/", identity_views.callback, name="auth_callback"),
    path("onboarding/callback/", views.onboarding_callback, name="onboarding_callback"),
    path("tenant/", views.tenant_admin, name="tenant_admin"),
    path("tenant/reconsent/", views.reconsent, name="reconsent"),
    path("tenant/disconnect/", views.disconnect, name="disconnect"),
    path("vendor/<slug:slug>/", views.vendor_dashboard, name="vendor_dashboard"),
]
