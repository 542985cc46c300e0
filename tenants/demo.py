"""Demo data for `make run`: the vendor apps registered in devcloud's demo seed.

These are demo credentials of devcloud's seeded directory (devcloud/seeds/demo.json),
never real ones.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DemoVendorApp:
    vendor: str
    client_id: str
    client_secret: str


CONTOSO = DemoVendorApp(
    vendor="Contoso",
    client_id="85d2ab3f-c604-4d0d-841d-1b66ee5b1d94",
    client_secret="TIs3zMK0sL62jKRbZ04SZUWob-x1yaYwUlX9ib0A",  # noqa: S106 - devcloud demo secret
)

DEMO_SIGN_INS = [
    ("alice@fabrikam.example", "Fabrikam-Demo-1", "Fabrikam, Global Administrator"),
    ("april@fabrikam.example", "Fabrikam-Demo-1", "Fabrikam, Application Administrator"),
    ("bob@fabrikam.example", "Fabrikam-Demo-1", "Fabrikam, member"),
    ("nina@northwind.example", "Northwind-Demo-1", "Northwind, Global Administrator"),
]
