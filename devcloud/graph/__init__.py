"""Microsoft Graph v1.0 under `/v1.0/`."""
