"""Vendors ask their customers for ChatMember.ReadWrite too (removing chat members, leaving).

Tenants that consented before keep working; their admin page lists the permission as not granted
and offers to grant it again.
"""

from django.apps.registry import Apps
from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor

SCOPE = "https://graph.microsoft.com/ChatMember.ReadWrite"
CHAT_SCOPE = "https://graph.microsoft.com/Chat.ReadWrite"


def ask_for_member_management(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    Vendor = apps.get_model("tenants", "Vendor")
    for vendor in Vendor.objects.all():
        scopes = list(vendor.requested_scopes or [])
        if CHAT_SCOPE in scopes and SCOPE not in scopes:
            scopes.insert(scopes.index(CHAT_SCOPE) + 1, SCOPE)
            vendor.requested_scopes = scopes
            vendor.save(update_fields=["requested_scopes"])


def ask_no_more(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    Vendor = apps.get_model("tenants", "Vendor")
    for vendor in Vendor.objects.all():
        if SCOPE in (vendor.requested_scopes or []):
            vendor.requested_scopes = [s for s in vendor.requested_scopes if s != SCOPE]
            vendor.save(update_fields=["requested_scopes"])


class Migration(migrations.Migration):
    dependencies = [("tenants", "0004_vendor_registration")]

    operations = [migrations.RunPython(ask_for_member_management, ask_no_more)]
