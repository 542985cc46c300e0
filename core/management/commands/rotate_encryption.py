"""Re-seal every value the database keeps sealed (vendor secrets, token caches…) with the newest key."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from core import rotation


class Command(BaseCommand):
    help = (
        "Re-encrypt every sealed value in the database with the newest key (the first of ENCRYPTION_KEYS), "
        "in batches; run it once every process uses the new key list. Safe to stop and run again: it "
        "resumes where it stopped. Once it reports nothing left, older keys can be removed."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--batch-size", type=int, default=500, help="rows per batch (default 500)")
        parser.add_argument("--check", action="store_true", help="only count the values still to re-seal")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1.")
        if options["check"]:
            self._check()
            return
        unreadable = sum(self._reseal(column, options["batch_size"]) for column in rotation.columns())
        if unreadable:
            raise CommandError(
                f"{unreadable} value(s) decrypt with no listed key (listed above): they stay as they are. "
                "Keep the key that sealed them, or remove those rows; until then no older key can go."
            )
        self.stdout.write(self.style.SUCCESS("Every sealed value uses the newest key: older keys can be removed."))

    def _reseal(self, column: rotation.SealedColumn, batch_size: int) -> int:
        progress = rotation.Progress(column.label, total=0)
        for progress in rotation.reseal(column=column, batch_size=batch_size):
            self.stdout.write(f"{progress.label}: {progress.done} of {progress.total}")
        self.stdout.write(f"{column.label}: {progress.resealed} re-sealed")
        if progress.unreadable:
            ids = ", ".join(str(pk) for pk in progress.unreadable[:20])
            self.stderr.write(f"{column.label}: {len(progress.unreadable)} do not decrypt (ids {ids})")
        return len(progress.unreadable)

    def _check(self) -> None:
        left = {column.label: rotation.stale(column=column).count() for column in rotation.columns()}
        for label, count in left.items():
            self.stdout.write(f"{label}: {count} to re-seal")
        if any(left.values()):
            raise CommandError("Some values are sealed with an older key: run rotate_encryption.")
        self.stdout.write(self.style.SUCCESS("Every sealed value uses the newest key: older keys can be removed."))
