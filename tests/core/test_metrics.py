"""Metrics across processes: each writes its own file, a scrape adds them up."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

from core import metrics

ROOT = Path(__file__).resolve().parents[2]


def python(code: str, directory: Path) -> str:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    setup = "import django; django.setup(); from core import metrics; "
    run = subprocess.run(
        [sys.executable, "-c", setup + code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return run.stdout


def test_a_scrape_adds_up_every_process_that_writes_to_the_directory(tmp_path: Path) -> None:
    for _ in range(2):
        python("metrics.graph_request(429); metrics.chat_sync_lag.observe(3)", tmp_path)
    text = python("print(metrics.scrape()[0].decode())", tmp_path)
    assert re.search(r'^portal_graph_requests_total\{status="429",tenant="",vendor=""\} 2\.0$', text, re.M)
    assert re.search(r"^portal_chat_sync_lag_seconds_count 2\.0$", text, re.M)
    assert re.search(r'^portal_chat_sync_lag_seconds_bucket\{le="5\.0"\} 2\.0$', text, re.M)
    # Named by host and pid: containers sharing the directory on a volume keep apart.
    host = socket.gethostname().replace("_", "-")
    names = sorted(path.name for path in tmp_path.iterdir())
    assert len(names) >= 4 and all(re.fullmatch(rf"(counter|histogram)_{re.escape(host)}-\d+\.db", n) for n in names)


def test_status_classes_keep_429_apart() -> None:
    assert [metrics.status_class(s) for s in (200, 204, 302, 404, 429, 503, 0)] == [
        "2xx",
        "2xx",
        "3xx",
        "4xx",
        "429",
        "5xx",
        "error",
    ]


def test_a_webhook_delivery_counts_its_matched_and_refused_items() -> None:
    matched = metrics.webhook_items.labels(kind="notifications", outcome="matched")
    refused = metrics.webhook_items.labels(kind="notifications", outcome="refused")
    before = (matched._value.get(), refused._value.get())
    metrics.webhook_delivery("notifications", matched=3, refused=1)
    assert (matched._value.get() - before[0], refused._value.get() - before[1]) == (3, 1)


def test_a_directory_that_cannot_be_made_leaves_each_process_its_own_figures(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such"
    text = python("metrics.graph_request(200); print(metrics.scrape()[0].decode())", missing)
    assert re.search(r'^portal_graph_requests_total\{status="2xx",tenant="",vendor=""\} 1\.0$', text, re.M)
    assert not (tmp_path / "no").exists()
