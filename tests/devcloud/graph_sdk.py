"""msgraph-sdk pointed at devcloud: our own token provider, `base_url`, devcloud's CA."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Coroutine
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
from kiota_abstractions.authentication import BaseBearerTokenAuthenticationProvider
from kiota_http.middleware.options import RetryHandlerOption
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.graph_request_adapter import options as msgraph_options
from msgraph_core import GraphClientFactory

from integrations.graph import FixedToken
from tests.devcloud.test_acs_identity import mint
from tests.devcloud_server import DevCloud

T = TypeVar("T")
CHAT_SCOPES = [
    "https://graph.microsoft.com/User.Read",
    "https://graph.microsoft.com/Chat.ReadWrite",
    "https://graph.microsoft.com/ChatMessage.Send",
]


def graph_client(devcloud: DevCloud, token: str, *, retries: int = 0) -> GraphServiceClient:
    """A Graph client as the product builds one; `retries=0` shows 429s and 5xx to the test."""
    # msgraph's own options turn `/users/me-token-to-replace` into `/me`: keep them with an own client.
    options = {**msgraph_options, RetryHandlerOption.get_key(): RetryHandlerOption(delay=0.5, max_retries=retries)}
    http = GraphClientFactory.create_with_default_middleware(
        client=httpx.AsyncClient(verify=devcloud.tls(), trust_env=False, timeout=30), options=options
    )
    host = urlsplit(devcloud.base_url).netloc
    adapter = GraphRequestAdapter(
        BaseBearerTokenAuthenticationProvider(FixedToken(token, host.split(":")[0])), client=http
    )
    adapter.base_url = f"{devcloud.base_url}/v1.0"
    return GraphServiceClient(request_adapter=adapter)


def as_user(devcloud: DevCloud, who: str, scopes: list[str] | None = None, *, retries: int = 0) -> GraphServiceClient:
    return graph_client(devcloud, mint(devcloud, who, scopes or CHAT_SCOPES), retries=retries)


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def odata_error(exc: BaseException) -> tuple[int, str, str]:
    """Status, Graph error code and message of an ODataError."""
    assert isinstance(exc, ODataError), exc
    assert exc.error is not None
    return exc.response_status_code, str(exc.error.code), str(exc.error.message)


async def refused(awaitable: Awaitable[Any]) -> ODataError:
    """The ODataError a request ends with (it must fail)."""
    try:
        await awaitable
    except ODataError as exc:
        return exc
    raise AssertionError("the request succeeded")
