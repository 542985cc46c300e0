"""Messages as the page draws them: Teams HTML made safe, quotes, reactions, files, images, mentions."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from chat.models import Message
from chat.render import content_id_of, content_token, html_with_mentions, message_payload

ME, ALICE = "db91e66a-aaae-4b6e-a544-7f5813883208", "c6cf7057-2afb-4445-aecf-cfd5aff908d0"
GRAPH = "https://graph.microsoft.com/v1.0"
AT = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


def message(body: str, **fields: Any) -> Message:
    values: dict[str, Any] = {
        "chat_id": 7,
        "graph_id": "1700000000001",
        "message_type": "message",
        "sender_oid": ALICE,
        "sender_name": "Alice Anders",
        "body_type": "html",
        "body": body,
        "attachments": [],
        "mentions": [],
        "reactions": [],
        "created_at": AT,
        "last_modified_at": AT,
    }
    return Message(**(values | fields))


def hosted(content: str, message_id: str = "1700000000001") -> str:
    return f"{GRAPH}/chats/19:abc@thread.v2/messages/{message_id}/hostedContents/{content}/$value"


def test_hostile_teams_html_is_neutralised() -> None:
    body = (
        '<p onclick="x()">hi<img src="x" onerror="alert(1)"><img/src=y onerror=alert(2)>'
        '<a href="javascript:alert(3)">x</a><script>alert(4)</script><svg onload=alert(5)></svg>'
        '<iframe src="https://evil.example"></iframe><span class="mention evil" style="x">s</span></p>'
    )
    html = message_payload(message(body), me=ME)["html"]
    for bad in ("onerror", "onclick", "javascript", "<script", "<svg", "onload", "<iframe", "style", "evil"):
        assert bad not in html, bad
    assert "<img" not in html and html.count("[image]") == 2


def test_only_the_messages_own_inline_images_become_portal_urls() -> None:
    mine = hosted("aWQ9MQ==")
    body = (
        f'<p><img src="{mine}" onerror="alert(1)" width="10">'
        f'<img src="{hosted("b3RoZXI=", "1600000000000")}">'  # another message's image
        f'<img src="{mine.replace("https", "http")}">'
        '<img src="/api/chats/7/messages/1700000000001/hosted/x/">'  # the portal's form, written by someone
        '<img src="https://evil.example/a.png"></p>'
    )
    html = message_payload(message(body), me=ME)["html"]
    assert html == (
        f'<p><img src="/api/chats/7/messages/1700000000001/hosted/{content_token("aWQ9MQ==")}/" alt="Image">'
        + '<span class="note">[image]</span>' * 4
        + "</p>"
    )


def test_any_hosted_content_id_makes_a_url_and_other_hosts_do_not() -> None:
    # Graph's ids are base64: `/` and `+` in them must not break the thread (one path segment).
    body = (
        f'<p><img src="{hosted("YS9i+Y==")}"><img src="{hosted("a%2Fb")}">'
        '<img src="https://graph.evil.example/v1.0/chats/x/messages/1700000000001/hostedContents/aWQ/$value">'
        f'<image src="{hosted("aWQ9MQ==")}" alt="zz" onerror="x()"></p>'
    )
    html = message_payload(message(body), me=ME)["html"]
    first, second = content_token("YS9i+Y=="), content_token("a/b")
    assert "/" not in first + second and content_id_of(first) == "YS9i+Y==" and content_id_of(second) == "a/b"
    assert html == (
        f'<p><img src="/api/chats/7/messages/1700000000001/hosted/{first}/" alt="Image">'
        f'<img src="/api/chats/7/messages/1700000000001/hosted/{second}/" alt="Image">'
        '<span class="note">[image]</span>'
        f'<img src="/api/chats/7/messages/1700000000001/hosted/{content_token("aWQ9MQ==")}/" alt="Image"></p>'
    )
    assert content_id_of("not base64 at all!") is None


def test_a_quote_is_given_apart_and_its_tag_removed() -> None:
    quote = {
        "messageId": "1690000000000",
        "messagePreview": "The   contract\nis signed",
        "messageSender": {"user": {"id": ME, "displayName": "Bob Baker", "userIdentityType": "aadUser"}},
    }
    attachment = {"id": "1690000000000", "contentType": "messageReference", "content": json.dumps(quote)}
    body = '<attachment id="1690000000000"></attachment><p>Great</p><attachment id="other"></attachment>'
    payload = message_payload(message(body, attachments=[attachment]), me=ME, names={ME: "Bob B."})
    assert payload["reply_to"] == {"id": "1690000000000", "sender": "Bob B.", "preview": "The contract is signed"}
    assert payload["html"] == '<p>Great</p><span class="note">[attachment]</span>'


def test_files_are_listed_when_their_link_is_https() -> None:
    files = [
        {
            "id": "f1",
            "contentType": "reference",
            "contentUrl": "https://contoso.sharepoint.com/a.docx",
            "name": "a.docx",
        },
        {"id": "f2", "contentType": "reference", "contentUrl": "javascript:alert(1)", "name": "evil"},
    ]
    body = '<p>see</p><attachment id="f1"></attachment><attachment id="f2"></attachment>'
    payload = message_payload(message(body, attachments=files), me=ME)
    assert payload["files"] == [{"name": "a.docx", "url": "https://contoso.sharepoint.com/a.docx"}]
    assert payload["html"] == '<p>see</p><span class="note">[attachment]</span>'


def reaction(kind: str, oid: str, at: str) -> dict[str, Any]:
    return {"reactionType": kind, "createdDateTime": at, "user": {"user": {"id": oid, "displayName": None}}}


def test_reactions_are_grouped_in_the_order_first_given_with_who_gave_them() -> None:
    reactions = [
        reaction("❤️", ALICE, "2025-01-01T00:00:03Z"),
        reaction("👍", ME, "2025-01-01T00:00:02Z"),
        reaction("👍", ALICE, "2025-01-01T00:00:01Z"),
    ]
    names = {ME: "Bob Baker", ALICE: "Alice Anders"}
    payload = message_payload(message("<p>x</p>", reactions=reactions), me=ME, names=names)
    assert payload["reactions"] == [
        {"type": "👍", "count": 2, "names": ["Alice Anders", "Bob Baker"], "mine": True},
        {"type": "❤️", "count": 1, "names": ["Alice Anders"], "mine": False},
    ]


def test_what_a_viewer_may_do_with_a_message() -> None:
    mine = message("<p>x</p>", sender_oid=ME)
    payload = message_payload(mine, me=ME)
    assert payload["mine"] and payload["can_edit"] and not payload["can_restore"]
    gone = message("", sender_oid=ME, deleted_at=AT)
    payload = message_payload(gone, me=ME)
    assert payload["can_restore"] and not payload["can_edit"] and payload["html"] == ""
    theirs = message_payload(message("<p>x</p>"), me=ME)
    assert not theirs["mine"] and not theirs["can_edit"] and not theirs["can_restore"]


def test_a_viewer_knows_he_is_mentioned() -> None:
    mentions = [{"id": 0, "mentionText": "Bob", "mentioned": {"user": {"id": ME, "displayName": "Bob"}}}]
    mentioned = message('<p><at id="0">Bob</at> look</p>', mentions=mentions)
    payload = message_payload(mentioned, me=ME)
    assert payload["mentions_me"] and payload["html"] == '<p><span class="mention">Bob</span> look</p>'
    assert not message_payload(mentioned, me=ALICE)["mentions_me"]


def test_mentions_in_typed_text_become_at_tags_first_occurrence_only() -> None:
    people = [(ALICE, "Alice Anders"), (ME, "Alice"), ("x", "Nobody Here")]
    html, kept = html_with_mentions("@Alice Anders and @Alice <b>, @Alice Anders again", people)
    assert html == '<p><at id="0">Alice Anders</at> and <at id="1">Alice</at> &lt;b&gt;, @Alice Anders again</p>'
    assert kept == [(0, ALICE, "Alice Anders"), (1, ME, "Alice")]


def test_members_removed_and_gone_are_named_in_words() -> None:
    removed = {
        "@odata.type": "#microsoft.graph.membersDeletedEventMessageDetail",
        "members": [{"id": "5d6b1b5a-0000-4000-8000-000000000001", "displayName": None}],
        "initiator": {"user": {"id": ME}},
    }
    left = {**removed, "members": [{"id": ME, "displayName": None}]}
    names = {"5d6b1b5a-0000-4000-8000-000000000001": "April Appleton", ME: "Bob Baker"}
    event = message("<systemEventMessage/>", message_type="systemEventMessage", event=removed, sender_oid=None)
    assert message_payload(event, me=ME, names=names)["event"] == "April Appleton was removed from the chat"
    event.event = left
    assert message_payload(event, me=ME, names=names)["event"] == "Bob Baker left the chat"
