"""Create or update the demo data that `make run` signs in with (idempotent)."""

from __future__ import annotations

from typing import Any

from allauth.socialaccount.models import SocialApp
from django.conf import settings
from django.contrib.sites.models import Site
from django.core.management.base import BaseCommand

from tenants.demo import CONTOSO, DEMO_SIGN_INS


class Command(BaseCommand):
    help = "Load the demo vendor app (devcloud's Contoso) so that Microsoft sign-in works locally."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--site-domain", default="127.0.0.1:8000")

    def handle(self, *args: Any, **options: Any) -> None:
        site, _ = Site.objects.update_or_create(
            id=settings.SITE_ID, defaults={"domain": options["site_domain"], "name": settings.SITE_NAME}
        )
        app, _ = SocialApp.objects.update_or_create(
            provider="microsoft",
            client_id=CONTOSO.client_id,
            defaults={
                "name": f"{CONTOSO.vendor} (Entra ID)",
                "secret": CONTOSO.client_secret,
                "settings": {
                    "tenant": "organizations",
                    "login_url": settings.ENTRA_LOGIN_URL,
                    "graph_url": settings.GRAPH_URL,
                },
            },
        )
        app.sites.set([site])
        self.stdout.write(self.style.SUCCESS(f"Demo vendor app: {app.name}"))
        for upn, password, role in DEMO_SIGN_INS:
            self.stdout.write(f"  {upn} / {password}  ({role})")
