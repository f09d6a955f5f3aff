"""User administration services: every rule refused first, then the change and its audit event."""

import datetime
from functools import partial
from unittest import mock

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import F
from django.http import Http404
from django.utils import timezone

from accounts import services, users
from accounts.choices import AccessSource
from accounts.models import Department, PasswordSetToken, UpdateReason, User
from audit.models import AuditEvent
from delivery.models import OutboundEmail
from delivery.worker import run_due
from roles.guards import EscalationRefused
from tests.builders import (
    make_department,
    make_owner,
    make_role,
    make_role_group,
    make_user,
)

# The screens' door; tests that name a reason or a source pass their own.
create_user = partial(users.create_user, reason="", source=AccessSource.SCREEN)
update_user = partial(users.update_user, reason="", source=AccessSource.SCREEN)
deactivate_user = partial(users.deactivate_user, reason="", source=AccessSource.SCREEN)
reactivate_user = partial(users.reactivate_user, reason="", source=AccessSource.SCREEN)
bulk_deactivate = partial(users.bulk_deactivate, source=AccessSource.SCREEN)
delete_user = partial(users.delete_user, reason="", source=AccessSource.SCREEN)

pytestmark = pytest.mark.django_db


def events(action, **filters):
    return list(AuditEvent.objects.filter(action=action, **filters).order_by("id"))


def new_user_data(**overrides):
    data = {
        "first_name": "Nora",
        "last_name": "Newcomer",
        "username": "nora",
        "email": "Nora@Example.TEST",
        "privilege_level": 3,
    }
    data.update(overrides)
    return data


@pytest.fixture
def manager(owner):
    """An administrator of users with privilege 5 and expert level 1."""
    return make_user(
        owner, username="manager", grants={"users": "full"}, privilege_level=5, expert_level=1
    )


class TestCreateUser:
    def test_refuses_a_privilege_level_above_the_actors(self, manager):
        with pytest.raises(EscalationRefused, match="above your own"):
            create_user(actor=manager, data=new_user_data(privilege_level=6))
        assert not User.objects.filter(username="nora").exists()

    def test_refuses_an_expert_level_above_the_actors(self, manager):
        with pytest.raises(EscalationRefused, match="expert level"):
            create_user(actor=manager, data=new_user_data(expert_level=2))

    def test_refuses_a_role_that_grants_more_than_the_actor_holds(self, owner, manager):
        role = make_role(owner, groups=[make_role_group(owner, grants={"invoices": "full"})])
        with pytest.raises(EscalationRefused, match="Invoices"):
            create_user(actor=manager, data=new_user_data(role=role))

    def test_refuses_extra_groups_that_grant_more_than_the_actor_holds(self, owner, manager):
        group = make_role_group(owner, grants={"payments": "read"})
        with pytest.raises(EscalationRefused):
            create_user(actor=manager, data=new_user_data(extra_role_groups=[group]))

    def test_refuses_rows_of_another_owner(self, manager):
        stranger_department = make_department(make_owner(), "Elsewhere")
        with pytest.raises(ValidationError) as exc:
            create_user(actor=manager, data=new_user_data(departments=[stranger_department]))
        assert "departments" in exc.value.error_dict

    def test_refuses_a_username_or_email_taken_in_another_case(self, owner, manager):
        make_user(make_owner(), username="NORA", email="someone@example.test")
        with pytest.raises(ValidationError) as exc:
            create_user(actor=manager, data=new_user_data())
        assert "username" in exc.value.error_dict
        make_user(owner, username="other", email="NORA@example.test")
        with pytest.raises(ValidationError) as exc:
            create_user(actor=manager, data=new_user_data(username="nora2"))
        assert "email" in exc.value.error_dict

    def test_creates_without_a_password_and_records_every_field(self, owner, manager):
        finance = make_department(owner, "Finance")
        group = make_role_group(owner, "Readers", grants={"users": "read"})
        user = create_user(
            actor=manager,
            data=new_user_data(departments=[finance], extra_role_groups=[group]),
        )
        assert user.owner_id == owner.pk
        assert not user.has_usable_password()
        assert user.email == "Nora@example.test"  # the domain is normalised
        assert list(user.departments.all()) == [finance]
        (event,) = events("user_created")
        assert event.actor_id == manager.pk
        assert event.subject_user_id == user.pk
        assert event.changes["username"] == [None, "nora"]
        assert event.changes["departments"] == [None, ["Finance"]]
        assert event.changes["extra_role_groups"] == [None, ["Readers"]]

    def test_an_api_user_gets_no_login_flag(self, manager):
        user = create_user(
            actor=manager, data=new_user_data(kind="api", allow_login=True, allow_api_read=True)
        )
        assert user.allow_login is False
        assert user.is_active is False


class TestUpdateUser:
    def test_refuses_a_stale_row_version_and_says_what_changed(self, owner, manager):
        user = make_user(owner, username="fran", first_name="Fran")
        update_user(
            user,
            actor=manager,
            data={"first_name": "Frances"},
            expected_row_version=1,
            reason="Correction",
        )
        with pytest.raises(users.RecordChanged) as exc:
            update_user(user, actor=manager, data={"last_name": "Late"}, expected_row_version=1)
        assert exc.value.current_row_version == 2
        assert exc.value.events[0].changes == {"first_name": ["Fran", "Frances"]}
        assert "manager" in exc.value.messages[0] or manager.label in exc.value.messages[0]
        user.refresh_from_db()
        assert user.last_name == ""

    def test_the_conditional_update_refuses_a_save_that_lands_in_between(self, owner, manager):
        """A concurrent save that commits after our read but before our UPDATE wins alone."""
        user = make_user(owner, username="fran", first_name="Fran")
        real_check = users.guards.check_can_manage_user

        def concurrent_save_then_check(*args, **kwargs):
            User.objects.filter(pk=user.pk).update(row_version=F("row_version") + 1)
            return real_check(*args, **kwargs)

        with (
            mock.patch.object(users.guards, "check_can_manage_user", concurrent_save_then_check),
            pytest.raises(users.RecordChanged),
        ):
            update_user(user, actor=manager, data={"first_name": "Lost"}, expected_row_version=1)
        user.refresh_from_db()
        assert user.first_name == "Fran"
        assert not events("user_changed")

    def test_records_before_and_after_with_reason_and_details(self, owner, manager):
        finance, sales = make_department(owner, "Finance"), make_department(owner, "Sales")
        user = make_user(owner, username="fran", first_name="Fran")
        user.departments.set([finance])
        changes = update_user(
            user,
            actor=manager,
            data={"first_name": "Frances", "departments": [finance, sales]},
            expected_row_version=1,
            reason="Change of role",
            details="Moved to sales in March.",
        )
        assert changes == {
            "departments": [["Finance"], ["Finance", "Sales"]],
            "first_name": ["Fran", "Frances"],
        }
        user.refresh_from_db()
        assert user.row_version == 2
        (event,) = events("user_changed")
        assert (event.reason, event.details) == ("Change of role", "Moved to sales in March.")
        assert event.changes == changes
        assert event.context["row_version"] == 2

    def test_nothing_changed_writes_nothing(self, owner, manager):
        user = make_user(owner, username="fran", first_name="Fran")
        assert (
            update_user(user, actor=manager, data={"first_name": "Fran"}, expected_row_version=1)
            == {}
        )
        assert not events("user_changed")

    def test_refuses_editing_a_user_of_higher_privilege(self, owner, manager):
        boss = make_user(owner, username="boss", privilege_level=9)
        with pytest.raises(EscalationRefused, match="privilege level 9"):
            update_user(boss, actor=manager, data={"first_name": "X"}, expected_row_version=1)

    def test_refuses_raising_privilege_above_the_actors(self, owner, manager):
        user = make_user(owner, username="fran", privilege_level=2)
        with pytest.raises(EscalationRefused):
            update_user(user, actor=manager, data={"privilege_level": 6}, expected_row_version=1)

    def test_leaves_an_unchanged_higher_expert_level_alone(self, owner, manager):
        user = make_user(owner, username="fran", privilege_level=2, expert_level=3)
        update_user(user, actor=manager, data={"first_name": "F"}, expected_row_version=1)
        with pytest.raises(EscalationRefused):
            update_user(user, actor=manager, data={"expert_level": 2}, expected_row_version=2)

    def test_refuses_removing_the_last_administrator(self, owner, manager):
        with pytest.raises(EscalationRefused, match="nobody able to administer"):
            update_user(manager, actor=manager, data={"role": None}, expected_row_version=1)
        manager.refresh_from_db()
        assert manager.role_id is not None

    def test_a_role_change_bumps_the_permission_version(self, owner, manager):
        user = make_user(owner, username="fran")
        role = make_role(owner, groups=[make_role_group(owner, grants={"users": "read"})])
        update_user(user, actor=manager, data={"role": role}, expected_row_version=1)
        user.refresh_from_db()
        assert user.permissions_version == 2

    def test_turning_into_an_api_user_removes_the_login_flag(self, owner, manager):
        user = make_user(owner, username="robot")
        changes = update_user(user, actor=manager, data={"kind": "api"}, expected_row_version=1)
        assert changes["allow_login"] == [True, False]
        user.refresh_from_db()
        assert not user.allow_login

    def test_moving_to_sso_drops_the_local_password_and_links(self, owner, manager):
        user = make_user(owner, username="fran")
        services.send_access_email(user, actor=manager)
        update_user(user, actor=manager, data={"auth_source": "saml"}, expected_row_version=1)
        user.refresh_from_db()
        assert not user.has_usable_password()
        assert not PasswordSetToken.objects.usable().filter(user=user).exists()


class TestLoginFlag:
    def test_refuses_deactivating_yourself(self, manager):
        with pytest.raises(ValidationError, match="yourself"):
            deactivate_user(manager, actor=manager)

    def test_refuses_a_user_of_higher_privilege(self, owner, manager):
        boss = make_user(owner, username="boss", privilege_level=9)
        with pytest.raises(EscalationRefused):
            deactivate_user(boss, actor=manager)

    def test_refuses_another_owners_user(self, manager):
        with pytest.raises(Http404):
            deactivate_user(make_user(make_owner()), actor=manager)

    def test_deactivate_and_reactivate(self, owner, manager):
        user = make_user(owner, username="fran")
        deactivate_user(user, actor=manager, reason="Leaver", details="Last day Friday")
        user.refresh_from_db()
        assert (user.allow_login, user.is_active, user.row_version) == (False, False, 2)
        assert user.permissions_version == 2
        (event,) = events("user_deactivated")
        assert event.changes == {"allow_login": [True, False]}
        assert (event.reason, event.details) == ("Leaver", "Last day Friday")
        with pytest.raises(ValidationError, match="already deactivated"):
            deactivate_user(user, actor=manager)
        reactivate_user(user, actor=manager, reason="Returner")
        user.refresh_from_db()
        assert user.allow_login
        assert events("user_reactivated")[0].changes == {"allow_login": [False, True]}

    def test_an_api_user_cannot_be_reactivated_for_sign_in(self, owner, manager):
        robot = make_user(owner, username="robot", kind="api", allow_login=False)
        with pytest.raises(ValidationError, match="API user"):
            reactivate_user(robot, actor=manager)


class TestBulkDeactivate:
    def test_needs_expert_level_two(self, owner, manager):
        user = make_user(owner, username="fran")
        with pytest.raises(PermissionDenied, match="expert level 2"):
            bulk_deactivate([user], actor=manager, reason="Leaver")

    def test_all_or_nothing(self, owner, manager):
        manager.expert_level = 2
        fran = make_user(owner, username="fran")
        boss = make_user(owner, username="boss", privilege_level=9)
        with pytest.raises(EscalationRefused):
            bulk_deactivate([fran, boss], actor=manager, reason="Leaver")
        fran.refresh_from_db()
        assert fran.allow_login
        assert not events("user_deactivated")

    def test_deactivates_each_with_its_event(self, owner, manager):
        manager.expert_level = 2
        users = [make_user(owner, username=f"u{n}") for n in range(3)]
        done = bulk_deactivate(users, actor=manager, reason="Restructure")
        assert len(done) == 3
        assert User.objects.filter(pk__in=[u.pk for u in users], allow_login=True).count() == 0
        recorded = events("user_deactivated")
        assert [e.subject_user_id for e in recorded] == [u.pk for u in users]
        assert all(e.context["bulk"] and e.reason == "Restructure" for e in recorded)


class TestDeleteUser:
    def test_refuses_a_user_with_history(self, owner, manager):
        user = create_user(actor=manager, data=new_user_data())
        deactivate_user(user, actor=manager)
        with pytest.raises(ValidationError, match="history"):
            delete_user(user, actor=manager)
        assert User.objects.filter(pk=user.pk).exists()

    def test_deletes_a_user_created_by_mistake(self, owner, manager):
        user = create_user(actor=manager, data=new_user_data())
        delete_user(user, actor=manager)
        assert not User.objects.filter(username="nora").exists()
        (event,) = events("user_deleted")
        assert event.changes["username"] == ["nora", None]


class TestSettingsLists:
    def test_create_rename_retire_restore(self, owner, manager):
        item = services.create_settings_item(
            Department, actor=manager, name="  Finance  ", reason=""
        )
        assert item.name == "Finance"
        with pytest.raises(ValidationError) as exc:
            services.create_settings_item(Department, actor=manager, name="FINANCE", reason="")
        assert "name" in exc.value.error_dict
        services.rename_settings_item(item, actor=manager, name="Finance & Billing", reason="")
        services.set_settings_item_retired(item, actor=manager, retired=True, reason="")
        with pytest.raises(ValidationError, match="already retired"):
            services.set_settings_item_retired(item, actor=manager, retired=True, reason="")
        services.set_settings_item_retired(item, actor=manager, retired=False, reason="")
        item.refresh_from_db()
        assert (item.name, item.retired) == ("Finance & Billing", False)
        actions = [
            e.action for e in AuditEvent.objects.filter(target_type="department").order_by("id")
        ]
        assert actions == [
            "settings_item_created",
            "settings_item_changed",
            "settings_item_retired",
            "settings_item_changed",
        ]

    def test_same_name_in_another_owner_is_fine_and_their_items_are_out_of_reach(self, manager):
        theirs = UpdateReason.objects.create(owner=make_owner(), name="Leaver")
        services.create_settings_item(UpdateReason, actor=manager, name="Leaver", reason="")
        with pytest.raises(Http404):
            services.rename_settings_item(theirs, actor=manager, name="Mine now", reason="")

    def test_refuses_an_empty_or_long_name(self, manager):
        for name in ("   ", "x" * 121):
            with pytest.raises(ValidationError):
                services.create_settings_item(Department, actor=manager, name=name, reason="")


class TestAccessEmail:
    def test_refuses_sso_api_and_deactivated_users(self, owner, manager):
        for fields in (
            {"auth_source": "saml"},
            {"kind": "api", "allow_login": False},
            {"allow_login": False},
        ):
            user = make_user(owner, **fields)
            with pytest.raises(ValidationError):
                services.send_access_email(user, actor=manager)
        assert mail.outbox == []
        assert not PasswordSetToken.objects.exists()

    def test_sends_login_and_link_and_stores_only_a_hash(self, owner, manager, settings):
        settings.PUBLIC_URL = "https://portal.example"
        user = make_user(owner, username="fran")
        now = timezone.now()
        link = services.send_access_email(user, actor=manager, now=now)
        assert link.expires_at == now + datetime.timedelta(hours=72)
        assert mail.outbox == []  # the worker sends it
        run_due()
        (message,) = mail.outbox
        assert message.to == [user.email]
        assert "Your login name: fran" in message.body
        token = message.body.split("https://portal.example/set-password/")[1].split("/")[0]
        stored = PasswordSetToken.objects.get()
        assert stored.token_hash == services.token_hash(token)
        assert token not in stored.token_hash
        (event,) = events("access_email_sent")
        assert token not in str(event.changes) + str(event.context) + event.details
        assert event.actor_id == manager.pk and event.subject_user_id == user.pk

    def test_link_lifetime_comes_from_settings(self, owner, manager, settings):
        settings.ACCESS_LINK_HOURS = 4
        now = timezone.now()
        link = services.send_access_email(make_user(owner), actor=manager, now=now)
        assert link.expires_at == now + datetime.timedelta(hours=4)

    def test_a_newer_link_voids_the_older(self, owner, manager):
        user = make_user(owner)
        services.send_access_email(user, actor=manager)
        run_due()
        first = mail.outbox[0].body.split("/set-password/")[1].split("/")[0]
        services.send_access_email(user, actor=manager)
        with pytest.raises(services.LinkNotUsable):
            services.set_password_with_link(first, "a long enough new passphrase")

    def test_a_mail_server_failure_does_not_undo_the_action(self, owner, manager):
        user = make_user(owner)
        with mock.patch("django.core.mail.EmailMessage.send", side_effect=OSError("down")):
            services.send_access_email(user, actor=manager)
            run_due()
        assert PasswordSetToken.objects.exists()
        assert events("access_email_sent")
        (email,) = OutboundEmail.objects.filter(user=user)
        assert (email.state, email.attempts, email.last_error) == ("queued", 1, "OSError: down")


class TestSetPasswordWithLink:
    @pytest.fixture
    def sent(self, owner, manager):
        user = make_user(owner, username="fran")
        user.set_unusable_password()
        user.save()
        services.send_access_email(user, actor=manager)
        run_due()
        token = mail.outbox[-1].body.split("/set-password/")[1].split("/")[0]
        return user, token

    def test_refuses_a_password_against_the_policy(self, sent):
        user, token = sent
        with pytest.raises(ValidationError, match="at least 15"):
            services.set_password_with_link(token, "short")
        assert not PasswordSetToken.objects.get().used_at

    def test_refuses_unknown_expired_and_used_links(self, sent):
        user, token = sent
        with pytest.raises(services.LinkNotUsable):
            services.set_password_with_link("not-a-token", "a long enough new passphrase")
        later = timezone.now() + datetime.timedelta(hours=73)
        with pytest.raises(services.LinkNotUsable):
            services.set_password_with_link(token, "a long enough new passphrase", now=later)
        services.set_password_with_link(token, "a long enough new passphrase")
        with pytest.raises(services.LinkNotUsable):
            services.set_password_with_link(token, "another long passphrase here")

    def test_refuses_a_user_deactivated_since(self, sent, manager):
        user, token = sent
        deactivate_user(user, actor=manager)
        with pytest.raises(services.LinkNotUsable):
            services.set_password_with_link(token, "a long enough new passphrase")

    def test_sets_the_password_and_uses_up_the_link(self, sent):
        user, token = sent
        services.set_password_with_link(token, "a long enough new passphrase")
        user.refresh_from_db()
        assert user.check_password("a long enough new passphrase")
        assert user.password_changed_at is not None
        assert PasswordSetToken.objects.get().used_at is not None
        (event,) = events("password_set")
        assert event.subject_user_id == user.pk
        assert "passphrase" not in str(event.context)


@pytest.mark.django_db(transaction=True)
def test_two_saves_on_two_connections_cannot_both_win(owner):
    """Save A reads the record, save B commits on another connection, then A's conditional
    UPDATE finds the row moved on and A is refused: B's change stands, A's is not applied."""
    import threading

    from django.db import connection

    actor = make_user(owner, username="manager", grants={"users": "full"}, privilege_level=5)
    user = make_user(owner, username="fran", first_name="Fran", last_name="Finance")
    a_has_read, b_committed = threading.Event(), threading.Event()
    outcome = {}
    real_check = users.guards.check_can_manage_user

    def pause_save_a(*args, **kwargs):
        if threading.current_thread().name == "save-a":
            a_has_read.set()
            assert b_committed.wait(30)
        return real_check(*args, **kwargs)

    def save_a():
        try:
            update_user(
                User.objects.get(pk=user.pk),
                actor=actor,
                data={"first_name": "Frances"},
                expected_row_version=1,
            )
            outcome["a"] = "saved"
        except users.RecordChanged as exc:
            outcome["a"] = exc
        finally:
            connection.close()

    with mock.patch.object(users.guards, "check_can_manage_user", pause_save_a):
        thread = threading.Thread(target=save_a, name="save-a")
        thread.start()
        assert a_has_read.wait(30)
        update_user(user, actor=actor, data={"last_name": "Fernsby"}, expected_row_version=1)
        b_committed.set()
        thread.join(30)
    assert isinstance(outcome["a"], users.RecordChanged)
    assert outcome["a"].events[0].changes == {"last_name": ["Finance", "Fernsby"]}
    user.refresh_from_db()
    assert (user.first_name, user.last_name, user.row_version) == ("Fran", "Fernsby", 2)
