"""The store's message changes: post (with mentions, quotes and inline images), edit, delete and
undo, reactions. Each is journalled with its concrete values and replayed as journalled."""

from __future__ import annotations

import base64
import re
import uuid
from typing import Any

from devcloud.directory import User
from devcloud.graph.model import GRAPH_URL, Chat, Hosted, Message, StoreError, hosted_url

# `<img src="../hostedContents/{temporaryId}/$value">`, as clients send inline images.
TEMPORARY_SRC = re.compile(r"""(src=)(["'])\.\./hostedContents/([^/"']+)/\$value\2""")


class MessageWrites:
    """Mixed into ChatStore, which journals (`_record`), notifies and finds chats and messages."""

    chats: dict[str, Chat]

    def _record(self, op: dict[str, Any]) -> Any:
        raise NotImplementedError

    def _notify(self, chat: Chat, message: Message, change: str) -> None:
        raise NotImplementedError

    def _chat(self, chat_id: str) -> Chat:
        raise NotImplementedError

    def _message(self, chat: Chat, message_id: str) -> Message:
        raise NotImplementedError

    # writes --------------------------------------------------------------------------
    def post(
        self,
        *,
        chat_id: str,
        sender: User,
        content: str,
        content_type: str = "html",
        mentions: list[dict[str, Any]] | None = None,
        attachments: list[dict[str, Any]] | None = None,
        hosted: list[dict[str, str]] | None = None,
    ) -> Message:
        """A message; `hosted` items are `{"temporaryId", "contentType", "contentBytes"}`, their
        `../hostedContents/{temporaryId}/$value` sources rewritten to Graph's URLs."""
        chat = self._chat(chat_id)
        if sender.id not in chat.members:
            raise StoreError("the sender is not a member of the chat")
        at = chat.tick()
        op: dict[str, Any] = {"op": "post", "chat": chat_id, "from": sender.id, "type": content_type}
        if hosted:
            ids = {h["temporaryId"]: _hosted_id() for h in hosted}
            op["hosted"] = [
                {"id": ids[h["temporaryId"]], "contentType": h["contentType"], "contentBytes": h["contentBytes"]}
                for h in hosted
            ]
            content = TEMPORARY_SRC.sub(
                lambda m: f"{m[1]}{m[2]}{hosted_url(GRAPH_URL, chat_id, str(at), ids[m[3]])}{m[2]}", content
            )
        if mentions:
            op["mentions"] = mentions
        if attachments:
            op["attachments"] = attachments
        self._record({**op, "content": content, "at": at})
        return chat.messages[str(at)]

    def edit(
        self, *, chat_id: str, message_id: str, content: str, mentions: list[dict[str, Any]] | None = None
    ) -> Message:
        chat = self._chat(chat_id)
        message = self._message(chat, message_id)
        if message.deleted_ms is not None or message.sender_id is None:
            raise StoreError("deleted and system messages cannot be edited")
        at = chat.tick()
        op = {"op": "edit", "chat": chat_id, "id": message_id, "content": content, "at": at}
        if mentions is not None:
            op["mentions"] = mentions
        self._record(op)
        return message

    def delete(self, *, chat_id: str, message_id: str) -> Message:
        chat = self._chat(chat_id)
        message = self._message(chat, message_id)
        if message.deleted_ms is not None:
            raise StoreError("already deleted")
        at = chat.tick()
        self._record({"op": "delete", "chat": chat_id, "id": message_id, "at": at})
        return message

    def undelete(self, *, chat_id: str, message_id: str) -> Message:
        chat = self._chat(chat_id)
        message = self._message(chat, message_id)
        if message.deleted_ms is None:
            raise StoreError("the message is not deleted")
        at = chat.tick()
        self._record({"op": "undelete", "chat": chat_id, "id": message_id, "at": at})
        return message

    def react(self, *, chat_id: str, message_id: str, user: User, reaction: str, on: bool) -> Message:
        """Set (or unset) one user's reaction of a type; setting it twice, or unsetting one not set,
        changes nothing."""
        chat = self._chat(chat_id)
        message = self._message(chat, message_id)
        if message.deleted_ms is not None or message.sender_id is None:
            raise StoreError("deleted and system messages take no reactions")
        present = any(r["type"] == reaction and r["user"] == user.id for r in message.reactions)
        if present == on:
            return message
        at = chat.tick()
        op = "react" if on else "unreact"
        self._record({"op": op, "chat": chat_id, "id": message_id, "user": user.id, "type": reaction, "at": at})
        return message

    # operations ----------------------------------------------------------------------
    def _op_post(self, op: dict[str, Any]) -> Message:
        chat = self.chats[op["chat"]]
        at = op["at"]
        message = Message(str(at), chat.id, at, at, op["from"], op["type"], op["content"])
        message.mentions = list(op.get("mentions", []))
        message.attachments = list(op.get("attachments", []))
        for item in op.get("hosted", []):
            hosted = Hosted(item["id"], item["contentType"], item["contentBytes"])
            message.hosted[hosted.id] = hosted
        chat.messages[message.id] = message
        chat.clock_ms = max(chat.clock_ms, at)
        chat.last_read_ms[op["from"]] = at
        # A new message brings a hidden chat back for everyone.
        chat.hidden.clear()
        self._notify(chat, message, "created")
        return message

    def _changed(self, op: dict[str, Any]) -> tuple[Chat, Message]:
        chat = self.chats[op["chat"]]
        message = chat.messages[op["id"]]
        message.modified_ms = op["at"]
        chat.clock_ms = max(chat.clock_ms, op["at"])
        return chat, message

    def _op_edit(self, op: dict[str, Any]) -> Message:
        chat, message = self._changed(op)
        message.content = op["content"]
        message.edited_ms = op["at"]
        if "mentions" in op:
            message.mentions = list(op["mentions"])
        self._notify(chat, message, "updated")
        return message

    def _op_delete(self, op: dict[str, Any]) -> Message:
        chat, message = self._changed(op)
        message.deleted_ms = op["at"]
        self._notify(chat, message, "deleted")
        return message

    def _op_undelete(self, op: dict[str, Any]) -> Message:
        chat, message = self._changed(op)
        message.deleted_ms = None
        self._notify(chat, message, "updated")
        return message

    def _op_react(self, op: dict[str, Any]) -> Message:
        chat, message = self._changed(op)
        reaction = {"type": op["type"], "user": op["user"], "at": op["at"]}
        message.reactions.append(reaction)
        message.history.append({"at": op["at"], "action": "reactionAdded", "reaction": reaction})
        self._notify(chat, message, "updated")
        return message

    def _op_unreact(self, op: dict[str, Any]) -> Message:
        chat, message = self._changed(op)
        gone = next(r for r in message.reactions if r["type"] == op["type"] and r["user"] == op["user"])
        message.reactions.remove(gone)
        message.history.append({"at": op["at"], "action": "reactionRemoved", "reaction": gone})
        self._notify(chat, message, "updated")
        return message


def _hosted_id() -> str:
    """Opaque to clients, as Graph's are (base64 of the blob's address), and safe in a path."""
    return base64.urlsafe_b64encode(f"id=x_0-{uuid.uuid4().hex},type=1".encode()).decode().rstrip("=")
