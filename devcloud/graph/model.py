"""Teams chats and their messages, as the store keeps them (user ids, milliseconds)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# The base of the URLs Graph writes into messages (hosted contents); answers use the caller's.
GRAPH_URL = "https://graph.microsoft.com/v1.0"


@dataclass(slots=True)
class Hosted:
    """An inline image of a message: its bytes, base64 as sent."""

    id: str
    content_type: str
    content_bytes: str


@dataclass(slots=True)
class Message:
    id: str
    chat_id: str
    created_ms: int
    modified_ms: int
    sender_id: str | None
    content_type: str
    content: str
    edited_ms: int | None = None
    deleted_ms: int | None = None
    # A system event message's detail, user ids only: `{"kind": "membersAdded" | "membersDeleted" |
    # "membersLeft" | "chatRenamed", "members"?, "topic"?, "initiator"}`.
    event: dict[str, Any] | None = None
    # Graph's `attachments` verbatim (quoted replies' messageReference).
    attachments: list[dict[str, Any]] = field(default_factory=list)
    # `{"id": n, "text", "user": oid}` or `{"id": n, "text", "conversation": chat id}`.
    mentions: list[dict[str, Any]] = field(default_factory=list)
    # `{"type", "user", "at"}` in the order they were set.
    reactions: list[dict[str, Any]] = field(default_factory=list)
    # `{"at", "action": "reactionAdded" | "reactionRemoved", "reaction": {"type", "user", "at"}}`.
    history: list[dict[str, Any]] = field(default_factory=list)
    hosted: dict[str, Hosted] = field(default_factory=dict)


@dataclass(slots=True)
class Chat:
    id: str
    tenant_id: str
    chat_type: str
    topic: str | None
    created_ms: int
    updated_ms: int
    members: dict[str, int] = field(default_factory=dict)  # user id → when added (ms)
    messages: dict[str, Message] = field(default_factory=dict)
    clock_ms: int = 0
    last_read_ms: dict[str, int] = field(default_factory=dict)
    hidden: set[str] = field(default_factory=set)  # members who hid the chat

    def tick(self, now_ms: int | None = None) -> int:
        """The chat's next modification time: never equal to or before the previous one."""
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        self.clock_ms = max(now_ms, self.clock_ms + 1)
        return self.clock_ms

    def last_message(self) -> Message | None:
        return max(self.messages.values(), key=lambda m: m.created_ms, default=None)


ChangeListener = Callable[[Chat, Message, str], None]


class StoreError(ValueError):
    """A control-API or Graph request the store cannot apply (unknown chat, not a member…)."""


def one_on_one_id(a: str, b: str) -> str:
    first, second = sorted((a, b))
    return f"19:{first}_{second}@unq.gbl.spaces"


def hosted_url(base: str, chat_id: str, message_id: str, hosted_id: str) -> str:
    return f"{base}/chats/{chat_id}/messages/{message_id}/hostedContents/{hosted_id}/$value"
