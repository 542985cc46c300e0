from django.urls import path

from tenants import views

urlpatterns = [
    path("", views.home, name="home"),
    path("v/<slug:slug>/", views.vendor_page, name="vendor_page"),
    path("tenant/", views.tenant_admin, name="tenant_admin"),
    path("tenant/disconnect/", views.disconnect, name="disconnect"),
    path("vendor/<slug:slug>/", views.vendor_dashboard, name="vendor_dashboard"),
]
