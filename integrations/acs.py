"""ACS identity through azure-communication-identity: the Teams user token exchange.

Returns our dataclasses and raises AcsError; knows nothing of the database.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from azure.communication.identity import CommunicationIdentityClient
from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError
from django.conf import settings
from django.views.decorators.debug import sensitive_variables


@dataclass(frozen=True)
class AcsResource:
    """A vendor's ACS resource, by its connection string (`endpoint=…;accesskey=…`)."""

    connection_string: str = field(repr=False)


@dataclass(frozen=True)
class AcsToken:
    token: str = field(repr=False)
    expires_at: dt.datetime


class AcsError(Exception):
    """ACS refused or could not be reached; `status` 0 means no answer (never contains a token)."""

    def __init__(self, status: int, code: str, retry_after: float | None = None) -> None:
        super().__init__(f"{status} {code}")
        self.status = status
        self.code = code
        self.retry_after = retry_after

    @property
    def throttled(self) -> bool:
        return self.status == 429


def error_from(exc: HttpResponseError) -> AcsError:
    """The one place where an ACS error response becomes our exception."""
    code = str(getattr(exc.error, "code", None) or "Unknown")
    headers = getattr(exc.response, "headers", None) or {}
    return AcsError(exc.status_code or 0, code, _seconds(headers.get("Retry-After")))


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


@lru_cache(maxsize=32)
def _client(connection_string: str, ca_bundle: str, timeout: int) -> CommunicationIdentityClient:
    # One client (and connection pool) per resource. Retries are ours: a 429 is honoured by
    # the caller, never slept on inside a web request.
    return CommunicationIdentityClient.from_connection_string(
        connection_string,
        connection_verify=ca_bundle or True,
        connection_timeout=timeout,
        read_timeout=timeout,
        retry_total=0,
    )


def client(resource: AcsResource) -> CommunicationIdentityClient:
    return _client(resource.connection_string, settings.MICROSOFT_CA_BUNDLE, settings.OUTBOUND_TIMEOUT)


@sensitive_variables("entra_token", "result")
def exchange_teams_token(resource: AcsResource, *, entra_token: str, client_id: str, oid: str) -> AcsToken:
    """An ACS token for a Teams user, from the user's Entra token for the ACS scopes."""
    try:
        result = client(resource).get_token_for_teams_user(entra_token, client_id, oid)
    except HttpResponseError as exc:
        raise error_from(exc) from None
    except (ServiceRequestError, ServiceResponseError):
        raise AcsError(0, "Unreachable") from None
    return AcsToken(token=result.token, expires_at=_moment(result.expires_on))


@sensitive_variables("resource", "identities")
def prove_resource(resource: AcsResource) -> None:
    """Create an ACS identity and delete it again: the connection string works; AcsError otherwise."""
    try:
        identities = CommunicationIdentityClient.from_connection_string(
            resource.connection_string,
            connection_verify=settings.MICROSOFT_CA_BUNDLE or True,
            connection_timeout=settings.OUTBOUND_TIMEOUT,
            read_timeout=settings.OUTBOUND_TIMEOUT,
            retry_total=0,
        )
    except (ValueError, KeyError):
        raise AcsError(0, "BadConnectionString") from None
    try:
        user = identities.create_user()
        identities.delete_user(user)
    except HttpResponseError as exc:
        raise error_from(exc) from None
    except (ServiceRequestError, ServiceResponseError):
        raise AcsError(0, "Unreachable") from None
    except ValueError:  # an access key that is not base64, found when the request is signed
        raise AcsError(0, "BadConnectionString") from None


def _moment(value: Any) -> dt.datetime:
    # The SDK hands `expiresOn` back as the service wrote it (ISO 8601), or as epoch seconds.
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, int | float):
        return dt.datetime.fromtimestamp(value, dt.UTC)
    return dt.datetime.fromisoformat(str(value)).astimezone(dt.UTC)
