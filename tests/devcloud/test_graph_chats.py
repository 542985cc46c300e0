"""devcloud's Graph chats through msgraph-sdk: chats, members, messages and their query rules,
sending, creating chats, `$batch`, throttling and faults."""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.chats.item.messages.messages_request_builder import MessagesRequestBuilder
from msgraph.generated.models.aad_user_conversation_member import AadUserConversationMember
from msgraph.generated.models.body_type import BodyType
from msgraph.generated.models.chat import Chat
from msgraph.generated.models.chat_message import ChatMessage
from msgraph.generated.models.chat_type import ChatType
from msgraph.generated.models.item_body import ItemBody
from msgraph.generated.models.members_added_event_message_detail import MembersAddedEventMessageDetail
from msgraph.generated.users.item.chats.chats_request_builder import ChatsRequestBuilder
from msgraph_core.requests.batch_request_content import BatchRequestContent
from msgraph_core.requests.batch_request_item import BatchRequestItem

from tests.devcloud.graph_sdk import CHAT_SCOPES, as_user, odata_error, refused, run
from tests.devcloud.test_acs_identity import mint
from tests.devcloud_server import ACS_SCOPES, FABRIKAM, USERS, DevCloud

BOB, ALICE = USERS["bob"][1], USERS["alice"][1]
NO_LIMITS = {
    "graph_chat_messages_per_tenant_rps": 0,
    "graph_chat_messages_per_app_rps": 0,
    "graph_chat_messages_per_chat_rps": 0,
}


def settings(devcloud: DevCloud, **values: Any) -> None:
    devcloud.control("PUT", "/settings", json=values)


def chats_of(devcloud: DevCloud, user: str) -> list[dict[str, Any]]:
    return list(devcloud.control("GET", "/chats", params={"user": user})["chats"])


def dump(devcloud: DevCloud, chat_id: str) -> dict[str, Any]:
    return dict(devcloud.control("GET", f"/chats/{quote(chat_id, safe='')}"))


def generated_chat(devcloud: DevCloud, messages: int) -> str:
    """One group chat of bob's with `messages` messages (and its members-added event)."""
    before = {c["id"] for c in chats_of(devcloud, BOB)}
    body = {"users": 3, "chats": 1, "messages": messages, "seed": 7, "include": [BOB]}
    devcloud.control("POST", f"/tenants/{FABRIKAM}/chats/generate", json=body)
    (chat_id,) = {c["id"] for c in chats_of(devcloud, BOB)} - before
    return chat_id


def message_query(
    **params: Any,
) -> RequestConfiguration[MessagesRequestBuilder.MessagesRequestBuilderGetQueryParameters]:
    return RequestConfiguration(
        query_parameters=MessagesRequestBuilder.MessagesRequestBuilderGetQueryParameters(**params)
    )


def raw_get(devcloud: DevCloud, token: str, path: str, **params: str) -> httpx.Response:
    with httpx.Client(verify=devcloud.tls(), trust_env=False) as http:
        return http.get(f"{devcloud.base_url}/v1.0{path}", params=params, headers={"Authorization": f"Bearer {token}"})


# chats and members --------------------------------------------------------------------------
def test_bob_lists_his_chats_with_members_and_only_his(devcloud: DevCloud) -> None:
    query = ChatsRequestBuilder.ChatsRequestBuilderGetQueryParameters(expand=["members", "lastMessagePreview"], top=50)

    async def main() -> list[Chat]:
        page = await as_user(devcloud, "bob").me.chats.get(RequestConfiguration(query_parameters=query))
        assert page is not None and page.value is not None and page.odata_next_link is None
        return page.value

    chats = run(main())
    assert {c.id for c in chats} == {c["id"] for c in chats_of(devcloud, BOB)}
    assert len(chats) == 4
    for chat in chats:
        assert chat.tenant_id == FABRIKAM and chat.web_url and chat.created_date_time and chat.last_updated_date_time
        assert chat.members and BOB in {m.user_id for m in chat.members if isinstance(m, AadUserConversationMember)}
        assert all(isinstance(m, AadUserConversationMember) and m.display_name for m in chat.members)
        assert chat.last_message_preview is not None
        if chat.chat_type == ChatType.OneOnOne:
            assert chat.id and chat.id.startswith("19:") and chat.id.endswith("@unq.gbl.spaces") and chat.topic is None
        else:
            assert chat.id and chat.id.endswith("@thread.v2") and chat.topic
    # Northwind's chat is nobody's business at Fabrikam.
    assert all(c["tenantId"] == FABRIKAM for c in chats_of(devcloud, BOB))


def test_chats_page_by_absolute_next_link(devcloud: DevCloud) -> None:
    query = ChatsRequestBuilder.ChatsRequestBuilderGetQueryParameters(top=3, expand=["members"])

    async def main() -> list[str]:
        client = as_user(devcloud, "bob")
        page = await client.me.chats.get(RequestConfiguration(query_parameters=query))
        seen = []
        while page is not None:
            seen += [c.id for c in page.value or [] if c.id]
            assert all(c.members for c in page.value or [])
            link = page.odata_next_link
            if not link:
                break
            assert link.startswith(f"{devcloud.base_url}/v1.0/me/chats?") and "$skiptoken=" in link
            page = await client.me.chats.with_url(link).get()
        return seen

    seen = run(main())
    assert len(seen) == len(set(seen)) == 4


def test_members_and_a_chat_of_which_bob_is_not_a_member(devcloud: DevCloud) -> None:
    mine = chats_of(devcloud, BOB)[0]
    not_mine = next(c for c in chats_of(devcloud, ALICE) if BOB not in c["members"])

    async def main() -> tuple[list[str], BaseException]:
        client = as_user(devcloud, "bob")
        members = await client.chats.by_chat_id(mine["id"]).members.get()
        assert members is not None and members.value is not None
        error = await refused(client.chats.by_chat_id(not_mine["id"]).messages.get())
        return [m.user_id for m in members.value if isinstance(m, AadUserConversationMember) and m.user_id], error

    member_ids, error = run(main())
    assert member_ids == mine["members"]
    assert odata_error(error)[:2] == (403, "Forbidden")


# messages -----------------------------------------------------------------------------------
def test_messages_page_through_next_link_newest_first(devcloud: DevCloud) -> None:
    chat_id = generated_chat(devcloud, 120)
    settings(devcloud, **NO_LIMITS)

    async def main() -> tuple[list[ChatMessage], int]:
        client = as_user(devcloud, "bob")
        builder = client.chats.by_chat_id(chat_id).messages
        page = await builder.get(message_query(top=50, orderby=["lastModifiedDateTime desc"]))
        messages, pages = [], 0
        while page is not None:
            pages += 1
            messages += page.value or []
            if not page.odata_next_link:
                break
            page = await builder.with_url(page.odata_next_link).get()
        return messages, pages

    messages, pages = run(main())
    truth = dump(devcloud, chat_id)["messages"]
    assert pages == 3 and len(messages) == len(truth) == 121
    assert sorted(m.id or "" for m in messages) == sorted(m["id"] for m in truth)
    stamps = [m.last_modified_date_time for m in messages]
    assert stamps == sorted(stamps, reverse=True)  # type: ignore[type-var]
    system = [m for m in messages if isinstance(m.event_detail, MembersAddedEventMessageDetail)]
    assert len(system) == 1 and system[0].from_ is None
    sample = next(m for m in messages if m.from_ and m.deleted_date_time is None)
    assert sample.chat_id == chat_id and sample.body and sample.body.content_type == BodyType.Html
    assert sample.from_.user and sample.from_.user.display_name and sample.created_date_time


def test_changes_since_a_watermark_are_found_by_last_modified_gt(devcloud: DevCloud) -> None:
    chat_id = generated_chat(devcloud, 30)
    settings(devcloud, **NO_LIMITS)
    truth = dump(devcloud, chat_id)["messages"]
    watermark = max(m["lastModifiedDateTime"] for m in truth)
    old, other = truth[5]["id"], truth[9]["id"]
    path = f"/chats/{quote(chat_id, safe='')}/messages"
    devcloud.control("PATCH", f"{path}/{old}", json={"content": "<p>edited</p>"})
    devcloud.control("DELETE", f"{path}/{other}")
    new = devcloud.control("POST", path, json={"from": BOB, "content": "<p>new</p>"})["id"]

    async def main() -> list[ChatMessage]:
        page = (
            await as_user(devcloud, "bob")
            .chats.by_chat_id(chat_id)
            .messages.get(
                message_query(
                    top=50, orderby=["lastModifiedDateTime desc"], filter=f"lastModifiedDateTime gt {watermark}"
                )
            )
        )
        assert page is not None and page.value is not None
        return page.value

    changed = run(main())
    assert [m.id for m in changed] == [new, other, old]
    assert changed[1].deleted_date_time is not None and changed[1].body and changed[1].body.content == ""
    assert (
        changed[2].last_edited_date_time is not None and changed[2].body and changed[2].body.content == "<p>edited</p>"
    )


def test_filter_applies_only_with_an_orderby_on_the_same_property(devcloud: DevCloud) -> None:
    chat_id = generated_chat(devcloud, 20)
    settings(devcloud, **NO_LIMITS)
    truth = dump(devcloud, chat_id)["messages"]
    middle = truth[10]["createdDateTime"]
    token = mint(devcloud, "bob", CHAT_SCOPES)
    path = f"/chats/{chat_id}/messages"

    def ids(**params: str) -> list[str]:
        response = raw_get(devcloud, token, path, **params)
        assert response.status_code == 200, response.text
        return [m["id"] for m in response.json()["value"]]

    before = ids(**{"$orderby": "createdDateTime desc", "$filter": f"createdDateTime lt {middle}", "$top": "50"})
    assert before == [m["id"] for m in reversed(truth[:10])]
    ignored = ids(**{"$orderby": "lastModifiedDateTime desc", "$filter": f"createdDateTime lt {middle}", "$top": "50"})
    assert len(ignored) == len(truth)
    unordered = ids(
        **{"$filter": f"lastModifiedDateTime lt {middle}", "$orderby": "createdDateTime desc", "$top": "50"}
    )
    assert len(unordered) == len(truth)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"$top": "51"}, "Invalid page size specified: '51'. Must be between 1 and 50 inclusive."),
        ({"$top": "0"}, "Invalid page size specified: '0'"),
        ({"$orderby": "lastModifiedDateTime asc"}, "only descending order"),
        ({"$orderby": "lastModifiedDateTime"}, "only descending order"),
        ({"$orderby": "id desc"}, "ordering by 'id'"),
        ({"$orderby": "lastModifiedDateTime desc", "$filter": "lastModifiedDateTime ge 2026-01-01T00:00:00Z"}, "'ge'"),
        ({"$orderby": "lastModifiedDateTime desc", "$filter": "lastModifiedDateTime le 2026-01-01T00:00:00Z"}, "'le'"),
        ({"$orderby": "lastModifiedDateTime desc", "$filter": "lastModifiedDateTime eq 2026-01-01T00:00:00Z"}, "'eq'"),
        ({"$orderby": "createdDateTime desc", "$filter": "createdDateTime gt 2026-01-01T00:00:00Z"}, "'gt'"),
        ({"$filter": "subject eq 'x'"}, "'subject'"),
        ({"$filter": "lastModifiedDateTime gt yesterday"}, "Invalid filter clause"),
        ({"$select": "id"}, "'$select'"),
        ({"$expand": "replies"}, "'$expand'"),
        ({"$skip": "10"}, "'$skip'"),
        ({"$count": "true"}, "'$count'"),
        ({"$top": "\u00b2"}, "Invalid page size"),
        ({"$top": "5", "$TOP": "6"}, "more than once"),
        ({"$skiptoken": "WyJOYU4iLCAieCJd"}, "$skiptoken is not valid"),
        (
            {"$orderby": "lastModifiedDateTime desc", "$filter": "lastModifiedDateTime gt '2026-01-01T00:00:00Z'"},
            "literal",
        ),
        ({"$orderby": "lastModifiedDateTime desc", "$filter": "lastModifiedDateTime gt 2026-01-01"}, "literal"),
    ],
)
def test_message_query_rules_are_graphs(devcloud: DevCloud, params: dict[str, str], message: str) -> None:
    settings(devcloud, **NO_LIMITS)
    chat_id = chats_of(devcloud, BOB)[0]["id"]
    response = raw_get(devcloud, mint(devcloud, "bob", CHAT_SCOPES), f"/chats/{chat_id}/messages", **params)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "BadRequest" and message in error["message"]
    assert set(error["innerError"]) >= {"date", "request-id", "client-request-id"}


def test_top_over_50_is_refused_through_the_sdk(devcloud: DevCloud) -> None:
    chat_id = chats_of(devcloud, BOB)[0]["id"]

    async def main() -> BaseException:
        return await refused(as_user(devcloud, "bob").chats.by_chat_id(chat_id).messages.get(message_query(top=51)))

    assert odata_error(run(main()))[:2] == (400, "BadRequest")


# sending and creating -----------------------------------------------------------------------
def test_bob_sends_a_message_and_alice_reads_it(devcloud: DevCloud) -> None:
    settings(devcloud, **NO_LIMITS)
    chat_id = next(c["id"] for c in chats_of(devcloud, BOB) if ALICE in c["members"] and c["chatType"] == "oneOnOne")
    body = ChatMessage(body=ItemBody(content_type=BodyType.Html, content="<p>Signed copy attached</p>"))

    async def main() -> tuple[ChatMessage | None, ChatMessage | None]:
        sent = await as_user(devcloud, "bob").chats.by_chat_id(chat_id).messages.post(body)
        page = await as_user(devcloud, "alice").chats.by_chat_id(chat_id).messages.get(message_query(top=1))
        return sent, (page.value or [None])[0] if page else None

    sent, newest = run(main())
    assert sent is not None and newest is not None and sent.id == newest.id
    assert sent.from_ and sent.from_.user and sent.from_.user.id == BOB
    assert newest.body and newest.body.content == "<p>Signed copy attached</p>"
    assert [r["status"] for r in devcloud.requests(endpoint="graph.send_message")] == [201]


def test_sending_needs_a_send_scope_and_content(devcloud: DevCloud) -> None:
    chat_id = chats_of(devcloud, BOB)[0]["id"]
    read_only = ["https://graph.microsoft.com/Chat.Read"]

    async def main() -> list[BaseException]:
        errors = []
        attempts = [
            (as_user(devcloud, "bob", read_only), ChatMessage(body=ItemBody(content="hello"))),
            (as_user(devcloud, "bob"), ChatMessage(body=ItemBody(content="   "))),
        ]
        for client, message in attempts:
            errors.append(await refused(client.chats.by_chat_id(chat_id).messages.post(message)))
        return errors

    denied, empty = run(main())
    status, code, message = odata_error(denied)
    assert (status, code) == (403, "Forbidden") and "ChatMessage.Send, Chat.ReadWrite" in message
    assert odata_error(empty)[:2] == (400, "BadRequest")


def _member(user_id: str) -> AadUserConversationMember:
    return AadUserConversationMember(
        roles=["owner"], additional_data={"user@odata.bind": f"https://graph.microsoft.com/v1.0/users('{user_id}')"}
    )


def test_a_one_on_one_chat_is_created_once_and_a_group_chat_with_its_topic(devcloud: DevCloud) -> None:
    existing = next(c["id"] for c in chats_of(devcloud, BOB) if ALICE in c["members"] and c["chatType"] == "oneOnOne")
    april = USERS["april"][1]

    async def main() -> tuple[Chat | None, Chat | None]:
        client = as_user(devcloud, "bob")
        again = await client.chats.post(Chat(chat_type=ChatType.OneOnOne, members=[_member(BOB), _member(ALICE)]))
        group = await client.chats.post(
            Chat(chat_type=ChatType.Group, topic="Pricing", members=[_member(BOB), _member(ALICE), _member(april)])
        )
        return again, group

    again, group = run(main())
    assert again is not None and again.id == existing
    assert group is not None and group.topic == "Pricing" and group.id and group.id.endswith("@thread.v2")
    created = dump(devcloud, group.id)
    assert [m["userId"] for m in created["members"]] == [BOB, ALICE, april]
    (event,) = created["messages"]
    assert event["messageType"] == "systemEventMessage"
    assert event["eventDetail"]["@odata.type"] == "#microsoft.graph.membersAddedEventMessageDetail"
    assert {m["id"] for m in event["eventDetail"]["members"]} == {BOB, ALICE, april}


def test_a_chat_must_include_the_caller_and_stay_in_the_tenant(devcloud: DevCloud) -> None:
    charlie = USERS["charlie"][1]

    async def main() -> list[BaseException]:
        client, errors = as_user(devcloud, "bob"), []
        for members in ([_member(ALICE), _member(USERS["april"][1])], [_member(BOB), _member(charlie)]):
            errors.append(await refused(client.chats.post(Chat(chat_type=ChatType.OneOnOne, members=members))))
        return errors

    without_bob, other_tenant = run(main())
    assert odata_error(without_bob)[:2] == (400, "BadRequest")
    # Users of other tenants are not found (no cross-tenant enumeration).
    assert odata_error(other_tenant)[:2] == (404, "NotFound")


# $batch -------------------------------------------------------------------------------------
def _batch_of(client: Any, chat_ids: list[str], *, absolute_to: str = "") -> BatchRequestContent:
    content = BatchRequestContent()
    for n, chat_id in enumerate(chat_ids):
        info = client.chats.by_chat_id(chat_id).messages.to_get_request_information(message_query(top=5))
        item = BatchRequestItem(request_information=info, id=str(n))
        assert item.url.startswith("/chats/")
        # Graph wants URLs relative to the version root inside a batch; an absolute one is refused.
        item.url = absolute_to + item.url
        content.add_request(item.id, item)
    return content


def test_batch_answers_each_request_on_its_own(devcloud: DevCloud) -> None:
    settings(devcloud, **NO_LIMITS)
    chat_ids = [c["id"] for c in chats_of(devcloud, BOB)]
    not_mine = next(c["id"] for c in chats_of(devcloud, ALICE) if BOB not in c["members"])

    async def main() -> tuple[dict[str, int], dict[str, int], Any]:
        client = as_user(devcloud, "bob")
        answers = await client.batch.post(_batch_of(client, [*chat_ids, not_mine]))
        absolute = await client.batch.post(_batch_of(client, chat_ids[:1], absolute_to=f"{devcloud.base_url}/v1.0"))
        return (
            answers.get_response_status_codes(),
            absolute.get_response_status_codes(),
            answers.get_response_by_id("0"),
        )

    statuses, absolute, first = run(main())
    assert statuses == {**{str(n): 200 for n in range(len(chat_ids))}, str(len(chat_ids)): 403}
    assert absolute == {"0": 400}
    # Graph answers JSON bodies as JSON objects; msgraph-core's batch reader keeps only base64 bodies.
    assert first is not None and first.body is None
    assert [e["endpoint"] for e in devcloud.requests(service="graph")].count("graph.batch") == 2
    assert [e["endpoint"] for e in devcloud.requests(service="graph") if e.get("in_batch")].count(
        "graph.list_messages"
    ) == 5


def test_batch_bodies_are_json_objects(devcloud: DevCloud) -> None:
    settings(devcloud, **NO_LIMITS)
    chat_id = chats_of(devcloud, BOB)[0]["id"]
    token = mint(devcloud, "bob", CHAT_SCOPES)
    requests = [
        {"id": "1", "method": "GET", "url": f"/chats/{chat_id}/messages?$top=2"},
        {"id": "2", "method": "GET", "url": "me"},
        {"id": "3", "method": "GET", "url": "/chats/19:unknown@thread.v2/messages"},
        {"id": "4", "method": "GET", "url": "/me", "dependsOn": ["3"]},
    ]
    with httpx.Client(verify=devcloud.tls(), trust_env=False) as http:
        response = http.post(
            f"{devcloud.base_url}/v1.0/$batch",
            json={"requests": requests},
            headers={"Authorization": f"Bearer {token}"},
        )
    answers = {r["id"]: r for r in response.json()["responses"]}
    assert len(answers["1"]["body"]["value"]) == 2 and "$skiptoken=" in answers["1"]["body"]["@odata.nextLink"]
    assert answers["2"]["body"]["id"] == BOB
    assert answers["3"]["status"] == 404 and answers["3"]["body"]["error"]["code"] == "NotFound"
    assert answers["4"]["status"] == 424


def test_batch_refuses_more_than_20_requests(devcloud: DevCloud) -> None:
    token = mint(devcloud, "bob", CHAT_SCOPES)
    requests = [{"id": str(n), "method": "GET", "url": "/me"} for n in range(21)]
    with httpx.Client(verify=devcloud.tls(), trust_env=False) as http:
        response = http.post(
            f"{devcloud.base_url}/v1.0/$batch",
            json={"requests": requests},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 400
        assert "limit of 20" in response.json()["error"]["message"]
        ok = http.post(
            f"{devcloud.base_url}/v1.0/$batch",
            json={"requests": requests[:20]},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert [r["status"] for r in ok.json()["responses"]] == [200] * 20


def test_batch_requests_are_throttled_one_by_one(devcloud: DevCloud) -> None:
    settings(devcloud, graph_retry_after_omitted=0.0)
    chat_id = chats_of(devcloud, BOB)[0]["id"]

    async def main() -> Any:
        client = as_user(devcloud, "bob")
        return await client.batch.post(_batch_of(client, [chat_id, chat_id]))

    answers = run(main())
    assert answers.get_response_status_codes() == {"0": 200, "1": 429}
    throttled = answers.get_response_by_id("1")
    assert throttled is not None and throttled.headers is not None and throttled.headers["Retry-After"] == "1"


# throttling, tokens, faults -----------------------------------------------------------------
def test_one_request_per_second_per_chat_with_retry_after(devcloud: DevCloud) -> None:
    settings(devcloud, graph_retry_after_omitted=0.0)
    token = mint(devcloud, "bob", CHAT_SCOPES)
    chat_id = chats_of(devcloud, BOB)[0]["id"]
    first = raw_get(devcloud, token, f"/chats/{chat_id}/messages")
    second = raw_get(devcloud, token, f"/chats/{chat_id}/messages")
    assert first.status_code == 200 and second.status_code == 429
    assert second.headers["Retry-After"] == "1" and second.json()["error"]["code"] == "TooManyRequests"
    time.sleep(1.0)
    assert raw_get(devcloud, token, f"/chats/{chat_id}/messages").status_code == 200


def test_a_429_can_come_without_retry_after(devcloud: DevCloud) -> None:
    settings(devcloud, graph_retry_after_omitted=1.0)
    token = mint(devcloud, "bob", CHAT_SCOPES)
    chat_id = chats_of(devcloud, BOB)[0]["id"]
    raw_get(devcloud, token, f"/chats/{chat_id}/messages")
    throttled = raw_get(devcloud, token, f"/chats/{chat_id}/messages")
    assert throttled.status_code == 429 and "Retry-After" not in throttled.headers


def test_limits_per_tenant_and_across_tenants(devcloud: DevCloud) -> None:
    settings(devcloud, graph_chat_messages_per_chat_rps=0, graph_chat_messages_per_tenant_rps=3)
    bob, charlie = mint(devcloud, "bob", CHAT_SCOPES), mint(devcloud, "charlie", CHAT_SCOPES)
    bobs = [c["id"] for c in chats_of(devcloud, BOB)]
    statuses = [raw_get(devcloud, bob, f"/chats/{c}/messages").status_code for c in bobs]
    charlies = chats_of(devcloud, USERS["charlie"][1])[0]["id"]
    assert statuses == [200, 200, 200, 429]
    assert raw_get(devcloud, charlie, f"/chats/{charlies}/messages").status_code == 200
    time.sleep(1.0)
    settings(devcloud, graph_chat_messages_per_tenant_rps=0, graph_chat_messages_per_app_rps=2)
    assert raw_get(devcloud, bob, f"/chats/{bobs[0]}/messages").status_code == 200
    assert raw_get(devcloud, charlie, f"/chats/{charlies}/messages").status_code == 200
    assert raw_get(devcloud, bob, f"/chats/{bobs[1]}/messages").status_code == 429


def test_the_sdk_rides_out_a_429_after_retry_after(devcloud: DevCloud) -> None:
    settings(devcloud, graph_retry_after_omitted=0.0)
    chat_id = chats_of(devcloud, BOB)[0]["id"]

    async def main() -> None:
        builder = as_user(devcloud, "bob", retries=3).chats.by_chat_id(chat_id).messages
        await builder.get()
        await builder.get()

    run(main())
    log = devcloud.requests(endpoint="graph.list_messages")
    assert [e["status"] for e in log] == [200, 429, 200]
    assert log[2]["time"] - log[1]["time"] >= 1.0


def test_tokens_are_checked(devcloud: DevCloud) -> None:
    expired = mint(devcloud, "bob", CHAT_SCOPES, shift_seconds=-7200)
    acs = mint(devcloud, "bob", ACS_SCOPES)
    user_read = mint(devcloud, "bob", ["https://graph.microsoft.com/User.Read"])
    for token in (expired, acs, "not-a-token"):
        response = raw_get(devcloud, token, "/me/chats")
        assert response.status_code == 401 and response.json()["error"]["code"] == "InvalidAuthenticationToken"
    denied = raw_get(devcloud, user_read, "/me/chats")
    assert (
        denied.status_code == 403 and "Chat.ReadBasic, Chat.Read, Chat.ReadWrite" in denied.json()["error"]["message"]
    )
    other = raw_get(devcloud, mint(devcloud, "bob", CHAT_SCOPES), f"/users/{ALICE}/chats")
    assert other.status_code == 403


def test_graph_faults_reach_the_sdk(devcloud: DevCloud) -> None:
    devcloud.control("POST", "/faults", json={"service": "graph", "path": "/v1.0/me/chats", "status": 503, "count": 1})

    async def main() -> BaseException:
        return await refused(as_user(devcloud, "bob").me.chats.get())

    status, code, _ = odata_error(run(main()))
    assert (status, code) == (503, "serviceNotAvailable")


# the control API ----------------------------------------------------------------------------
def test_generation_is_deterministic_and_survives_a_reset_free_restart(devcloud: DevCloud) -> None:
    body = {"users": 5, "chats": 6, "messages": 10, "seed": 42, "include": [BOB]}
    first = devcloud.control("POST", f"/tenants/{FABRIKAM}/chats/generate", json=body)
    chats = [dump(devcloud, c["id"]) for c in chats_of(devcloud, BOB)]
    devcloud.reset()
    again = devcloud.control("POST", f"/tenants/{FABRIKAM}/chats/generate", json=body)
    chats_again = [dump(devcloud, c["id"]) for c in chats_of(devcloud, BOB)]
    assert first["chats"] == again["chats"] == 6 and first["messages"] == 60
    assert [c["id"] for c in chats] == [c["id"] for c in chats_again]
    contents = [[m["body"]["content"] for m in c["messages"]] for c in chats]
    assert contents == [[m["body"]["content"] for m in c["messages"]] for c in chats_again]


def test_control_api_refuses_bad_input(devcloud: DevCloud) -> None:
    chat_id = quote(chats_of(devcloud, BOB)[0]["id"], safe="")
    bad = [
        ("POST", f"/chats/{chat_id}/messages", {"from": USERS["charlie"][1], "content": "x"}),
        ("POST", f"/chats/{chat_id}/messages", {"from": BOB, "content": ""}),
        ("POST", "/chats/nope/messages", {"from": BOB, "content": "x"}),
        ("POST", f"/tenants/{FABRIKAM}/chats/generate", {"chats": -1}),
        ("POST", "/chats", {"chatType": "oneOnOne", "members": [BOB]}),
    ]
    for method, path, body in bad:
        response = devcloud.http.request(method, f"{devcloud.base_url}/_devcloud{path}", json=body, timeout=10)
        assert response.status_code in (400, 404), (path, response.text)
        assert response.json()["error"]


def test_a_restarted_devcloud_keeps_chats_and_messages(devcloud: DevCloud, tmp_path: Any) -> None:
    from tests.devcloud_server import DevCloud as Server

    server = Server.start(tmp_path)
    try:
        chat_id = next(c["id"] for c in chats_of(server, BOB) if c["chatType"] == "oneOnOne")
        path = f"/chats/{quote(chat_id, safe='')}/messages"
        sent = server.control("POST", path, json={"from": BOB, "content": "<p>before restart</p>"})
        server.control("POST", f"/tenants/{FABRIKAM}/chats/generate", json={"users": 2, "chats": 2, "messages": 3})
        before = {c["id"]: dump(server, c["id"]) for c in chats_of(server, BOB)}
    finally:
        server.stop()
    server = Server.start(tmp_path)
    try:
        after = {c["id"]: dump(server, c["id"]) for c in chats_of(server, BOB)}
    finally:
        server.stop()
    assert after == before
    assert sent["id"] in {m["id"] for m in after[chat_id]["messages"]}


def test_timestamps_are_graphs(devcloud: DevCloud) -> None:
    message = dump(devcloud, chats_of(devcloud, BOB)[0]["id"])["messages"][-1]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", message["createdDateTime"])
    assert message["from"]["user"]["userIdentityType"] == "aadUser" and message["from"]["user"]["tenantId"] == FABRIKAM


def test_system_messages_are_unknown_future_values_unless_asked_for(devcloud: DevCloud) -> None:
    settings(devcloud, **NO_LIMITS)
    chat_id = next(c["id"] for c in chats_of(devcloud, BOB) if c["chatType"] == "group")
    token = mint(devcloud, "bob", CHAT_SCOPES)
    path = f"{devcloud.base_url}/v1.0/chats/{chat_id}/messages?$top=50"
    with httpx.Client(verify=devcloud.tls(), trust_env=False, headers={"Authorization": f"Bearer {token}"}) as http:
        plain = {m["messageType"] for m in http.get(path).json()["value"]}
        asked = {
            m["messageType"] for m in http.get(path, headers={"Prefer": "include-unknown-enum-members"}).json()["value"]
        }
    assert plain == {"message", "unknownFutureValue"}
    assert asked == {"message", "systemEventMessage"}


def test_malformed_requests_are_refused_not_crashed_on(devcloud: DevCloud) -> None:
    token = mint(devcloud, "bob", CHAT_SCOPES)
    auth = {"Authorization": f"Bearer {token}"}
    chat = {"chatType": "oneOnOne", "topic": "no", "members": []}
    with httpx.Client(
        verify=devcloud.tls(), trust_env=False, headers=auth, base_url=f"{devcloud.base_url}/v1.0"
    ) as http:
        assert http.post("/chats", json={"chatType": "group", "members": 5}).status_code == 400
        assert http.post("/chats", json=chat).status_code == 400
        assert (
            http.post("/chats", content=b'{"chatType": "group"}', headers={"Content-Type": "text/plain"}).status_code
            == 400
        )
        batches = [
            [{"id": "a", "method": "GET", "url": "/me"}, {"id": "A", "method": "GET", "url": "/me"}],
            [{"id": "a", "method": "GET", "url": "/me", "dependsOn": ["b"]}],
            [{"id": "a", "method": "GET", "url": "/me", "dependsOn": 1}],
        ]
        for requests in batches:
            assert http.post("/$batch", json={"requests": requests}).status_code == 400
        untyped = [{"id": "1", "method": "POST", "url": "/chats", "body": {"chatType": "group"}}]
        answer = http.post("/$batch", json={"requests": untyped}).json()["responses"][0]
    assert answer["status"] == 400 and "Content-Type" in answer["body"]["error"]["message"]
