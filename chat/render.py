"""Mirrored rows as the browser sees them: Teams HTML reduced to a safe subset, JSON payloads.

Teams message bodies are HTML written by other people's clients: only a small set of tags and
attributes survives (no script, style, event handler, form or remote image), links keep http(s)
and mailto and open without an opener. `<at>` mentions become spans; inline images and
attachments, whose Graph URLs need the user's token, become a plain note.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from typing import Any

import nh3

from chat.models import Chat, Message

TAGS = {
    "a", "b", "blockquote", "br", "code", "div", "em", "h1", "h2", "h3", "hr", "i", "li", "ol", "p", "pre", "s",
    "span", "strike", "strong", "sub", "sup", "table", "tbody", "td", "th", "thead", "tr", "u", "ul",
}  # fmt: skip
ATTRIBUTES = {"a": {"href", "title"}, "span": {"class"}, "td": {"colspan", "rowspan"}, "th": {"colspan", "rowspan"}}
SCHEMES = {"http", "https", "mailto"}
MENTION = re.compile(r"<at\b[^>]*>(.*?)</at>", re.IGNORECASE | re.DOTALL)
IMAGE = re.compile(r"<img\b[^>]*>", re.IGNORECASE)
ATTACHMENT = re.compile(r"<attachment\b[^>]*>\s*(</attachment>)?", re.IGNORECASE)


def _only_mention_class(tag: str, name: str, value: str) -> str | None:
    if tag == "span" and name == "class":
        return "mention" if value == "mention" else None
    return value


def safe_html(body: str, content_type: str = "html") -> str:
    """A message body as HTML that is safe to put in the page."""
    if content_type != "html":
        return html.escape(body).replace("\n", "<br>")
    body = MENTION.sub(r'<span class="mention">\1</span>', body)
    body = IMAGE.sub('<span class="mention">[image]</span>', body)
    body = ATTACHMENT.sub('<span class="mention">[attachment]</span>', body)
    return nh3.clean(
        body,
        tags=TAGS,
        attributes=ATTRIBUTES,
        url_schemes=SCHEMES,
        link_rel="noopener noreferrer nofollow",
        attribute_filter=_only_mention_class,
        strip_comments=True,
    )


def plain_text(body: str, content_type: str = "html", limit: int = 140) -> str:
    """A one-line preview of a body: no markup, whitespace folded."""
    text = nh3.clean(body, tags=set()) if content_type == "html" else body
    text = " ".join(html.unescape(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def html_from_text(text: str) -> str:
    """What a user typed in the composer, as the HTML body sent to Graph."""
    return "<p>" + html.escape(text.strip()).replace("\r\n", "\n").replace("\n", "<br>") + "</p>"


def event_text(message: Message, names: Mapping[str, str] | None = None) -> str:
    """System event messages (members added…) in words; Graph often leaves their names out."""
    detail = message.event or {}
    kind = str(detail.get("@odata.type", "")).rsplit(".", 1)[-1]
    if kind == "membersAddedEventMessageDetail":
        known = names or {}
        people = [m.get("displayName") or known.get(str(m.get("id"))) or "someone" for m in detail.get("members") or []]
        return f"{', '.join(people) or 'Someone'} joined the chat"
    if kind == "chatRenamedEventMessageDetail":
        return f"The chat was renamed {detail.get('chatDisplayName') or ''}".strip()
    return "Chat updated"


def message_payload(message: Message, *, me: str, names: Mapping[str, str] | None = None) -> dict[str, Any]:
    """One message for the thread (JSON and websocket alike); `me` is the viewer's oid, `names`
    the chat members' names by oid (for system events)."""
    deleted = message.deleted_at is not None
    system = message.message_type not in ("message", "")
    return {
        "id": message.graph_id,
        "chat": message.chat_id,
        "sender": message.sender_name,
        "mine": str(message.sender_oid) == me if message.sender_oid else False,
        "html": "" if deleted or system else safe_html(message.body, message.body_type),
        "event": event_text(message, names) if system and not deleted else "",
        "created": message.created_at.isoformat(),
        "modified": message.last_modified_at.isoformat(),
        "edited": message.last_edited_at is not None and not deleted,
        "deleted": deleted,
    }


def chat_title(chat: Chat, *, names: list[str]) -> str:
    """The topic, else the other members' names."""
    if chat.topic:
        return chat.topic
    return ", ".join(names) if names else "Chat with yourself"
