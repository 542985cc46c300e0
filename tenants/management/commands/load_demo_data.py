"""Create or update the demo vendors of devcloud's seed, with their staff (idempotent)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.sites.models import Site
from django.core.management.base import BaseCommand
from django.utils import timezone

from tenants.demo import DEMO_OPERATOR, DEMO_SIGN_INS, VENDORS
from tenants.models import VendorMembership
from tenants.services import vendor_save


class Command(BaseCommand):
    help = "Load the demo vendors (devcloud's Contoso and Litware) so that sign-in works locally."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--site-domain", default="127.0.0.1:8000")
        parser.add_argument("--acs-endpoint", default="", help="default: ENTRA_LOGIN_URL (devcloud serves both)")

    def handle(self, *args: Any, **options: Any) -> None:
        Site.objects.update_or_create(
            id=settings.SITE_ID, defaults={"domain": options["site_domain"], "name": settings.SITE_NAME}
        )
        endpoint = (options["acs_endpoint"] or settings.ENTRA_LOGIN_URL).rstrip("/")
        for demo in VENDORS:
            vendor = vendor_save(
                name=demo.name,
                slug=demo.slug,
                client_id=demo.client_id,
                client_secret=demo.client_secret,
                acs_connection_string=f"endpoint={endpoint}/;accesskey={demo.acs_access_key}",
                home_tenant_id=demo.staff[0][0],
            )
            for tid, oid, name in demo.staff:
                VendorMembership.objects.get_or_create(  # a role changed since stays as it is
                    vendor=vendor,
                    tid=tid,
                    oid=oid,
                    defaults={"display_name": name, "role": VendorMembership.Role.ADMIN, "joined_at": timezone.now()},
                )
            self.stdout.write(self.style.SUCCESS(f"Demo vendor: {vendor.name} (/v/{vendor.slug}/)"))
        self._operator()
        for upn, password, role in DEMO_SIGN_INS:
            self.stdout.write(f"  {upn} / {password}  ({role})")

    def _operator(self) -> None:
        if not settings.DEBUG:
            # A password printed in the docs has no place outside development.
            self.stdout.write("  No demo operator without DEBUG: python manage.py createsuperuser makes one.")
            return
        username, password = DEMO_OPERATOR
        operator = get_user_model().objects.filter(username=username).first()
        if operator is None:
            get_user_model().objects.create_superuser(username=username, password=password)
        self.stdout.write(f"  {username} / {password}  (platform operator: /admin/, then /operator/ invites vendors)")
