"""The house rule, enforced: a query of tenant-owned chat rows names its tenant (or one row's id).

Every `Model.objects.<filter|get|exclude|…>(…)` on the mirror's models in application code must
limit by `tenant…`, by primary key, or by something that belongs to one tenant (a member, an
owner). A query meant to span tenants (beat's maintenance) says so with `# all tenants` on its line.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = ["chat", "identity", "tenants", "integrations", "portal", "core"]
TENANT_OWNED = {"Chat", "ChatMember", "Message", "ChatSyncState", "GraphSubscription", "SubscriptionRemoval"}
QUERIES = {"filter", "get", "exclude", "get_or_create", "update_or_create", "first"}
LIMITS = ("tenant", "pk", "id", "member", "owner")


def _limited(call: ast.Call) -> bool:
    return any(k.arg is not None and k.arg.startswith(LIMITS) for k in call.keywords)


def _model(call: ast.Call) -> str | None:
    """`Model` of `Model.objects.<query>(…)`."""
    func = call.func
    if not (isinstance(func, ast.Attribute) and func.attr in QUERIES):
        return None
    manager = func.value
    if isinstance(manager, ast.Attribute) and manager.attr == "objects" and isinstance(manager.value, ast.Name):
        return manager.value.id
    return None


def unscoped_queries() -> list[str]:
    found = []
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            source = path.read_text()
            lines = source.splitlines()
            for node in ast.walk(ast.parse(source)):
                if not isinstance(node, ast.Call) or _model(node) not in TENANT_OWNED or _limited(node):
                    continue
                span = lines[node.lineno - 1 : (node.end_lineno or node.lineno)]
                if not any("# all tenants" in line for line in span):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {lines[node.lineno - 1].strip()}")
    return found


def test_every_query_of_tenant_owned_chat_rows_names_its_tenant() -> None:
    assert unscoped_queries() == []


def test_the_rule_catches_an_unscoped_query() -> None:
    call = ast.parse("Message.objects.filter(chat=chat)").body[0].value  # type: ignore[attr-defined]
    scoped = ast.parse("Message.objects.filter(tenant=t, chat=chat)").body[0].value  # type: ignore[attr-defined]
    assert _model(call) == "Message" and not _limited(call)
    assert _limited(scoped)
