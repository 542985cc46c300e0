"""Microsoft Graph through msgraph-sdk, as one signed-in user (delegated).

Requests are built by the SDK's request builders and sent through its pipeline (our bearer
token, its middleware, its error mapping). Message pages and batches are read as plain JSON:
msgraph-sdk's model parsing costs ~7 ms a message, and its batch reader drops JSON bodies.
The retry handler is off: the caller owns throttling (token buckets, `Retry-After`).
Returns plain dicts in Graph's shape and raises GraphError; knows nothing of the database.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from kiota_abstractions.authentication import (
    AccessTokenProvider,
    AllowedHostsValidator,
    BaseBearerTokenAuthenticationProvider,
)
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation
from kiota_http.middleware.options import RetryHandlerOption
from msgraph.generated.chats.item.chat_item_request_builder import ChatItemRequestBuilder
from msgraph.generated.chats.item.hide_for_user.hide_for_user_post_request_body import HideForUserPostRequestBody
from msgraph.generated.chats.item.mark_chat_read_for_user.mark_chat_read_for_user_post_request_body import (
    MarkChatReadForUserPostRequestBody,
)
from msgraph.generated.chats.item.mark_chat_unread_for_user.mark_chat_unread_for_user_post_request_body import (
    MarkChatUnreadForUserPostRequestBody,
)
from msgraph.generated.chats.item.messages.item.set_reaction.set_reaction_post_request_body import (
    SetReactionPostRequestBody,
)
from msgraph.generated.chats.item.messages.item.unset_reaction.unset_reaction_post_request_body import (
    UnsetReactionPostRequestBody,
)
from msgraph.generated.chats.item.messages.messages_request_builder import MessagesRequestBuilder
from msgraph.generated.chats.item.messages.reply_with_quote.reply_with_quote_post_request_body import (
    ReplyWithQuotePostRequestBody,
)
from msgraph.generated.chats.item.unhide_for_user.unhide_for_user_post_request_body import (
    UnhideForUserPostRequestBody,
)
from msgraph.generated.models.aad_user_conversation_member import AadUserConversationMember
from msgraph.generated.models.body_type import BodyType
from msgraph.generated.models.chat import Chat
from msgraph.generated.models.chat_message import ChatMessage
from msgraph.generated.models.chat_message_hosted_content import ChatMessageHostedContent
from msgraph.generated.models.chat_message_mention import ChatMessageMention
from msgraph.generated.models.chat_message_mentioned_identity_set import ChatMessageMentionedIdentitySet
from msgraph.generated.models.chat_type import ChatType
from msgraph.generated.models.identity import Identity
from msgraph.generated.models.item_body import ItemBody
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.subscription import Subscription
from msgraph.generated.models.teamwork_user_identity import TeamworkUserIdentity
from msgraph.generated.users.item.chats.chats_request_builder import ChatsRequestBuilder
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph.graph_request_adapter import options as msgraph_options
from msgraph.graph_service_client import GraphServiceClient
from msgraph_core import GraphClientFactory  # type: ignore[import-untyped]

from core import metrics

CHAT_SCOPES = [
    "https://graph.microsoft.com/Chat.ReadWrite",
    "https://graph.microsoft.com/ChatMessage.Send",
]
PREFER_ENUMS = "include-unknown-enum-members"
PAGE_SIZE = 50
BATCH_LIMIT = 20
EXPANDED_MEMBERS_LIMIT = 25  # `$expand=members` lists at most this many
# A member added with this start sees the chat's whole history, as Graph documents it.
ALL_HISTORY = dt.datetime(1, 1, 1, tzinfo=dt.UTC)
ERRORS: dict[str, Any] = {"XXX": ODataError}
T = TypeVar("T")


class GraphError(Exception):
    """Graph refused or could not be reached; `status` 0 means no answer (never holds a token)."""

    def __init__(self, status: int, code: str, message: str = "", retry_after: float | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after

    @property
    def throttled(self) -> bool:
        return self.status == 429

    @property
    def transient(self) -> bool:
        return self.status in (0, 429, 500, 502, 503, 504)


def error_from(status: int, body: Any, headers: Any) -> GraphError:
    """The one place where a Graph error answer (plain or from a batch) becomes our exception."""
    error = body.get("error", {}) if isinstance(body, dict) else {}
    retry_after = None
    raw = (headers or {}).get("Retry-After") or (headers or {}).get("retry-after")
    if raw is not None:
        try:
            retry_after = max(0.0, float(raw))
        except ValueError:
            retry_after = None
    return GraphError(status, str(error.get("code") or "Unknown"), str(error.get("message") or ""), retry_after)


def _from_odata(exc: ODataError) -> GraphError:
    error = exc.error
    body = {"error": {"code": getattr(error, "code", None), "message": getattr(error, "message", None)}}
    return error_from(exc.response_status_code or 0, body, exc.response_headers)


class FixedToken(AccessTokenProvider):
    """A bearer token acquired beforehand (msal, under the user's cache lock) for one job."""

    def __init__(self, token: str, host: str) -> None:
        self._token = token
        self._hosts = AllowedHostsValidator([host])

    async def get_authorization_token(self, uri: str, additional_authentication_context: Any = None) -> str:
        return self._token

    def get_allowed_hosts_validator(self) -> AllowedHostsValidator:
        return self._hosts


@dataclass(frozen=True)
class Mention:
    """`<at id="{id}">{name}</at>` in a body: the chat member `oid`."""

    id: int
    oid: str
    name: str


@dataclass(frozen=True)
class Image:
    """An inline image sent with a message, as `../hostedContents/{number}/$value` in its body."""

    content_type: str
    data: bytes


@dataclass(frozen=True)
class HostedContent:
    data: bytes
    content_type: str


class ContentTooLarge(GraphError):
    def __init__(self, limit: int) -> None:
        super().__init__(0, "ContentTooLarge", f"larger than {limit} bytes")


@lru_cache(maxsize=1)
def _tls() -> ssl.SSLContext:
    bundle = settings.MICROSOFT_CA_BUNDLE
    return ssl.create_default_context(cafile=bundle) if bundle else ssl.create_default_context()


@dataclass
class GraphSession:
    """One user's Graph for the length of one job: open, use, `aclose()`."""

    client: GraphServiceClient
    http: httpx.AsyncClient

    @classmethod
    def open(cls, token: str) -> GraphSession:
        options = {**msgraph_options, RetryHandlerOption.get_key(): RetryHandlerOption(max_retries=0)}
        base = httpx.AsyncClient(
            verify=_tls(),
            trust_env=False,
            timeout=httpx.Timeout(30, connect=10),
            event_hooks={"response": [_count_answer]},
        )
        http: httpx.AsyncClient = GraphClientFactory.create_with_default_middleware(client=base, options=options)
        host = urlsplit(settings.GRAPH_URL).hostname or "graph.microsoft.com"
        adapter = GraphRequestAdapter(BaseBearerTokenAuthenticationProvider(FixedToken(token, host)), client=http)
        adapter.base_url = f"{settings.GRAPH_URL}/v1.0"
        return cls(GraphServiceClient(request_adapter=adapter), http)

    async def aclose(self) -> None:
        await self.http.aclose()

    async def _json(self, info: RequestInformation) -> Any:
        try:
            raw = await self.client.request_adapter.send_primitive_async(info, "bytes", ERRORS)  # type: ignore[func-returns-value]
        except ODataError as exc:
            raise _from_odata(exc) from exc
        except httpx.HTTPError as exc:
            metrics.graph_request(0)
            raise GraphError(0, type(exc).__name__) from exc
        return json.loads(raw) if raw else None

    def _at(self, builder: Any, url: str | None) -> Any:
        return builder.with_url(url) if url else builder

    # reads ---------------------------------------------------------------------------------
    async def chats_page(self, next_link: str | None = None) -> dict[str, Any]:
        """One page of the user's chats, with members and the last message's preview."""
        query = ChatsRequestBuilder.ChatsRequestBuilderGetQueryParameters(
            top=PAGE_SIZE, expand=["members", "lastMessagePreview"]
        )
        builder = self._at(self.client.me.chats, next_link)
        info = builder.to_get_request_information(None if next_link else RequestConfiguration(query_parameters=query))
        page: dict[str, Any] = await self._json(_with_enums(info))
        return page

    def messages_request(self, chat_id: str, since: str | None, next_link: str | None = None) -> RequestInformation:
        """Changes after `since` (Graph's lastModifiedDateTime), newest first, 50 a page."""
        builder = self._at(self.client.chats.by_chat_id(chat_id).messages, next_link)
        if next_link:
            following: RequestInformation = builder.to_get_request_information()
            return _with_enums(following)
        query = MessagesRequestBuilder.MessagesRequestBuilderGetQueryParameters(
            top=PAGE_SIZE,
            orderby=["lastModifiedDateTime desc"],
            filter=f"lastModifiedDateTime gt {since}" if since else None,
        )
        info: RequestInformation = builder.to_get_request_information(RequestConfiguration(query_parameters=query))
        return _with_enums(info)

    async def members_page(self, chat_id: str, next_link: str | None = None) -> dict[str, Any]:
        """One page of a chat's members (`$expand=members` lists at most 25)."""
        builder = self._at(self.client.chats.by_chat_id(chat_id).members, next_link)
        page: dict[str, Any] = await self._json(builder.to_get_request_information())
        return page

    async def messages_page(self, chat_id: str, since: str | None, next_link: str | None = None) -> dict[str, Any]:
        page: dict[str, Any] = await self._json(self.messages_request(chat_id, since, next_link))
        return page

    async def batch(self, requests: list[RequestInformation]) -> list[tuple[int, dict[str, Any], dict[str, str]]]:
        """Up to 20 GETs in one round trip; (status, body, headers) of each, in order."""
        if len(requests) > BATCH_LIMIT:
            raise ValueError(f"a batch holds at most {BATCH_LIMIT} requests")
        items = [
            {"id": str(n), "method": "GET", "url": _relative(info.url), "headers": {"Prefer": PREFER_ENUMS}}
            for n, info in enumerate(requests)
        ]
        info = RequestInformation(Method.POST, f"{settings.GRAPH_URL}/v1.0/$batch")
        info.headers.try_add("Content-Type", "application/json")
        info.content = json.dumps({"requests": items}).encode()
        answer = await self._json(info)
        by_id = {r["id"]: r for r in answer["responses"]}
        for response in by_id.values():
            metrics.graph_request(int(response.get("status") or 0))
        return [
            (by_id[str(n)]["status"], by_id[str(n)].get("body") or {}, by_id[str(n)].get("headers") or {})
            for n in range(len(items))
        ]

    # writes --------------------------------------------------------------------------------
    async def send_message(
        self, chat_id: str, html: str, *, mentions: Sequence[Mention] = (), images: Sequence[Image] = ()
    ) -> dict[str, Any]:
        """A new message; `html` names each mention `<at id="N">` and each image `../hostedContents/N/$value`."""
        body = _chat_message(html, mentions, images)
        info = self.client.chats.by_chat_id(chat_id).messages.to_post_request_information(body)
        message: dict[str, Any] = await self._json(info)
        return message

    async def reply_with_quote(
        self, chat_id: str, quoted_id: str, html: str, *, mentions: Sequence[Mention] = (), images: Sequence[Image] = ()
    ) -> dict[str, Any]:
        """A new message quoting `quoted_id` (Graph puts the quote in a `messageReference` attachment)."""
        body = ReplyWithQuotePostRequestBody(
            message_ids=[quoted_id], reply_message=_chat_message(html, mentions, images)
        )
        builder = self.client.chats.by_chat_id(chat_id).messages.reply_with_quote
        message: dict[str, Any] = await self._json(builder.to_post_request_information(body))
        return message

    def _message(self, chat_id: str, message_id: str) -> Any:
        return self.client.chats.by_chat_id(chat_id).messages.by_chat_message_id(message_id)

    async def get_message(self, chat_id: str, message_id: str) -> dict[str, Any]:
        message: dict[str, Any] = await self._json(
            _with_enums(self._message(chat_id, message_id).to_get_request_information())
        )
        return message

    async def edit_message(self, chat_id: str, message_id: str, html: str, *, mentions: Sequence[Mention] = ()) -> None:
        """The sender's new text (Graph answers 204 to a delegated edit)."""
        body = _chat_message(html, mentions, ())
        await self._json(self._message(chat_id, message_id).to_patch_request_information(body))

    def _own_message(self, user: str, chat_id: str, message_id: str) -> Any:
        # Graph documents soft delete and its undo under the user only.
        return self.client.users.by_user_id(user).chats.by_chat_id(chat_id).messages.by_chat_message_id(message_id)

    async def soft_delete(self, *, user: str, chat_id: str, message_id: str) -> None:
        await self._json(self._own_message(user, chat_id, message_id).soft_delete.to_post_request_information())

    async def undo_soft_delete(self, *, user: str, chat_id: str, message_id: str) -> None:
        await self._json(self._own_message(user, chat_id, message_id).undo_soft_delete.to_post_request_information())

    async def set_reaction(self, chat_id: str, message_id: str, reaction: str) -> None:
        body = SetReactionPostRequestBody(reaction_type=reaction)
        await self._json(self._message(chat_id, message_id).set_reaction.to_post_request_information(body))

    async def unset_reaction(self, chat_id: str, message_id: str, reaction: str) -> None:
        body = UnsetReactionPostRequestBody(reaction_type=reaction)
        await self._json(self._message(chat_id, message_id).unset_reaction.to_post_request_information(body))

    async def hosted_content(self, chat_id: str, message_id: str, content_id: str, *, limit: int) -> HostedContent:
        """An inline image's bytes and type, read no further than `limit` bytes (ContentTooLarge)."""
        builder = self._message(chat_id, message_id).hosted_contents.by_chat_message_hosted_content_id(content_id)
        info = builder.content.to_get_request_information()
        info.path_parameters["baseurl"] = self.client.request_adapter.base_url
        try:
            request = await self.client.request_adapter.convert_to_native_async(info)
            assert isinstance(request, httpx.Request)  # noqa: S101 (kiota's httpx adapter)
            response = await self.http.send(request, stream=True)
            try:
                if response.status_code >= 400:
                    await response.aread()
                    raise error_from(response.status_code, _json_or_none(response.content), response.headers)
                data = await _read_at_most(response, limit)
            finally:
                await response.aclose()
        except httpx.HTTPError as exc:
            metrics.graph_request(0)
            raise GraphError(0, type(exc).__name__) from exc
        return HostedContent(data, response.headers.get("Content-Type", ""))

    async def create_chat(self, *, creator: str, members: list[str], topic: str = "") -> dict[str, Any]:
        """A one-on-one chat with one other member (Graph answers the pair's existing chat), or a group."""
        users = [creator, *members]
        chat = Chat(
            chat_type=ChatType.Group if len(users) > 2 or topic else ChatType.OneOnOne,
            topic=topic or None,
            members=[
                AadUserConversationMember(
                    roles=["owner"],
                    additional_data={"user@odata.bind": f"{settings.GRAPH_URL}/v1.0/users('{oid}')"},
                )
                for oid in users
            ],
        )
        created: dict[str, Any] = await self._json(self.client.chats.to_post_request_information(chat))
        return created

    # chat-level actions -----------------------------------------------------------------------
    async def get_chat(self, chat_id: str) -> dict[str, Any]:
        """One chat with its members (and, where Graph gives it, the user's `viewpoint`)."""
        query = ChatItemRequestBuilder.ChatItemRequestBuilderGetQueryParameters(expand=["members"])
        builder = self.client.chats.by_chat_id(chat_id)
        info = builder.to_get_request_information(RequestConfiguration(query_parameters=query))
        chat: dict[str, Any] = await self._json(_with_enums(info))
        return chat

    async def chat_with_members(self, chat_id: str) -> dict[str, Any]:
        """The chat as Graph has it now, with all its members (`$expand` stops at 25)."""
        item = await self.get_chat(chat_id)
        if len(item.get("members") or []) >= EXPANDED_MEMBERS_LIMIT:
            members: list[dict[str, Any]] = []
            next_link = None
            while True:
                page = await self.members_page(chat_id, next_link)
                members += page.get("value", [])
                next_link = page.get("@odata.nextLink")
                if not next_link:
                    break
            item["members"] = members
        return item

    async def mark_chat_read(self, chat_id: str, *, user: str, tenant: str) -> None:
        """Read up to now, for the signed-in user (shared with Teams)."""
        body = MarkChatReadForUserPostRequestBody(user=_teamwork_user(user, tenant))
        builder = self.client.chats.by_chat_id(chat_id).mark_chat_read_for_user
        await self._json(builder.to_post_request_information(body))

    async def mark_chat_unread(
        self, chat_id: str, *, user: str, tenant: str, read_until: dt.datetime | None = None
    ) -> None:
        """Unread from `read_until` on (Graph's default: just before the last message)."""
        body = MarkChatUnreadForUserPostRequestBody(
            user=_teamwork_user(user, tenant), last_message_read_date_time=read_until
        )
        builder = self.client.chats.by_chat_id(chat_id).mark_chat_unread_for_user
        await self._json(builder.to_post_request_information(body))

    async def hide_chat(self, chat_id: str, *, user: str, tenant: str) -> None:
        body = HideForUserPostRequestBody(user=_teamwork_user(user, tenant))
        await self._json(self.client.chats.by_chat_id(chat_id).hide_for_user.to_post_request_information(body))

    async def unhide_chat(self, chat_id: str, *, user: str, tenant: str) -> None:
        body = UnhideForUserPostRequestBody(user=_teamwork_user(user, tenant))
        await self._json(self.client.chats.by_chat_id(chat_id).unhide_for_user.to_post_request_information(body))

    async def rename_chat(self, chat_id: str, topic: str) -> None:
        """A group chat's new topic (Graph answers 204)."""
        await self._json(self.client.chats.by_chat_id(chat_id).to_patch_request_information(Chat(topic=topic)))

    async def add_member(self, chat_id: str, user: str) -> dict[str, Any]:
        """A person added to a group chat, seeing its whole history (Graph answers the membership)."""
        member = AadUserConversationMember(
            roles=["owner"],
            visible_history_start_date_time=ALL_HISTORY,
            additional_data={"user@odata.bind": f"{settings.GRAPH_URL}/v1.0/users('{user}')"},
        )
        info = self.client.chats.by_chat_id(chat_id).members.to_post_request_information(member)
        added: dict[str, Any] = await self._json(info)
        return added

    async def remove_member(self, chat_id: str, membership_id: str) -> None:
        """A membership ended; one's own is leaving the chat."""
        builder = self.client.chats.by_chat_id(chat_id).members.by_conversation_member_id(membership_id)
        await self._json(builder.to_delete_request_information())

    # change notifications ------------------------------------------------------------------
    async def subscribe_chat_messages(
        self, *, chat_id: str, notification_url: str, lifecycle_url: str, client_state: str, expires: dt.datetime
    ) -> dict[str, Any]:
        """Created, updated and deleted messages of one chat, notified to `notification_url`."""
        subscription = Subscription(
            change_type="created,updated,deleted",
            resource=f"/chats/{chat_id}/messages",
            notification_url=notification_url,
            lifecycle_notification_url=lifecycle_url,
            client_state=client_state,
            expiration_date_time=expires,
        )
        created: dict[str, Any] = await self._json(self.client.subscriptions.to_post_request_information(subscription))
        return created

    async def subscriptions(self) -> list[dict[str, Any]]:
        """The app's subscriptions that this user created."""
        page: dict[str, Any] = await self._json(self.client.subscriptions.to_get_request_information())
        return list(page.get("value", []))

    async def renew_subscription(self, subscription_id: str, *, expires: dt.datetime) -> dict[str, Any]:
        builder = self.client.subscriptions.by_subscription_id(subscription_id)
        renewed: dict[str, Any] = await self._json(
            builder.to_patch_request_information(Subscription(expiration_date_time=expires))
        )
        return renewed

    async def reauthorize_subscription(self, subscription_id: str) -> None:
        builder = self.client.subscriptions.by_subscription_id(subscription_id).reauthorize
        await self._json(builder.to_post_request_information())

    async def delete_subscription(self, subscription_id: str) -> None:
        await self._json(self.client.subscriptions.by_subscription_id(subscription_id).to_delete_request_information())


async def _count_answer(response: httpx.Response) -> None:
    """Every answer, for the metrics; an answered $batch's requests are counted one by one as it is read."""
    if response.status_code != 200 or not response.request.url.path.endswith("/$batch"):
        metrics.graph_request(response.status_code)


def run_with_session(token: str, work: Callable[[GraphSession], Awaitable[T]]) -> T:
    """`work` in a session of its own, from synchronous code (a view, a task)."""

    async def run() -> T:
        session = GraphSession.open(token)
        try:
            return await work(session)
        finally:
            await session.aclose()

    return asyncio.run(run())


def _teamwork_user(user: str, tenant: str) -> TeamworkUserIdentity:
    """The signed-in user as read-state and hide actions name him: `{"id", "tenantId"}`."""
    return TeamworkUserIdentity(id=user, additional_data={"tenantId": tenant})


def _chat_message(html: str, mentions: Sequence[Mention], images: Sequence[Image]) -> ChatMessage:
    return ChatMessage(
        body=ItemBody(content_type=BodyType.Html, content=html),
        mentions=[
            ChatMessageMention(
                id=m.id,
                mention_text=m.name,
                mentioned=ChatMessageMentionedIdentitySet(
                    user=Identity(id=m.oid, display_name=m.name, additional_data={"userIdentityType": "aadUser"})
                ),
            )
            for m in mentions
        ]
        or None,
        hosted_contents=[
            ChatMessageHostedContent(
                content_bytes=image.data,
                content_type=image.content_type,
                additional_data={"@microsoft.graph.temporaryId": str(number)},
            )
            for number, image in enumerate(images, start=1)
        ]
        or None,
    )


async def _read_at_most(response: httpx.Response, limit: int) -> bytes:
    """The body, refused as soon as it passes `limit` (whatever Content-Length claims)."""
    declared = response.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ContentTooLarge(limit)
    chunks, size = [], 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise ContentTooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _json_or_none(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _with_enums(info: RequestInformation) -> RequestInformation:
    """Ask for evolvable enum members (`systemEventMessage`) rather than `unknownFutureValue`."""
    info.headers.try_add("Prefer", PREFER_ENUMS)
    return info


def _relative(url: str) -> str:
    """A batch request's URL, relative to the version root as Graph wants it."""
    parts = urlsplit(url)
    path = parts.path
    for prefix in ("/v1.0", "/beta"):
        if path.startswith(prefix + "/"):
            path = path[len(prefix) :]
    return path + (f"?{parts.query}" if parts.query else "")
