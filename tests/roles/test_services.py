"""Services of the permission engine: the rules first (escalation, owner, use, versions)."""

import datetime

import pytest
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.http import Http404
from django.utils import timezone

from accounts.choices import AccessSource
from accounts.models import User
from accounts.users import set_user_access
from audit.models import AuditEvent
from roles import catalog, permissions, services, transfer
from roles.guards import EscalationRefused
from roles.models import PermissionOverride, Role, RoleGroup
from tests.builders import make_override, make_owner, make_role, make_role_group, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()


def fresh(user):
    return User.objects.select_related("owner").get(pk=user.pk)


def level(user, area):
    return permissions.for_user(fresh(user)).level(area)


@pytest.fixture
def manager(owner):
    """A user administrator holding finance areas but not everything."""
    return make_user(
        owner,
        username="manager",
        grants={
            "users": "full",
            "settings_user_groups": "full",
            "invoices": "full",
            "payments": "read",
        },
        privilege_level=6,
    )


# Role groups and the matrix ------------------------------------------------------------------


def test_create_role_group_refuses_levels_above_the_actor(manager):
    with pytest.raises(EscalationRefused, match="Payments"):
        services.create_role_group(
            actor=manager, name="Finance", grants={"payments": "full"}, reason=""
        )
    assert not RoleGroup.objects.filter(name="Finance").exists()
    group = services.create_role_group(
        actor=manager, name="Finance", grants={"invoices": "full", "payments": "read"}, reason=""
    )
    assert group.levels() == {"invoices": "full", "payments": "read"}
    event = AuditEvent.objects.get(action="role_group_created")
    assert event.changes["invoices"] == ["none", "full"]


def test_group_names_are_unique_per_owner_case_insensitively(manager, owner):
    make_role_group(owner, "Finance")
    with pytest.raises(ValidationError) as exc:
        services.create_role_group(actor=manager, name="finance", reason="")
    assert "name" in exc.value.error_dict
    other = make_user(make_owner(), grants={"settings_user_groups": "full"})
    assert services.create_role_group(actor=other, name="Finance", reason="").owner_id != owner.id


def test_cells_of_unknown_areas_levels_or_the_other_channel_are_refused(manager, owner):
    group = make_role_group(owner)
    for cells in ({"nope": "read"}, {"invoices": "write"}, {"api_invoices": "read"}):
        with pytest.raises(ValidationError):
            services.set_grants(group, cells, actor=manager, expected_row_version=1, reason="")


def test_set_grants_changes_only_named_cells_and_audits_only_changed_ones(manager, owner):
    group = make_role_group(owner, "Finance", {"invoices": "read", "payments": "read"})
    user = make_user(owner, role=make_role(owner, groups=[group]))
    assert level(user, "invoices") == "read"
    changed = services.set_grants(
        group,
        {"invoices": "full", "payments": "read", "customers": "none"},
        actor=manager,
        expected_row_version=1,
        reason="Month end",
    )
    assert changed == {"invoices": ["read", "full"]}
    group.refresh_from_db()
    assert group.row_version == 2
    assert group.levels() == {"invoices": "full", "payments": "read"}
    event = AuditEvent.objects.get(action="matrix_changed")
    assert event.changes == {"invoices": ["read", "full"]}
    assert event.reason == "Month end"
    # The owner's epoch moved: the user's next request sees the new level.
    assert level(user, "invoices") == "full"


def test_set_grants_refuses_raising_a_cell_above_the_actor(manager, owner):
    group = make_role_group(owner, "Finance", {"payments": "read"})
    with pytest.raises(EscalationRefused):
        services.set_grants(
            group, {"payments": "full"}, actor=manager, expected_row_version=1, reason=""
        )
    assert group.levels() == {"payments": "read"}
    assert not AuditEvent.objects.filter(action="matrix_changed").exists()


def test_lowering_a_cell_above_the_actor_is_not_escalation(manager, owner):
    group = make_role_group(owner, "Ops", {"tariffs": "full"})
    services.set_grants(
        group, {"tariffs": "read"}, actor=manager, expected_row_version=1, reason=""
    )
    assert group.levels() == {"tariffs": "read"}


def test_set_grants_refuses_a_stale_version(manager, owner):
    group = make_role_group(owner, "Finance", {"invoices": "read"})
    services.set_grants(
        group, {"invoices": "full"}, actor=manager, expected_row_version=1, reason=""
    )
    with pytest.raises(ValidationError, match="Someone else changed"):
        services.set_grants(
            group, {"invoices": "none"}, actor=manager, expected_row_version=1, reason=""
        )
    assert group.levels() == {"invoices": "full"}


def test_another_owners_group_answers_404(manager):
    foreign = make_role_group(make_owner(), "Theirs", {"invoices": "read"})
    with pytest.raises(Http404):
        services.set_grants(
            foreign, {"invoices": "none"}, actor=manager, expected_row_version=1, reason=""
        )
    with pytest.raises(Http404):
        services.delete_role_group(foreign, actor=manager, reason="No longer used")
    with pytest.raises(Http404):
        services.create_role(actor=manager, name="Mixed", groups=[foreign], reason="")


def test_the_last_user_administrator_cannot_remove_user_administration(owner):
    admins = make_role_group(owner, "Admins", {"users": "full", "settings_user_groups": "full"})
    admin = make_user(owner, role=make_role(owner, groups=[admins]), privilege_level=10)
    with pytest.raises(EscalationRefused, match="nobody able to administer users"):
        services.set_grants(
            admins, {"users": "read"}, actor=admin, expected_row_version=1, reason=""
        )
    assert admins.levels()["users"] == "full"
    # With a second administrator through another group, it is allowed.
    make_user(owner, grants={"users": "full"})
    services.set_grants(admins, {"users": "read"}, actor=admin, expected_row_version=1, reason="")


def test_delete_role_group_is_refused_while_used(manager, owner):
    group = make_role_group(owner, "Finance", {"invoices": "read"})
    role = make_role(owner, "Finance clerk", groups=[group])
    holder = make_user(owner, username="extra")
    holder.extra_role_groups.add(group)
    with pytest.raises(services.InUse) as exc:
        services.delete_role_group(group, actor=manager, reason="No longer used")
    assert [r.name for r in exc.value.roles] == ["Finance clerk"]
    assert [u.username for u in exc.value.users] == ["extra"]
    role.role_groups.clear()
    holder.extra_role_groups.clear()
    services.delete_role_group(group, actor=manager, reason="No longer used")
    assert not RoleGroup.objects.filter(pk=group.pk).exists()
    assert AuditEvent.objects.filter(action="role_group_deleted").exists()


def test_clone_role_group_copies_grants_and_refuses_escalation(manager, owner):
    big = make_role_group(owner, "Big", {"tariffs": "full"})
    with pytest.raises(EscalationRefused):
        services.clone_role_group(big, actor=manager, name="Big copy", reason="")
    finance = make_role_group(owner, "Finance", {"invoices": "full"})
    copy = services.clone_role_group(finance, actor=manager, name="Finance 2", reason="")
    assert copy.levels() == {"invoices": "full"}
    assert AuditEvent.objects.filter(action="role_group_created").order_by("id").last().context == {
        "cloned_from": "Finance"
    }


# Roles -------------------------------------------------------------------------------------------


def test_roles_combine_only_groups_the_actor_may_hand_out(manager, owner):
    big = make_role_group(owner, "Big", {"tariffs": "full"})
    small = make_role_group(owner, "Small", {"invoices": "read"})
    with pytest.raises(EscalationRefused):
        services.create_role(actor=manager, name="R", groups=[big], reason="")
    role = services.create_role(actor=manager, name="R", groups=[small], reason="")
    with pytest.raises(EscalationRefused):
        services.set_role_groups(
            role, [small, big], actor=manager, expected_row_version=1, reason=""
        )
    assert list(role.role_groups.all()) == [small]


def test_set_role_groups_moves_holders_at_once_and_checks_version(manager, owner):
    a = make_role_group(owner, "A", {"invoices": "read"})
    b = make_role_group(owner, "B", {"payments": "read"})
    role = make_role(owner, "Clerk", groups=[a])
    user = make_user(owner, role=role)
    assert level(user, "payments") == "none"
    services.set_role_groups(role, [a, b], actor=manager, expected_row_version=1, reason="")
    assert level(user, "payments") == "read"
    with pytest.raises(ValidationError, match="Someone else"):
        services.set_role_groups(role, [a], actor=manager, expected_row_version=1, reason="")
    event = AuditEvent.objects.get(action="role_changed")
    assert event.changes == {"role_groups": [["A"], ["A", "B"]]}


def test_delete_role_is_refused_while_users_hold_it(manager, owner):
    role = make_role(owner, "Clerk")
    user = make_user(owner, role=role, username="holder")
    with pytest.raises(services.InUse) as exc:
        services.delete_role(role, actor=manager, reason="No longer used")
    assert [u.username for u in exc.value.users] == ["holder"]
    set_user_access(user, role=None, actor=manager, reason="Left", source=AccessSource.SCREEN)
    services.delete_role(role, actor=manager, reason="No longer used")
    assert not Role.objects.filter(pk=role.pk).exists()


# Overrides -------------------------------------------------------------------


def test_override_raises_restricts_and_expires(manager, owner):
    target = make_user(owner, grants={"invoices": "full"}, privilege_level=3)
    with pytest.raises(ValidationError):
        services.set_override(target, "invoices", "none", actor=manager, reason=" ")
    services.set_override(target, "invoices", "none", actor=manager, reason="Investigation")
    assert level(target, "invoices") == "none"
    with pytest.raises(EscalationRefused):
        services.set_override(target, "tariffs", "read", actor=manager, reason="Cover")
    soon = timezone.now() + datetime.timedelta(hours=1)
    services.set_override(
        target, "payments", "read", actor=manager, reason="Cover", expires_at=soon
    )
    assert level(target, "payments") == "read"
    with pytest.raises(ValidationError):
        services.set_override(
            target,
            "payments",
            "read",
            actor=manager,
            reason="Cover",
            expires_at=timezone.now() - datetime.timedelta(minutes=1),
        )
    event = AuditEvent.objects.filter(action="override_set").order_by("id").last()
    assert event.changes == {"payments": [None, "read"]}
    override = PermissionOverride.objects.get(user=target, area="invoices")
    services.remove_override(override, actor=manager, reason="Cleared")
    assert level(target, "invoices") == "full"
    assert AuditEvent.objects.get(action="override_removed").changes == {"invoices": ["none", None]}


def test_removing_a_restriction_is_a_grant_and_checked(manager, owner):
    target = make_user(owner, grants={"tariffs": "full"}, privilege_level=3)
    deny = make_override(target, "tariffs", "none")
    with pytest.raises(EscalationRefused):
        services.remove_override(deny, actor=manager, reason="Cleared")
    assert PermissionOverride.objects.filter(pk=deny.pk).exists()


def test_data_protection_overrides_need_the_area(manager, owner):
    target = make_user(owner, grants={"dp_user_activity": "read"}, privilege_level=3)
    with pytest.raises(EscalationRefused, match="User Activity"):
        services.set_override(target, "dp_user_activity", "none", actor=manager, reason="x")
    dp = make_user(
        owner,
        grants={"users": "full", "dp_user_activity": "read"},
        privilege_level=8,
    )
    services.set_override(target, "dp_user_activity", "none", actor=dp, reason="Leaver")


def test_overrides_of_a_higher_privilege_user_are_refused(manager, owner):
    senior = make_user(owner, grants={"invoices": "read"}, privilege_level=9)
    with pytest.raises(EscalationRefused):
        services.set_override(senior, "invoices", "none", actor=manager, reason="x")


def test_superuser_is_exempt(owner):
    root = make_user(owner, is_superuser=True, privilege_level=10)
    group = services.create_role_group(
        actor=root, name="All", grants={"tariffs": "full"}, reason=""
    )
    assert group.levels() == {"tariffs": "full"}


# Export and import ---------------------------------------------------------------------------


def test_export_then_import_into_another_owner():
    owner = make_owner()
    finance = make_role_group(owner, "Finance", {"invoices": "full", "payments": "read"})
    make_role(owner, "Finance clerk", groups=[finance])
    document = transfer.export_role_model(owner)
    assert document["catalog_version"] == catalog.CATALOG_VERSION

    other = make_owner()
    admin = make_user(other, grants={"invoices": "full", "payments": "read"}, privilege_level=9)
    model = transfer.parse_role_model(__import__("json").dumps(document))
    plan = transfer.plan_import(other, model)
    assert plan.new_groups == ["Finance"]
    assert plan.new_roles == ["Finance clerk"]
    transfer.import_role_model(model, actor=admin, expected_epoch=plan.epoch, reason="")
    group = RoleGroup.objects.get(owner=other, name="Finance")
    assert group.levels() == {"invoices": "full", "payments": "read"}
    assert [
        g.name for g in Role.objects.get(owner=other, name="Finance clerk").role_groups.all()
    ] == ["Finance"]
    assert AuditEvent.objects.filter(action="role_model_imported", owner_id=other.pk).exists()
    # Importing again changes nothing.
    assert transfer.plan_import(other, model).is_empty


def test_import_refuses_bad_files_with_clear_messages():
    for text, message in [
        ("not json", "not a JSON document"),
        ('{"format": "x"}', "not a role model"),
        (
            '{"format": "billing-access-role-model", "catalog_version": 99, "role_groups": [],'
            ' "roles": []}',
            "catalog version 99",
        ),
        (
            '{"format": "billing-access-role-model", "catalog_version": 1, "role_groups":'
            ' [{"name": "G", "kind": "application", "grants": {"nope": "read"}}], "roles": []}',
            "Unknown permission area",
        ),
    ]:
        with pytest.raises(ValidationError, match=message):
            transfer.parse_role_model(text)


def test_import_shows_impact_and_refuses_escalation_and_stale_previews(manager, owner):
    finance = make_role_group(owner, "Finance", {"invoices": "read"})
    user = make_user(owner, role=make_role(owner, "Clerk", groups=[finance]), username="clerk")
    model = transfer.parse_role_model(
        __import__("json").dumps(
            {
                "format": "billing-access-role-model",
                "catalog_version": 1,
                "role_groups": [
                    {"name": "finance", "kind": "application", "grants": {"invoices": "full"}}
                ],
                "roles": [],
            }
        )
    )
    plan = transfer.plan_import(owner, model)
    assert plan.changed_groups == {"Finance": {"invoices": ["read", "full"]}}
    assert plan.impact.as_dict() == {"clerk": [("invoices", "read", "full")]}
    bad = dict(model, role_groups=[dict(model["role_groups"][0], grants={"tariffs": "full"})])
    with pytest.raises(EscalationRefused):
        transfer.import_role_model(bad, actor=manager, reason="")
    services.set_grants(
        finance, {"payments": "read"}, actor=manager, expected_row_version=1, reason=""
    )
    with pytest.raises(ValidationError, match="changed since the preview"):
        transfer.import_role_model(model, actor=manager, expected_epoch=plan.epoch, reason="")
    transfer.import_role_model(model, actor=manager, reason="")
    assert level(user, "invoices") == "full"
    assert level(user, "payments") == "none"  # the file's grants replace the group's


def test_an_administrator_without_the_login_flag_does_not_count(owner):
    admins = make_role_group(owner, "Admins", {"users": "full", "settings_user_groups": "full"})
    admin = make_user(owner, role=make_role(owner, groups=[admins]), privilege_level=10)
    make_user(owner, grants={"users": "full"}, allow_login=False)
    denied = make_user(owner, grants={"users": "full"})
    make_override(denied, "users", "read")
    with pytest.raises(EscalationRefused, match="nobody able to administer users"):
        services.set_grants(
            admins, {"users": "read"}, actor=admin, expected_row_version=1, reason=""
        )
    with pytest.raises(EscalationRefused, match="nobody able to administer users"):
        services.set_override(admin, "users", "read", actor=admin, reason="Stepping down")
    assert level(admin, "users") == "full"


def test_fill_category_sets_only_areas_that_have_the_level():
    app = catalog.Channel.APPLICATION
    standard = [a for a in catalog.areas_for(app) if a.category == catalog.Category.STANDARD]
    with_run = {a.code for a in standard if a.is_level(catalog.RUN)}
    assert with_run and len(with_run) < len(standard)
    filled = services.fill_category(
        {"tariffs": "full"}, channel=app, category=catalog.Category.STANDARD, level=catalog.RUN
    )
    assert {code for code, level in filled.items() if level == catalog.RUN} == with_run
    assert filled["tariffs"] == "full"  # another category keeps its cell
    narrowed = services.fill_category(
        {}, channel=app, category=catalog.Category.STANDARD, level=catalog.READ, query="report"
    )
    assert narrowed and all("report" in catalog.get(c).label.lower() for c in narrowed)
