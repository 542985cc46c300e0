from __future__ import annotations

from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from portal.env import env_bool, env_int, env_list, env_str


def test_it_reads_a_setting_from_a_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s3cret\n")
    monkeypatch.setenv("SOME_SECRET_FILE", str(secret))
    assert env_str("SOME_SECRET") == "s3cret"


def test_it_fails_loudly_on_a_missing_required_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REQUIRED_THING", raising=False)
    with pytest.raises(ImproperlyConfigured, match="REQUIRED_THING is required"):
        env_str("REQUIRED_THING")


def test_it_fails_loudly_on_an_unreadable_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("THING_FILE", str(tmp_path / "missing"))
    with pytest.raises(ImproperlyConfigured, match="THING_FILE"):
        env_str("THING")


@pytest.mark.parametrize(("raw", "value"), [("true", True), ("1", True), ("off", False), ("No", False)])
def test_it_reads_booleans(monkeypatch: pytest.MonkeyPatch, raw: str, value: bool) -> None:
    monkeypatch.setenv("FLAG", raw)
    assert env_bool("FLAG", not value) is value


def test_an_empty_variable_means_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLAG", "")
    monkeypatch.setenv("URL", "")
    monkeypatch.setenv("COUNT", " ")
    assert env_bool("FLAG", True) is True
    assert env_str("URL", "redis://default") == "redis://default"
    assert env_int("COUNT", 3) == 3


def test_it_refuses_a_boolean_it_cannot_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="not a boolean"):
        env_bool("FLAG", False)


def test_it_refuses_an_integer_it_cannot_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COUNT", "ten")
    with pytest.raises(ImproperlyConfigured, match="not an integer"):
        env_int("COUNT", 1)


def test_it_splits_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOSTS", " a.example, b.example ,")
    assert env_list("HOSTS") == ["a.example", "b.example"]
