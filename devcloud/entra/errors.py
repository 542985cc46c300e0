"""Entra's error bodies: `{"error", "error_description": "AADSTSnnnnn: …", "error_codes", …}`."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any
from urllib.parse import urlencode

from starlette.responses import JSONResponse


class EntraError(Exception):
    def __init__(self, error: str, code: int, message: str, *, status: int = 400, suberror: str | None = None) -> None:
        super().__init__(f"AADSTS{code}: {message}")
        self.error = error
        self.code = code
        self.message = message
        self.status = status
        self.suberror = suberror

    def description(self, trace_id: str, correlation_id: str, timestamp: str) -> str:
        return (
            f"AADSTS{self.code}: {self.message}\r\nTrace ID: {trace_id}\r\n"
            f"Correlation ID: {correlation_id}\r\nTimestamp: {timestamp}"
        )

    def body(self, correlation_id: str | None = None) -> dict[str, Any]:
        trace_id = str(uuid.uuid4())
        correlation_id = correlation_id or str(uuid.uuid4())
        timestamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        body: dict[str, Any] = {
            "error": self.error,
            "error_description": self.description(trace_id, correlation_id, timestamp),
            "error_codes": [self.code],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": f"https://login.microsoftonline.com/error?code={self.code}",
        }
        if self.suberror:
            body["suberror"] = self.suberror
        return body

    def response(self, correlation_id: str | None = None) -> JSONResponse:
        return JSONResponse(
            self.body(correlation_id),
            status_code=self.status,
            headers={"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"},
        )

    def redirect_query(self, state: str | None) -> str:
        body = self.body()
        params = {
            "error": body["error"],
            "error_description": body["error_description"],
            "error_uri": body["error_uri"],
        }
        if state is not None:
            params["state"] = state
        return urlencode(params)


# The catalogue: one constructor per AADSTS code devcloud emits.
def tenant_not_found(tenant: str) -> EntraError:
    return EntraError(
        "invalid_tenant",
        90002,
        f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are "
        "signing into the correct cloud. Check with your subscription administrator, this may "
        "happen if there are no active subscriptions for the tenant.",
    )


def app_not_found(client_id: str, tenant: str) -> EntraError:
    return EntraError(
        "unauthorized_client",
        700016,
        f"Application with identifier '{client_id}' was not found in the directory '{tenant}'. "
        "This can happen if the application has not been installed by the administrator of the "
        "tenant or consented to by any user in the tenant. You may have sent your authentication "
        "request to the wrong tenant.",
    )


def redirect_uri_mismatch(redirect_uri: str, client_id: str) -> EntraError:
    return EntraError(
        "invalid_client",
        50011,
        f"The redirect URI '{redirect_uri}' specified in the request does not match the redirect "
        f"URIs configured for the application '{client_id}'. Make sure the redirect URI sent in the "
        "request matches one added to your application in the Azure portal. Navigate to "
        "https://aka.ms/redirectUriMismatchError to learn more about how to fix this.",
    )


def missing_parameter(name: str) -> EntraError:
    return EntraError(
        "invalid_request",
        900144,
        f"The request body must contain the following parameter: '{name}'.",
    )


def multiple_resources(scope: str) -> EntraError:
    return EntraError(
        "invalid_request",
        28000,
        "Provided value for the input parameter scope is not valid because it contains more than "
        f"one resource. Scope {scope} is not valid.",
    )


def invalid_scope(scope: str) -> EntraError:
    return EntraError(
        "invalid_scope",
        70011,
        "The provided request must include a 'scope' input parameter. The provided value for the "
        f"input parameter 'scope' is not valid. The scope {scope} is not valid.",
    )


def client_credentials_scope(scope: str) -> EntraError:
    return EntraError(
        "invalid_scope",
        1002012,
        f"The provided value for scope {scope} is not valid. Client credential flows must have a "
        "scope value with /.default suffixed to the resource identifier "
        "(application ID URI).",
    )


def invalid_client_secret(client_id: str) -> EntraError:
    return EntraError(
        "invalid_client",
        7000215,
        "Invalid client secret provided. Ensure the secret being sent in the request is the client "
        f"secret value, not the client secret ID, for a secret added to app '{client_id}'.",
        status=401,
    )


def missing_client_secret() -> EntraError:
    return EntraError(
        "invalid_client",
        7000218,
        "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        status=401,
    )


def consent_required(app_id: str, app_name: str) -> EntraError:
    return EntraError(
        "invalid_grant",
        65001,
        f"The user or administrator has not consented to use the application with ID '{app_id}' "
        f"named '{app_name}'. Send an interactive authorization request for this user and resource.",
        suberror="consent_required",
    )


def grant_revoked(issued: str, valid_from: str) -> EntraError:
    return EntraError(
        "invalid_grant",
        50173,
        "The provided grant has expired due to it being revoked, a fresh auth token is needed. The "
        f"user might have changed or reset their password. The grant was issued on '{issued}' and "
        f"the TokensValidFrom date (before which tokens are not valid) for this user is "
        f"'{valid_from}'.",
        suberror="bad_token",
    )


def refresh_token_expired(issued: str) -> EntraError:
    return EntraError(
        "invalid_grant",
        700082,
        f"The refresh token has expired due to inactivity. The token was issued on {issued} and was "
        "inactive for 90.00:00:00.",
        suberror="bad_token",
    )


def mfa_required(resources: list[str]) -> EntraError:
    return EntraError(
        "invalid_grant",
        50076,
        "Due to a configuration change made by your administrator, or because you moved to a new "
        f"location, you must use multi-factor authentication to access '{resources[0]}'.",
        suberror="basic_action",
    )


def user_disabled() -> EntraError:
    return EntraError("invalid_grant", 50057, "The user account is disabled.")


def bad_credentials() -> EntraError:
    return EntraError("invalid_grant", 50126, "Error validating credentials due to invalid username or password.")


def user_not_found(upn: str) -> EntraError:
    return EntraError(
        "invalid_grant",
        50034,
        f"The user account {upn} does not exist in the directory. To sign into this application, "
        "the account must be added to the directory.",
    )


def user_not_in_tenant(upn: str, home_tid: str, tenant_name: str, client_id: str) -> EntraError:
    return EntraError(
        "invalid_request",
        50020,
        f"User account '{upn}' from identity provider 'https://sts.windows.net/{home_tid}/' does not "
        f"exist in tenant '{tenant_name}' and cannot access the application '{client_id}' in that "
        "tenant. The account needs to be added as an external user in the tenant first.",
    )


def personal_account_not_allowed(client_id: str) -> EntraError:
    return EntraError(
        "invalid_request",
        50020,
        f"User account from identity provider 'live.com' does not exist in tenant 'Microsoft "
        f"Services' and cannot access the application '{client_id}' in that tenant.",
    )


def code_invalid() -> EntraError:
    return EntraError(
        "invalid_grant",
        70000,
        "The provided value for the 'code' parameter is not valid. The code has expired or it was "
        "issued to a different client.",
    )


def code_other_tenant(tenant_name: str) -> EntraError:
    return EntraError(
        "invalid_grant",
        50148,
        f"The provided authorization code was issued to a user of another tenant than '{tenant_name}'. "
        "Redeem it at the tenant it was issued for.",
    )


def code_expired() -> EntraError:
    return EntraError(
        "invalid_grant",
        70008,
        "The provided authorization code or refresh token has expired due to inactivity. Send a new "
        "interactive authorization request for this user and resource.",
    )


def code_redeemed() -> EntraError:
    return EntraError(
        "invalid_grant",
        54005,
        "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use "
        "an existing refresh token.",
    )


def pkce_mismatch() -> EntraError:
    return EntraError(
        "invalid_grant",
        501481,
        "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
    )


def refresh_token_invalid() -> EntraError:
    return EntraError(
        "invalid_grant",
        9002313,
        "Invalid request. Request is malformed or invalid.",
    )


def refresh_token_other_client() -> EntraError:
    return EntraError(
        "invalid_grant",
        70000,
        "Provided grant is invalid or malformed.",
    )


def unsupported_grant_type(grant_type: str) -> EntraError:
    return EntraError(
        "unsupported_grant_type",
        70003,
        f"The app requested an unsupported grant type '{grant_type}'.",
    )


def unsupported_response_type(response_type: str) -> EntraError:
    return EntraError(
        "unsupported_response_type",
        700054,
        f"response_type '{response_type}' is not enabled for the application.",
    )


def admin_approval_required(app_name: str) -> EntraError:
    return EntraError(
        "access_denied",
        90094,
        f"{app_name} needs permission to access resources in your organization that only an admin "
        "can grant. Please ask an admin to grant permission to this app before you can use it.",
    )


def admin_consent_by_non_admin() -> EntraError:
    return EntraError("access_denied", 90094, "The grant requires admin permission.")


def consent_declined() -> EntraError:
    return EntraError("access_denied", 65004, "User declined to consent to access the app.")


def silent_login_required() -> EntraError:
    return EntraError(
        "login_required",
        50058,
        "A silent sign-in request was sent but no user is signed in. The cookies used to represent "
        "the user's session were not sent in the request to Azure AD.",
    )


def silent_consent_required(app_id: str, app_name: str) -> EntraError:
    err = consent_required(app_id, app_name)
    err.error = "consent_required"
    err.suberror = None
    return err


def common_not_allowed_for_admin_consent() -> EntraError:
    return EntraError(
        "invalid_request",
        90134,
        "The tenant identifier 'common' is not valid for this request. Use a tenant id, a "
        "verified domain or 'organizations'.",
    )


def tenant_required_for_client_credentials(tenant: str) -> EntraError:
    return EntraError(
        "invalid_request",
        900023,
        f"Specified tenant identifier '{tenant}' is neither a valid DNS name, nor a valid external domain.",
    )


# Client authentication: secrets and certificate credentials (client assertions) --------------
_CERTIFICATE_DOCS = (
    "Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials ."
)


def missing_client_credentials(grant_type: str) -> EntraError:
    if grant_type == "client_credentials":
        return EntraError(
            "invalid_client",
            7000216,
            "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.",
            status=401,
        )
    return missing_client_secret()


def client_secret_expired(client_id: str) -> EntraError:
    return EntraError(
        "invalid_client",
        7000222,
        f"The provided client secret keys for app '{client_id}' are expired. Visit the Azure portal to create "
        "new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for "
        "added security: https://aka.ms/certCreds.",
        status=401,
    )


def two_client_credentials() -> EntraError:
    # Not confirmed against Entra: RFC 6749 (5.2) makes a second client authentication method an
    # invalid_request; Entra's generic code for a malformed request is 9002313.
    return EntraError("invalid_request", 9002313, "Invalid request. Request is malformed or invalid.")


def unexpected_assertion_type() -> EntraError:
    return EntraError("invalid_request", 90011, "Unexpected client assertion type.")


def malformed_assertion() -> EntraError:
    return EntraError("invalid_request", 50027, "JWT token is invalid or malformed.")


def assertion_claim_missing(name: str) -> EntraError:
    return EntraError(
        "invalid_request",
        90014,
        f"The required field '{name}' is missing from the credential. Ensure that you have all the necessary "
        "parameters for the login request.",
    )


def assertion_algorithm(alg: str, supported: str) -> EntraError:
    return EntraError(
        "invalid_client",
        5002738,
        f"Invalid JWT token. '{alg}' is not a supported signature algorithm. Supported signing algorithms are: '{supported}'",
        status=401,
    )


def assertion_without_thumbprint() -> EntraError:
    return EntraError(
        "invalid_client",
        5002723,
        "Invalid JWT token. No certificate SHA-1 thumbprint, certificate SHA-256 thumbprint, nor keyId specified "
        "in token header.",
        status=401,
    )


def assertion_other_client() -> EntraError:
    return EntraError(
        "invalid_client",
        700021,
        f"Client assertion application identifier doesn't match 'client_id' parameter. {_CERTIFICATE_DOCS}",
        status=401,
    )


def assertion_subject_mismatch() -> EntraError:
    return EntraError("invalid_client", 50048, "Subject mismatches Issuer claim in the client assertion.", status=401)


def assertion_audience() -> EntraError:
    return EntraError(
        "invalid_client",
        700023,
        f"Client assertion audience claim does not match Realm issuer. {_CERTIFICATE_DOCS}",
        status=401,
    )


def _assertion_time(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f0Z")


def assertion_time_range(now: dt.datetime, valid_from: dt.datetime, expires: dt.datetime) -> EntraError:
    return EntraError(
        "invalid_client",
        700024,
        f"Client assertion is not within its valid time range. Current time: {_assertion_time(now)}, assertion "
        f"valid from {_assertion_time(valid_from)}, expiry time of assertion {_assertion_time(expires)}. "
        + _CERTIFICATE_DOCS,
        status=401,
    )


def _configured_keys(client_id: str) -> str:
    return (
        "Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id "
        f"'{client_id}'. Review the documentation at https://docs.microsoft.com/en-us/graph/deployments to "
        "determine the corresponding service endpoint and "
        "https://docs.microsoft.com/en-us/graph/api/application-get?view=graph-rest-1.0&tabs=http to build a "
        f"query request URL, such as 'https://graph.microsoft.com/beta/applications/{client_id}'"
    )


def assertion_key_not_found(thumbprint: str, client_id: str) -> EntraError:
    return EntraError(
        "invalid_client",
        700027,
        "The certificate with identifier used to sign the client assertion is not registered on application. "
        f"[Reason - The key was not found., Thumbprint of key used by client: '{thumbprint}', "
        f"{_configured_keys(client_id)}].",
        status=401,
    )


def _found_key(start: dt.datetime, end: dt.datetime) -> str:
    return f"Found key 'Start={start:%m/%d/%Y %H:%M:%S}, End={end:%m/%d/%Y %H:%M:%S}'"


def assertion_invalid_signature(
    reason: str, thumbprint: str, start: dt.datetime, end: dt.datetime, client_id: str
) -> EntraError:
    """A registered key that may not be used (expired, not yet valid) or whose signature does not verify."""
    return EntraError(
        "invalid_client",
        700027,
        f"Client assertion contains an invalid signature. [Reason - {reason}, Thumbprint of key used by client: "
        f"'{thumbprint}', {_found_key(start, end)}, {_configured_keys(client_id)}].",
        status=401,
    )
