"""`make run`: devcloud, the web server (and its HTTPS twin for Graph's webhooks), a Celery worker and
beat, stopped together by Ctrl-C."""

from __future__ import annotations

import base64
import os
import secrets
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
VAR = ROOT / "var"


def fail(message: str) -> None:
    print(f"\n{message}\n", file=sys.stderr)
    sys.exit(1)


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


def environment(port: int, devcloud_port: int, webhook_port: int | None) -> dict[str, str]:
    devcloud = f"https://127.0.0.1:{devcloud_port}"
    env = dict(os.environ)
    if webhook_port is not None:
        # Graph notifies https URLs only: the "webhook" process serves the portal over HTTPS.
        env["GRAPH_NOTIFICATION_URL"] = f"https://127.0.0.1:{webhook_port}"
    env.setdefault("DEBUG", "true")
    if "SECRET_KEY" not in env:
        env.setdefault("SECRET_KEY_FILE", str(secret_file("secret_key", lambda: secrets.token_urlsafe(50))))
    if "ENCRYPTION_KEYS" not in env:
        new_key = lambda: base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")  # noqa: E731
        env.setdefault("ENCRYPTION_KEYS_FILE", str(secret_file("encryption_key", new_key)))
    env.setdefault("ENTRA_LOGIN_URL", devcloud)
    env.setdefault("GRAPH_URL", devcloud)
    env.setdefault("MICROSOFT_CA_BUNDLE", str(VAR / "devcloud" / "ca-bundle.pem"))
    env.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def wait_for_devcloud(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    ca = VAR / "devcloud" / "ca.pem"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            fail("devcloud stopped while starting; see its output above.")
        if ca.exists():
            try:
                context = ssl.create_default_context(cafile=str(ca))
                urllib.request.urlopen(f"https://127.0.0.1:{port}/_devcloud/health", context=context, timeout=2)
                return
            except OSError:
                pass
        time.sleep(0.2)
    fail(f"devcloud did not answer on port {port} within {timeout:.0f} s.")


def pipe(name: str, proc: subprocess.Popen[bytes]) -> None:
    assert proc.stdout is not None
    for line in iter(proc.stdout.readline, b""):
        sys.stdout.write(f"{name:>8} | {line.decode(errors='replace')}")
        sys.stdout.flush()


def start(name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    threading.Thread(target=pipe, args=(name, proc), daemon=True).start()
    return proc


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([str(VENV_BIN / "python"), "manage.py", *args], cwd=ROOT, env=env, check=True)


def main() -> None:
    port = int(os.environ.get("PORT", "8000"))
    devcloud_port = int(os.environ.get("DEVCLOUD_PORT", "8443"))
    # Without a public URL of the user's own, devcloud notifies a local HTTPS server.
    webhook_port = None if os.environ.get("GRAPH_NOTIFICATION_URL") else int(os.environ.get("WEBHOOK_PORT", "8444"))
    env = environment(port, devcloud_port, webhook_port)
    check_redis(env.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    python = str(VENV_BIN / "python")
    procs: dict[str, subprocess.Popen[bytes]] = {}

    def stop(*_: object) -> None:
        for proc in procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for proc in procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)

    # Explicit, so that Ctrl-C works even when the parent started us with SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        procs["devcloud"] = start(
            "devcloud",
            [python, "-m", "devcloud", "--port", str(devcloud_port), "--state-dir", str(VAR / "devcloud")],
            env,
        )
        wait_for_devcloud(devcloud_port, procs["devcloud"])
        manage(env, "bootstrap", "--demo", "--site-domain", f"127.0.0.1:{port}")
        # No access log: callback URLs carry OAuth authorization codes in their query.
        uvicorn = [python, "-m", "uvicorn", "portal.asgi:application", "--host", "127.0.0.1", "--no-access-log"]
        procs["web"] = start("web", [*uvicorn, "--port", str(port)], env)
        if webhook_port is not None:
            tls = ["--ssl-certfile", str(VAR / "devcloud" / "server.pem")]
            tls += ["--ssl-keyfile", str(VAR / "devcloud" / "server-key.pem")]
            procs["webhook"] = start("webhook", [*uvicorn, "--port", str(webhook_port), *tls], env)
        procs["worker"] = start(
            "worker", [python, "-m", "celery", "-A", "portal", "worker", "-l", "info", "--concurrency", "2"], env
        )
        procs["beat"] = start("beat", [python, "-m", "celery", "-A", "portal", "beat", "-l", "info"], env)
        print(
            # localhost, not 127.0.0.1: the ACS Calling SDK wants a secure context (https or localhost).
            f"\n  Portal:   http://localhost:{port}/\n"
            f"  Health:   http://127.0.0.1:{port}/healthz\n"
            f"  devcloud: https://127.0.0.1:{devcloud_port}/_devcloud/directory\n"
            f"  Graph notifies: {env['GRAPH_NOTIFICATION_URL']}/graph/notifications/\n"
            "  Ctrl-C stops everything.\n",
            flush=True,
        )
        while all(proc.poll() is None for proc in procs.values()):
            time.sleep(0.5)
        stopped = [name for name, proc in procs.items() if proc.poll() is not None]
        fail(f"{', '.join(stopped)} stopped; stopping the rest.")
    except KeyboardInterrupt:
        print("\nStopping…", flush=True)
    finally:
        stop()


if __name__ == "__main__":
    main()
