"""devcloud's Graph on a bulk-generated tenant: time to generate it, time to page through it all.

    python bench/graph_tenant.py [--chats 100] [--messages 500] [--users 20] [--concurrency 20]

Bob is a member of every generated chat. Every chat and message is read, 50 a page by
`@odata.nextLink`, with httpx and the throttling limits off (`page_*`); the baseline is devcloud's
bare health endpoint, in the same run. The first `--sdk-chats` chats are read again through
msgraph-sdk, whose model parsing costs far more than devcloud (`sdk_messages_per_second`). With
`--with-limits`, everything is read again at Graph's limits, the client pacing itself to one
request per second per chat (`limited_*`). Prints its figures, the last line as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from kiota_abstractions.base_request_configuration import RequestConfiguration  # noqa: E402
from msgraph.generated.chats.item.messages.messages_request_builder import MessagesRequestBuilder  # noqa: E402
from msgraph.generated.users.item.chats.chats_request_builder import ChatsRequestBuilder  # noqa: E402

from tests.devcloud.graph_sdk import graph_client  # noqa: E402
from tests.devcloud.test_acs_identity import mint  # noqa: E402
from tests.devcloud_server import FABRIKAM, USERS, DevCloud  # noqa: E402

SCOPES = ["https://graph.microsoft.com/Chat.ReadWrite"]
NO_LIMITS = {
    "graph_chat_messages_per_tenant_rps": 0,
    "graph_chat_messages_per_app_rps": 0,
    "graph_chat_messages_per_chat_rps": 0,
}
GRAPH_LIMITS = {
    "graph_chat_messages_per_tenant_rps": 20,
    "graph_chat_messages_per_app_rps": 200,
    "graph_chat_messages_per_chat_rps": 1,
}


class RawPager:
    """Pages with httpx and JSON: what the server costs, without the SDK's model parsing."""

    def __init__(self, devcloud: DevCloud, token: str) -> None:
        self.base = f"{devcloud.base_url}/v1.0"
        self.http = httpx.AsyncClient(
            verify=devcloud.tls(), trust_env=False, timeout=30, headers={"Authorization": f"Bearer {token}"}
        )

    async def pages(self, url: str) -> Any:
        while url:
            response = await self.http.get(url)
            response.raise_for_status()
            body = response.json()
            yield body["value"]
            url = body.get("@odata.nextLink")

    def chats_url(self) -> str:
        return f"{self.base}/me/chats?$top=50&$expand=members"

    def messages_url(self, chat_id: str) -> str:
        return f"{self.base}/chats/{chat_id}/messages?$top=50&$orderby=lastModifiedDateTime desc"


class SdkPager:
    """Pages through msgraph-sdk, as the product would with its models."""

    def __init__(self, devcloud: DevCloud, token: str) -> None:
        self.client = graph_client(devcloud, token)

    async def pages(self, builder: Any, query: Any) -> Any:
        page = await builder.get(RequestConfiguration(query_parameters=query))
        while True:
            yield [{"id": item.id} for item in page.value]
            if not page.odata_next_link:
                return
            page = await builder.with_url(page.odata_next_link).get()

    def chats(self) -> Any:
        query = ChatsRequestBuilder.ChatsRequestBuilderGetQueryParameters(top=50, expand=["members"])
        return self.pages(self.client.me.chats, query)

    def messages(self, chat_id: str) -> Any:
        query = MessagesRequestBuilder.MessagesRequestBuilderGetQueryParameters(
            top=50, orderby=["lastModifiedDateTime desc"]
        )
        return self.pages(self.client.chats.by_chat_id(chat_id).messages, query)


async def page_all(
    devcloud: DevCloud, token: str, *, concurrency: int, pace: float, sdk: bool, limit: int | None = None
) -> dict[str, float]:
    """Every chat, then every message of each, 50 a page; `pace` seconds between a chat's pages."""
    pager: Any = SdkPager(devcloud, token) if sdk else RawPager(devcloud, token)
    started = time.monotonic()
    chat_ids, requests = [], 0
    async for page in pager.chats() if sdk else pager.pages(pager.chats_url()):
        chat_ids += [c["id"] for c in page]
        requests += 1
    chat_ids = chat_ids[:limit]
    gate = asyncio.Semaphore(concurrency)

    async def one(chat_id: str) -> tuple[int, int]:
        count = pages = 0
        async with gate:
            async for page in pager.messages(chat_id) if sdk else pager.pages(pager.messages_url(chat_id)):
                count, pages = count + len(page), pages + 1
                await asyncio.sleep(pace)
        return count, pages

    results = await asyncio.gather(*(one(c) for c in chat_ids))
    seconds = time.monotonic() - started
    messages = sum(r[0] for r in results)
    requests += sum(r[1] for r in results)
    minimum = math.ceil(len(chat_ids) / 50) + sum(math.ceil(r[0] / 50) for r in results)
    return {
        "chats": len(chat_ids),
        "messages": messages,
        "requests": requests,
        "min_requests": minimum,
        "seconds": seconds,
    }


async def bare_rps(devcloud: DevCloud, requests: int, concurrency: int) -> float:
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(verify=devcloud.tls(), trust_env=False) as http:

        async def one() -> None:
            async with gate:
                (await http.get(f"{devcloud.base_url}/_devcloud/health")).raise_for_status()

        started = time.monotonic()
        await asyncio.gather(*(one() for _ in range(requests)))
        return requests / (time.monotonic() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chats", type=int, default=100)
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--sdk-chats", type=int, default=10, help="chats also read through msgraph-sdk")
    parser.add_argument("--with-limits", action="store_true")
    args = parser.parse_args()

    devcloud = DevCloud.start(Path(tempfile.mkdtemp(prefix="bench-graph-")))
    try:
        bob = USERS["bob"][1]
        body = {"users": args.users, "chats": args.chats, "messages": args.messages, "seed": 1, "include": [bob]}
        started = time.monotonic()
        generated = devcloud.control("POST", f"/tenants/{FABRIKAM}/chats/generate", json=body)
        generate_wall = time.monotonic() - started
        print(f"generated {generated['chats']} chats, {generated['messages']} messages in {generate_wall:.2f} s")

        devcloud.control("PUT", "/settings", json=NO_LIMITS)
        token = mint(devcloud, "bob", SCOPES)
        paged = asyncio.run(page_all(devcloud, token, concurrency=args.concurrency, pace=0.0, sdk=False))
        page_rps = paged["requests"] / paged["seconds"]
        bare = asyncio.run(bare_rps(devcloud, int(paged["requests"]), args.concurrency))
        print(
            f"paged {paged['messages']} messages of {paged['chats']} chats: {paged['requests']} requests in {paged['seconds']:.2f} s"
        )
        sdk = asyncio.run(
            page_all(devcloud, token, concurrency=args.concurrency, pace=0.0, sdk=True, limit=args.sdk_chats)
        )
        print(f"through msgraph-sdk: {sdk['messages']} messages of {sdk['chats']} chats in {sdk['seconds']:.2f} s")
        figures: dict[str, float] = {
            "chats": paged["chats"],
            "messages": paged["messages"],
            "generate_seconds": round(generate_wall, 2),
            "page_seconds": round(paged["seconds"], 2),
            "page_requests": paged["requests"],
            "page_request_ratio": round(paged["requests"] / paged["min_requests"], 3),
            "page_rps": round(page_rps, 1),
            "bare_rps": round(bare, 1),
            "page_vs_bare_ratio": round(page_rps / bare, 3),
            "sdk_messages_per_second": round(sdk["messages"] / sdk["seconds"], 1),
            "raw_messages_per_second": round(paged["messages"] / paged["seconds"], 1),
        }
        if args.with_limits:
            devcloud.control("PUT", "/settings", json=GRAPH_LIMITS)
            devcloud.control("DELETE", "/requests")
            limited = asyncio.run(page_all(devcloud, token, concurrency=20, pace=1.05, sdk=False))
            throttled = sum(1 for e in devcloud.requests(service="graph") if e["status"] == 429)
            print(
                f"at Graph's limits: {limited['requests']} requests in {limited['seconds']:.2f} s, {throttled} throttled"
            )
            figures |= {"limited_seconds": round(limited["seconds"], 2), "limited_429s": throttled}
        print(json.dumps(figures))
    finally:
        devcloud.stop()


if __name__ == "__main__":
    main()
