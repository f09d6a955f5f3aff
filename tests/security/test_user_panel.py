"""The users list's "locked out" filter and the security panel of a user record."""

import pytest
from django.urls import reverse

from tests.builders import make_user

from .conftest import post_sign_in, set_policy


@pytest.fixture
def locked_fran(owner):
    set_policy(owner, lockout_threshold=3, lockout_minutes=15)
    fran = make_user(owner, username="fran", email="fran@example.test")
    from django.test import Client

    guesser = Client()
    for _ in range(3):
        post_sign_in(guesser, "fran", "wrong guess")
    return fran


@pytest.mark.django_db
def test_locked_out_filter(signed_in, admin_user, locked_fran, owner):
    other = make_user(owner, username="calm")
    client = signed_in(admin_user)
    page = client.get(reverse("accounts:user_list"), {"locked": "yes"}).content.decode()
    assert "fran" in page
    assert ">calm<" not in page and other.email not in page
    page = client.get(reverse("accounts:user_list"), {"locked": "no"}).content.decode()
    assert other.email in page
    assert locked_fran.email not in page


@pytest.mark.django_db
def test_security_tab_shows_lockout_and_unlocks(signed_in, admin_user, locked_fran):
    client = signed_in(admin_user)
    url = reverse("accounts:user_security", args=[locked_fran.pk])
    page = client.get(url).content.decode()
    assert "Locked out" in page
    assert reverse("security:lockout_clear", args=[locked_fran.pk]) in page
    assert reverse("security:user_sessions", args=[locked_fran.pk]) in page
    response = client.post(
        reverse("security:lockout_clear", args=[locked_fran.pk]),
        {"reason": "Verified by phone", "next": url},
    )
    assert response.status_code == 302
    assert "Not locked" in client.get(url).content.decode()


@pytest.mark.django_db
def test_reader_sees_the_state_but_no_unlock(signed_in, owner, locked_fran):
    reader = make_user(owner, username="reader", grants={"users": "read"})
    page = (
        signed_in(reader)
        .get(reverse("accounts:user_security", args=[locked_fran.pk]))
        .content.decode()
    )
    assert "Locked out" in page
    assert reverse("security:lockout_clear", args=[locked_fran.pk]) not in page
