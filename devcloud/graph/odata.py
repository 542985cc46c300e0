"""OData query options as Graph's chat APIs accept them, and keyset paging by `$skiptoken`."""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import quote, urlencode

from devcloud.graph.errors import GraphError
from devcloud.graph.resources import parse_iso

T = TypeVar("T")
SortKey = tuple[float, str]
CLAUSE = re.compile(r"^\s*(\w+)\s+(\w+)\s+(.+?)\s*$")
# An OData DateTimeOffset literal: unquoted, with seconds and an offset or `Z`.
DATETIME_OFFSET = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,7})?(Z|[+-]\d\d:\d\d)")


def bad_request(message: str) -> GraphError:
    return GraphError(400, "BadRequest", message)


def only_options(query: dict[str, str], allowed: set[str]) -> None:
    """Graph answers 400 for OData options an API does not support; other parameters are ignored."""
    for name in query:
        if name.startswith("$") and name.lower() not in allowed:
            raise bad_request(f"Query option '{name}' is not supported for this request.")


def top(query: dict[str, str], *, default: int, maximum: int = 50) -> int:
    raw = query.get("$top")
    if raw is None:
        return default
    if not re.fullmatch(r"[0-9]{1,6}", raw) or not 1 <= int(raw) <= maximum:
        raise bad_request(f"Invalid page size specified: '{raw}'. Must be between 1 and {maximum} inclusive.")
    return int(raw)


def expand(query: dict[str, str], allowed: set[str]) -> set[str]:
    names = {n.strip() for n in query.get("$expand", "").split(",") if n.strip()}
    for name in names:
        if name not in allowed:
            raise bad_request(f"Could not find a property named '{name}' on type 'microsoft.graph.chat'.")
    return names


@dataclass(frozen=True)
class Clause:
    prop: str
    op: str
    value_ms: float


def message_filter(raw: str | None) -> list[Clause]:
    """`lastModifiedDateTime gt|lt T` and `createdDateTime lt T`, joined by `and`; others are 400s."""
    if not raw:
        return []
    allowed = {"lastModifiedDateTime": {"gt", "lt"}, "createdDateTime": {"lt"}}
    clauses = []
    for part in re.split(r"\s+and\s+", raw.strip(), flags=re.IGNORECASE):
        match = CLAUSE.match(part)
        if not match:
            raise bad_request(f"Invalid filter clause: '{part}'.")
        prop, op, value = match.group(1), match.group(2).lower(), match.group(3)
        if prop not in allowed:
            raise bad_request(f"Invalid filter clause: filtering on '{prop}' is not supported.")
        if op not in allowed[prop]:
            supported = " and ".join(sorted(allowed[prop]))
            raise bad_request(f"Invalid filter clause: operator '{op}' is not supported on '{prop}'; use {supported}.")
        if not DATETIME_OFFSET.fullmatch(value):
            raise bad_request(f"Invalid filter clause: '{value}' is not a valid DateTimeOffset literal.")
        try:
            clauses.append(Clause(prop, op, parse_iso(value)))
        except ValueError as exc:
            raise bad_request(f"Invalid filter clause: '{value}' is not a valid DateTimeOffset.") from exc
    return clauses


def message_order(raw: str | None) -> str | None:
    """The `$orderby` property, or None when absent (newest change first, and no `$filter`)."""
    if not raw:
        return None
    prop, _, direction = raw.strip().partition(" ")
    if prop not in ("lastModifiedDateTime", "createdDateTime"):
        raise bad_request(f"Invalid $orderby: ordering by '{prop}' is not supported.")
    if direction.strip().lower() != "desc":
        raise bad_request("Invalid $orderby: only descending order is supported.")
    return prop


def _encode_token(key: SortKey) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode()


def _decode_token(token: str) -> SortKey:
    try:
        value, ident = json.loads(base64.urlsafe_b64decode(token.encode()))
        key = float(value), str(ident)
    except (ValueError, TypeError) as exc:
        raise bad_request("The $skiptoken is not valid.") from exc
    if not math.isfinite(key[0]):
        raise bad_request("The $skiptoken is not valid.")
    return key


@dataclass
class Page(Generic[T]):
    items: list[T]
    next_token: str | None


def page(items: Sequence[T], *, key: Callable[[T], SortKey], size: int, token: str | None) -> Page[T]:
    """Items in descending key order after the token's key; the token names the last item served."""
    ordered = sorted(items, key=key, reverse=True)
    if token:
        after = _decode_token(token)
        ordered = [i for i in ordered if key(i) < after]
    chunk = ordered[:size]
    more = len(ordered) > size
    return Page(chunk, _encode_token(key(chunk[-1])) if more else None)


def next_link(base: str, path: str, query: dict[str, str], token: str | None) -> dict[str, Any]:
    """`@odata.nextLink`: absolute, the request's options kept, `$skiptoken` replaced."""
    if token is None:
        return {}
    params = {k: v for k, v in query.items() if k != "$skiptoken"}
    params["$skiptoken"] = token
    encoded = urlencode(params, quote_via=quote, safe="$:',")
    return {"@odata.nextLink": f"{base}{quote(path, safe='/:@')}?{encoded}"}
