"""Search of the mirrored messages (`GET /api/chats/search/`): bob finds his own chats' messages,
ranked and highlighted on PostgreSQL, newest first on SQLite; never another tenant's, nor those of
chats he is not in, nor deleted or system messages."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from chat import search, services
from chat.models import Chat
from tenants.models import TenantUser
from tests.devcloud_server import USERS
from tests.portal_flow import Person
from tests.test_benchmarks import run_bench

pytestmark = pytest.mark.django_db
BOB = USERS["bob"][1]
ALICE = USERS["alice"][1]
URL = "/api/chats/search/"
START = dt.datetime(2024, 5, 1, 9, 0, tzinfo=dt.UTC)
_ids = itertools.count(1)


def member(oid: str) -> TenantUser:
    return TenantUser.objects.select_related("tenant__vendor").get(oid=oid)


def a_chat(topic: str = "Q3 launch") -> Chat:
    return Chat.objects.get(tenant=member(BOB).tenant, topic=topic)


def post(chat: Chat, content: str, *, minutes: int = 0, **extra: Any) -> str:
    """A message from alice in `chat`, mirrored as a sync writes it; its Graph id."""
    at = (START + dt.timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    graph_id = str(10**12 + next(_ids))
    item = {
        "id": graph_id,
        "messageType": "message",
        "createdDateTime": at,
        "lastModifiedDateTime": at,
        "from": {"user": {"id": ALICE, "displayName": "Alice Smith"}},
        "body": {"contentType": "html", "content": content},
        **extra,
    }
    services.messages_upsert(chat=chat, items=[item])
    return graph_id


def found(person: Person, q: str, **params: Any) -> list[dict[str, Any]]:
    response = person.client.get(URL, {"q": q, **params})
    assert response.status_code == 200, response.content
    results: list[dict[str, Any]] = response.json()["results"]
    return results


def ids(results: list[dict[str, Any]]) -> list[str]:
    return [r["id"] for r in results]


postgres_only = pytest.mark.skipif("connection.vendor != 'postgresql'", reason="full-text search is PostgreSQL's")


# what anyone gets --------------------------------------------------------------------------
@pytest.mark.both_databases
def test_bob_finds_a_message_of_his_chat_with_where_to_open_it(people: dict[str, Person]) -> None:
    chat = a_chat()
    graph_id = post(chat, "<p>The zebracorn budget is approved.</p>")
    response = people["bob"].client.get(URL, {"q": "zebracorn"})
    assert response.status_code == 200
    body = response.json()
    assert body["query"] == "zebracorn" and body["more"] is False
    assert body["results"] == [
        {
            "chat": chat.pk,
            "chat_title": "Q3 launch",
            "id": graph_id,
            "sender": "Alice Smith",
            "created": "2024-05-01T09:00:00+00:00",
            "snippet": "The <mark>zebracorn</mark> budget is approved.",
            "url": f"/chats/{chat.pk}/#m-{graph_id}",
        }
    ]


@pytest.mark.both_databases
def test_quoted_words_and_several_words_are_found(people: dict[str, Person]) -> None:
    graph_id = post(a_chat(), "<p>The zebracorn budget is approved.</p>")
    post(a_chat(), "<p>Another zebracorn.</p>")
    assert ids(found(people["bob"], '"zebracorn budget"')) == [graph_id]
    assert ids(found(people["bob"], "budget zebracorn")) == [graph_id]
    assert found(people["bob"], '""') == []


@pytest.mark.both_databases
def test_a_one_on_one_is_titled_after_the_other_member(people: dict[str, Person]) -> None:
    chat = Chat.objects.get(tenant=member(BOB).tenant, chat_type="oneOnOne", members__oid=ALICE)
    post(chat, "<p>zebracorn</p>")
    (result,) = found(people["bob"], "zebracorn")
    assert result["chat_title"] == chat.members.get(oid=ALICE).display_name


@pytest.mark.both_databases
def test_the_snippet_escapes_what_people_typed_and_marks_only_matches(people: dict[str, Person]) -> None:
    post(a_chat(), "<p>&lt;script&gt;alert('zebracorn')&lt;/script&gt; &amp; <b>bold</b> <img src=x onerror=y></p>")
    (result,) = found(people["bob"], "zebracorn")
    snippet = result["snippet"]
    assert "<mark>zebracorn</mark>" in snippet
    assert "&lt;script&gt;" in snippet and "&amp;" in snippet
    assert snippet.replace("<mark>", "").replace("</mark>", "").count("<") == 0
    assert "<b>" not in snippet and "img" not in snippet


@pytest.mark.both_databases
def test_charlie_of_another_tenant_finds_nothing_of_fabrikams(people: dict[str, Person]) -> None:
    post(a_chat(), "<p>zebracorn plans</p>")
    assert found(people["bob"], "contract")  # the demo chat with alice
    assert found(people["charlie"], "zebracorn") == []
    assert found(people["charlie"], "contract") == []
    assert ids(found(people["charlie"], "invoices"))  # his own tenant's
    assert found(people["bob"], "invoices") == []


@pytest.mark.both_databases
def test_bob_finds_nothing_from_chats_he_is_not_in(people: dict[str, Person]) -> None:
    alice = member(ALICE)
    item = {
        "id": "19:alice-and-tom@thread.v2",
        "chatType": "group",
        "topic": "Without bob",
        "createdDateTime": "2024-04-01T00:00:00.000Z",
        "members": [{"userId": ALICE, "displayName": "Alice Smith"}, {"userId": USERS["tom"][1], "displayName": "Tom"}],
    }
    elsewhere = services.chats_upsert(member=alice, items=[item], complete=False)[item["id"]]
    post(elsewhere, "<p>zebracorn secrets</p>")
    assert found(people["bob"], "zebracorn") == []
    # alice is in it.
    hits, _ = search.messages_search(member=alice, query="zebracorn secrets")
    assert [hit.chat_id for hit in hits] == [elsewhere.pk]


@pytest.mark.both_databases
def test_deleted_and_system_messages_are_not_found(people: dict[str, Person]) -> None:
    chat = a_chat()
    kept = post(chat, "<p>zebracorn kept</p>", minutes=1)
    post(chat, "<p>zebracorn deleted</p>", minutes=2, deletedDateTime="2024-05-01T10:00:00.000Z")
    event = {"@odata.type": "#microsoft.graph.chatRenamedEventMessageDetail", "chatDisplayName": "zebracorn"}
    post(chat, "<systemEventMessage/> zebracorn", minutes=3, messageType="systemEventMessage", eventDetail=event)
    assert ids(found(people["bob"], "zebracorn")) == [kept]


@pytest.mark.both_databases
@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({}, "bad_query"),
        ({"q": "z"}, "bad_query"),
        ({"q": "  z  "}, "bad_query"),
        ({"q": "z" * 201}, "bad_query"),
        ({"q": "zebracorn", "page": "two"}, "bad_page"),
        ({"q": "zebracorn", "page": "0"}, "bad_page"),
        ({"q": "zebracorn", "page": str(search.MAX_PAGE + 1)}, "bad_page"),
    ],
)
def test_a_query_too_short_or_too_long_or_a_bad_page_is_refused(
    people: dict[str, Person], params: dict[str, str], error: str
) -> None:
    response = people["bob"].client.get(URL, params)
    assert response.status_code == 400
    assert response.json()["error"] == error


@pytest.mark.both_databases
def test_two_and_two_hundred_characters_are_searched(people: dict[str, Person]) -> None:
    assert people["bob"].client.get(URL, {"q": "zz"}).status_code == 200
    assert people["bob"].client.get(URL, {"q": "z" * 200}).status_code == 200


@pytest.mark.both_databases
def test_only_signed_in_members_search(people: dict[str, Person]) -> None:
    people["bob"].client.logout()
    assert people["bob"].client.get(URL, {"q": "contract"}).status_code == 401
    assert people["bob"].client.post(URL, {"q": "contract"}).status_code == 405


@pytest.mark.both_databases
def test_results_come_twenty_a_page_and_say_whether_more_follow(people: dict[str, Person]) -> None:
    chat = a_chat()
    posted = [post(chat, f"<p>zebracorn number {n}</p>", minutes=n) for n in range(25)]
    first = people["bob"].client.get(URL, {"q": "zebracorn"}).json()
    second = people["bob"].client.get(URL, {"q": "zebracorn", "page": "2"}).json()
    assert (len(first["results"]), first["more"]) == (20, True)
    assert (len(second["results"]), second["more"]) == (5, False)
    # Equal ranks: newest first, every message once.
    assert ids(first["results"]) + ids(second["results"]) == list(reversed(posted))


@pytest.mark.both_databases
def test_the_search_makes_the_same_queries_whatever_it_finds(people: dict[str, Person]) -> None:
    chats = list(Chat.objects.filter(tenant=member(BOB).tenant, members__oid=BOB))
    assert len(chats) >= 3
    post(chats[0], "<p>zebracorn alone</p>")
    for n, chat in enumerate(chats * 5):
        post(chat, "<p>quokkafish everywhere</p>", minutes=n)

    def queries(q: str) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert found(people["bob"], q)
        return len(captured)

    assert queries("zebracorn") == queries("quokkafish")
    bob = member(BOB)
    with CaptureQueriesContext(connection) as captured:
        hits, _ = search.messages_search(member=bob, query="quokkafish")
    assert {hit.chat_id for hit in hits} == {c.pk for c in chats}
    assert len(captured) == 3  # the page, its chats, their members


# PostgreSQL: full text -------------------------------------------------------------------
@postgres_only
def test_the_best_match_comes_first_then_the_newest(people: dict[str, Person]) -> None:
    chat = a_chat()
    once_old = post(chat, "<p>The zebracorn report, with many other words around it to read.</p>", minutes=1)
    twice = post(chat, "<p>zebracorn and zebracorn</p>", minutes=2)
    once_new = post(chat, "<p>The zebracorn report, with many other words around it to read.</p>", minutes=3)
    assert ids(found(people["bob"], "zebracorn")) == [twice, once_new, once_old]


@postgres_only
def test_the_last_word_matches_as_a_prefix_while_it_is_typed(people: dict[str, Person]) -> None:
    chat = a_chat()
    both = post(chat, "<p>Quarterly zebracorn figures</p>")
    post(chat, "<p>zebracorn alone</p>")
    assert len(found(people["bob"], "zebra")) == 2
    (result,) = found(people["bob"], "zebracorn fig")
    assert result["id"] == both
    assert result["snippet"] == "Quarterly <mark>zebracorn</mark> <mark>figures</mark>"
    assert ids(found(people["bob"], "figures zebracor")) == [both]
    assert found(people["bob"], "fig zebracorn") == []  # only the last word is a prefix


@postgres_only
def test_phrases_exclusions_and_alternatives_read_as_web_search(people: dict[str, Person]) -> None:
    chat = a_chat()
    red = post(chat, "<p>zebracorn red balloon</p>")
    blue = post(chat, "<p>zebracorn blue balloon</p>")
    assert ids(found(people["bob"], '"zebracorn red"')) == [red]
    assert ids(found(people["bob"], "zebracorn -red")) == [blue]
    assert set(ids(found(people["bob"], "red or blue"))) == {red, blue}
    assert found(people["bob"], "red blue") == []


@postgres_only
def test_words_are_found_in_any_language_and_without_markup(people: dict[str, Person]) -> None:
    chat = a_chat()
    german = post(chat, "<p>Die Präsentation für <b>Müller</b>&nbsp;ist&nbsp;fertig</p>")
    japanese = post(chat, "<p>会議 は 明日</p>")
    mention = post(chat, '<p><at id="0">Zebracorn Jones</at> please look</p>')
    assert ids(found(people["bob"], "müller ist")) == [german]
    assert ids(found(people["bob"], "会議")) == [japanese]
    assert ids(found(people["bob"], "jones")) == [mention]
    assert found(people["bob"], "nbsp") == []


def test_the_search_benchmark_finds_only_the_members_messages() -> None:
    args = ["--messages", "3000", "--chats", "20", "--mine", "15", "--other", "1000", "--rounds", "3", "--warmup", "1"]
    figures: dict[str, Any] = run_bench("chat_search.py", *args)
    assert figures["foreign_results"] == 0
    assert figures["matches"]["ticket"] == 1 and figures["matches"]["nowhere"] == 0
    assert figures["matches"]["most_messages"] > figures["matches"]["rare_word"] > 0
    assert set(figures["p95_ms"]) == set(figures["queries"])
    assert figures["search_ratio"] > 0


PREFIX = "to_tsquery('simple', quote_literal(%(word)s) || ':*')"
WEB = "websearch_to_tsquery('simple', %(query)s)"


@pytest.mark.parametrize(
    ("query", "sql", "params"),
    [
        ("report", PREFIX, {"word": "report"}),
        ("q3 rep", f"({WEB} && {PREFIX})", {"query": "q3", "word": "rep"}),
        ("red or blu", f"({WEB} || {PREFIX})", {"query": "red", "word": "blu"}),
        ('"open phrase', WEB, {"query": '"open phrase'}),
        ("a -b", WEB, {"query": "a -b"}),
        ("red or", WEB, {"query": "red or"}),
        ("report!", WEB, {"query": "report!"}),
    ],
)
def test_the_last_word_is_a_prefix_unless_it_is_an_operator(query: str, sql: str, params: dict[str, str]) -> None:
    assert search.tsquery(query) == (sql, params)


def test_a_headline_becomes_escaped_html_with_marks() -> None:
    headline = " &lt;b&gt; \x02zebra\x03  &amp;amp; &quot;x&quot;&nbsp;&#8217;\n<i> &#2;"
    assert search.marked(headline) == "&lt;b&gt; <mark>zebra</mark> &amp;amp; &quot;x&quot; \u2019 &lt;i&gt;"
