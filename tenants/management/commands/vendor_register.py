"""Register a vendor from a script: its app's credential and ACS connection string read from files
(or standard input), never from the command line, and proven live before anything is kept."""

from __future__ import annotations

import datetime as dt
import sys
import uuid
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse

from integrations import entra
from tenants import registration
from tenants.proofs import RegistrationRefused
from tenants.services import AppCredential


class Command(BaseCommand):
    help = (
        "Register a vendor: its Entra app (client ID and a certificate or a client secret) and ACS resource, "
        "each proven live first. Secrets come from files, or '-' for standard input; never from arguments."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--name", required=True, help="the vendor's name, as customers see it")
        parser.add_argument("--tenant", required=True, help="the vendor's Entra tenant: its ID or a verified domain")
        parser.add_argument("--client-id", required=True, help="the app's Application (client) ID")
        parser.add_argument("--certificate-file", type=Path, help="the certificate uploaded to the app (PEM)")
        parser.add_argument("--private-key-file", help="its private key (PEM, no passphrase), or '-'")
        parser.add_argument("--secret-file", help="a file holding the client secret's Value, or '-'")
        parser.add_argument("--secret-expires", help="the secret's expiry, YYYY-MM-DD, as Entra shows it")
        parser.add_argument("--acs-connection-string-file", required=True, help="a file holding it, or '-'")
        parser.add_argument("--admin-email", required=True, help="the vendor's first administrator (signs in to bind)")
        parser.add_argument("--site-url", default="", help="the portal's public URL, to print the full link")

    def handle(self, *args: Any, **options: Any) -> None:
        if [options["private_key_file"], options["secret_file"], options["acs_connection_string_file"]].count("-") > 1:
            raise CommandError("Only one secret can come from standard input ('-').")
        try:
            client_id = str(uuid.UUID(options["client_id"]))
        except ValueError:
            raise CommandError("--client-id must be a GUID (the app's Application (client) ID).") from None
        credential = self._credential(options)
        acs_connection_string = _read(options["acs_connection_string_file"])
        try:
            proven = registration.registration_prove(
                tenant=options["tenant"],
                client_id=client_id,
                credential=credential,
                acs_connection_string=acs_connection_string,
            )
            vendor, token = registration.vendor_register(
                name=options["name"], proven=proven, admin_email=options["admin_email"]
            )
        except RegistrationRefused as exc:
            raise CommandError(f"Not registered: {exc.message}") from None
        link = options["site_url"].rstrip("/") + reverse("vendor_join", args=[vendor.slug, token])
        self.stdout.write(self.style.SUCCESS(f"{vendor.name} is registered: /v/{vendor.slug}/"))
        self.stdout.write(
            f"Its administrator ({options['admin_email']}) signs in once with this link (shown only now):"
        )
        self.stdout.write(f"  {link}")

    def _credential(self, options: dict[str, Any]) -> AppCredential:
        if options["certificate_file"] and options["private_key_file"]:
            try:
                certificate = entra.certificate_from_pem(
                    private_key=_read(options["private_key_file"]), certificate=_read(str(options["certificate_file"]))
                )
            except entra.CertificateInvalid as exc:
                raise CommandError(str(exc)) from None
            return AppCredential(certificate=certificate)
        if options["secret_file"] and options["secret_expires"]:
            try:
                expires = dt.datetime.combine(dt.date.fromisoformat(options["secret_expires"]), dt.time.min, dt.UTC)
            except ValueError:
                raise CommandError("--secret-expires must be a date, YYYY-MM-DD.") from None
            return AppCredential(secret=_read(options["secret_file"]).strip(), secret_expires_at=expires)
        raise CommandError(
            "Give the app's credential: --certificate-file and --private-key-file, or --secret-file and --secret-expires."
        )


def _read(name: str) -> str:
    if name == "-":
        return sys.stdin.read().strip()
    try:
        return Path(name).read_text().strip()
    except OSError as exc:
        raise CommandError(f"{name} cannot be read: {exc.strerror}") from None
