"""Teams chats, members and messages, kept in memory and journalled to the state dir.

Every change is an operation with its concrete values (ids, times): it is applied, appended to
`chats.jsonl`, and replayed on start, so a restart keeps what users typed. Bulk generation is
journalled as its parameters and replays deterministically from its seed.
"""

from __future__ import annotations

import html
import json
import os
import random
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from devcloud.directory import Directory, Tenant, User
from devcloud.graph.model import ChangeListener, Chat, Message, StoreError, one_on_one_id
from devcloud.graph.store_messages import MessageWrites

__all__ = ["Chat", "ChatStore", "Message", "StoreError", "one_on_one_id"]

STEP_MS = 7 * 60_000
# Bump when the generator changes: a journal replays with the generator that wrote it.
GENERATOR_VERSION = 1
MAX_TOPIC = 250
WORDS = [
    "agenda",
    "budget",
    "call",
    "deck",
    "draft",
    "follow-up",
    "invoice",
    "kickoff",
    "launch",
    "meeting",
    "notes",
    "plan",
    "question",
    "release",
    "review",
    "roadmap",
    "schedule",
    "status",
    "sync",
    "ticket",
    "timeline",
    "update",
]


class ChatStore(MessageWrites):
    def __init__(self, *, directory: Directory, journal: Path) -> None:
        self.directory = directory
        self.journal = journal
        self.chats: dict[str, Chat] = {}
        self.by_user: dict[str, set[str]] = {}
        self.listeners: list[ChangeListener] = []
        self._replaying = False

    # persistence ---------------------------------------------------------------------
    def load(self) -> bool:
        """Replay the journal; False when there was none (a new state dir)."""
        if not self.journal.exists():
            return False
        self._replaying = True
        try:
            with self.journal.open() as lines:
                for line in lines:
                    if not line.endswith("\n"):
                        break  # a write cut short by a crash: the change never happened
                    if line.strip():
                        self._apply(json.loads(line))
        finally:
            self._replaying = False
        return True

    def clear(self) -> None:
        self.chats.clear()
        self.by_user.clear()
        self.journal.write_text("")

    def _record(self, op: dict[str, Any]) -> Any:
        # Journal first, then apply (and notify): a change is never seen that a restart would lose.
        with self.journal.open("a") as out:
            out.write(json.dumps(op, separators=(",", ":")) + "\n")
            out.flush()
            os.fsync(out.fileno())
        return self._apply(op)

    def _apply(self, op: dict[str, Any]) -> Any:
        handler = getattr(self, f"_op_{op['op']}")
        return handler(op)

    def _notify(self, chat: Chat, message: Message, change: str) -> None:
        if self._replaying:
            return
        for listener in self.listeners:
            listener(chat, message, change)

    # reads ---------------------------------------------------------------------------
    def chat(self, chat_id: str) -> Chat | None:
        return self.chats.get(chat_id)

    def chats_of(self, user_id: str) -> Iterator[Chat]:
        for chat_id in self.by_user.get(user_id, ()):
            yield self.chats[chat_id]

    def user(self, ref: str) -> User:
        found = self.directory.user(ref)
        if found is None:
            raise StoreError(f"unknown user: {ref}")
        return found

    def _chat(self, chat_id: str) -> Chat:
        chat = self.chats.get(chat_id)
        if chat is None:
            raise StoreError(f"unknown chat: {chat_id}")
        return chat

    def _message(self, chat: Chat, message_id: str) -> Message:
        message = chat.messages.get(message_id)
        if message is None:
            raise StoreError(f"unknown message {message_id} in chat {chat.id}")
        return message

    # writes --------------------------------------------------------------------------
    def create_chat(
        self, *, creator: User, members: list[User], chat_type: str, topic: str | None
    ) -> tuple[Chat, bool]:
        """A new chat; for one-on-one, the existing chat of the pair if there is one (and False)."""
        if topic is not None and (chat_type != "group" or not isinstance(topic, str) or len(topic) > 250):
            raise StoreError("topic: a string of at most 250 characters, for group chats only")
        ids = list(dict.fromkeys([creator.id, *(m.id for m in members)]))
        if any(self.user(i).tenant_id != creator.tenant_id for i in ids):
            raise StoreError("all members must belong to the creator's tenant")
        if chat_type == "oneOnOne":
            if len(ids) != 2:
                raise StoreError("a oneOnOne chat has exactly two members")
            existing = self.chats.get(one_on_one_id(*ids))
            if existing is not None:
                return existing, False
            chat_id = one_on_one_id(*ids)
        elif chat_type == "group":
            if len(ids) < 2:
                raise StoreError("a group chat needs at least two members")
            chat_id = f"19:{uuid.uuid4().hex}@thread.v2"
        else:
            raise StoreError(f"chatType must be oneOnOne or group, not {chat_type!r}")
        now = int(time.time() * 1000)
        op = {"op": "chat", "id": chat_id, "tenant": creator.tenant_id, "type": chat_type}
        self._record({**op, "topic": topic, "members": ids, "by": creator.id, "at": now})
        return self.chats[chat_id], True

    def add_member(self, *, chat_id: str, user: User, by: User | None) -> Chat:
        chat = self._chat(chat_id)
        if chat.chat_type != "group":
            raise StoreError("members can be added to group chats only")
        if user.tenant_id != chat.tenant_id:
            raise StoreError("the member must belong to the chat's tenant")
        if user.id in chat.members:
            raise StoreError("already a member")
        at = chat.tick()
        self._record({"op": "member", "chat": chat_id, "user": user.id, "by": by.id if by else None, "at": at})
        return chat

    def remove_member(self, *, chat_id: str, user: User, by: User | None) -> Chat:
        """A member removed (by another) or leaving (by himself), with its system event message."""
        chat = self._chat(chat_id)
        if chat.chat_type != "group":
            raise StoreError("members can be removed from group chats only")
        if user.id not in chat.members:
            raise StoreError("not a member")
        at = chat.tick()
        op = {"op": "remove_member", "chat": chat_id, "user": user.id, "by": by.id if by else None, "at": at}
        self._record(op)
        return chat

    def rename(self, *, chat_id: str, topic: str, by: User | None) -> Chat:
        chat = self._chat(chat_id)
        if chat.chat_type != "group":
            raise StoreError("only group chats have a topic")
        if not isinstance(topic, str) or not topic.strip() or len(topic) > MAX_TOPIC:
            raise StoreError(f"topic: 1 to {MAX_TOPIC} characters")
        at = chat.tick()
        self._record({"op": "rename", "chat": chat_id, "topic": topic, "by": by.id if by else None, "at": at})
        return chat

    def mark_read(self, *, chat_id: str, user: User) -> None:
        self._chat(chat_id)
        self._record({"op": "read", "chat": chat_id, "user": user.id, "at": int(time.time() * 1000)})

    def mark_unread(self, *, chat_id: str, user: User, read_until_ms: int | None = None) -> None:
        """Read up to `read_until_ms`; by default just before the last message."""
        chat = self._chat(chat_id)
        if read_until_ms is None:
            last = chat.last_message()
            read_until_ms = (last.created_ms if last else chat.created_ms) - 1
        self._record({"op": "unread", "chat": chat_id, "user": user.id, "at": read_until_ms})

    def hide(self, *, chat_id: str, user: User, hidden: bool) -> None:
        chat = self._chat(chat_id)
        if user.id not in chat.members:
            raise StoreError("not a member of the chat")
        if (user.id in chat.hidden) != hidden:
            op = "hide" if hidden else "unhide"
            self._record({"op": op, "chat": chat_id, "user": user.id, "at": int(time.time() * 1000)})

    def generate(
        self, *, tenant: Tenant, pool: list[User], include: list[User], chats: int, messages: int, seed: int
    ) -> dict[str, int]:
        op = {
            "op": "generate",
            "tenant": tenant.id,
            "pool": [u.id for u in pool],
            "include": [u.id for u in include],
            "chats": chats,
            "messages": messages,
            "seed": seed,
            "at": int(time.time() * 1000),
            "version": GENERATOR_VERSION,
        }
        result: dict[str, int] = self._record(op)
        return result

    def seed(self, specs: list[dict[str, Any]]) -> None:
        """The seed's demo chats, their messages seven minutes apart and ending before now."""
        now = int(time.time() * 1000)
        for n, spec in enumerate(specs):
            members = [self.user(ref) for ref in spec["members"]]
            lines = spec.get("messages", [])
            start = now - (len(lines) + 2) * STEP_MS - n * 1000
            if spec["type"] == "oneOnOne":
                chat_id = one_on_one_id(members[0].id, members[1].id)
            else:
                chat_id = f"19:{uuid.uuid5(uuid.NAMESPACE_URL, 'devcloud-seed-chat:' + str(n)).hex}@thread.v2"
            op = {"op": "chat", "id": chat_id, "tenant": members[0].tenant_id, "type": spec["type"]}
            self._record(
                {**op, "topic": spec.get("topic"), "members": [m.id for m in members], "by": members[0].id, "at": start}
            )
            for i, (who, text) in enumerate(lines):
                op = {"op": "post", "chat": chat_id, "from": self.user(who).id, "type": "html"}
                self._record({**op, "content": f"<p>{html.escape(text)}</p>", "at": start + (i + 1) * STEP_MS})

    # operations (applied live and on replay) -----------------------------------------
    def _add_chat(self, chat: Chat) -> None:
        self.chats[chat.id] = chat
        for user_id in chat.members:
            self.by_user.setdefault(user_id, set()).add(chat.id)

    def _op_chat(self, op: dict[str, Any]) -> Chat:
        at = op["at"]
        chat = Chat(op["id"], op["tenant"], op["type"], op.get("topic"), at, at, clock_ms=at)
        chat.members = dict.fromkeys(op["members"], at)
        self._add_chat(chat)
        if chat.chat_type == "group":
            self._system_members_added(chat, op["members"], op["by"], chat.tick(at))
        return chat

    def _system_event(self, chat: Chat, event: dict[str, Any], at: int) -> Message:
        message = Message(str(at), chat.id, at, at, None, "html", "<systemEventMessage/>", event=event)
        chat.messages[message.id] = message
        self._notify(chat, message, "created")
        return message

    def _system_members_added(self, chat: Chat, user_ids: list[str], by: str | None, at: int) -> Message:
        return self._system_event(chat, {"kind": "membersAdded", "members": user_ids, "initiator": by}, at)

    def _op_member(self, op: dict[str, Any]) -> Chat:
        chat = self.chats[op["chat"]]
        chat.members[op["user"]] = op["at"]
        chat.updated_ms = op["at"]
        chat.clock_ms = max(chat.clock_ms, op["at"])
        self.by_user.setdefault(op["user"], set()).add(chat.id)
        self._system_members_added(chat, [op["user"]], op["by"], op["at"])
        return chat

    def _op_remove_member(self, op: dict[str, Any]) -> Chat:
        chat = self.chats[op["chat"]]
        user_id, at = op["user"], op["at"]
        del chat.members[user_id]
        chat.hidden.discard(user_id)
        chat.updated_ms = at
        chat.clock_ms = max(chat.clock_ms, at)
        self.by_user.get(user_id, set()).discard(chat.id)
        kind = "membersLeft" if op["by"] == user_id else "membersDeleted"
        self._system_event(chat, {"kind": kind, "members": [user_id], "initiator": op["by"]}, at)
        return chat

    def _op_rename(self, op: dict[str, Any]) -> Chat:
        chat = self.chats[op["chat"]]
        chat.topic = op["topic"]
        chat.updated_ms = op["at"]
        chat.clock_ms = max(chat.clock_ms, op["at"])
        event = {"kind": "chatRenamed", "topic": op["topic"], "initiator": op["by"]}
        self._system_event(chat, event, op["at"])
        return chat

    def _op_read(self, op: dict[str, Any]) -> None:
        self.chats[op["chat"]].last_read_ms[op["user"]] = op["at"]

    def _op_unread(self, op: dict[str, Any]) -> None:
        self.chats[op["chat"]].last_read_ms[op["user"]] = op["at"]

    def _op_hide(self, op: dict[str, Any]) -> None:
        self.chats[op["chat"]].hidden.add(op["user"])

    def _op_unhide(self, op: dict[str, Any]) -> None:
        self.chats[op["chat"]].hidden.discard(op["user"])

    def _op_generate(self, op: dict[str, Any]) -> dict[str, int]:
        """Chats of the pool (and `include`d users in every chat), messages spaced a minute apart
        in the past, some edited, some deleted; the same seed gives the same chats."""
        if op.get("version", 1) != GENERATOR_VERSION:
            raise StoreError(f"the journal was generated by generator version {op.get('version')}: reset devcloud")
        rng = random.Random(op["seed"])
        pool, include, end = op["pool"], op["include"], op["at"]
        counts = {"chats": 0, "messages": 0}
        for index in range(op["chats"]):
            others = [u for u in pool if u not in include]
            chat_type = "oneOnOne" if len(include) == 1 and index < min(len(others), op["chats"] // 5) else "group"
            if chat_type == "oneOnOne":
                members = [include[0], others[index]]
                chat_id = one_on_one_id(*members)
                topic = None
            else:
                size = rng.randint(1, min(4, len(others))) if others else 0
                members = list(dict.fromkeys([*include, *rng.sample(others, size)]))
                chat_id = f"19:{uuid.UUID(int=rng.getrandbits(128)).hex}@thread.v2"
                topic = f"{rng.choice(WORDS).title()} {rng.choice(WORDS)} #{index + 1}"
            if chat_id in self.chats or len(members) < 2:
                continue
            start = end - (op["messages"] + 2) * 60_000 - index
            chat = Chat(chat_id, op["tenant"], chat_type, topic, start, start, clock_ms=start)
            chat.members = dict.fromkeys(members, start)
            self._add_chat(chat)
            if chat_type == "group":
                self._system_members_added(chat, members, members[0], start)
            for n in range(op["messages"]):
                self._generated_message(chat, rng, start + (n + 1) * 60_000, n)
            counts["chats"] += 1
            counts["messages"] += op["messages"]
        return counts

    def _generated_message(self, chat: Chat, rng: random.Random, at: int, n: int) -> None:
        sender = rng.choice(list(chat.members))
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 14)))
        content = f"<p>{words.capitalize()} <b>#{n + 1}</b></p>"
        message = Message(str(at), chat.id, at, at, sender, "html", content)
        roll = rng.random()
        if roll < 0.02:
            message.modified_ms = message.deleted_ms = at + 30_000
        elif roll < 0.07:
            message.content = content.replace("</p>", " (edited)</p>")
            message.modified_ms = message.edited_ms = at + 30_000
        chat.messages[message.id] = message
        chat.clock_ms = max(chat.clock_ms, message.modified_ms)
