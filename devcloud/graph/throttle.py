"""Graph's limits for chat messages, per app: per tenant, across tenants, and per chat.

Each limit is a sliding one-second window. A refused request does not count. Teams sometimes
answers 429 without `Retry-After`; `graph_retry_after_omitted` is how often devcloud does.
"""

from __future__ import annotations

import math
import random
import time
from collections import deque
from typing import Any

from devcloud.graph.errors import GraphError

LIMITS = (
    ("graph_chat_messages_per_tenant_rps", "tenant"),
    ("graph_chat_messages_per_app_rps", "app"),
    ("graph_chat_messages_per_chat_rps", "chat"),
)


class Throttle:
    def __init__(self) -> None:
        self.windows: dict[tuple[str, ...], deque[float]] = {}

    def clear(self) -> None:
        self.windows.clear()

    def check(self, settings: dict[str, Any], *, app: str, tenant: str, chat: str) -> None:
        """Count one chat-message request, or raise 429 when a window is full."""
        now = time.monotonic()
        keys = {"tenant": ("tenant", app, tenant), "app": ("app", app), "chat": ("chat", app, chat)}
        waits = []
        for setting, scope in LIMITS:
            limit = settings[setting]
            if not limit:
                continue
            window = self.windows.setdefault(keys[scope], deque())
            while window and window[0] <= now - 1.0:
                window.popleft()
            if len(window) >= limit:
                waits.append(window[0] + 1.0 - now)
        if waits:
            raise too_many_requests(max(waits), settings["graph_retry_after_omitted"])
        for setting, scope in LIMITS:
            if settings[setting]:
                self.windows[keys[scope]].append(now)


def too_many_requests(wait: float, omit_probability: float) -> GraphError:
    headers = {}
    if random.random() >= omit_probability:
        headers["Retry-After"] = str(max(1, math.ceil(wait)))
    return GraphError(429, "TooManyRequests", "Too Many Requests", headers=headers)
