"""scripts/run.py, the supervisor behind `make run`: it stops every process it started, and every
process those started, however it is stopped itself."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / "scripts" / "run.py"

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc; PR_SET_PDEATHSIG is Linux's")

# Every command line names the test's directory (a harmless extra argument), so that the test
# finds all of them: the supervisor, its runners, the commands and their children.
SLEEP = 'python -c "import time; time.sleep(600)" {mark}'
# A server that starts a worker of its own and leaves it to whoever stops the server.
SERVER = (
    'python -c "import subprocess, sys, time; '
    "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)', sys.argv[1]]); "
    'time.sleep(600)" {mark}'
)
LONG_RUNNING = {
    "sleeper": f"exec {SLEEP}",
    "server": f"exec {SERVER}",
    # Without `exec`, sh stays between the runner and the command.
    "shell": SLEEP,
}
# Sleeper, server and its worker, shell's sh and its python.
LONG_RUNNING_COMMANDS = 5


def load_run() -> ModuleType:
    spec = importlib.util.spec_from_file_location("run", RUN)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def command_lines_naming(mark: Path) -> dict[int, bytes]:
    """Live processes whose command line names `mark` (a zombie's command line is empty)."""
    found = {}
    for path in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            cmdline = path.read_bytes()
        except OSError:
            continue
        if str(mark).encode() in cmdline:
            found[int(path.parent.name)] = cmdline
    return found


def all_running(mark: Path, commands: int) -> bool:
    """The supervisor and its runners (forks of it, with its command line) and every command are up."""
    cmdlines = command_lines_naming(mark).values()
    supervisors = sum(b"--procfile" in cmdline for cmdline in cmdlines)
    return supervisors == 1 + len(LONG_RUNNING) and len(cmdlines) - supervisors == commands


def assert_all_gone(mark: Path, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while left := command_lines_naming(mark):
        assert time.monotonic() < deadline, f"still running: {list(left.values())}"
        time.sleep(0.1)


@pytest.fixture
def mark(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    for pid in command_lines_naming(tmp_path):  # a failed test leaves nothing behind either
        os.kill(pid, signal.SIGKILL)


def start_supervisor(mark: Path, entries: dict[str, str]) -> subprocess.Popen[str]:
    procfile = mark / "Procfile"
    procfile.write_text("".join(f"{name}: {line.format(mark=mark)}\n" for name, line in entries.items()))
    # A session of its own, as a terminal's foreground job has a process group of its own.
    return subprocess.Popen(
        [sys.executable, str(RUN), "--procfile", str(procfile)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def started(mark: Path) -> subprocess.Popen[str]:
    supervisor = start_supervisor(mark, LONG_RUNNING)
    deadline = time.monotonic() + 20
    while not all_running(mark, LONG_RUNNING_COMMANDS):
        assert time.monotonic() < deadline, f"not all started: {list(command_lines_naming(mark).values())}"
        time.sleep(0.1)
    return supervisor


def test_ctrl_c_stops_every_process_and_their_children(mark: Path) -> None:
    supervisor = started(mark)
    os.killpg(supervisor.pid, signal.SIGINT)  # what a terminal does on Ctrl-C
    output, _ = supervisor.communicate(timeout=20)
    assert supervisor.returncode == 0, output
    assert "SIGINT received" in output
    assert "Everything stopped." in output
    assert_all_gone(mark)


def test_ctrl_c_while_the_processes_start_stops_them_all_the_same(mark: Path) -> None:
    supervisor = start_supervisor(mark, LONG_RUNNING)
    deadline = time.monotonic() + 20
    # As soon as the first runner is forked, before honcho knows every pid.
    while sum(b"--procfile" in cmdline for cmdline in command_lines_naming(mark).values()) < 2:
        assert time.monotonic() < deadline, "no runner started"
    os.killpg(supervisor.pid, signal.SIGINT)
    output, _ = supervisor.communicate(timeout=20)
    assert "Everything stopped." in output
    assert_all_gone(mark)


def test_sigterm_stops_every_process_and_their_children(mark: Path) -> None:
    supervisor = started(mark)
    supervisor.terminate()
    output, _ = supervisor.communicate(timeout=20)
    assert supervisor.returncode == 0, output
    assert "SIGTERM received" in output
    for name in LONG_RUNNING:
        assert f"sending SIGTERM to {name}" in output
    assert_all_gone(mark)


def test_when_one_process_exits_everything_stops_and_it_says_which(mark: Path) -> None:
    entries = {**LONG_RUNNING, "quitter": 'exec python -c "import time; time.sleep(1); raise SystemExit(3)" {mark}'}
    supervisor = start_supervisor(mark, entries)
    output, _ = supervisor.communicate(timeout=30)
    assert supervisor.returncode == 1, output
    assert "quitter stopped (rc=3)" in output
    assert "quitter stopped by itself, so everything stopped." in output
    assert_all_gone(mark)


def test_sigkill_of_the_supervisor_leaves_no_orphan(mark: Path) -> None:
    supervisor = started(mark)
    supervisor.kill()
    assert_all_gone(mark, timeout=10)
    supervisor.communicate(timeout=5)


def test_make_run_runs_the_procfile_and_the_webhook_only_without_a_notification_url() -> None:
    run = load_run()
    assert run.PROCFILE == ROOT / "Procfile"
    assert set(run.development_processes(with_webhook=True)) == {"web", "worker", "beat", "devcloud", "webhook"}
    assert "webhook" not in run.development_processes(with_webhook=False)


def test_make_run_points_the_portal_at_devcloud_and_its_webhook(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GRAPH_NOTIFICATION_URL", raising=False)
    env = load_run().environment(8100, 8543, 8544)
    assert (env["PORT"], env["DEVCLOUD_PORT"], env["WEBHOOK_PORT"]) == ("8100", "8543", "8544")
    assert env["ENTRA_LOGIN_URL"] == env["GRAPH_URL"] == "https://127.0.0.1:8543"
    assert env["GRAPH_NOTIFICATION_URL"] == "https://127.0.0.1:8544"
    assert env["MICROSOFT_CA_BUNDLE"].endswith("var/devcloud/ca-bundle.pem")
