"""Screens of the permission engine: anonymous → sign-in, without permission → 403, with → 200,
changes audited, bad input answered on the page, query counts constant in page size."""

import datetime
import json

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from audit.models import AuditEvent
from roles import catalog
from roles.models import PermissionOverride, Role, RoleGroup
from tests.access_helpers import assert_screen_access
from tests.builders import make_override, make_owner, make_role, make_role_group, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()


@pytest.fixture
def finance(owner):
    return make_role_group(owner, "Finance", {"invoices": "full", "payments": "read"})


@pytest.fixture
def clerk_role(owner, finance):
    return make_role(owner, "Finance clerk", groups=[finance])


@pytest.fixture
def clerk(owner, clerk_role):
    return make_user(owner, username="clerk", role=clerk_role, privilege_level=3)


@pytest.fixture
def viewer(owner):
    return make_user(
        owner,
        username="viewer",
        grants={"settings_user_groups": "read", "users": "read"},
        privilege_level=5,
    )


def pages(finance, clerk_role, clerk):
    override = make_override(clerk, "tariffs", "read")
    return {
        # url: (area needed to view, area needed to change)
        reverse("roles:rolegroup_list"): "settings_user_groups",
        reverse("roles:rolegroup_matrix", args=[finance.pk]): "settings_user_groups",
        reverse("roles:role_list"): "settings_user_groups",
        reverse("roles:role_edit", args=[clerk_role.pk]): "settings_user_groups",
        reverse("roles:compare"): "settings_user_groups",
        reverse("roles:role_model"): "settings_user_groups",
        reverse("roles:role_model_export"): "settings_user_groups",
        reverse("roles:who_has_access"): "settings_user_groups",
        reverse("roles:user_permissions", args=[clerk.pk]): "users",
        reverse("roles:override_remove", args=[override.pk]): "users",
        reverse("roles:rolegroup_create"): "settings_user_groups",
        reverse("roles:rolegroup_edit", args=[finance.pk]): "settings_user_groups",
        reverse("roles:rolegroup_clone", args=[finance.pk]): "settings_user_groups",
        reverse("roles:rolegroup_delete", args=[finance.pk]): "settings_user_groups",
        reverse("roles:role_create"): "settings_user_groups",
        reverse("roles:role_clone", args=[clerk_role.pk]): "settings_user_groups",
        reverse("roles:role_delete", args=[clerk_role.pk]): "settings_user_groups",
    }


def test_every_screen_anonymous_forbidden_allowed(
    signed_in, admin_user, finance, clerk_role, clerk
):
    urls = pages(finance, clerk_role, clerk)
    assert_screen_access(signed_in, urls, allowed=admin_user, denied=clerk)


def test_read_only_viewer_sees_but_cannot_change(client, signed_in, viewer, finance, clerk):
    signed_in(viewer)
    page = client.get(reverse("roles:rolegroup_matrix", args=[finance.pk]))
    assert page.status_code == 200
    assert b"<select" not in page.content
    assert b"Review changes" not in page.content
    response = client.post(
        reverse("roles:rolegroup_matrix", args=[finance.pk]),
        {"cell-invoices": "none", "row_version": 1, "action": "save"},
    )
    assert response.status_code == 403
    assert client.get(reverse("roles:rolegroup_create")).status_code == 403
    assert client.get(reverse("roles:role_create")).status_code == 403
    response = client.post(
        reverse("roles:override_add", args=[clerk.pk]),
        {"area": "invoices", "level": "none", "reason": "x"},
    )
    assert response.status_code == 403
    assert client.get(reverse("roles:user_permissions", args=[clerk.pk])).status_code == 200


def test_another_owners_objects_answer_404(client, signed_in, admin_user):
    other = make_owner()
    group = make_role_group(other, "Theirs")
    role = make_role(other, "Theirs")
    user = make_user(other)
    override = make_override(user, "invoices", "read")
    signed_in(admin_user)
    for url in [
        reverse("roles:rolegroup_matrix", args=[group.pk]),
        reverse("roles:rolegroup_edit", args=[group.pk]),
        reverse("roles:rolegroup_delete", args=[group.pk]),
        reverse("roles:role_edit", args=[role.pk]),
        reverse("roles:role_delete", args=[role.pk]),
        reverse("roles:user_permissions", args=[user.pk]),
        reverse("roles:override_remove", args=[override.pk]),
    ]:
        assert client.get(url).status_code == 404, url
    response = client.post(
        reverse("roles:rolegroup_matrix", args=[group.pk]),
        {"cell-invoices": "full", "row_version": 1, "action": "save"},
    )
    assert response.status_code == 404


def test_matrix_preview_then_save(client, signed_in, admin_user, finance, clerk):
    signed_in(admin_user)
    url = reverse("roles:rolegroup_matrix", args=[finance.pk])
    page = client.get(url)
    assert b'<label for="cell-invoices">Invoices</label>' in page.content
    preview = client.post(
        url,
        {"cell-invoices": "read", "cell-payments": "read", "row_version": 1, "action": "preview"},
    )
    assert preview.status_code == 200
    assert b"Review changes to Finance" in preview.content
    assert b"clerk" in preview.content  # the impacted user is listed
    assert RoleGroup.objects.get(pk=finance.pk).levels()["invoices"] == "full"  # nothing saved
    saved = client.post(
        url, {"cell-invoices": "read", "row_version": 1, "action": "save", "reason": "Audit"}
    )
    assert saved.status_code == 302
    assert finance.levels()["invoices"] == "read"
    event = AuditEvent.objects.get(action="matrix_changed")
    assert event.changes == {"invoices": ["full", "read"]}
    assert event.actor_id == admin_user.pk
    # The same form posted again is stale.
    stale = client.post(url, {"cell-invoices": "none", "row_version": 1, "action": "save"})
    assert stale.status_code == 400
    assert b"Someone else changed" in stale.content


def test_matrix_set_whole_category_without_javascript(client, signed_in, admin_user, finance):
    signed_in(admin_user)
    url = reverse("roles:rolegroup_matrix", args=[finance.pk])
    response = client.post(
        url,
        {
            "row_version": 1,
            "q": "ticket",
            "category-standard": "read",
            "action": "set:standard",
        },
    )
    assert response.status_code == 200
    content = response.content.decode()
    assert content.count("matrix__row is-changed") == 1  # only "Tickets" matches the filter
    assert "Invoices" not in content


def test_matrix_refuses_bad_cells_and_escalation(client, signed_in, owner, finance):
    manager = make_user(
        owner, grants={"settings_user_groups": "full", "invoices": "full"}, privilege_level=5
    )
    signed_in(manager)
    url = reverse("roles:rolegroup_matrix", args=[finance.pk])
    bad = client.post(url, {"cell-invoices": "super", "row_version": 1, "action": "preview"})
    assert bad.status_code == 400
    assert b"has no level" in bad.content
    # A crafted POST straight to "save", skipping the form and the preview.
    crafted = client.post(url, {"cell-payments": "full", "row_version": 1, "action": "save"})
    assert crafted.status_code == 400
    assert b"cannot grant what you do not hold: Payments (full; you hold none)" in crafted.content
    assert finance.levels()["payments"] == "read"


def test_role_edit_previews_group_changes_then_saves(
    client, signed_in, admin_user, owner, clerk_role, clerk
):
    extra = make_role_group(owner, "Tickets", {"tickets": "full"})
    signed_in(admin_user)
    url = reverse("roles:role_edit", args=[clerk_role.pk])
    data = {
        "name": "Finance clerk",
        "description": "",
        "role_groups": [g.pk for g in clerk_role.role_groups.all()] + [extra.pk],
        "row_version": 1,
    }
    preview = client.post(url, data)
    assert preview.status_code == 200
    assert b"Impact on users" in preview.content
    assert not clerk_role.role_groups.filter(pk=extra.pk).exists()
    data["previewed"] = ",".join(str(pk) for pk in sorted(data["role_groups"]))
    assert client.post(url, data).status_code == 302
    assert clerk_role.role_groups.filter(pk=extra.pk).exists()
    assert AuditEvent.objects.filter(action="role_changed").exists()


def test_role_create_and_delete_refusal(client, signed_in, admin_user, finance, clerk_role, clerk):
    signed_in(admin_user)
    bad = client.post(reverse("roles:role_create"), {"name": ""})
    assert bad.status_code == 400
    response = client.post(
        reverse("roles:role_create"), {"name": "Auditor", "role_groups": [finance.pk]}
    )
    assert response.status_code == 302
    assert Role.objects.filter(name="Auditor").exists()
    refused = client.post(reverse("roles:role_delete", args=[clerk_role.pk]), {"reason": "x"})
    assert refused.status_code == 400
    assert b"clerk" in refused.content
    assert Role.objects.filter(pk=clerk_role.pk).exists()
    auditor = Role.objects.get(name="Auditor")
    unsaid = client.post(reverse("roles:role_delete", args=[auditor.pk]), {"reason": " "})
    assert unsaid.status_code == 400
    assert unsaid.context["form"].errors["reason"]  # shown next to the field
    deleted = client.post(reverse("roles:role_delete", args=[auditor.pk]), {"reason": "Merged"})
    assert deleted.status_code == 302
    assert AuditEvent.objects.get(action="role_deleted").reason == "Merged"


def test_group_create_clone_rename_and_delete_refusal(
    client, signed_in, admin_user, finance, clerk_role
):
    signed_in(admin_user)
    response = client.post(
        reverse("roles:rolegroup_create"), {"name": "Support", "kind": "application"}
    )
    assert response.status_code == 302
    support = RoleGroup.objects.get(name="Support")
    assert response["Location"] == reverse("roles:rolegroup_matrix", args=[support.pk])
    duplicate = client.post(
        reverse("roles:rolegroup_create"), {"name": "support", "kind": "application"}
    )
    assert duplicate.status_code == 400
    assert b"already used" in duplicate.content
    clone = client.post(reverse("roles:rolegroup_clone", args=[finance.pk]), {"name": "F2"})
    assert clone.status_code == 302
    assert RoleGroup.objects.get(name="F2").levels() == finance.levels()
    renamed = client.post(
        reverse("roles:rolegroup_edit", args=[support.pk]),
        {"name": "Support desk", "description": "", "row_version": 1},
    )
    assert renamed.status_code == 302
    refused = client.post(reverse("roles:rolegroup_delete", args=[finance.pk]), {"reason": "x"})
    assert refused.status_code == 400
    assert b"Finance clerk" in refused.content
    assert client.post(reverse("roles:rolegroup_delete", args=[support.pk])).status_code == 400
    done = client.post(reverse("roles:rolegroup_delete", args=[support.pk]), {"reason": "Unused"})
    assert done.status_code == 302
    assert AuditEvent.objects.get(action="role_group_deleted").reason == "Unused"


def test_compare_highlights_differences(client, signed_in, admin_user, owner, finance):
    other = make_role_group(owner, "Payments", {"payments": "full"})
    signed_in(admin_user)
    response = client.get(
        reverse("roles:compare"), {"kind": "group", "left": finance.pk, "right": other.pk}
    )
    assert response.status_code == 200
    content = response.content.decode()
    assert "2 differences" in content
    assert content.count("differs</span>") == 2
    mismatch = client.get(
        reverse("roles:compare"), {"kind": "role", "left": finance.pk, "right": other.pk}
    )
    assert mismatch.status_code == 400


def test_compare_never_mixes_a_role_with_the_group_of_the_same_number(
    client, signed_in, admin_user, owner
):
    group = make_role_group(owner, "Payments", {"payments": "full"})
    role = make_role(owner, "Clerk")
    signed_in(admin_user)
    mixed = client.get(
        reverse("roles:compare"), {"left": f"role-{role.pk}", "right": f"group-{group.pk}"}
    )
    assert mixed.status_code == 400
    assert "Compare a role with a role" in str(mixed.context["form"].errors["right"])
    page = client.get(reverse("roles:compare"), {"kind": "role", "left": role.pk})
    assert page.status_code == 200
    assert page.context["form"].initial["left"] == f"role-{role.pk}"


def test_export_and_import_with_preview(client, signed_in, admin_user, owner, finance, clerk):
    signed_in(admin_user)
    export = client.get(reverse("roles:role_model_export"))
    document = json.loads(export.content)
    assert document["catalog_version"] == catalog.CATALOG_VERSION
    for group in document["role_groups"]:
        if group["name"] == "Finance":
            group["grants"]["invoices"] = "read"
    document["role_groups"].append({"name": "New one", "kind": "application", "grants": {}})
    preview = client.post(reverse("roles:role_model_import"), {"text": json.dumps(document)})
    assert preview.status_code == 200
    assert b"Review the import" in preview.content
    assert b"clerk" in preview.content
    assert finance.levels()["invoices"] == "full"
    epoch = preview.context["plan"].epoch
    done = client.post(
        reverse("roles:role_model_import"),
        {"confirm": "1", "epoch": epoch, "document": preview.context["document"]},
    )
    assert done.status_code == 302
    assert finance.levels()["invoices"] == "read"
    assert RoleGroup.objects.filter(name="New one").exists()
    assert AuditEvent.objects.filter(action="role_model_imported").exists()
    stale = client.post(
        reverse("roles:role_model_import"),
        {"confirm": "1", "epoch": "garbage", "document": preview.context["document"]},
    )
    assert stale.status_code == 400
    assert b"changed since the preview" in stale.content
    bad = client.post(reverse("roles:role_model_import"), {"text": "{nope"})
    assert bad.status_code == 400
    assert b"not a JSON document" in bad.content


def test_who_has_access_screen(client, signed_in, admin_user, clerk):
    signed_in(admin_user)
    response = client.get(reverse("roles:who_has_access"), {"area": "invoices", "level": "full"})
    assert response.status_code == 200
    assert b"clerk" in response.content
    assert b"Role Finance clerk" in response.content
    bad = client.get(reverse("roles:who_has_access"), {"area": "invoices", "level": "run"})
    assert bad.status_code == 400
    assert b"Invoices has no level run" in bad.content


def test_user_permissions_and_overrides(client, signed_in, admin_user, clerk):
    signed_in(admin_user)
    url = reverse("roles:user_permissions", args=[clerk.pk])
    page = client.get(url)
    assert page.status_code == 200
    assert b"Role group Finance (via role Finance clerk)" in page.content
    data = {"area": "invoices", "level": "none", "reason": "Investigation"}
    preview = client.post(reverse("roles:override_add", args=[clerk.pk]), data)
    assert preview.status_code == 200
    assert b"Impact on users" in preview.content
    assert not PermissionOverride.objects.filter(user=clerk).exists()
    data["previewed"] = "invoices:none:"
    assert client.post(reverse("roles:override_add", args=[clerk.pk]), data).status_code == 302
    override = PermissionOverride.objects.get(user=clerk)
    assert AuditEvent.objects.filter(action="override_set").exists()
    missing = client.post(reverse("roles:override_remove", args=[override.pk]), {"reason": ""})
    assert missing.status_code == 400
    removed = client.post(reverse("roles:override_remove", args=[override.pk]), {"reason": "Done"})
    assert removed.status_code == 302
    assert not PermissionOverride.objects.filter(pk=override.pk).exists()


def test_override_preview_refuses_a_past_expiry_as_the_save_does(
    client, signed_in, admin_user, clerk
):
    signed_in(admin_user)
    url = reverse("roles:override_add", args=[clerk.pk])
    past = (timezone.localtime() - datetime.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
    data = {"area": "invoices", "level": "none", "reason": "Investigation", "expires_at": past}
    preview = client.post(url, data)
    assert preview.status_code == 400
    assert b"Impact on users" not in preview.content
    assert "Choose a time in the future, or leave it empty." in preview.content.decode()
    crafted = client.post(url, {**data, "previewed": f"invoices:none:{past}"})
    assert crafted.status_code == 400
    assert not PermissionOverride.objects.filter(user=clerk).exists()
    future = (timezone.localtime() + datetime.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    assert b"Impact on users" in client.post(url, {**data, "expires_at": future}).content


def test_data_protection_overrides_only_for_holders(client, signed_in, owner, clerk):
    manager = make_user(owner, grants={"users": "full", "invoices": "full"}, privilege_level=8)
    signed_in(manager)
    page = client.get(reverse("roles:user_permissions", args=[clerk.pk]))
    assert b'value="dp_user_activity"' not in page.content
    crafted = client.post(
        reverse("roles:override_add", args=[clerk.pk]),
        {"area": "dp_user_activity", "level": "none", "reason": "x", "previewed": "x"},
    )
    assert crafted.status_code == 400
    assert not PermissionOverride.objects.filter(user=clerk).exists()


def _queries(client, url, **params):
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url, params).status_code == 200
    return len(ctx.captured_queries)


def test_list_screens_have_constant_query_counts(client, signed_in, admin_user, owner):
    signed_in(admin_user)
    client.get("/")  # warm the permission cache
    urls = [
        reverse("roles:rolegroup_list"),
        reverse("roles:role_list"),
    ]
    small = [_queries(client, url) for url in urls]
    who_small = _queries(client, reverse("roles:who_has_access"), area="invoices", level="read")
    for n in range(15):
        group = make_role_group(owner, grants={"invoices": "read", "notes": "full"})
        role = make_role(owner, groups=[group])
        user = make_user(owner, role=role)
        user.extra_role_groups.add(group)
        make_override(make_user(owner), "invoices", "full")
    large = [_queries(client, url) for url in urls]
    who_large = _queries(client, reverse("roles:who_has_access"), area="invoices", level="read")
    assert small == large
    assert who_small == who_large
    assert max(large + [who_large]) <= 13  # who has access: one more for elevations in force


def test_matrix_and_user_pages_have_bounded_query_counts(
    client, signed_in, admin_user, owner, finance, clerk
):
    signed_in(admin_user)
    client.get("/")
    matrix = _queries(client, reverse("roles:rolegroup_matrix", args=[finance.pk]))
    big = make_role_group(
        owner, "Every area", {a.code: a.top for a in catalog.areas_for("application")}
    )
    assert _queries(client, reverse("roles:rolegroup_matrix", args=[big.pk])) == matrix
    user_page = _queries(client, reverse("roles:user_permissions", args=[clerk.pk]))
    for code in ["settings_call_types", "settings_carriers", "settings_locations"]:
        clerk.extra_role_groups.add(make_role_group(owner, grants={"notes": "read"}))
        make_override(clerk, code, "read")
    assert _queries(client, reverse("roles:user_permissions", args=[clerk.pk])) == user_page
    assert User.objects.filter(owner=owner).count() >= 2
