"""A web process, once started, has loaded its views and frozen its long-lived objects."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("entry", ["portal.asgi", "portal.wsgi"])
def test_the_application_settles_its_process(entry: str) -> None:
    """In a process of its own, as uvicorn (or a WSGI server) imports it."""
    script = (
        f"import gc, sys; import {entry}; "
        "print(gc.get_freeze_count(), 'chat.views' in sys.modules, gc.get_threshold()[0])"
    )
    answer = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT)
    frozen, views_loaded, young = answer.stdout.split()
    assert int(frozen) > 10_000
    assert views_loaded == "True"
    assert int(young) == 10_000
