"""Rules the database enforces on tenants' tables, whatever writes to them.

- Consent and audit records are append-only: an UPDATE or DELETE is refused (PostgreSQL, through
  django-pgtrigger; the tables' foreign keys PROTECT, so no cascade reaches them either).
- `token_version` of a tenant (or member) moves by one whenever its status (or role) changes, in
  the database itself, so that bulk updates and raw SQL move it too; any other write leaves it as
  it was, so a stale copy saved back never moves it back.

On SQLite (development only), `sqlite_install` keeps the token versions the same way after every
migration; append-only is enforced there by the models' query sets alone, since SQLite empties
tables with DELETE and the test runner must be able to.
"""

from __future__ import annotations

from typing import Any

import pgtrigger
from django.db import connections


def append_only() -> pgtrigger.Protect:
    return pgtrigger.Protect(name="append_only", operation=pgtrigger.Update | pgtrigger.Delete)


def version_on_change(field: str) -> pgtrigger.Trigger:
    return pgtrigger.Trigger(
        name=f"token_version_on_{field}",
        when=pgtrigger.Before,
        operation=pgtrigger.Update,
        func=(f"NEW.token_version := OLD.token_version + (OLD.{field} IS DISTINCT FROM NEW.{field})::int; RETURN NEW;"),
    )


# (table, column) whose change moves the row's token_version.
VERSIONED = (("tenants_customertenant", "status"), ("tenants_tenantuser", "portal_role"))


def _sqlite_version_trigger(table: str, field: str) -> str:
    # AFTER UPDATE: SQLite's BEFORE triggers cannot change NEW. Recursive triggers are off by
    # default, so the trigger's own UPDATE does not fire it again. Tables and columns are ours.
    return (
        f"CREATE TRIGGER {table}_token_version AFTER UPDATE ON {table} BEGIN "  # noqa: S608
        f"UPDATE {table} SET token_version = OLD.token_version + (OLD.{field} IS NOT NEW.{field}) "
        f"WHERE id = NEW.id; END"
    )


def sqlite_install(using: str = "default", **kwargs: Any) -> None:
    """post_migrate: (re)create the SQLite triggers, which a migration that rebuilds a table drops."""
    connection = connections[using]
    if connection.vendor != "sqlite":
        return
    with connection.cursor() as cursor:
        for table, field in VERSIONED:
            # Dropped first: a trigger of an older release may differ.
            cursor.execute(f"DROP TRIGGER IF EXISTS {table}_token_version")
            cursor.execute(_sqlite_version_trigger(table, field))
