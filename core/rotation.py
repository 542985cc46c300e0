"""Re-encryption of every sealed value with the newest key, so that older keys can be removed.

Each app registers the columns it seals (in its AppConfig.ready). `reseal` goes through one
column's rows that are not sealed with the newest key yet, in batches of primary key order: a run
that stops half-way is resumed by running it again (rows done are no longer selected). A row is
written only if its value is still the one read (compare and swap), so a value written meanwhile
(sealed with the newest key already, a refreshed token cache say) is never overwritten with an
older one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Model, QuerySet

from core import crypto


@dataclass(frozen=True)
class SealedColumn:
    """A model field holding values sealed by core.crypto, and how to name each row's context."""

    label: str
    model: type[Model]
    field: str
    context: Callable[[Any], str]
    # Relations the context reads (select_related), so that a batch is one query.
    related: tuple[str, ...] = ()


@dataclass
class Progress:
    label: str
    total: int
    done: int = 0
    resealed: int = 0
    # Primary keys of rows whose value no listed key decrypts: left as they are, reported.
    unreadable: list[Any] = field(default_factory=list)


_COLUMNS: dict[str, SealedColumn] = {}


def register(column: SealedColumn) -> None:
    _COLUMNS[column.label] = column


def columns() -> list[SealedColumn]:
    return list(_COLUMNS.values())


def stale(*, column: SealedColumn) -> QuerySet[Any]:
    """Rows of the column whose value is not sealed with the newest key."""
    manager = column.model._default_manager
    return manager.exclude(**{f"{column.field}__startswith": crypto.current_prefix()}).exclude(**{column.field: ""})


def reseal(*, column: SealedColumn, batch_size: int = 500) -> Iterator[Progress]:
    """Re-seal the column's stale rows, a batch at a time; yields the progress after each batch."""
    progress = Progress(column.label, total=stale(column=column).count())
    after: Any = None
    while True:
        rows = stale(column=column).select_related(*column.related).order_by("pk")
        batch = list((rows if after is None else rows.filter(pk__gt=after))[:batch_size])
        if not batch:
            return
        for row in batch:
            _reseal_row(column, row, progress)
        after = batch[-1].pk
        progress.done += len(batch)
        yield progress


def _reseal_row(column: SealedColumn, row: Any, progress: Progress) -> None:
    old = getattr(row, column.field)
    try:
        new = crypto.reseal(old, context=column.context(row))
    except crypto.DecryptionError:
        progress.unreadable.append(row.pk)
        return
    manager = column.model._default_manager
    progress.resealed += manager.filter(pk=row.pk, **{column.field: old}).update(**{column.field: new})
