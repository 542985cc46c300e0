"""Re-encrypt every sealed secret with the newest ENCRYPTION_KEYS key (run after adding a key)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from tenants.models import Vendor
from tenants.services import vendor_reseal


class Command(BaseCommand):
    help = "Re-encrypt vendor secrets with the newest key; then older keys can be removed."

    def handle(self, *args: Any, **options: Any) -> None:
        changed = sum(vendor_reseal(vendor) for vendor in Vendor.objects.order_by("pk"))
        self.stdout.write(self.style.SUCCESS(f"Re-encrypted the secrets of {changed} vendor(s)."))
