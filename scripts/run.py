"""`make run`: the Procfile's processes (devcloud, the web server and its HTTPS twin for Graph's
webhooks, a Celery worker and beat) under honcho, stopped together by Ctrl-C.

`--procfile FILE` runs every entry of FILE with the current environment, and nothing else."""

from __future__ import annotations

import argparse
import base64
import contextlib
import ctypes
import multiprocessing
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Any

import honcho.manager  # type: ignore[import-untyped]
from honcho.environ import parse_procfile  # type: ignore[import-untyped]
from honcho.manager import Manager  # type: ignore[import-untyped]
from honcho.process import Popen, Process  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
VAR = ROOT / "var"
PROCFILE = ROOT / "Procfile"
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
LIBC = ctypes.CDLL(None, use_errno=True)
# What a runner gets when the supervisor dies: a signal that nobody else sends it (it ignores
# SIGINT and SIGTERM, which reach the whole process group on Ctrl-C or `kill -TERM -PGID`).
ORPHANED = signal.SIGUSR1


def fail(message: str) -> None:
    print(f"\n{message}\n", file=sys.stderr)
    sys.exit(1)


# --- Processes that die with their parent ---


def die_with_parent(sig: signal.Signals, parent: int) -> None:
    """Have Linux send `sig` to this process when `parent` dies, even of SIGKILL."""
    if sys.platform != "linux":
        return
    if LIBC.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    # If the parent died before prctl, nobody will ever send the signal.
    if os.getppid() != parent:
        os._exit(1)


class BoundProcess(Process):  # type: ignore[misc]
    """A honcho process that does not outlive the supervisor.

    honcho runs each command from a forked runner, the command in a session of its own: both would
    survive a supervisor killed by SIGKILL. Here Linux tells the runner when the supervisor dies,
    and the runner stops the command's whole process group, as the supervisor would have; should the
    runner itself be killed first, the command still gets SIGTERM."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._supervisor = os.getpid()

    def run(self, events: Any = None, ignore_signals: bool = False) -> None:
        signal.signal(ORPHANED, self._stop_command)
        die_with_parent(ORPHANED, self._supervisor)
        # Set between fork and exec: it survives the exec of `sh -c`, and that of the command when the
        # shell execs it (the Procfile's `exec`), but not a fork.
        keep_runner = partial(die_with_parent, signal.SIGTERM, os.getpid())
        self._child_ctor = partial(Popen, preexec_fn=keep_runner)
        super().run(events, ignore_signals)

    def _stop_command(self, signum: int, frame: FrameType | None) -> None:
        if self._child is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._child.pid, signal.SIGTERM)
        # Nobody reads our output any more: leave at once.
        os._exit(1)


# Seconds between SIGTERM and SIGKILL when stopping: a Celery worker's warm shutdown finishes its
# tasks (those cut short are delivered again: acks_late).
honcho.manager.KILL_WAIT = 10


class Supervisor(Manager):  # type: ignore[misc]
    """honcho's Manager (2.0.0) with bound processes, which also stops processes that are still
    starting, and remembers what stopped by itself."""

    def __init__(self) -> None:
        super().__init__()
        self._process_ctor = BoundProcess
        self._stopping = False
        self.stopped_by_itself: list[str] = []

    def terminate(self) -> None:
        # Called on SIGINT/SIGTERM, or when a first process stops: what has stopped by then did so by itself.
        if not self._stopping:
            self._stopping = True
            self.stopped_by_itself = [name for name, proc in self._processes.items() if "returncode" in proc]
        # A process still starting has no pid to signal yet: once all have one, the loop calls
        # terminate() again, since _any_stopped() is then true.
        if self._all_started():
            super().terminate()

    def _any_stopped(self) -> bool:
        return self._stopping or super()._any_stopped()


def read_procfile(path: Path) -> dict[str, str]:
    return dict(parse_procfile(path.read_text()).processes)


def supervise(processes: dict[str, str], env: dict[str, str]) -> int:
    """Run the processes until Ctrl-C, SIGTERM or one of them stops; then stop them all."""
    # The Procfile's `python` is the one running this script; output appears line by line.
    env = {**env, "PATH": f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}", "PYTHONUNBUFFERED": "1"}
    manager = Supervisor()
    for name, command in processes.items():
        manager.add_process(name, command, env=env, cwd=str(ROOT))
    manager.loop()
    if manager.stopped_by_itself:
        print(f"\n{', '.join(manager.stopped_by_itself)} stopped by itself, so everything stopped.\n", file=sys.stderr)
        return 1
    print("Everything stopped.", flush=True)
    return 0


# --- Development: devcloud, demo data, local secrets ---


def check_redis(url: str) -> None:
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        fail(
            f"Redis does not answer at {url} ({type(exc).__name__}).\n"
            "Start one, then run `make run` again:\n"
            "  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no\n"
            "or with Docker: docker compose up -d redis\n"
            "or point REDIS_URL at a running Redis."
        )


def secret_file(name: str, make: Callable[[], str]) -> Path:
    path = VAR / name
    if not path.exists():
        VAR.mkdir(exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(make())
    return path


def new_encryption_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


def environment(port: int, devcloud_port: int, webhook_port: int | None) -> dict[str, str]:
    devcloud = f"https://127.0.0.1:{devcloud_port}"
    env = dict(os.environ)
    env.update(PORT=str(port), DEVCLOUD_PORT=str(devcloud_port))
    if webhook_port is not None:
        # Graph notifies https URLs only: the "webhook" process serves the portal over HTTPS.
        env["WEBHOOK_PORT"] = str(webhook_port)
        env["GRAPH_NOTIFICATION_URL"] = f"https://127.0.0.1:{webhook_port}"
    env.setdefault("DEBUG", "true")
    if "SECRET_KEY" not in env:
        env.setdefault("SECRET_KEY_FILE", str(secret_file("secret_key", lambda: secrets.token_urlsafe(50))))
    if "ENCRYPTION_KEYS" not in env:
        env.setdefault("ENCRYPTION_KEYS_FILE", str(secret_file("encryption_key", new_encryption_key)))
    env.setdefault("ENTRA_LOGIN_URL", devcloud)
    env.setdefault("GRAPH_URL", devcloud)
    env.setdefault("MICROSOFT_CA_BUNDLE", str(VAR / "devcloud" / "ca-bundle.pem"))
    env.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost")
    env.setdefault("ACS_ENDPOINT_DOMAINS", "127.0.0.1")  # devcloud's ACS
    # Every process writes its metrics here; /metrics (with METRICS_TOKEN set) adds them up.
    env.setdefault("PROMETHEUS_MULTIPROC_DIR", str(VAR / "prometheus"))
    return env


def empty_metrics(directory: str) -> None:
    """The previous run's metrics go: its processes are gone (prometheus_client's multiprocess mode)."""
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    for old in path.glob("*.db"):
        old.unlink()


def ensure_devcloud_certificates() -> None:
    """devcloud's CA and HTTPS certificate, made by devcloud itself (a process of its own, as in the
    Procfile): the webhook serves that certificate and the portal trusts that CA, so they must exist
    before anything starts."""
    command = [sys.executable, "-m", "devcloud", "--state-dir", str(VAR / "devcloud"), "--certificates-only"]
    if subprocess.run(command, cwd=ROOT, check=False).returncode != 0:
        fail("devcloud could not create its certificates; see its output above.")


def bootstrap(env: dict[str, str], port: int) -> None:
    command = [sys.executable, "manage.py", "bootstrap", "--demo", "--site-domain", f"127.0.0.1:{port}"]
    if subprocess.run(command, cwd=ROOT, env=env, check=False).returncode != 0:
        fail("bootstrap failed; see its output above.")


def development_processes(with_webhook: bool) -> dict[str, str]:
    """Every line of the Procfile; the webhook only when devcloud is to notify this machine."""
    processes = read_procfile(PROCFILE)
    if not with_webhook:
        del processes["webhook"]
    return processes


def banner(env: dict[str, str]) -> str:
    port, devcloud_port = env["PORT"], env["DEVCLOUD_PORT"]
    return (
        # localhost, not 127.0.0.1: the ACS Calling SDK wants a secure context (https or localhost).
        f"\n  Portal:   http://localhost:{port}/\n"
        f"  Health:   http://127.0.0.1:{port}/healthz\n"
        f"  Metrics:  http://127.0.0.1:{port}/metrics {'(Authorization: Bearer $METRICS_TOKEN)' if env.get('METRICS_TOKEN') else '(set METRICS_TOKEN to scrape)'}\n"
        f"  devcloud: https://127.0.0.1:{devcloud_port}/_devcloud/directory\n"
        f"  Graph notifies: {env['GRAPH_NOTIFICATION_URL']}/graph/notifications/\n"
        "  Ctrl-C stops everything.\n"
    )


def interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def develop() -> int:
    port = int(os.environ.get("PORT", "8000"))
    devcloud_port = int(os.environ.get("DEVCLOUD_PORT", "8443"))
    # Without a public URL of the user's own, devcloud notifies a local HTTPS server.
    webhook_port = None if os.environ.get("GRAPH_NOTIFICATION_URL") else int(os.environ.get("WEBHOOK_PORT", "8444"))
    env = environment(port, devcloud_port, webhook_port)
    check_redis(env.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    empty_metrics(env["PROMETHEUS_MULTIPROC_DIR"])
    processes = development_processes(with_webhook=webhook_port is not None)
    ensure_devcloud_certificates()
    bootstrap(env, port)
    print(banner(env), flush=True)
    return supervise(processes, env)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--procfile", type=Path, help="run every entry of this Procfile, without devcloud or bootstrap")
    args = parser.parse_args(argv)
    # Runners must be forked children of the supervisor for PR_SET_PDEATHSIG (Python 3.14 would use forkserver).
    multiprocessing.set_start_method("fork")
    if args.procfile:
        sys.exit(supervise(read_procfile(args.procfile), dict(os.environ)))
    # Until the processes start (honcho has handlers of its own), Ctrl-C and SIGTERM stop the
    # preparation; explicit, so that they work even when our parent ignores SIGINT.
    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    try:
        sys.exit(develop())
    except KeyboardInterrupt:
        print("\nStopped.", file=sys.stderr)


if __name__ == "__main__":
    main()
