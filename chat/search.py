"""Search of the member's mirrored messages: only chats he is in, of his tenant, never deleted
messages or system events.

PostgreSQL: full text over `chat_message.search_vector` (migration 0006: the words of the body,
'simple' configuration, a partial GIN index), ranked by `ts_rank`, newest first among equals.
The query is read as web search engines read it (`"a phrase"`, `or`, `-word`) and its last word
is a prefix, so results come as the person types. Snippets are `ts_headline`s of the body (which
leave its tags out) with control characters around matches: decoded, escaped, and only then
are the characters made `<mark>` tags.

SQLite (development): every word (quotes aside) as a substring of the body, newest first.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import Q
from django.http import HttpRequest, JsonResponse
from django.urls import reverse
from django.utils.translation import gettext as _

from chat import selectors
from chat.models import Chat, ChatMember, Message
from chat.render import plain_text
from chat.views import member_json
from core.http import json_error
from tenants.models import TenantUser

PAGE_SIZE = 20
MIN_QUERY = 2
MAX_QUERY = 200
# Deep pages cost an OFFSET over every better match; 50 pages of 20 is more than anyone reads.
MAX_PAGE = 50
SNIPPET_CHARS = 160
# What ts_headline puts around a match: characters taken out of the body first, so that the
# snippet is escaped whole and only they become tags.
START, STOP = "\x02", "\x03"
# A short message whole, else about 30 words from its best match on.
HEADLINE_OPTIONS = f"StartSel={START}, StopSel={STOP}, MaxWords=30, MinWords=15"
LAST_WORD = re.compile(r"(?:^|\s)(\w+)$")


@dataclass(frozen=True)
class SearchHit:
    chat_id: int
    chat_title: str
    graph_id: str
    sender: str
    created_at: dt.datetime
    snippet: str


def messages_search(*, member: TenantUser, query: str, page: int = 1) -> tuple[list[SearchHit], bool]:
    """A page of the member's messages that match `query`, best first; and whether more follow."""
    offset = (max(1, page) - 1) * PAGE_SIZE
    found = _ranked if connection.vendor == "postgresql" else _newest
    rows = found(member, query, offset)
    shown = rows[:PAGE_SIZE]
    titles = _chat_titles(member, {row[0] for row in shown})
    hits = [
        SearchHit(chat, titles.get(chat, ""), graph_id, sender, at, text) for chat, graph_id, sender, at, text in shown
    ]
    return hits, len(rows) > PAGE_SIZE


Row = tuple[int, str, str, dt.datetime, str]


# PostgreSQL ------------------------------------------------------------------------------
def tsquery(query: str) -> tuple[str, dict[str, str]]:
    """`query` as SQL for a tsquery, with its parameters: websearch syntax, the last word a prefix.

    The last word is a prefix unless it is an operator (`or`, `-word`) or inside an open quote.
    """
    found = LAST_WORD.search(query)
    if found is None or found.group(1).lower() == "or" or query.count('"') % 2:
        return "websearch_to_tsquery('simple', %(query)s)", {"query": query}
    prefix = "to_tsquery('simple', quote_literal(%(word)s) || ':*')"
    rest = query[: found.start(1)].rstrip()
    words = rest.rsplit(maxsplit=1)
    if words and words[-1].lower() == "or":
        rest, join = rest[: -len(words[-1])].rstrip(), "||"
    else:
        join = "&&"
    if not rest.strip(' "-'):
        return prefix, {"word": found.group(1)}
    return f"(websearch_to_tsquery('simple', %(query)s) {join} {prefix})", {"query": rest, "word": found.group(1)}


def _ranked_sql(matches: str) -> str:
    table, members = Message._meta.db_table, ChatMember._meta.db_table
    # The page is chosen from the index's matches alone; only its rows' bodies are read, to
    # draw their snippets. Tables and columns are constants; every value is a parameter.
    return (
        f"WITH hits AS (SELECT m.id, ts_rank(m.search_vector, {matches}) AS rank, m.created_at, m.graph_id "  # noqa: S608
        f"FROM {table} m WHERE m.tenant_id = %(tenant)s "
        f"AND m.chat_id IN (SELECT c.chat_id FROM {members} c WHERE c.tenant_id = %(tenant)s AND c.oid = %(oid)s) "
        f"AND m.deleted_at IS NULL AND m.message_type = 'message' AND m.search_vector @@ {matches} "
        "ORDER BY rank DESC, m.created_at DESC, m.graph_id DESC LIMIT %(limit)s OFFSET %(offset)s) "
        "SELECT m.chat_id, m.graph_id, m.sender_name, m.created_at, "
        "ts_headline('simple', translate(chat_message_html(m.body_type, m.body), chr(2) || chr(3), ''), "
        f"{matches}, %(options)s) "
        f"FROM hits JOIN {table} m ON m.id = hits.id AND m.tenant_id = %(tenant)s "
        "ORDER BY hits.rank DESC, hits.created_at DESC, hits.graph_id DESC"
    )


def _ranked(member: TenantUser, query: str, offset: int) -> list[Row]:
    matches, terms = tsquery(query)
    params: dict[str, Any] = {"tenant": member.tenant_id, "oid": member.oid, "limit": PAGE_SIZE + 1, "offset": offset}
    with connection.cursor() as cursor:
        cursor.execute(_ranked_sql(matches), {**terms, **params, "options": HEADLINE_OPTIONS})
        rows = cursor.fetchall()
    return [(chat, graph_id, sender, at, marked(headline)) for chat, graph_id, sender, at, headline in rows]


def marked(headline: str) -> str:
    """A ts_headline of HTML as safe HTML: its entities decoded (the markers never come of one),
    whitespace folded, everything escaped, then the matches put in <mark>."""
    text = html.escape(" ".join(html.unescape(headline).split()))
    return text.replace(START, "<mark>").replace(STOP, "</mark>")


# SQLite ----------------------------------------------------------------------------------
def _newest(member: TenantUser, query: str, offset: int) -> list[Row]:
    words = [word for word in (part.strip('"') for part in query.split()) if word]
    if not words:
        return []
    mine = ChatMember.objects.filter(tenant=member.tenant, oid=member.oid).values("chat_id")
    found = Message.objects.filter(
        tenant=member.tenant, chat_id__in=mine, deleted_at__isnull=True, message_type="message"
    ).filter(*[Q(body__icontains=word) for word in words])
    rows = found.order_by("-created_at", "-graph_id").values_list(
        "chat_id", "graph_id", "sender_name", "created_at", "body", "body_type"
    )[offset : offset + PAGE_SIZE + 1]
    return [(chat, graph_id, sender, at, snippet(body, kind, words)) for chat, graph_id, sender, at, body, kind in rows]


def snippet(body: str, body_type: str, words: Iterable[str]) -> str:
    """Escaped text of the body around the first match, the words in <mark>."""
    text = plain_text(body, body_type, limit=len(body) + 1)
    pattern = re.compile("|".join(re.escape(w) for w in sorted(words, key=len, reverse=True)), re.IGNORECASE)
    first = pattern.search(text)
    start = max(0, first.start() - SNIPPET_CHARS // 4) if first else 0
    window = text[start : start + SNIPPET_CHARS]
    parts = pattern.split(window)
    matched = pattern.findall(window)
    out = [html.escape(parts[0])]
    for match, part in zip(matched, parts[1:], strict=True):
        out += [f"<mark>{html.escape(match)}</mark>", html.escape(part)]
    return ("…" if start else "") + "".join(out) + ("…" if start + SNIPPET_CHARS < len(text) else "")


# both ------------------------------------------------------------------------------------
def _chat_titles(member: TenantUser, chat_ids: set[int]) -> dict[int, str]:
    """The chats' titles as the chat list shows them, in two queries."""
    if not chat_ids:
        return {}
    chats = Chat.objects.filter(tenant=member.tenant, pk__in=chat_ids)
    members: dict[int, list[ChatMember]] = defaultdict(list)
    listed = ChatMember.objects.filter(tenant=member.tenant, chat_id__in=chat_ids).order_by("display_name", "oid")
    for row in listed:
        members[row.chat_id].append(row)
    return {chat.pk: selectors.thread_title(member=member, chat=chat, members=members[chat.pk]) for chat in chats}


# the view --------------------------------------------------------------------------------
@member_json("GET")
def chat_search(request: HttpRequest, member: TenantUser) -> JsonResponse:
    query = request.GET.get("q", "").strip()
    if not MIN_QUERY <= len(query) <= MAX_QUERY:
        return json_error(
            400, "bad_query", _("Search for %(min)d to %(max)d characters.") % {"min": MIN_QUERY, "max": MAX_QUERY}
        )
    page = _page(request.GET.get("page", "1"))
    if page is None:
        return json_error(400, "bad_page", f"page must be a number from 1 to {MAX_PAGE}.")
    hits, more = messages_search(member=member, query=query, page=page)
    results = [_result(hit) for hit in hits]
    return JsonResponse({"results": results, "more": more and page < MAX_PAGE, "query": query})


def _page(value: str) -> int | None:
    try:
        page = int(value)
    except ValueError:
        return None
    return page if 1 <= page <= MAX_PAGE else None


def _result(hit: SearchHit) -> dict[str, Any]:
    return {
        "chat": hit.chat_id,
        "chat_title": hit.chat_title,
        "id": hit.graph_id,
        "sender": hit.sender,
        "created": hit.created_at.isoformat(),
        "snippet": hit.snippet,
        "url": reverse("chat_page", args=[hit.chat_id]) + f"#m-{hit.graph_id}",
    }
