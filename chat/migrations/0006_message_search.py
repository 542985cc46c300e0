"""Full-text search of messages (PostgreSQL only; SQLite searches with LIKE).

`chat_message.search_vector` is the tsvector of the body as HTML (`chat_message_html`: a text
body is escaped into HTML), kept by a trigger on every insert and on every update of the body; the
model does not declare it, so every write keeps naming its own columns. PostgreSQL's parser knows
HTML: tags (with their attributes) and entities are not words, so the body is indexed as it is
stored, with no stripping to pay for on every write. The 'simple' configuration (no stemming, no
stop words): tenants write in many languages, and a word is found as typed, or by its beginning
while it is being typed.

Only messages that can be found are in the index: not deleted, not system events.

Upgrading a large mirror takes no long lock: the column is added empty (no table rewrite), the
existing rows are filled in batches, each its own transaction, while the portal runs (a row not
filled yet is not found yet), and the index is built CONCURRENTLY.
"""

from collections.abc import Callable
from typing import Any

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor

BATCH = 5000
VECTOR = "to_tsvector('simple'::regconfig, chat_message_html({row}body_type, {row}body))"
FORWARD = [
    "CREATE FUNCTION chat_message_html(body_type text, body text) RETURNS text "
    "LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT CASE WHEN body_type = 'html' THEN body "
    "ELSE replace(replace(replace(body, '&', '&amp;'), '<', '&lt;'), '>', '&gt;') END $$",
    "ALTER TABLE chat_message ADD COLUMN search_vector tsvector",
    "CREATE FUNCTION chat_message_search_vector() RETURNS trigger LANGUAGE plpgsql AS $$ "
    f"BEGIN NEW.search_vector := {VECTOR.format(row='NEW.')}; RETURN NEW; END $$",
    "CREATE TRIGGER chat_message_search BEFORE INSERT OR UPDATE OF body, body_type ON chat_message "
    "FOR EACH ROW EXECUTE FUNCTION chat_message_search_vector()",
]
FILL = (
    f"UPDATE chat_message SET search_vector = {VECTOR.format(row='')} "  # noqa: S608 - constants only
    f"WHERE id IN (SELECT id FROM chat_message WHERE search_vector IS NULL LIMIT {BATCH})"
)
INDEX = (
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS message_search ON chat_message USING gin (search_vector) "
    "WHERE deleted_at IS NULL AND message_type = 'message'"
)
BACKWARD = [
    "DROP INDEX CONCURRENTLY IF EXISTS message_search",
    "DROP TRIGGER IF EXISTS chat_message_search ON chat_message",
    "DROP FUNCTION IF EXISTS chat_message_search_vector()",
    "ALTER TABLE chat_message DROP COLUMN IF EXISTS search_vector",
    "DROP FUNCTION IF EXISTS chat_message_html(text, text)",
]


def _postgresql(run: Callable[[BaseDatabaseSchemaEditor], None]) -> Callable[[Any, BaseDatabaseSchemaEditor], None]:
    def only_there(apps: Any, schema_editor: BaseDatabaseSchemaEditor) -> None:
        if schema_editor.connection.vendor == "postgresql":
            run(schema_editor)

    return only_there


def forward(schema_editor: BaseDatabaseSchemaEditor) -> None:
    for statement in FORWARD:
        schema_editor.execute(statement)
    # The migration is not atomic: each batch commits, and writers wait for one batch at most.
    with schema_editor.connection.cursor() as cursor:
        while True:
            cursor.execute(FILL)
            if cursor.rowcount < BATCH:
                break
    schema_editor.execute(INDEX)


def backward(schema_editor: BaseDatabaseSchemaEditor) -> None:
    for statement in BACKWARD:
        schema_editor.execute(statement)


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY, and a fill in batches
    dependencies = [
        ("chat", "0005_message_parts_and_viewpoint"),
    ]

    operations = [
        migrations.RunPython(_postgresql(forward), _postgresql(backward), elidable=False),
    ]
