"""The apps depend on each other one way: core, integrations, tenants, identity, chat; portal wires.

Every import in application code (at the top of a module or inside a function) may name its own
app or one below it, never one above. devcloud is never imported by product code.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Lowest first: an app may import the apps before it in this list.
LAYERS = ["core", "integrations", "tenants", "identity", "chat", "portal"]
OUTSIDE = {"devcloud", "tests", "bench", "scripts"}


def imported_modules(source: str) -> list[tuple[int, str]]:
    """(line, module) of every import in the source, wherever it stands."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def wrong_way(app: str, source: str) -> list[str]:
    """The imports of `app`'s module `source` that run up the layers or out of the product."""
    rank = LAYERS.index(app)
    problems = []
    for line, module in imported_modules(source):
        top = module.partition(".")[0]
        if top in OUTSIDE or (top in LAYERS and LAYERS.index(top) > rank):
            problems.append(f"{line}: {app} imports {module}")
    return problems


def test_every_import_runs_down_the_layers() -> None:
    problems = []
    for app in LAYERS:
        for path in sorted((ROOT / app).rglob("*.py")):
            problems += [f"{path.relative_to(ROOT)}:{p}" for p in wrong_way(app, path.read_text())]
    assert problems == []


def test_scripts_never_import_devcloud() -> None:
    """They run devcloud as a process of its own, like any service."""
    found = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in sorted((ROOT / "scripts").rglob("*.py"))
        for line, module in imported_modules(path.read_text())
        if module.partition(".")[0] == "devcloud"
    ]
    assert found == []


@pytest.mark.parametrize(
    ("app", "source"),
    [
        ("tenants", "from identity import services"),
        ("tenants", "def f():\n    from chat.tasks import sync_member_chats\n"),
        ("identity", "import chat.tasks"),
        ("core", "from tenants.models import Vendor"),
        ("integrations", "from core import crypto\nfrom tenants import selectors"),
        ("chat", "from devcloud.graph import store"),
    ],
)
def test_the_rule_catches_an_import_running_the_wrong_way(app: str, source: str) -> None:
    assert wrong_way(app, source)


@pytest.mark.parametrize(
    ("app", "source"),
    [
        ("chat", "from identity import services\nfrom tenants.models import TenantUser\nfrom core import http"),
        ("tenants", "from integrations import entra\nfrom core.crypto import seal"),
        ("portal", "from chat import webhooks"),
    ],
)
def test_imports_down_the_layers_pass(app: str, source: str) -> None:
    assert wrong_way(app, source) == []


def test_each_event_that_crosses_apps_has_exactly_one_receiver() -> None:
    from identity.signals import member_signed_in
    from tenants.signals import tenant_activated, tenant_disconnected

    for signal in (member_signed_in, tenant_activated, tenant_disconnected):
        assert len(signal.receivers) == 1, signal
