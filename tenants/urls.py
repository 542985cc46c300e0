from django.urls import path

from tenants import vendor_views, views

urlpatterns = [
    path("", views.home, name="home"),
    path("v/<slug:slug>/", views.vendor_page, name="vendor_page"),
    path("tenant/", views.tenant_admin, name="tenant_admin"),
    path("tenant/disconnect/", views.disconnect, name="disconnect"),
    path("vendor/<slug:slug>/", views.vendor_dashboard, name="vendor_dashboard"),
    path("vendor/<slug:slug>/credentials/", vendor_views.vendor_credentials, name="vendor_credentials"),
    path("vendor/<slug:slug>/staff/", vendor_views.vendor_staff, name="vendor_staff"),
    path("vendor/<slug:slug>/staff/<int:membership_id>/role/", vendor_views.staff_role, name="staff_role"),
    path("vendor/<slug:slug>/staff/<int:membership_id>/remove/", vendor_views.staff_remove, name="staff_remove"),
    path("operator/", vendor_views.operator, name="operator"),
    path("operator/invitations/<int:invitation_id>/revoke/", vendor_views.invitation_revoke, name="invitation_revoke"),
]
