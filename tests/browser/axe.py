"""axe-core (the npm package, node_modules/axe-core) run in a Playwright page: WCAG 2.1 A and AA
and axe's best practices, each violation named with its rule, impact, elements and what to fix."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from django.conf import settings
from playwright.sync_api import Page

TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]


@cache
def _source() -> str:
    path = Path(settings.BASE_DIR) / "node_modules" / "axe-core" / "axe.min.js"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: `make assets` installs the npm packages (npm ci)")
    return path.read_text()


def violations(page: Page) -> list[str]:
    """axe's violations on the page as it is now, one readable line each (empty: none)."""
    # Evaluated through the DevTools protocol rather than a <script> tag, so a Content-Security-Policy
    # of the page can't keep it out.
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(_source())
    # Colours are measured when transitions (a message's actions fading in) have ended, or were
    # cancelled (a cancelled one's `finished` rejects with an AbortError).
    page.evaluate(
        "() => Promise.all(document.getAnimations()"
        ".filter(a => a.effect?.getComputedTiming().endTime !== Infinity)"
        ".map(a => a.finished.catch(() => null)))"
    )
    found: list[dict[str, Any]] = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})"
        ".then(result => result.violations)",
        TAGS,
    )
    return [_describe(violation) for violation in found]


def _describe(violation: dict[str, Any]) -> str:
    nodes = violation["nodes"]
    targets = ", ".join(" ".join(node["target"]) for node in nodes[:5])
    more = f" and {len(nodes) - 5} more" if len(nodes) > 5 else ""
    summary = " ".join((nodes[0].get("failureSummary") or "").split()) if nodes else ""
    return f"{violation['id']} ({violation['impact']}): {violation['help']} at {targets}{more}. {summary}"


# Live regions (ARIA's and their roles): one inside another is announced twice, or not at all.
LIVE_REGIONS = "[aria-live], [role=status], [role=alert], [role=log], [role=marquee], [role=timer]"


def nested_live_regions(page: Page) -> list[str]:
    found: list[str] = page.evaluate(
        """selector => [...document.querySelectorAll(selector)]
            .filter(node => node.parentElement?.closest(selector))
            .map(node => node.outerHTML.slice(0, 120))""",
        LIVE_REGIONS,
    )
    return [f"a live region inside another: {html}" for html in found]


class Audit:
    """Collects the problems of several pages (each named), to report them all at once."""

    def __init__(self) -> None:
        self.found: dict[str, list[str]] = {}

    def check(self, page: Page, name: str) -> None:
        page.wait_for_load_state()
        if problems := violations(page) + nested_live_regions(page):
            self.found.setdefault(name, []).extend(problems)

    def note(self, name: str, problem: str) -> None:
        """A problem that axe does not look for (the tests' own checks)."""
        self.found.setdefault(name, []).append(problem)

    def assert_clean(self) -> None:
        lines = [f"{name}:\n  " + "\n  ".join(problems) for name, problems in self.found.items()]
        assert not self.found, "accessibility problems (axe-core's and ours)\n" + "\n".join(lines)
