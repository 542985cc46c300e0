from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client


@pytest.mark.django_db
def test_there_is_no_local_sign_up(client: Client) -> None:
    assert client.get("/accounts/signup/").status_code == 404
    assert client.post("/accounts/signup/", {"username": "mallory"}).status_code == 404
    assert not get_user_model().objects.filter(username="mallory").exists()


@pytest.mark.django_db
def test_there_is_no_password_sign_in_outside_the_django_admin(client: Client) -> None:
    get_user_model().objects.create_user("operator", password="a-long-password-1")
    client.post("/accounts/login/", {"login": "operator", "password": "a-long-password-1"})
    assert "_auth_user_id" not in client.session
