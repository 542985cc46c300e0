"""devcloud stops at once and quietly, even while clients keep idle connections in their pools
(benchmarks print their JSON last: nothing may follow it when devcloud stops)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.devcloud_server import ROOT, DevCloud, free_port


def test_devcloud_stops_at_once_while_a_client_keeps_an_idle_connection(tmp_path: Path) -> None:
    port = free_port()
    command = [sys.executable, "-m", "devcloud", "--port", str(port), "--state-dir", str(tmp_path)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    session = DevCloud(base_url=f"https://127.0.0.1:{port}", state_dir=tmp_path).session()
    deadline = time.monotonic() + 30
    while True:
        try:
            assert session.get(f"https://127.0.0.1:{port}/_devcloud/health", timeout=2).ok
            break
        except (requests.ConnectionError, OSError):
            assert time.monotonic() < deadline and process.poll() is None, "devcloud did not start"
            time.sleep(0.1)
    # The session keeps its connection open and idle, as a client's pool does.
    started = time.monotonic()
    process.terminate()
    _, errors = process.communicate(timeout=10)
    assert time.monotonic() - started < 1.5
    # uvicorn raises the signal again once it has shut down: the exit is SIGTERM's.
    assert process.returncode in (0, -signal.SIGTERM)
    assert "graceful shutdown exceeded" not in errors and "ERROR" not in errors, errors
    session.close()
