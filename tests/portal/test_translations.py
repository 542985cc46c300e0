"""Every user-facing string is translatable and German is complete: the .po files have a msgstr
for every msgid (none fuzzy), the committed .mo files say the same as the .po files, no template
has text outside {% translate %}/{% blocktranslate %}, and the pages, in German, show no English.
The language comes from the switcher's cookie, else from Accept-Language; English is the default.
"""

from __future__ import annotations

import ast
import gettext
import html
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings
from django.template.base import Lexer, TokenType
from django.test import Client
from django.utils import translation

from tests.devcloud_server import USERS, DevCloud
from tests.portal_flow import Person, load_vendors

LOCALE = Path(settings.BASE_DIR) / "locale"
TEMPLATES = Path(settings.BASE_DIR) / "templates"
DOMAINS = ("django", "djangojs")
Entry = dict[str, object]


def po_entries(path: Path) -> list[Entry]:
    """The entries of a .po file: msgctxt, msgid, msgid_plural, msgstr (a list: one per plural
    form), flags; the header (msgid "") included."""
    entries: list[Entry] = []
    entry: Entry = {"flags": set(), "msgstr": []}
    field = ""
    for line in [*path.read_text(encoding="utf-8").splitlines(), ""]:
        if not line.strip():
            if "msgid" in entry:
                entries.append(entry)
            entry, field = {"flags": set(), "msgstr": []}, ""
        elif line.startswith("#,"):
            entry["flags"] = {flag.strip() for flag in line[2:].split(",")}
        elif line.startswith("#"):
            continue
        elif line.startswith('"'):
            value = ast.literal_eval(line)
            if field == "msgstr":
                strings = entry["msgstr"]
                assert isinstance(strings, list)
                strings[-1] += value
            else:
                entry[field] = str(entry[field]) + value
        else:
            keyword, _, value = line.partition(" ")
            field = "msgstr" if keyword.startswith("msgstr") else keyword
            if field == "msgstr":
                strings = entry["msgstr"]
                assert isinstance(strings, list)
                strings.append(ast.literal_eval(value))
            else:
                entry[field] = ast.literal_eval(value)
    return entries


def messages(domain: str) -> list[Entry]:
    return [e for e in po_entries(LOCALE / "de" / "LC_MESSAGES" / f"{domain}.po") if e["msgid"]]


@pytest.fixture(autouse=True)
def _english_afterwards() -> Iterator[None]:
    """A request activates its language in this thread and leaves it: later tests expect English."""
    yield
    translation.deactivate()


PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|\{\w+\}")


@pytest.mark.parametrize("domain", DOMAINS)
def test_every_message_has_a_german_translation_with_the_same_placeholders(domain: str) -> None:
    entries = messages(domain)
    assert len(entries) > 100
    for entry in entries:
        strings = entry["msgstr"]
        assert isinstance(strings, list)
        assert "fuzzy" not in entry["flags"], entry["msgid"]  # type: ignore[operator]
        assert len(strings) == (2 if "msgid_plural" in entry else 1), entry["msgid"]
        assert all(strings), f"untranslated: {entry['msgid']!r}"
        wanted = set(PLACEHOLDER.findall(str(entry.get("msgid_plural", entry["msgid"]))))
        for string in strings:
            assert set(PLACEHOLDER.findall(string)) == wanted, (entry["msgid"], string)


@pytest.mark.parametrize("domain", DOMAINS)
def test_the_compiled_catalogs_are_up_to_date_with_their_po_files(domain: str) -> None:
    """Run `make messages` (compilemessages) after changing a .po file: the .mo is what Django reads."""
    with (LOCALE / "de" / "LC_MESSAGES" / f"{domain}.mo").open("rb") as mo:
        compiled = gettext.GNUTranslations(mo)
    catalog = compiled._catalog  # type: ignore[attr-defined]
    expected: dict[object, str] = {}
    for entry in messages(domain):
        strings = entry["msgstr"]
        assert isinstance(strings, list)
        msgid = str(entry["msgid"]) if "msgctxt" not in entry else f"{entry['msgctxt']}\x04{entry['msgid']}"
        if "msgid_plural" in entry:
            expected.update({(msgid, n): string for n, string in enumerate(strings)})
        else:
            expected[msgid] = strings[0]
    assert {key: value for key, value in catalog.items() if key != ""} == expected


# Template text that is not language: entities, punctuation, symbols; URLs and paths.
NOT_WORDS = re.compile(r"^\s*(?:https?://|/)\S*\s*$|&#?\w+;|[\W\d_]+")
TEXT_ATTRIBUTES = {"aria-label", "placeholder", "title", "alt"}


class _TextNodes(HTMLParser):
    """Text nodes, and the attribute values people read (labels, placeholders, titles, alt texts)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.texts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.texts += [value or "" for name, value in attrs if name in TEXT_ATTRIBUTES]

    def handle_data(self, data: str) -> None:
        self.texts.append(data)


def untranslated_template_text(path: Path) -> list[str]:
    """Words a template shows outside {% translate %}/{% blocktranslate %} and template variables:
    its HTML with every tag and variable of the template language taken out, parsed as HTML."""
    markup, depth = [], 0  # depth: inside blocktranslate or comment
    for token in Lexer(path.read_text(encoding="utf-8")).tokenize():
        if token.token_type == TokenType.BLOCK:
            name = token.contents.split()[0]
            depth += name in ("blocktranslate", "blocktrans", "comment")
            depth -= name in ("endblocktranslate", "endblocktrans", "endcomment")
        elif token.token_type == TokenType.TEXT and not depth:
            markup.append(token.contents)
    parser = _TextNodes()
    parser.feed("".join(markup))
    return [text.strip() for text in parser.texts if NOT_WORDS.sub("", text)]


@pytest.mark.parametrize("path", sorted(TEMPLATES.rglob("*.html")), ids=lambda p: str(p.relative_to(TEMPLATES)))
def test_no_template_shows_text_outside_translate_tags(path: Path) -> None:
    assert untranslated_template_text(path) == []


# German pages ---------------------------------------------------------------------------------
def english_shown(page: str) -> list[str]:
    """Text nodes of a page that are an English message of the catalog (German has its own)."""
    english = {str(e["msgid"]) for e in messages("django") if e["msgstr"] != [e["msgid"]]}
    english |= {str(e["msgid_plural"]) for e in messages("django") if "msgid_plural" in e}
    parser = _TextNodes()
    parser.feed(re.sub(r"<script\b.*?</script>", "", page, flags=re.S))
    return [text.strip() for text in parser.texts if text.strip() in english]


def german(client: Client) -> Client:
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "de"
    return client


@pytest.fixture
def vendors(devcloud_settings: DevCloud) -> DevCloud:
    load_vendors(devcloud_settings)
    return devcloud_settings


@pytest.mark.django_db
def test_pages_in_german_show_no_english(vendors: DevCloud) -> None:
    alice = Person(vendors, USERS["alice"][0])
    alice.connect("contoso")
    staff = Person(vendors, "support@contoso.example")
    staff.sign_in("contoso")
    pages = [
        (german(Client()), "/", "Anbieter"),
        (german(Client()), "/v/contoso/", "Mit Microsoft anmelden"),
        (german(Client()), "/no-such-page/", "Seite nicht gefunden"),
        (german(Client()), "/auth/callback/", "Anmeldung abgelehnt"),
        (german(alice.client), "/", "Ihre Chats öffnen"),
        (german(alice.client), "/tenant/", "Einwilligung"),
        (german(alice.client), "/tenant/disconnect/", "Verbindung der Organisation trennen"),
        (german(alice.client), "/call/", "An einer Teams-Besprechung teilnehmen"),
        (german(staff.client), "/vendor/contoso/", "Kunden"),
        (german(staff.client), "/vendor/contoso/staff/", "Einladen"),
        (german(staff.client), "/vendor/contoso/credentials/", "Ohne Unterbrechung ersetzen"),
    ]
    for client, path, expected in pages:
        page = client.get(path).content.decode()
        assert '<html lang="de">' in page, path
        assert expected in page, path
        assert english_shown(page) == [], path
    tenant_admin = german(alice.client).get("/tenant/").content.decode()
    assert "Aktiv" in tenant_admin and "Globaler Administrator" in tenant_admin  # model choices, role names


@pytest.mark.django_db
def test_english_is_the_default_and_accept_language_chooses_german(vendors: DevCloud) -> None:
    page = Client().get("/v/contoso/").content.decode()
    assert '<html lang="en">' in page and "Sign in with Microsoft" in page
    page = Client(HTTP_ACCEPT_LANGUAGE="de-DE,de;q=0.9,en;q=0.5").get("/v/contoso/").content.decode()
    assert '<html lang="de">' in page and "Mit Microsoft anmelden" in page
    page = Client(HTTP_ACCEPT_LANGUAGE="fr-FR,fr;q=0.9").get("/v/contoso/").content.decode()
    assert '<html lang="en">' in page


@pytest.mark.django_db
def test_the_switcher_keeps_the_choice_over_accept_language_and_returns_to_the_page(vendors: DevCloud) -> None:
    client = Client(HTTP_ACCEPT_LANGUAGE="de", enforce_csrf_checks=True)
    page = client.get("/v/contoso/?next=/chats/").content.decode()
    form = re.search(r'<form method="post" action="([^"]*)" class="inline language">', page)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert form and token
    switched = client.post(html.unescape(form.group(1)), {"language": "en", "csrfmiddlewaretoken": token.group(1)})
    assert switched.status_code == 302 and switched["Location"] == "/v/contoso/?next=/chats/"
    assert '<html lang="en">' in client.get("/v/contoso/").content.decode()
    refused = Client(enforce_csrf_checks=True).post("/i18n/setlang/", {"language": "de"})
    assert refused.status_code == 403


@pytest.mark.django_db
def test_json_errors_say_their_message_in_german_and_keep_their_code(vendors: DevCloud) -> None:
    answer = german(Client()).post("/api/acs-token/")
    assert answer.json()["error"] == "not_signed_in"
    assert answer.json()["message"] == "Melden Sie sich an, um anzurufen."


def test_the_javascript_catalog_has_the_german_strings(client: Client) -> None:
    catalog = german(client).get("/i18n/jsi18n/").content.decode()
    assert "Wird gesendet" in catalog and "Mandantenadministrator" not in catalog  # the djangojs domain only
