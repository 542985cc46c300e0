from django.urls import path

from identity import calling, views

urlpatterns = [
    # Sign-in and onboarding: one flow (identity.views).
    path("v/<slug:slug>/sign-in/", views.sign_in, name="sign_in"),
    path("v/<slug:slug>/connect/", views.connect, name="connect"),
    path("auth/callback/", views.callback, name="auth_callback"),
    path("onboarding/callback/", views.onboarding_callback, name="onboarding_callback"),
    path("tenant/reconsent/", views.reconsent, name="reconsent"),
    # A vendor registers itself (an operator's invitation), and its staff join (an admin's).
    path("vendors/register/<str:token>/", views.register, name="vendor_register"),
    path("v/<slug:slug>/join/<str:token>/", views.join, name="vendor_join"),
    # Calling.
    path("call/", calling.call_page, name="call"),
    path("call/people/", calling.people, name="call_people"),
    path("api/acs-token/", calling.acs_token, name="acs_token"),
]
