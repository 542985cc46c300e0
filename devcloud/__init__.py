"""devcloud: a local HTTPS stand-in for Microsoft Entra ID, ACS identity and Microsoft Graph.

It answers the requests that msal, azure-communication-identity, msgraph-sdk and
django-allauth send, with the wire formats of the real services. Product code never
imports it; tests and benchmarks drive it through its control API under ``/_devcloud/``.
"""
