"""What every signed-in page costs before its own work, and the menu drawn once per distinct set.

A signed-in page reads the session and the user (with owner, policy and role) and nothing else:
the permissions come from the cache, the session's tracking row is read only after some of the
user's sessions were ended. The menu is worked out once per request and its markup drawn once per
distinct menu; people holding other screens never see another person's menu.
"""

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from portal import navigation
from tests.builders import make_user

pytestmark = pytest.mark.django_db


def signed_in_client(user):
    client = Client()
    client.force_login(user, backend="accounts.backends.PortalBackend")
    return client


def queries_of(client, path):
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path)
    assert response.status_code == 200
    return [q["sql"] for q in captured.captured_queries]


def test_home_reads_the_session_and_the_user_only(admin_user):
    client = signed_in_client(admin_user)
    client.get("/")  # the first page tracks the session and fills the permission cache
    sql = queries_of(client, "/")
    assert len(sql) == 2, sql
    assert "django_session" in sql[0]
    assert "accounts_user" in sql[1] and "roles_role" in sql[1]  # role joined, not fetched later


def test_home_costs_the_same_for_many_screens_or_few(owner, admin_user):
    clerk = make_user(owner, grants={"invoices": "read"})
    counts = []
    for user in (admin_user, clerk):
        client = signed_in_client(user)
        client.get("/")
        counts.append(len(queries_of(client, "/")))
    assert counts == [2, 2]


def test_menus_are_not_shared_between_people_with_different_screens(owner, admin_user):
    clerk = make_user(owner, grants={"invoices": "read"})
    admin_home = signed_in_client(admin_user).get("/").content.decode()
    clerk_home = signed_in_client(clerk).get("/").content.decode()
    users_list = reverse("accounts:user_list")
    assert f'href="{users_list}"' in admin_home
    assert f'href="{users_list}"' not in clerk_home
    assert "My access" in clerk_home


def test_the_current_page_is_marked_in_the_menu(admin_user):
    client = signed_in_client(admin_user)
    users_list = reverse("accounts:user_list")
    page = client.get(users_list).content.decode()
    assert f'<a href="{users_list}" aria-current="page">' in page
    home = client.get("/").content.decode()
    assert f'<a href="{users_list}">' in home
    assert f'<a href="{users_list}" aria-current="page">' not in home


def test_menu_is_worked_out_once_per_request(rf, admin_user):
    from roles import catalog, permissions

    request = rf.get("/")
    request.user = admin_user
    request.permissions = permissions.for_user(admin_user, catalog.Channel.APPLICATION)
    first = navigation.menu_for(request)
    assert navigation.menu_for(request) is first
    assert all(isinstance(entry, navigation.MenuEntry) for _, entries in first for entry in entries)
    assert hash(first)  # equal menus are equal keys for the templates' memo


def test_menu_links_follow_a_changed_urlconf(settings):
    assert navigation.link("accounts:user_list") == "/users/"
    settings.ROOT_URLCONF = "tests.urls_prefixed"
    assert navigation.link("accounts:user_list") == "/portal/users/"
    assert navigation.link("no_such_view") is None
