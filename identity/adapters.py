"""allauth adapters: outbound calls trust the configured Microsoft CA bundle."""

from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from django.contrib.auth.models import User
from django.http import HttpRequest

from integrations.http import MicrosoftSession, microsoft_session


def user_display(user: User) -> str:
    """People by their name from Entra; the username is an internal (tid, oid) key."""
    return user.get_full_name() or user.get_username()


class AccountAdapter(DefaultAccountAdapter):  # type: ignore[misc]
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        # Local accounts cannot be created; sign-up happens through Entra ID (social accounts).
        return False


class SocialAccountAdapter(DefaultSocialAccountAdapter):  # type: ignore[misc]
    def is_open_for_signup(self, request: HttpRequest, sociallogin: object) -> bool:
        return True

    def get_requests_session(self) -> MicrosoftSession:
        return microsoft_session()
