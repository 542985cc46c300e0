"""django-allauth's Microsoft provider signs a seeded user in against devcloud."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from allauth.socialaccount.models import SocialAccount, SocialApp
from django.contrib.sites.models import Site
from django.test import Client

from tests.devcloud_server import CONTOSO_APP, CONTOSO_SECRET, FABRIKAM, USERS, DevCloud, sign_in


@pytest.mark.django_db
@pytest.mark.urls("tests.devcloud.allauth_urls")
def test_allauth_signs_a_seeded_user_in(devcloud_settings: DevCloud) -> None:
    devcloud = devcloud_settings
    devcloud.grant_consent(FABRIKAM)
    app = SocialApp.objects.create(
        provider="microsoft",
        name="Contoso",
        client_id=CONTOSO_APP,
        secret=CONTOSO_SECRET,
        settings={"tenant": "organizations", "login_url": devcloud.base_url, "graph_url": devcloud.base_url},
    )
    app.sites.set([Site.objects.get_current()])
    client = Client(SERVER_NAME="localhost")

    start = client.post("/accounts/microsoft/login/")
    assert start.status_code == 302
    assert start["Location"].startswith(f"{devcloud.base_url}/organizations/oauth2/v2.0/authorize?")

    back = sign_in(devcloud, start["Location"], USERS["bob"][0])
    assert back.redirect is not None
    callback = urlsplit(back.redirect)
    finished = client.get(callback.path, dict(back.params.items()))
    assert finished.status_code == 302, finished.content[:500]
    assert finished["Location"] == "/"

    account = SocialAccount.objects.get(provider="microsoft")
    assert account.uid == USERS["bob"][1]
    assert account.extra_data["userPrincipalName"] == USERS["bob"][0]
    assert "_auth_user_id" in client.session
    me = list(devcloud.requests(service="graph"))
    assert [r["status"] for r in me] == [200]
