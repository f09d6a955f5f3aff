"""Token screens are offered where they would be served: the menu and the user record."""

import pytest
from django.urls import reverse

from tests.builders import make_user


@pytest.mark.django_db
def test_your_api_tokens_is_in_the_menu_only_with_api_access(signed_in, owner):
    with_api = make_user(owner, username="dev", allow_api_read=True)
    without = make_user(owner, username="plain")
    assert reverse("tokens:my_tokens") in signed_in(with_api).get("/").content.decode()
    assert reverse("tokens:my_tokens") not in signed_in(without).get("/").content.decode()


@pytest.mark.django_db
def test_user_record_links_an_api_users_tokens(signed_in, admin_user, owner):
    robot = make_user(owner, username="robot", kind="api", allow_login=False, allow_api_read=True)
    url = reverse("accounts:user_security", args=[robot.pk])
    page = signed_in(admin_user).get(url).content.decode()
    assert reverse("tokens:user_tokens", args=[robot.pk]) in page
    reader = make_user(owner, username="reader", grants={"users": "read"})
    assert (
        reverse("tokens:user_tokens", args=[robot.pk])
        not in signed_in(reader).get(url).content.decode()
    )
