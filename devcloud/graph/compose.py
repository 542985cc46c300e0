"""What Graph checks in a chat message it is given: the body, mentions against `<at>` tags, inline
images against their `hostedContents`, quoted messages, reaction types."""

from __future__ import annotations

import base64
import binascii
import html
import json
import re
import unicodedata
from typing import Any

from devcloud.directory import Directory
from devcloud.graph.errors import GraphError
from devcloud.graph.model import Chat
from devcloud.graph.odata import bad_request
from devcloud.graph.store_messages import TEMPORARY_SRC

MAX_MESSAGE_BYTES = 28 * 1024
MAX_HOSTED_BYTES = 4 * 1024 * 1024
MAX_QUOTED = 10
AT_TAG = re.compile(r"""<at\s+id\s*=\s*(["']?)(\d+)\1\s*>""", re.IGNORECASE)
TAG = re.compile(r"<[^>]*>")
TEMPORARY_ID = "@microsoft.graph.temporaryId"
# Parts of an emoji besides its symbols: joiners, variation selectors, skin tones, keycaps.
SKIN_TONES = {chr(c) for c in range(0x1F3FB, 0x1F400)}
EMOJI_PARTS = {"\u200d", "\ufe0e", "\ufe0f", "\u20e3", *"#*0123456789"}


def body(raw: Any) -> tuple[str, str]:
    """`body.content` and `body.contentType` (text by default) of a chatMessage."""
    item = raw.get("body") if isinstance(raw, dict) else None
    if not isinstance(item, dict) or not isinstance(item.get("content"), str) or not item["content"].strip():
        raise bad_request("The message body must have non-empty 'content'.")
    content_type = str(item.get("contentType") or "text").lower()
    if content_type not in ("text", "html"):
        raise bad_request("body.contentType must be 'text' or 'html'.")
    if len(item["content"].encode()) > MAX_MESSAGE_BYTES:
        raise GraphError(413, "RequestEntityTooLarge", "The message is larger than Teams allows (about 28 KB).")
    return item["content"], content_type


def mentions(directory: Directory, chat: Chat, content: str, content_type: str, raw: Any) -> list[dict[str, Any]]:
    """The mentions as stored; each `<at id="N">` needs mention N and each mention its tag."""
    items = [] if raw is None else raw
    if not isinstance(items, list):
        raise bad_request("mentions must be a collection of chatMessageMention.")
    found = [_mention(directory, chat, item) for item in items]
    ids = [m["id"] for m in found]
    if len(set(ids)) != len(ids):
        raise bad_request("Each mention must have a unique id.")
    tags = {int(m[2]) for m in AT_TAG.finditer(content)} if content_type == "html" else set()
    if tags != set(ids):
        raise bad_request("Mentions in the message body and in 'mentions' must match (<at id=\"N\"> for each id).")
    return found


def _mention(directory: Directory, chat: Chat, item: Any) -> dict[str, Any]:
    if not isinstance(item, dict) or type(item.get("id")) is not int or not isinstance(item.get("mentionText"), str):
        raise bad_request("A mention needs an integer 'id' and a 'mentionText'.")
    mentioned: dict[str, Any] = item["mentioned"] if isinstance(item.get("mentioned"), dict) else {}
    user = mentioned.get("user") if isinstance(mentioned.get("user"), dict) else None
    conversation = mentioned.get("conversation") if isinstance(mentioned.get("conversation"), dict) else None
    if conversation is not None and user is None:
        if conversation.get("id") != chat.id:
            raise bad_request("A conversation mention must name this chat.")
        return {"id": item["id"], "text": item["mentionText"], "conversation": chat.id}
    found = directory.user(str(user.get("id", ""))) if user else None
    if found is None or found.tenant_id != chat.tenant_id:
        raise bad_request(f"Mention {item['id']}: 'mentioned.user.id' must be a user of the chat's tenant.")
    return {"id": item["id"], "text": item["mentionText"], "user": found.id}


def hosted_contents(content: str, raw: Any) -> list[dict[str, str]]:
    """Inline images: each `temporaryId` is used by an `<img src="../hostedContents/{id}/$value">`
    of the body and each such source is declared."""
    items = [] if raw is None else raw
    if not isinstance(items, list):
        raise bad_request("hostedContents must be a collection of chatMessageHostedContent.")
    hosted = [_hosted(item) for item in items]
    declared = [h["temporaryId"] for h in hosted]
    if len(set(declared)) != len(declared):
        raise bad_request("Each hosted content needs its own '@microsoft.graph.temporaryId'.")
    used = {m[3] for m in TEMPORARY_SRC.finditer(content)}
    if used != set(declared):
        raise bad_request("The message body and 'hostedContents' must use the same temporary ids.")
    return hosted


def _hosted(item: Any) -> dict[str, str]:
    if not isinstance(item, dict) or not isinstance(item.get(TEMPORARY_ID), str) or not item[TEMPORARY_ID]:
        raise bad_request(f"A hosted content needs a '{TEMPORARY_ID}'.")
    content_type = item.get("contentType")
    if not isinstance(content_type, str) or not content_type.lower().startswith("image/"):
        raise bad_request("A hosted content's contentType must be an image type.")
    raw = item.get("contentBytes")
    try:
        data = base64.b64decode(raw if isinstance(raw, str) else "", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise bad_request("A hosted content's contentBytes must be base64.") from exc
    if not data:
        raise bad_request("A hosted content's contentBytes must not be empty.")
    if len(data) > MAX_HOSTED_BYTES:
        raise GraphError(413, "RequestEntityTooLarge", "A hosted content is larger than Teams allows.")
    return {"temporaryId": item[TEMPORARY_ID], "contentType": content_type.lower(), "contentBytes": raw}


def quoted(directory: Directory, chat: Chat, raw: Any) -> tuple[str, list[dict[str, Any]]]:
    """`<attachment>` tags to put before the reply, and the `messageReference` attachments."""
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_QUOTED or not all(isinstance(i, str) for i in raw):
        raise bad_request(f"messageIds must list 1 to {MAX_QUOTED} message ids.")
    if len(set(raw)) != len(raw):
        raise bad_request("messageIds must not repeat a message.")
    tags, attachments = [], []
    for message_id in raw:
        message = chat.messages.get(message_id)
        if message is None:
            raise bad_request(f"Message '{message_id}' is not in this chat.")
        tags.append(f'<attachment id="{message_id}"></attachment>')
        attachments.append(reference(directory, message.id, message.sender_id, preview(message)))
    return "".join(tags), attachments


def preview(message: Any) -> str:
    if message.deleted_ms is not None or message.sender_id is None:
        return ""
    text = html.unescape(TAG.sub(" ", message.content))
    return " ".join(text.split())[:200]


def reference(directory: Directory, message_id: str, sender_id: str | None, text: str) -> dict[str, Any]:
    sender = directory.user(sender_id) if sender_id else None
    user = None
    if sender is not None:
        user = {
            "userIdentityType": "aadUser",
            "tenantId": sender.tenant_id,
            "id": sender.id,
            "displayName": sender.display_name,
        }
    content = {
        "messageId": message_id,
        "messagePreview": text,
        "messageSender": {"application": None, "device": None, "user": user},
    }
    return {
        "id": message_id,
        "contentType": "messageReference",
        "contentUrl": None,
        "content": json.dumps(content, ensure_ascii=False, separators=(",", ":")),
        "name": None,
        "thumbnailUrl": None,
        "teamsAppId": None,
    }


def reaction_type(raw: Any) -> str:
    """A unicode emoji (Graph v1.0 takes no names nor custom reactions)."""
    if not isinstance(raw, dict) or not isinstance(raw.get("reactionType"), str):
        raise bad_request("reactionType is required.")
    value: str = raw["reactionType"]
    if not is_emoji(value):
        raise bad_request(f"reactionType '{value}' is not a supported unicode emoji.")
    return value


def is_emoji(value: str) -> bool:
    if not value or len(value) > 16:
        return False
    symbols = [c for c in value if c not in EMOJI_PARTS]
    if not symbols and "\u20e3" in value:
        return True  # a keycap, 1️⃣
    return bool(symbols) and all(unicodedata.category(c) == "So" or c in SKIN_TONES for c in symbols)
