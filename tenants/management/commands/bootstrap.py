"""Prepare a database and static files for the portal: migrate, collect static, load demo data."""

from __future__ import annotations

from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Migrate, collect static files and (with --demo) load the demo data. Safe to run again."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--demo", action="store_true", help="load the devcloud demo data")
        parser.add_argument("--site-domain", default="127.0.0.1:8000")

    def handle(self, *args: Any, **options: Any) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        if options["demo"]:
            call_command("load_demo_data", site_domain=options["site_domain"], stdout=self.stdout)
