"""Demo data for `make run`: the vendors registered in devcloud's demo seed.

These are demo credentials of devcloud's seeded directory (devcloud/seeds/demo.json),
never real ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class DemoVendor:
    name: str
    slug: str
    client_id: str
    client_secret: str = field(repr=False)
    acs_access_key: str = field(repr=False)
    staff: tuple[tuple[str, str, str], ...]  # (tid, oid, display name) in the vendor's home tenant


VENDORS = (
    DemoVendor(
        name="Contoso",
        slug="contoso",
        client_id="85d2ab3f-c604-4d0d-841d-1b66ee5b1d94",
        client_secret="TIs3zMK0sL62jKRbZ04SZUWob-x1yaYwUlX9ib0A",  # noqa: S106 - devcloud demo secret
        acs_access_key="8fdps+Abp/2f2/b/q1LD+283bS4KFId/DwuIwwU8yDk=",
        staff=(("e621b26d-5db8-4fa0-b36d-9540d4267a40", "4d1af519-53b0-4577-a432-fc55cbab3768", "Cora Support"),),
    ),
    DemoVendor(
        name="Litware",
        slug="litware",
        client_id="92672a41-15c4-4972-8d7c-9e8b0a2cdcc2",
        client_secret="X7rp1sDfRTrHTaS1-Xjg4F4gQtJwTeIh6qheGVke",  # noqa: S106 - devcloud demo secret
        acs_access_key="5e50xpYIOKghFNsdVhFAeepyeXUtJ8wm+aVC19DF6mI=",
        staff=(("0dc682c1-8bab-47e2-ad3d-18caa8a22c1c", "80c51f45-c77e-486f-a7e1-97c71d23b8de", "Lena Admin"),),
    ),
)

DEMO_SIGN_INS = [
    ("alice@fabrikam.example", "Fabrikam-Demo-1", "Fabrikam, Global Administrator: connects Fabrikam"),
    ("april@fabrikam.example", "Fabrikam-Demo-1", "Fabrikam, Application Administrator"),
    ("bob@fabrikam.example", "Fabrikam-Demo-1", "Fabrikam, member"),
    ("nina@northwind.example", "Northwind-Demo-1", "Northwind, Global Administrator"),
    ("support@contoso.example", "Contoso-Demo-1", "Contoso staff: the vendor dashboard"),
    ("admin@litware.example", "Litware-Demo-1", "Litware staff"),
    ("admin@tailspin.example", "Tailspin-Demo-1", "Tailspin's admin: registers Tailspin when the operator invites it"),
]

# The platform operator (a Django superuser): /admin/ signs in, /operator/ invites vendors.
DEMO_OPERATOR = ("operator", "Operator-Demo-1")
