"""HTTP sessions for calls to Microsoft (Entra ID, Graph, ACS), trusting MICROSOFT_CA_BUNDLE."""

from __future__ import annotations

import functools
from typing import Any

import requests
from django.conf import settings


class MicrosoftSession(requests.Session):
    """A requests session whose CA bundle wins over REQUESTS_CA_BUNDLE in the environment.

    requests lets the environment's bundle override `session.verify`; proxies from the
    environment still apply.
    """

    def __init__(self, ca_bundle: str = "", timeout: float | None = None) -> None:
        super().__init__()
        self.ca_bundle = ca_bundle
        if timeout is not None:
            self.request = functools.partial(self.request, timeout=timeout)  # type: ignore[method-assign]

    def merge_environment_settings(self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any) -> Any:
        merged = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if self.ca_bundle and verify in (None, True):
            merged["verify"] = self.ca_bundle
        return merged


def microsoft_session() -> MicrosoftSession:
    return MicrosoftSession(settings.MICROSOFT_CA_BUNDLE, timeout=settings.OUTBOUND_TIMEOUT)
