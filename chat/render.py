"""Mirrored rows as the browser sees them: Teams HTML reduced to a safe subset, JSON payloads.

Teams message bodies are HTML written by other people's clients: only a small set of tags and
attributes survives (no script, style, event handler, form or remote image), links keep http(s)
and mailto and open without an opener. `<at>` mentions become spans. Inline images, whose Graph
URLs need the user's token, are shown through the portal's own hosted-content view: each is
rewritten to that view's URL, and an `<img>` survives sanitizing only with exactly that URL.
A quoted message and shared files are given apart (`reply_to`, `files`), their tags removed.
"""

from __future__ import annotations

import base64
import functools
import html
import json
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

import nh3
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language, ngettext
from django.utils.translation import gettext as _

from chat.models import Chat, Message

TAGS = {
    "a", "b", "blockquote", "br", "code", "div", "em", "h1", "h2", "h3", "hr", "i", "img", "li", "ol", "p", "pre",
    "s", "span", "strike", "strong", "sub", "sup", "table", "tbody", "td", "th", "thead", "tr", "u", "ul",
}  # fmt: skip
ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt"},
    "span": {"class"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan"},
}
SCHEMES = {"http", "https", "mailto"}
MENTION = re.compile(r"<at\b[^>]*>(.*?)</at>", re.IGNORECASE | re.DOTALL)
# `<image>` too: HTML parsers (nh3's among them) read it as `<img>`.
IMAGE = re.compile(r"<im(?:g|age)\b[^>]*>", re.IGNORECASE)
ATTACHMENT = re.compile(r"<attachment\b[^>]*>\s*(</attachment>)?", re.IGNORECASE)
ATTRIBUTE_ID = re.compile(r"""\bid\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.IGNORECASE)
ATTRIBUTE_SRC = re.compile(r"""\bsrc\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.IGNORECASE)
# Graph's URL of a message's inline image: …/chats/{chat}/messages/{message}/hostedContents/{id}/$value
HOSTED_PATH = re.compile(r"/chats/[^/]+/messages/(?P<message>[^/]+)/hostedContents/(?P<content>[^/]+)/\$value")
HOSTED_ID = re.compile(r"[A-Za-z0-9+/=_.~-]{1,1024}")
# What Django's `json_script` escapes, and how.
JSON_SCRIPT_ESCAPES = (("&", "\\u0026"), ("<", "\\u003C"), (">", "\\u003E"))


def safe_html(
    body: str,
    content_type: str = "html",
    *,
    images: Mapping[str, str] | None = None,
    shown_apart: Collection[str] = (),
) -> str:
    """A message body as HTML that is safe to put in the page.

    `images`: the portal URL of each inline image, by Graph's URL; any other image is a note.
    `shown_apart`: ids of attachments shown beside the body (a quote, files): their tags go.
    """
    if content_type != "html":
        return html.escape(body).replace("\n", "<br>")
    clean = _cleaned if len(body) <= CACHED_CHARS else _cleaned.__wrapped__
    images_key = tuple(sorted(images.items())) if images else ()
    # The language is part of the key: the notes and alt texts put in are in the reader's.
    return clean(body, images_key, frozenset(shown_apart) if shown_apart else NONE, get_language())


# A thread's messages are drawn again and again (every page load, every member, every catch-up):
# what sanitizing made of a body is kept per process, by all it depends on. Long bodies are not.
CACHED_CHARS = 4096
CACHED_BODIES = 1024
NONE: frozenset[str] = frozenset()


@functools.lru_cache(maxsize=CACHED_BODIES)
def _cleaned(body: str, images: tuple[tuple[str, str], ...], shown_apart: frozenset[str], language: str) -> str:
    rewritten = dict(images)
    body = MENTION.sub(r'<span class="mention">\1</span>', body)
    body = IMAGE.sub(lambda match: _image(match.group(0), rewritten), body)
    body = ATTACHMENT.sub(
        lambda match: "" if _attribute(ATTRIBUTE_ID, match.group(0)) in shown_apart else _note(_("[attachment]")), body
    )
    return _cleaner(frozenset(rewritten.values())).clean(body)


def _keeper(images: frozenset[str]) -> Callable[[str, str, str], str | None]:
    """What survives of each attribute nh3 keeps: our own span classes, and image sources that
    are the portal's URLs of the message's own images (`images`)."""

    def keep(tag: str, name: str, value: str) -> str | None:
        if tag == "span" and name == "class":
            return value if value in ("mention", "note") else None
        if tag == "img" and name == "src":
            return value if value in images else None
        return value

    return keep


def _cleaner(images: frozenset[str]) -> nh3.Cleaner:
    """nh3's cleaner for a body with these images (a built one takes a third of `nh3.clean`'s
    time, which builds one for every call): most bodies have none and share one."""
    if not images:
        return _PLAIN_CLEANER
    return nh3.Cleaner(
        tags=TAGS,
        attributes=ATTRIBUTES,
        url_schemes=SCHEMES,
        link_rel="noopener noreferrer nofollow",
        attribute_filter=_keeper(images),
        strip_comments=True,
    )


_PLAIN_CLEANER = nh3.Cleaner(
    tags=TAGS,
    attributes=ATTRIBUTES,
    url_schemes=SCHEMES,
    link_rel="noopener noreferrer nofollow",
    attribute_filter=_keeper(frozenset()),
    strip_comments=True,
)
# Markup gone, text kept (as `nh3.clean(body, tags=set())`).
_TEXT_CLEANER = nh3.Cleaner(tags=set())


def _attribute(pattern: re.Pattern[str], tag: str) -> str | None:
    found = pattern.search(tag)
    return html.unescape(next(g for g in found.groups() if g is not None)) if found else None


def _image(tag: str, rewritten: Mapping[str, str]) -> str:
    """A fresh `<img>` (nothing of the original tag kept but its place) or a note."""
    src = _attribute(ATTRIBUTE_SRC, tag)
    url = rewritten.get(src or "")
    return f'<img src="{url}" alt="{html.escape(_("Image"))}">' if url else _note(_("[image]"))


def _note(text: str) -> str:
    return f'<span class="note">{html.escape(text)}</span>'


def hosted_images(message: Message) -> dict[str, str]:
    """The portal URL of each of the message's own inline images, by the Graph URL in its body."""
    found: dict[str, str] = {}
    for tag in IMAGE.findall(message.body):
        src = _attribute(ATTRIBUTE_SRC, tag)
        content = hosted_content_id(src or "", message.graph_id)
        if src and content:
            token = content_token(content)
            found[src] = reverse("chat_message_hosted", args=[message.chat_id, message.graph_id, token])
    return found


def content_token(content_id: str) -> str:
    """A hosted content id as one URL path segment (Graph's ids are base64: `/` and `+` in them)."""
    return base64.urlsafe_b64encode(content_id.encode()).decode().rstrip("=")


def content_id_of(token: str) -> str | None:
    try:
        content = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    return content if HOSTED_ID.fullmatch(content) else None


def hosted_content_id(src: str, message_id: str) -> str | None:
    """The hosted content id in Graph's URL of an inline image of message `message_id`, or None."""
    parts = urlsplit(src)
    if parts.scheme != "https" or parts.query or parts.fragment or parts.netloc != _graph_host():
        return None
    found = HOSTED_PATH.search(parts.path)
    if found is None or not parts.path.endswith(found.group(0)) or unquote(found["message"]) != message_id:
        return None
    content = unquote(found["content"])
    return content if HOSTED_ID.fullmatch(content) else None


def _graph_host() -> str:
    return urlsplit(settings.GRAPH_URL).netloc


def plain_text(body: str, content_type: str = "html", limit: int = 140) -> str:
    """A one-line preview of a body: no markup, whitespace folded."""
    if content_type == "html":
        text = _stripped(body) if len(body) <= CACHED_CHARS else _stripped.__wrapped__(body)
    else:
        text = body
    text = " ".join(html.unescape(text).split())
    if not text and content_type == "html" and IMAGE.search(body):
        text = _("Image")
    return text if len(text) <= limit else text[: limit - 1] + "…"


@functools.lru_cache(maxsize=CACHED_BODIES)
def _stripped(body: str) -> str:
    """A body without its markup (the chat list's previews are drawn on every page)."""
    return _TEXT_CLEANER.clean(body)


def sanitized_forget() -> None:
    """Empty the memo of sanitized bodies (a benchmark's cold runs)."""
    _cleaned.cache_clear()
    _stripped.cache_clear()


def html_from_text(text: str) -> str:
    """What a user typed in the composer, as the HTML body sent to Graph."""
    return "<p>" + html.escape(text.strip()).replace("\r\n", "\n").replace("\n", "<br>") + "</p>"


def html_with_mentions(text: str, people: Iterable[tuple[str, str]]) -> tuple[str, list[tuple[int, str, str]]]:
    """The body of `text` where the first `@Name` of each (oid, name) is `<at id="N">Name</at>`;
    and the mentions kept, (N, oid, name). A name missing from the text is no mention."""
    text = text.replace("\x00", "")  # the markers below are NULs
    body = html_from_text(text) if text.strip() else ""
    found: dict[str, tuple[str, str]] = {}
    # Longest names first: "@Bob Smith" is not "@Bob" followed by " Smith".
    for oid, name in sorted(dict(people).items(), key=lambda person: -len(person[1])):
        escaped = html.escape(name)
        at = body.find("@" + escaped)
        if name and at >= 0:
            marker = f"\x00{len(found)}\x00"
            found[marker] = (oid, name)
            body = body[:at] + marker + body[at + 1 + len(escaped) :]
    kept: list[tuple[int, str, str]] = []
    for marker, (oid, name) in sorted(found.items(), key=lambda item: body.index(item[0])):
        body = body.replace(marker, f'<at id="{len(kept)}">{html.escape(name)}</at>')
        kept.append((len(kept), oid, name))
    return body, kept


def body_edited(original: str, html: str) -> str:
    """The new body of an edited message: `html` (what the person typed), with the original's
    quotes and files (`<attachment>` tags) and inline images kept, which the text does not hold."""
    attachments = "".join(match.group(0) for match in ATTACHMENT.finditer(original))
    images = "".join(match.group(0) for match in IMAGE.finditer(original))
    return attachments + html + (f"<p>{images}</p>" if images else "")


def event_text(message: Message, names: Mapping[str, str] | None = None) -> str:
    """System event messages (members added…) in words; Graph often leaves their names out."""
    detail = message.event or {}
    kind = str(detail.get("@odata.type", "")).rsplit(".", 1)[-1]
    known = names or {}
    people = [m.get("displayName") or known.get(str(m.get("id"))) or _("someone") for m in detail.get("members") or []]
    who = ", ".join(people) or _("Someone")
    named = {"who": who[0].upper() + who[1:]}
    count = max(1, len(people))
    if kind == "membersAddedEventMessageDetail":
        return ngettext("%(who)s joined the chat", "%(who)s joined the chat", count) % named
    if kind == "membersLeftEventMessageDetail" or (
        kind == "membersDeletedEventMessageDetail" and _self_removed(detail)
    ):
        return ngettext("%(who)s left the chat", "%(who)s left the chat", count) % named
    if kind == "membersDeletedEventMessageDetail":
        return ngettext("%(who)s was removed from the chat", "%(who)s were removed from the chat", count) % named
    if kind == "chatRenamedEventMessageDetail" and detail.get("chatDisplayName"):
        return _("The chat was renamed %(name)s") % {"name": detail["chatDisplayName"]}
    if kind == "chatRenamedEventMessageDetail":
        return _("The chat was renamed")
    return _("Chat updated")


def _self_removed(detail: Mapping[str, Any]) -> bool:
    initiator = ((detail.get("initiator") or {}).get("user") or {}).get("id")
    members = [str(m.get("id")) for m in detail.get("members") or []]
    return bool(initiator) and members == [str(initiator)]


def needs_names(messages: Iterable[Message]) -> bool:
    """Whether drawing `messages` takes the chat members' names (system events, reactions)."""
    return any(m.message_type not in ("message", "") or m.reactions for m in messages)


def message_payload(message: Message, *, me: str, names: Mapping[str, str] | None = None) -> dict[str, Any]:
    """One message for the thread (JSON and websocket alike); `me` is the viewer's oid, `names`
    the chat members' names by oid (system events, who reacted)."""
    return for_viewer(message, shared_payload(message, names=names), me=me)


def shared_payload(message: Message, *, names: Mapping[str, str] | None = None) -> dict[str, Any]:
    """What every viewer of the message sees alike (`for_viewer` adds the rest)."""
    deleted = message.deleted_at is not None
    system = message.message_type not in ("message", "")
    shown = not deleted and not system
    quote = _reply_to(message, names or {}) if shown else None
    files = _files(message) if shown else []
    apart = {quote["attachment"]} if quote else set()
    apart |= {f.pop("attachment") for f in files}
    if quote:
        del quote["attachment"]
    body = safe_html(message.body, message.body_type, images=hosted_images(message), shown_apart=apart) if shown else ""
    return {
        "id": message.graph_id,
        "chat": message.chat_id,
        "sender": message.sender_name,
        "sender_id": str(message.sender_oid or ""),
        "html": body,
        "event": event_text(message, names) if system and not deleted else "",
        "created": message.created_at.isoformat(),
        "modified": message.last_modified_at.isoformat(),
        "edited": message.last_edited_at is not None and not deleted,
        "deleted": deleted,
        "reply_to": quote,
        "files": files,
        "reactions": [] if deleted else _reactions(message, names or {}),
    }


def for_viewer(message: Message, shared: dict[str, Any], *, me: str) -> dict[str, Any]:
    """The payload as the member `me` (oid) sees it: his own message, his reactions, his mentions."""
    mine = bool(me) and shared["sender_id"] == me
    deleted = message.deleted_at is not None
    reactors = _reactors(message)
    return {
        **shared,
        "mine": mine,
        "can_edit": mine and message.message_type == "message" and not deleted,
        "can_restore": mine and deleted,
        "mentions_me": bool(me) and not deleted and _mentions(message, me),
        "reactions": [{**r, "mine": me in reactors.get(r["type"], ())} for r in shared["reactions"]],
    }


def _mentions(message: Message, me: str) -> bool:
    for mention in message.mentions or []:
        mentioned = (mention or {}).get("mentioned") or {}
        if mentioned.get("conversation") or str((mentioned.get("user") or {}).get("id") or "") == me:
            return True
    return False


def _reactor(reaction: dict[str, Any]) -> dict[str, Any]:
    return ((reaction.get("user") or {}).get("user")) or {}


def _reactors(message: Message) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for reaction in message.reactions or []:
        found.setdefault(str(reaction.get("reactionType") or ""), set()).add(str(_reactor(reaction).get("id") or ""))
    return found


def _reactions(message: Message, names: Mapping[str, str]) -> list[dict[str, Any]]:
    """Reactions by type, in the order each type was first given, with who gave them."""
    grouped: dict[str, dict[str, str]] = {}
    ordered = sorted(message.reactions or [], key=lambda r: str(r.get("createdDateTime") or ""))
    for reaction in ordered:
        kind = str(reaction.get("reactionType") or "")
        user = _reactor(reaction)
        oid = str(user.get("id") or "")
        if kind:
            grouped.setdefault(kind, {})[oid] = names.get(oid) or user.get("displayName") or _("Someone")
    return [{"type": kind, "count": len(who), "names": list(who.values())} for kind, who in grouped.items()]


def _reply_to(message: Message, names: Mapping[str, str]) -> dict[str, Any] | None:
    """The message this one quotes (Graph's `messageReference` attachment), or None."""
    for attachment in message.attachments or []:
        if (attachment or {}).get("contentType") != "messageReference":
            continue
        try:
            content = json.loads(attachment.get("content") or "{}")
        except (TypeError, ValueError):
            content = {}
        content = content if isinstance(content, dict) else {}
        user = ((content.get("messageSender") or {}).get("user")) or {}
        sender = names.get(str(user.get("id") or "")) or user.get("displayName") or ""
        return {
            "id": str(content.get("messageId") or attachment.get("id") or ""),
            "sender": str(sender),
            "preview": plain_text(str(content.get("messagePreview") or ""), "text"),
            "attachment": str(attachment.get("id") or ""),
        }
    return None


def _files(message: Message) -> list[dict[str, Any]]:
    """Shared files (`reference` attachments) whose link is https."""
    files = []
    for attachment in message.attachments or []:
        url = str((attachment or {}).get("contentUrl") or "")
        if attachment.get("contentType") == "reference" and url.startswith("https://"):
            files.append(
                {
                    "name": str(attachment.get("name") or _("File")),
                    "url": url,
                    "attachment": str(attachment.get("id") or ""),
                }
            )
    return files


def chat_title(chat: Chat, *, names: list[str]) -> str:
    """The topic, else the other members' names."""
    if chat.topic:
        return chat.topic
    return ", ".join(names) if names else _("Chat with yourself")


def json_script(value: Any, element_id: str) -> SafeString:
    """Django's `json_script`, the same output, by `str.replace`: its `str.translate` looks up
    every character in Python, a tenth of the thread page's time for its 50 messages."""
    text = json.dumps(value, cls=DjangoJSONEncoder)
    for char, escaped in JSON_SCRIPT_ESCAPES:
        text = text.replace(char, escaped)
    # JSON without <, > or &: nothing in it can end the script element or start markup.
    script = mark_safe(text)  # noqa: S308
    return format_html('<script id="{}" type="application/json">{}</script>', element_id, script)
