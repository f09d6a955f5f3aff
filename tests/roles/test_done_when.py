"""The issue's acceptance scenario, through the screens.

An administrator builds a "Finance" role group (Invoices full, Payments read) and a "Finance
clerk" role using it, and assigns it to a user; that user's My access shows exactly what the
matrix says, the portal screens they lack are neither offered nor served, and an override
changes it on the next page load.
"""

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from accounts.choices import AccessSource
from accounts.models import User
from accounts.users import set_user_access
from audit.models import AuditEvent
from portal import navigation
from roles.models import Role, RoleGroup
from tests.builders import make_user

pytestmark = pytest.mark.django_db


def test_finance_clerk_end_to_end(client, admin_user, owner):
    cache.clear()
    client.force_login(admin_user, backend="accounts.backends.PortalBackend")

    # The administrator builds the group and its matrix through the screens.
    response = client.post(
        reverse("roles:rolegroup_create"), {"name": "Finance", "kind": "application"}
    )
    finance = RoleGroup.objects.get(owner=owner, name="Finance")
    matrix = reverse("roles:rolegroup_matrix", args=[finance.pk])
    assert response["Location"] == matrix
    cells = {"cell-invoices": "full", "cell-payments": "read", "row_version": 1}
    assert client.post(matrix, {**cells, "action": "preview"}).status_code == 200
    assert client.post(matrix, {**cells, "action": "save"}).status_code == 302
    assert finance.levels() == {"invoices": "full", "payments": "read"}
    assert AuditEvent.objects.get(action="matrix_changed").changes == {
        "invoices": ["none", "full"],
        "payments": ["none", "read"],
    }

    # ... and the role using it.
    response = client.post(
        reverse("roles:role_create"), {"name": "Finance clerk", "role_groups": [finance.pk]}
    )
    assert response.status_code == 302
    role = Role.objects.get(owner=owner, name="Finance clerk")

    # Assigning the role is the user screens' job; they call this service.
    fran = make_user(owner, username="fran", privilege_level=3)
    set_user_access(
        fran, role=role, actor=admin_user, reason="New starter", source=AccessSource.SCREEN
    )

    clerk = Client()
    clerk.force_login(User.objects.get(pk=fran.pk), backend="accounts.backends.PortalBackend")
    page = clerk.get(reverse("roles:my_access"))
    assert [(d.area.code, d.level) for d in page.context["granted"]] == [
        ("invoices", "full"),
        ("payments", "read"),
    ]

    # The portal's screens she lacks are neither offered nor served.
    home = clerk.get("/").content.decode()
    guarded = [s for s in navigation.SCREENS if s.area and s.url]
    assert guarded, "the access screens are registered in the menu"
    for screen in guarded:
        assert f'href="{screen.url}"' not in home, screen.url_name
        assert clerk.get(screen.url).status_code == 403, screen.url_name

    # An override changes it on her next page load.
    data = {"area": "invoices", "level": "read", "reason": "Month-end freeze"}
    override_url = reverse("roles:override_add", args=[fran.pk])
    assert client.post(override_url, data).status_code == 200  # the impact preview
    data["previewed"] = "invoices:read:"
    assert client.post(override_url, data).status_code == 302
    page = clerk.get(reverse("roles:my_access"))
    assert [(d.area.code, d.level) for d in page.context["granted"]] == [
        ("invoices", "read"),
        ("payments", "read"),
    ]
    assert "Month-end freeze" in page.content.decode()

    # An override can also open a portal screen to her, at once.
    data = {
        "area": "settings_user_groups",
        "level": "read",
        "reason": "Access review",
        "previewed": "settings_user_groups:read:",
    }
    assert client.post(override_url, data).status_code == 302
    assert clerk.get(reverse("roles:rolegroup_list")).status_code == 200
    assert f'href="{reverse("roles:rolegroup_list")}"' in clerk.get("/").content.decode()
