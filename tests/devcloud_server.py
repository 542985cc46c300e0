"""A devcloud process for the test session, and a client of its control API."""

from __future__ import annotations

import html
import re
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests

ROOT = Path(__file__).resolve().parent.parent

# The cast, from devcloud/seeds/demo.json.
FABRIKAM = "f2ad299b-bac7-4e0c-9e5d-11918d78f6da"
NORTHWIND = "7c39ba4c-6c47-43ce-ad57-0161ff123a9f"
CONTOSO_TENANT = "e621b26d-5db8-4fa0-b36d-9540d4267a40"
CONTOSO_APP = "85d2ab3f-c604-4d0d-841d-1b66ee5b1d94"
CONTOSO_SECRET = "TIs3zMK0sL62jKRbZ04SZUWob-x1yaYwUlX9ib0A"
LITWARE_APP = "92672a41-15c4-4972-8d7c-9e8b0a2cdcc2"
TAILSPIN_TENANT = "e6856b7e-fe64-4ffc-b565-f1650a0ff5ea"
TAILSPIN_DOMAIN = "tailspin.example"
TAILSPIN_APP = "535b6039-8988-40a2-b397-f24a00122146"
TAILSPIN_SECRET = "yBf8Q~A9GhPW3G~iuGOFSUatRmHOx0QppkcSPcBp"
TAILSPIN_ACS_RESOURCE = "75f6bf23-1ca6-49d9-8ff1-a404c8fe0ff8"
TAILSPIN_ACS_KEY = "YOS4AL9JxyzMRLXqgryAXi2mSqe6DQdTIBO599PJKY0="
TAILSPIN_ACS_INDEX = 2  # its place in /_devcloud/directory's acs_resources
# The key and self-signed certificate devcloud generates for Tailspin Teams, relative to its state dir.
TAILSPIN_KEY_FILE = "apps/tailspin-teams.key.pem"
TAILSPIN_CERTIFICATE_FILE = "apps/tailspin-teams.cert.pem"
PASSWORDS = {
    "fabrikam.example": "Fabrikam-Demo-1",
    "northwind.example": "Northwind-Demo-1",
    "contoso.example": "Contoso-Demo-1",
    "outlook.example": "Personal-Demo-1",
    "tailspin.example": "Tailspin-Demo-1",
}
USERS = {
    "alice": ("alice@fabrikam.example", "c6cf7057-2afb-4445-aecf-cfd5aff908d0"),
    "april": ("april@fabrikam.example", "0622dde6-7ead-4a63-aa96-71f5ef1867e6"),
    "cloe": ("cloe@fabrikam.example", "e83dd11a-ac26-4d3e-89ee-6973560a8516"),
    "tom": ("tom@fabrikam.example", "c221ee46-b8ad-4ba3-af08-97172ea27488"),
    "bob": ("bob@fabrikam.example", "db91e66a-aaae-4b6e-a544-7f5813883208"),
    "dave": ("dave@fabrikam.example", "4fe8cc3c-0083-464d-b886-b7e49891ca71"),
    "charlie": ("charlie@northwind.example", "f90a3aff-fb28-4e58-b059-cbbac548ad76"),
    "pat": ("pat@outlook.example", "6909d3db-f69e-4871-8022-026efca8a482"),
    "tanya": ("admin@tailspin.example", "701a042c-4fd3-4349-95b4-6866d028eda6"),
    "sam": ("sam@tailspin.example", "6936c327-0e33-47b2-bd82-07e26220e4f0"),
}
ACS_SCOPES = [
    "https://auth.msft.communication.azure.com/Teams.ManageCalls",
    "https://auth.msft.communication.azure.com/Teams.ManageChats",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def password_of(upn: str) -> str:
    return PASSWORDS[upn.split("@", 1)[1]]


@dataclass
class DevCloud:
    base_url: str
    state_dir: Path
    process: subprocess.Popen[bytes] | None = None
    http: requests.Session = field(default_factory=requests.Session)

    @property
    def ca(self) -> str:
        return str(self.state_dir / "ca.pem")

    @property
    def ca_bundle(self) -> str:
        return str(self.state_dir / "ca-bundle.pem")

    def tls(self) -> ssl.SSLContext:
        """An SSL context that trusts devcloud only (for httpx)."""
        return ssl.create_default_context(cafile=self.ca)

    def session(self) -> requests.Session:
        """A requests session that trusts devcloud (and nothing from the environment)."""
        session = requests.Session()
        session.trust_env = False
        session.verify = self.ca
        return session

    def control(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, f"{self.base_url}/_devcloud{path}", timeout=10, **kwargs)
        response.raise_for_status()
        return response.json()

    def reset(self) -> None:
        self.control("POST", "/reset")

    def grant_consent(self, tenant: str, client_id: str = CONTOSO_APP, scopes: list[str] | None = None) -> None:
        self.control("POST", f"/tenants/{tenant}/apps/{client_id}/grant-consent", json={"scopes": scopes or []})

    def requests(self, **params: str) -> list[dict[str, Any]]:
        return list(self.control("GET", "/requests", params=params)["requests"])

    def acs_connection_string(self, index: int = 0) -> str:
        return str(self.control("GET", "/directory")["acs_resources"][index]["connection_string"])

    @classmethod
    def start(
        cls,
        state_dir: Path,
        *,
        seed: Path | None = None,
        spawn: Callable[[list[str]], subprocess.Popen[bytes]] | None = None,
    ) -> DevCloud:
        """devcloud on a free port, once it answers; `seed` instead of its demo seed; `spawn` starts
        the process (a benchmark's, to stop it with the others), else a child of this one."""
        port = free_port()
        argv = [sys.executable, "-m", "devcloud", "--port", str(port), "--state-dir", str(state_dir)]
        argv += ["--seed", str(seed)] if seed is not None else []
        process = spawn(argv) if spawn is not None else subprocess.Popen(argv, cwd=ROOT)
        devcloud = cls(base_url=f"https://127.0.0.1:{port}", state_dir=state_dir, process=process)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError("devcloud exited while starting")
            if (state_dir / "ca.pem").exists():
                devcloud.http = devcloud.session()
                try:
                    devcloud.http.get(f"{devcloud.base_url}/_devcloud/health", timeout=2)
                    return devcloud
                except requests.ConnectionError:
                    pass
            time.sleep(0.1)
        process.kill()
        raise RuntimeError("devcloud did not start within 30 s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


# Driving devcloud's sign-in pages without a browser ------------------------------------------
def hidden_inputs(page: str) -> dict[str, str]:
    return {
        html.unescape(m.group(1)): html.unescape(m.group(2))
        for m in re.finditer(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page)
    }


def form_action(page: str) -> str:
    match = re.search(r'<form method="post" action="([^"]+)"', page)
    assert match, page
    return html.unescape(match.group(1))


@dataclass
class SignIn:
    """What the browser ended on: a redirect back to the app (its query), or a page."""

    redirect: str | None
    page: str | None

    @property
    def params(self) -> dict[str, str]:
        assert self.redirect is not None, self.page
        return dict(parse_qsl(urlsplit(self.redirect).query))


def sign_in(
    devcloud: DevCloud,
    url: str,
    upn: str,
    *,
    password: str | None = None,
    consent: str | None = "accept",
    tenant_wide: bool = False,
    browser: requests.Session | None = None,
) -> SignIn:
    """Open an authorize/adminconsent URL, sign in on the form, answer a consent page."""
    browser = browser or devcloud.session()
    response = browser.get(url, allow_redirects=False, timeout=10)
    if 'name="password"' in response.text:
        data = {**hidden_inputs(response.text), "username": upn, "password": password or password_of(upn)}
        response = browser.post(
            devcloud.base_url + form_action(response.text), data=data, allow_redirects=False, timeout=10
        )
    if response.is_redirect:
        return SignIn(response.headers["location"], None)
    if "idBtn_Accept" in response.text and consent:
        data = {**hidden_inputs(response.text), "action": consent}
        if tenant_wide:
            data["tenant_wide"] = "on"
        response = browser.post(
            devcloud.base_url + form_action(response.text), data=data, allow_redirects=False, timeout=10
        )
        if response.is_redirect:
            return SignIn(response.headers["location"], None)
    return SignIn(None, response.text)
