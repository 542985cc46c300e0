"""allauth adapters: outbound calls trust the configured Microsoft CA bundle."""

from __future__ import annotations

from allauth.socialaccount.adapter import DefaultSocialAccountAdapter

from integrations.http import MicrosoftSession, microsoft_session


class SocialAccountAdapter(DefaultSocialAccountAdapter):  # type: ignore[misc]
    def get_requests_session(self) -> MicrosoftSession:
        return microsoft_session()
