"""The portal's sign-in and onboarding, driven with Django's test client and devcloud's pages."""

from __future__ import annotations

import html
import io
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests
from django.core.management import call_command
from django.test import Client

from tests.devcloud_server import DevCloud, SignIn, sign_in


def load_vendors(devcloud: DevCloud) -> None:
    call_command("load_demo_data", acs_endpoint=devcloud.base_url, stdout=io.StringIO())


@dataclass
class Person:
    """One person with a browser: the portal's cookies (client) and devcloud's (browser)."""

    devcloud: DevCloud
    upn: str
    client: Client = field(default_factory=lambda: Client(SERVER_NAME="localhost"))
    browser: requests.Session | None = None

    def __post_init__(self) -> None:
        self.browser = self.devcloud.session()

    def _through_entra(self, start_url: str, *, consent: str | None = "accept") -> object:
        start = self.client.post(start_url)
        assert start.status_code == 302, start.content[:300]
        back = sign_in(self.devcloud, start["Location"], self.upn, consent=consent, browser=self.browser)
        if back.redirect is None and "Need admin approval" in (back.page or ""):
            # Entra's own page; its link returns to the app with error=access_denied.
            link = re.search(r'href="([^"]*consent/return[^"]*)"', back.page or "")
            assert link and self.browser is not None
            returned = self.browser.get(self.devcloud.base_url + html.unescape(link.group(1)), allow_redirects=False)
            back = SignIn(returned.headers["location"], None)
        if back.redirect is None:
            return back
        return self.client.get(urlsplit(back.redirect).path, back.params)

    def sign_in(self, vendor: str = "contoso") -> object:
        return self._through_entra(f"/v/{vendor}/sign-in/")

    def connect(self, vendor: str = "contoso", *, consent: str = "accept") -> object:
        """Onboarding: sign in, then Entra's admin consent, then the portal's callback."""
        response = self._through_entra(f"/v/{vendor}/connect/")
        location = getattr(response, "headers", {}).get("Location", "")
        if "/adminconsent?" not in location:
            return response
        back = sign_in(self.devcloud, location, self.upn, consent=consent, browser=self.browser)
        assert back.redirect is not None, back.page
        return self.client.get(urlsplit(back.redirect).path, back.params)
