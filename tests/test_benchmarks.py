"""The benchmarks keep running, and their exact figures (counts, not timings) hold."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def run_bench(script: str, *args: str) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def test_the_acs_token_benchmark_prints_its_figures() -> None:
    figures = run_bench("acs_token.py", "--users", "3", "--rounds", "1", "--requests", "2")
    assert figures["entra_requests_per_cold_user"] == 1
    assert figures["exchanges_per_cold_user"] == 1
    assert figures["exchanges_for_50_concurrent"] == 1
    assert figures["warm_outbound_calls"] == 0
    assert figures["warm_ratio"] > 0


def test_the_graph_tenant_benchmark_pages_through_everything() -> None:
    figures = run_bench("graph_tenant.py", "--chats", "4", "--messages", "120", "--users", "3")
    # bob's 4 demo chats and the 4 generated ones; 120 messages each plus members-added events.
    assert figures["chats"] == 8
    assert figures["messages"] >= 4 * 120
    assert figures["page_request_ratio"] == 1.0
    assert figures["page_vs_bare_ratio"] > 0


def test_the_chat_sync_benchmark_reads_the_minimum_and_only_what_changed() -> None:
    figures = run_bench("chat_sync.py", "--chats", "8", "--messages", "120", "--users", "4", "--rounds", "1")
    # bob's 4 demo chats and the 8 generated ones: one chat-list page.
    assert figures["chats"] == 12
    assert figures["graph_requests"] == figures["graph_min_requests"]
    assert figures["graph_request_ratio"] == 1.0
    assert figures["nochange_requests"] == 1
    assert figures["changed_chats"] == 10
    assert figures["ten_changed_requests"] == 1 + 10
    assert figures["upsert_vs_copy_ratio"] > 0


def test_the_chat_page_benchmark_makes_the_same_queries_whatever_the_thread_length() -> None:
    figures: dict[str, Any] = run_bench("chat_page.py", "--sizes", "10,100,2000", "--requests", "3", "--warmup", "1")
    queries = figures["queries_by_size"]
    assert set(queries) == {"10", "100", "2000"}
    assert len(set(queries.values())) == 1
    assert figures["queries_constant"] is True
    assert set(figures["server_ms_by_size"]) == set(queries)
    assert figures["server_time_ratio"] > 0
