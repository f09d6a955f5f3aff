"""User administration screens: access of every view, forms with bad input, escalation through
crafted posts, another owner's records, lost updates, the list's queries and its CSV export."""

import csv
import io

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts import services, users
from accounts.choices import AccessSource
from accounts.models import CommissionProfile, Department, PasswordSetToken, UpdateReason, User
from audit.models import AuditEvent
from delivery.worker import run_due
from roles import catalog
from tests.access_helpers import assert_screen_access
from tests.builders import (
    make_department,
    make_owner,
    make_role,
    make_role_group,
    make_update_reason,
    make_user,
    user_form_data,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def subject(owner):
    return make_user(owner, username="fran", first_name="Fran", last_name="Finance")


@pytest.fixture
def reason(owner):
    return make_update_reason(owner, "Correction")


def user_urls(pk):
    return [
        f"/users/{pk}/",
        f"/users/{pk}/permissions/",
        f"/users/{pk}/security/",
        f"/users/{pk}/activity/",
        f"/users/{pk}/commission/",
    ]


def change_urls(pk):
    return [
        f"/users/{pk}/edit/",
        f"/users/{pk}/deactivate/",
        f"/users/{pk}/delete/",
        "/users/new/",
    ]


SETTINGS = [
    ("departments", "settings_departments", Department),
    ("update-reasons", "settings_user_activity_reasons", UpdateReason),
    ("commission-profiles", "settings_commission_profiles", CommissionProfile),
]


class TestAccess:
    def test_every_screen_anonymous_forbidden_allowed(self, signed_in, owner, admin_user, subject):
        nobody = make_user(owner, username="nobody", grants={"invoices": "full"})
        reader = make_user(owner, username="reader", grants={"users": "read"})
        read = ["/users/", *user_urls(subject.pk)]
        change = [*change_urls(subject.pk), f"/users/{subject.pk}/access-email/"]
        settings = [f"/settings/{slug}/{page}" for slug, _, _ in SETTINGS for page in ("", "new/")]
        assert_screen_access(signed_in, read, allowed=[reader, admin_user], denied=nobody)
        assert_screen_access(signed_in, change, allowed=admin_user, denied=[nobody, reader])
        assert_screen_access(signed_in, settings, allowed=admin_user, denied=[nobody, reader])
        assert_screen_access(signed_in, ["/users/export.csv"], denied=nobody)

    def test_posts_without_permission_are_403(self, signed_in, owner, subject):
        client = signed_in(make_user(owner, username="nobody", grants={"invoices": "full"}))
        assert client.post("/users/bulk-deactivate/", {}).status_code == 403
        client = signed_in(make_user(owner, username="reader", grants={"users": "read"}))
        assert client.post(f"/users/{subject.pk}/deactivate/", {}).status_code == 403

    def test_read_is_not_offered_the_changes(self, signed_in, owner, subject):
        client = signed_in(make_user(owner, username="reader", grants={"users": "read"}))
        for url in ["/users/", *user_urls(subject.pk)]:
            assert "New user" not in client.get(url).content.decode(), url

    def test_settings_lists_need_their_own_area(self, signed_in, owner):
        client = signed_in(
            make_user(owner, grants={"settings_departments": "read", "users": "full"})
        )
        assert client.get("/settings/departments/").status_code == 200
        assert client.get("/settings/departments/new/").status_code == 403
        assert client.get("/settings/update-reasons/").status_code == 403
        assert client.get("/settings/commission-profiles/").status_code == 403

    def test_another_owners_user_is_404(self, signed_in, admin_user):
        stranger = make_user(make_owner(), username="stranger")
        client = signed_in(admin_user)
        for url in [
            *user_urls(stranger.pk),
            *change_urls(stranger.pk)[:3],
            f"/users/{stranger.pk}/access-email/",
        ]:
            assert client.get(url).status_code == 404, url
        assert client.post(f"/users/{stranger.pk}/deactivate/", {}).status_code == 404
        stranger.refresh_from_db()
        assert stranger.allow_login

    def test_another_owners_settings_item_is_404(self, signed_in, admin_user):
        theirs = Department.objects.create(owner=make_owner(), name="Theirs")
        client = signed_in(admin_user)
        for action in ("rename", "retire", "restore"):
            assert client.get(f"/settings/departments/{theirs.pk}/{action}/").status_code == 404


class TestCreate:
    def test_creates_and_records(self, signed_in, admin_user, owner):
        finance = make_department(owner, "Finance")
        response = signed_in(admin_user).post(
            "/users/new/", user_form_data(departments=[finance.pk])
        )
        user = User.objects.get(username="nora")
        assert response.status_code == 302
        assert response["Location"] == f"/users/{user.pk}/"
        assert list(user.departments.all()) == [finance]
        assert AuditEvent.objects.filter(action="user_created", subject_user_id=user.pk).exists()

    @pytest.mark.parametrize(
        ("field", "value", "message"),
        [
            ("username", "x" * 151, "at most 150"),
            ("username", "has space", "Enter a valid username"),
            ("first_name", "y" * 151, "at most 150"),
            ("email", "not-an-email", "valid email"),
            ("email", "a@" + "b" * 260 + ".test", "at most 254"),
            ("time_zone", "Mars/Olympus", "valid choice"),
            ("privilege_level", "11", "Choose a level up to your own (10)"),
            ("commission_annual_target", "lots", "number"),
            ("commission_annual_target", "-5", "cannot be negative"),
            ("commission_paid", "-0.01", "cannot be negative"),
            ("commission_target_calls", "1" + "0" * 13, "no more than 12 digits before"),
            ("commission_reference_date", "1900-01-01", "between 1 Jan 2000"),
            ("commission_reference_date", "2999-01-01", "between 1 Jan 2000"),
        ],
    )
    def test_bad_input_is_a_field_error(self, signed_in, admin_user, field, value, message):
        response = signed_in(admin_user).post("/users/new/", user_form_data(**{field: value}))
        assert response.status_code == 400
        assert message in str(response.context["form"].errors[field])
        assert not User.objects.filter(username="nora").exists()

    def test_unicode_is_welcome(self, signed_in, admin_user):
        response = signed_in(admin_user).post(
            "/users/new/",
            user_form_data(first_name="Zoë", last_name="Ångström 山田", display_name="Zoë 🚀"),
        )
        assert response.status_code == 302
        assert User.objects.get(username="nora").display_name == "Zoë 🚀"

    def test_duplicates_in_another_case_are_field_errors(self, signed_in, admin_user, owner):
        make_user(make_owner(), username="NORA", email="Nora@Example.test")
        response = signed_in(admin_user).post("/users/new/", user_form_data())
        assert response.status_code == 400
        errors = response.context["form"].errors
        assert "already taken" in str(errors["username"])
        assert "already has this email" in str(errors["email"])

    def test_escalation_through_a_crafted_post_is_refused(self, signed_in, owner):
        actor = make_user(owner, grants={"users": "full"}, privilege_level=4)
        client = signed_in(actor)
        response = client.post("/users/new/", user_form_data(privilege_level="9"))
        assert response.status_code == 400
        assert "Choose a level up to your own (4)" in response.content.decode()
        rich = make_role(owner, groups=[make_role_group(owner, grants={"payments": "full"})])
        response = client.post("/users/new/", user_form_data(role=str(rich.pk)))
        assert response.status_code == 400
        assert "cannot grant the role group" in response.content.decode()
        theirs = make_role(make_owner())
        response = client.post("/users/new/", user_form_data(role=str(theirs.pk)))
        assert response.status_code == 400
        assert "role" in response.context["form"].errors
        assert not User.objects.filter(username="nora").exists()


class TestEscalationWall:
    """A manager holding Users full and Invoices read is offered only what they may grant."""

    @pytest.fixture
    def manager(self, owner):
        return make_user(
            owner,
            username="mara",
            grants={"users": "full", "invoices": "read"},
            privilege_level=4,
            expert_level=1,
        )

    @pytest.fixture
    def access(self, owner):
        readers = make_role_group(owner, "Invoice readers", grants={"invoices": "read"})
        finance = make_role_group(owner, "Finance", grants={"invoices": "full", "payments": "read"})
        admins = make_role_group(
            owner,
            "Administrators",
            grants={a.code: a.top for a in catalog.areas_for("application")},
        )
        return {
            "readers": readers,
            "finance": finance,
            "admins": admins,
            "reader": make_role(owner, "Invoice reader", groups=[readers]),
            "clerk": make_role(owner, "Finance clerk", groups=[finance]),
            "administrator": make_role(owner, "Administrator", groups=[admins]),
        }

    def test_form_offers_only_what_the_manager_may_grant(self, signed_in, manager, access):
        response = signed_in(manager).get("/users/new/")
        form = response.context["form"]
        role = form.fields["role"]
        assert role.widget.disabled == {str(access["clerk"].pk), str(access["administrator"].pk)}
        labels = {obj.pk: role.label_from_instance(obj) for obj in role.queryset}
        assert labels[access["reader"].pk] == "Invoice reader"
        assert labels[access["clerk"].pk] == "Finance clerk (needs Invoices full and 1 more area)"
        assert labels[access["administrator"].pk].startswith(
            "Administrator (needs Invoices full and "
        )
        groups = form.fields["extra_role_groups"]
        assert groups.widget.disabled == {str(access["finance"].pk), str(access["admins"].pk)}
        assert [v for v, _ in form.fields["privilege_level"].choices] == [0, 1, 2, 3, 4]
        assert [v for v, _ in form.fields["expert_level"].choices] == [0, 1]
        html = response.content.decode()
        assert f'<option value="{access["clerk"].pk}" disabled>' in html
        assert f'value="{access["reader"].pk}">Invoice reader</option>' in html
        assert html.count("disabled") >= 4  # two roles, two groups

    def test_what_the_user_already_has_stays_available(self, signed_in, owner, manager, access):
        held = make_user(owner, username="kept", privilege_level=3, role=access["clerk"])
        held.extra_role_groups.add(access["finance"])
        form = signed_in(manager).get(f"/users/{held.pk}/edit/").context["form"]
        assert str(access["clerk"].pk) not in form.fields["role"].widget.disabled
        assert str(access["finance"].pk) not in form.fields["extra_role_groups"].widget.disabled
        assert str(access["admins"].pk) in form.fields["extra_role_groups"].widget.disabled

    def test_a_refusal_names_a_few_areas_and_lists_the_rest(self, signed_in, manager, access):
        client = signed_in(manager)
        response = client.post("/users/new/", user_form_data(role=str(access["administrator"].pk)))
        assert response.status_code == 400
        message = response.context["form"].non_field_errors()[0]
        areas = len(catalog.areas_for("application")) - 1  # Users full is held
        assert message == (
            "You cannot grant the role group Administrators, which gives what you do not hold: "
            "Invoices (full; you hold read), Billing (full; you hold none), Reports (full; you "
            f"hold none) and {areas - 3} more areas."
        )
        details = response.context["form"].refusal_details
        assert len(details) == areas and "Tariffs (full; you hold none)" in details
        html = response.content.decode()
        assert f"<summary>All {areas} areas</summary>" in html
        assert "<li>Tariffs (full; you hold none)</li>" in html
        response = client.post("/users/new/", user_form_data(role=str(access["clerk"].pk)))
        message = response.context["form"].non_field_errors()[0]
        assert message == (
            "You cannot grant the role group Finance, which gives what you do not hold: "
            "Invoices (full; you hold read) and Payments (read; you hold none)."
        )
        assert not getattr(response.context["form"], "refusal_details", None)
        assert "refusal-details" not in response.content.decode()
        response = client.post("/users/new/", user_form_data(role=str(access["reader"].pk)))
        assert response.status_code == 302


class TestEdit:
    def post_edit(self, client, user, reason, **changes):
        form = client.get(f"/users/{user.pk}/edit/").context["form"]
        data = {
            name: value for name, value in form.initial.items() if value is not None
        }  # what the browser would send back
        for name in ("departments", "extra_role_groups"):
            data[name] = [obj.pk for obj in data.get(name, [])]
        for name, value in list(data.items()):
            if isinstance(value, bool):
                if value:
                    data[name] = "on"
                else:
                    del data[name]
            elif hasattr(value, "pk"):
                data[name] = value.pk
        data.update(update_reason=reason.pk, update_details="Checked with HR")
        data.update(changes)
        return data

    def test_saves_with_reason_and_details(self, signed_in, admin_user, subject, reason):
        client = signed_in(admin_user)
        data = self.post_edit(client, subject, reason, first_name="Frances")
        response = client.post(f"/users/{subject.pk}/edit/", data)
        assert response.status_code == 302
        event = AuditEvent.objects.get(action="user_changed")
        assert event.changes == {"first_name": ["Fran", "Frances"]}
        assert (event.reason, event.details) == ("Correction", "Checked with HR")

    def test_a_reason_is_required(self, signed_in, admin_user, subject, reason):
        client = signed_in(admin_user)
        data = self.post_edit(client, subject, reason, first_name="Frances", update_reason="")
        response = client.post(f"/users/{subject.pk}/edit/", data)
        assert response.status_code == 400
        assert "update_reason" in response.context["form"].errors

    def test_the_second_of_two_concurrent_saves_is_refused(
        self, signed_in, admin_user, subject, reason
    ):
        client = signed_in(admin_user)
        first = self.post_edit(client, subject, reason, first_name="Frances")
        second = self.post_edit(client, subject, reason, last_name="Fernsby")
        assert client.post(f"/users/{subject.pk}/edit/", first).status_code == 302
        response = client.post(f"/users/{subject.pk}/edit/", second)
        assert response.status_code == 400
        page = response.content.decode()
        assert "was changed by" in page and "nothing was saved" in page
        assert "Changed meanwhile" in page and "Frances" in page
        assert 'name="row_version" value="2"' in page
        subject.refresh_from_db()
        assert (subject.first_name, subject.last_name) == ("Frances", "Finance")
        assert AuditEvent.objects.filter(action="user_changed").count() == 1

    def test_a_tampered_row_version_is_a_field_error(self, signed_in, admin_user, subject, reason):
        client = signed_in(admin_user)
        data = self.post_edit(client, subject, reason, row_version="abc")
        assert client.post(f"/users/{subject.pk}/edit/", data).status_code == 400

    def test_editing_a_higher_privileged_user_is_refused(self, signed_in, owner, reason):
        actor = make_user(owner, grants={"users": "full"}, privilege_level=4)
        boss = make_user(owner, username="boss", privilege_level=8)
        client = signed_in(actor)
        admin_view = signed_in(actor).get(f"/users/{boss.pk}/")
        assert "Edit" not in admin_view.content.decode().split("<main")[1].split("tabs")[0]
        data = {
            **user_form_data(username="boss", email=boss.email, privilege_level="4"),
            "row_version": 1,
            "update_reason": reason.pk,
        }
        response = client.post(f"/users/{boss.pk}/edit/", data)
        assert response.status_code == 400
        assert "privilege level 8" in response.content.decode()


class TestLoginFlagScreens:
    def test_deactivate_and_reactivate(self, signed_in, admin_user, subject, reason):
        client = signed_in(admin_user)
        response = client.post(
            f"/users/{subject.pk}/deactivate/",
            {"update_reason": reason.pk, "update_details": "Left"},
        )
        assert response.status_code == 302
        subject.refresh_from_db()
        assert not subject.allow_login
        assert AuditEvent.objects.get(action="user_deactivated").details == "Left"
        assert "Reactivate" in client.get(f"/users/{subject.pk}/").content.decode()
        response = client.post(f"/users/{subject.pk}/reactivate/", {"update_reason": reason.pk})
        assert response.status_code == 302
        subject.refresh_from_db()
        assert subject.allow_login

    def test_deactivating_twice_says_so(self, signed_in, admin_user, subject, reason):
        client = signed_in(admin_user)
        client.post(f"/users/{subject.pk}/deactivate/", {"update_reason": reason.pk})
        response = client.post(f"/users/{subject.pk}/deactivate/", {"update_reason": reason.pk})
        assert response.status_code == 400
        assert "already deactivated" in response.content.decode()

    def test_a_deactivated_users_session_ends_at_its_next_request(
        self, client, admin_user, subject, reason
    ):
        client.force_login(subject, backend="accounts.backends.PortalBackend")
        assert client.get("/").status_code == 200
        users.deactivate_user(subject, actor=admin_user, reason="", source=AccessSource.SCREEN)
        response = client.get("/")
        assert response.status_code == 302 and response["Location"].startswith("/sign-in/")

    def test_deactivation_ends_every_session_and_reactivation_revives_none(
        self, client, admin_user, subject, reason
    ):
        from security.models import UserSession

        client.force_login(subject, backend="accounts.backends.PortalBackend")
        assert client.get("/").status_code == 200
        assert UserSession.objects.filter(user=subject, ended_at__isnull=True).count() == 1
        users.deactivate_user(subject, actor=admin_user, reason="", source=AccessSource.SCREEN)
        assert not UserSession.objects.filter(user=subject, ended_at__isnull=True).exists()
        event = AuditEvent.objects.filter(action="user_deactivated").latest("id")
        assert event.context["sessions_ended"] == 1
        users.reactivate_user(subject, actor=admin_user, reason="", source=AccessSource.SCREEN)
        response = client.get("/")  # the browser signed in before is not signed in again
        assert response.status_code == 302 and response["Location"].startswith("/sign-in/")


class TestBulkDeactivate:
    def test_needs_expert_level_two(self, signed_in, owner, reason):
        actor = make_user(owner, grants={"users": "full"}, expert_level=1)
        target = make_user(owner)
        client = signed_in(actor)
        assert 'id="bulk-form"' in client.get("/users/").content.decode()
        assert "Deactivate selected" not in client.get("/users/").content.decode()
        response = client.post(
            "/users/bulk-deactivate/", {"users": [target.pk], "update_reason": reason.pk}
        )
        assert response.status_code == 302
        target.refresh_from_db()
        assert target.allow_login
        messages = [str(m) for m in response.wsgi_request._messages]
        assert "expert level 2" in messages[0]

    def test_deactivates_the_ticked_users(self, signed_in, admin_user, owner, reason):
        targets = [make_user(owner) for _ in range(3)]
        response = signed_in(admin_user).post(
            "/users/bulk-deactivate/",
            {"users": [t.pk for t in targets[:2]], "update_reason": reason.pk, "back": "q=x"},
        )
        assert response["Location"] == "/users/?q=x"
        assert [User.objects.get(pk=t.pk).allow_login for t in targets] == [False, False, True]
        assert AuditEvent.objects.filter(action="user_deactivated").count() == 2

    def test_another_owners_user_cannot_be_ticked(self, signed_in, admin_user, reason):
        stranger = make_user(make_owner())
        signed_in(admin_user).post(
            "/users/bulk-deactivate/", {"users": [stranger.pk], "update_reason": reason.pk}
        )
        stranger.refresh_from_db()
        assert stranger.allow_login


class TestDelete:
    def test_only_without_history(self, signed_in, admin_user, owner):
        fresh = make_user(owner, username="mistake")
        client = signed_in(admin_user)
        assert "Delete" in client.get(f"/users/{fresh.pk}/").content.decode()
        assert client.post(f"/users/{fresh.pk}/delete/").status_code == 302
        assert not User.objects.filter(username="mistake").exists()
        assert AuditEvent.objects.filter(action="user_deleted").exists()
        used = make_user(owner, username="used")
        users.deactivate_user(used, actor=admin_user, reason="", source=AccessSource.SCREEN)
        assert ">Delete<" not in client.get(f"/users/{used.pk}/").content.decode()
        response = client.post(f"/users/{used.pk}/delete/")
        assert response.status_code == 400
        assert "has history" in response.content.decode()


class TestAccessEmailScreens:
    def test_needs_data_protection_access(self, signed_in, owner, subject):
        no_dp = make_user(owner, grants={"users": "full"}, privilege_level=9)
        client = signed_in(no_dp)
        assert client.get(f"/users/{subject.pk}/access-email/").status_code == 403
        assert "Send access email" not in client.get(f"/users/{subject.pk}/").content.decode()

    def test_support_staff_send_it_without_seeing_the_link(self, signed_in, owner, subject):
        support = make_user(
            owner,
            grants={"users": "read", "dp_data_protection_access": "full"},
            privilege_level=6,
        )
        client = signed_in(support)
        response = client.post(f"/users/{subject.pk}/access-email/", follow=True)
        assert response.status_code == 200
        assert "Access email sent to fran@example.test" in response.content.decode()
        assert "/set-password/" not in response.content.decode()
        run_due()
        assert len(mail.outbox) == 1
        assert AuditEvent.objects.filter(action="access_email_sent", actor_id=support.pk).exists()

    def test_sso_users_get_a_clear_refusal(self, signed_in, admin_user, owner):
        sso = make_user(owner, auth_source="saml")
        response = signed_in(admin_user).post(f"/users/{sso.pk}/access-email/")
        assert response.status_code == 400
        assert "identity provider" in response.content.decode()
        assert mail.outbox == []


class TestSetPasswordPages:
    def send(self, owner, admin_user):
        user = make_user(owner, username="fran")
        user.set_unusable_password()
        user.save()
        services.send_access_email(user, actor=admin_user)
        run_due()
        link = mail.outbox[-1].body.split("http://127.0.0.1:8000")[1].split()[0]
        return user, link

    def test_an_unknown_link_says_it_cannot_be_used(self, client, db):
        response = client.get("/set-password/nonsense/", follow=True)
        assert response.status_code == 400
        assert "cannot be used" in response.content.decode()
        assert client.get("/set-password/").status_code == 400

    def test_sets_the_password_without_signing_in(self, client, owner, admin_user):
        user, link = self.send(owner, admin_user)
        response = client.get(link)
        assert response["Location"] == "/set-password/"
        page = client.get("/set-password/")
        assert page.status_code == 200 and "fran" in page.content.decode()
        weak = client.post("/set-password/", {"password1": "short", "password2": "short"})
        assert weak.status_code == 400
        assert "at least" in str(weak.context["form"].errors["password1"])
        differ = client.post(
            "/set-password/",
            {"password1": "a long enough new passphrase", "password2": "something else"},
        )
        assert "differ" in str(differ.context["form"].errors["password2"])
        done = client.post(
            "/set-password/",
            {
                "password1": "a long enough new passphrase",
                "password2": "a long enough new passphrase",
            },
        )
        assert done["Location"] == "/sign-in/"
        assert "_auth_user_id" not in client.session
        user.refresh_from_db()
        assert user.check_password("a long enough new passphrase")
        assert PasswordSetToken.objects.get().used_at is not None
        assert AuditEvent.objects.filter(action="password_set", subject_user_id=user.pk).exists()
        assert client.get(link, follow=True).status_code == 400  # single use


class TestSettingsScreens:
    @pytest.mark.parametrize(("slug", "area", "model"), SETTINGS)
    def test_create_rename_retire_restore(self, signed_in, admin_user, owner, slug, area, model):
        client = signed_in(admin_user)
        assert client.post(f"/settings/{slug}/new/", {"name": "Northern 🌍"}).status_code == 302
        item = model.objects.get(owner=owner, name="Northern 🌍")
        duplicate = client.post(f"/settings/{slug}/new/", {"name": "NORTHERN 🌍"})
        assert duplicate.status_code == 400
        assert "already has an entry" in str(duplicate.context["form"].errors["name"])
        too_long = client.post(f"/settings/{slug}/new/", {"name": "n" * 121})
        assert too_long.status_code == 400
        assert (
            client.post(f"/settings/{slug}/{item.pk}/rename/", {"name": "North"}).status_code == 302
        )
        assert client.post(f"/settings/{slug}/{item.pk}/retire/").status_code == 302
        item.refresh_from_db()
        assert (item.name, item.retired) == ("North", True)
        assert "Restore" in client.get(f"/settings/{slug}/").content.decode()
        assert client.post(f"/settings/{slug}/{item.pk}/restore/").status_code == 302
        assert AuditEvent.objects.filter(target_type=model._meta.model_name).count() == 4

    def test_retired_entries_are_not_offered_but_kept(self, signed_in, admin_user, owner, subject):
        kept = make_department(owner, "Kept")
        gone = make_department(owner, "Retired elsewhere")
        subject.departments.set([kept])
        services.set_settings_item_retired(kept, actor=admin_user, retired=True, reason="")
        services.set_settings_item_retired(gone, actor=admin_user, retired=True, reason="")
        client = signed_in(admin_user)
        offered = client.get(f"/users/{subject.pk}/edit/").context["form"].fields["departments"]
        assert list(offered.queryset) == [kept]
        assert "Retired elsewhere" not in client.get("/users/new/").content.decode()
        listing = client.get("/settings/departments/").content.decode()
        assert "Kept" in listing and "Retired" in listing


class TestList:
    def test_search_filters_and_sort(self, signed_in, admin_user, owner):
        finance = make_department(owner, "Finance")
        ann = make_user(owner, username="ann", first_name="Ann", last_name="Archer")
        make_user(owner, username="bob", first_name="Bob", last_name="Baker", allow_login=False)
        ann.departments.set([finance])
        make_user(make_owner(), username="annette", first_name="Ann")  # another owner
        client = signed_in(admin_user)
        assert [u.username for u in client.get("/users/?q=ann").context["users"]] == ["ann"]
        assert [u.username for u in client.get("/users/?q=ann+archer").context["users"]] == ["ann"]
        assert [
            u.username for u in client.get("/users/?q=EXAMPLE.TEST&login=no").context["users"]
        ] == ["bob"]
        assert [
            u.username for u in client.get(f"/users/?department={finance.pk}").context["users"]
        ] == ["ann"]
        ann.is_account_manager = True
        ann.save()
        assert [
            u.username for u in client.get("/users/?status=account_manager").context["users"]
        ] == ["ann"]
        names = [u.username for u in client.get("/users/?sort=-username").context["users"]]
        assert names == ["bob", "ann", "admin"]

    def test_bad_filter_values_do_not_break_the_page(self, signed_in, admin_user):
        client = signed_in(admin_user)
        response = client.get("/users/?role=abc&kind=martian&sort=nonsense&after=forged")
        assert response.status_code == 200

    def test_keyset_pages_cover_every_user_once(self, signed_in, admin_user, owner, monkeypatch):
        from accounts import listing

        for n in range(11):
            make_user(owner, username=f"u{n:02d}", last_name=f"Person {n:02d}")
        client = signed_in(admin_user)
        monkeypatch.setattr(listing, "PAGE_SIZE", 5)
        seen = []
        url = "/users/?sort=username"
        while url:
            response = client.get(url if url.startswith("/") else "/users/" + url)
            page = response.context["page"]
            seen += [u.username for u in page.rows]
            url = page.next_url
        assert seen == sorted(User.objects.filter(owner=owner).values_list("username", flat=True))
        last = client.get("/users/?sort=username&page=last").context["page"]
        assert [u.username for u in last.rows] == seen[-5:]  # the last full page
        assert last.next_url is None and last.previous_url
        back = client.get("/users/" + last.previous_url).context["page"]
        assert [u.username for u in back.rows] == seen[-10:-5]

    def test_queries_do_not_grow_with_the_page(self, signed_in, admin_user, owner):
        client = signed_in(admin_user)
        client.get("/users/")  # warm the permission cache
        finance, sales = make_department(owner, "Finance"), make_department(owner, "Sales")
        role = make_role(owner, "Clerk")

        def count():
            with CaptureQueriesContext(connection) as queries:
                assert client.get("/users/?q=example").status_code == 200
            return len(queries)

        make_user(owner, role=role).departments.set([finance])
        count()  # the filters for these roles and departments are drawn once, then kept
        few = count()
        for _ in range(30):
            make_user(owner, role=role).departments.set([finance, sales])
        assert count() == few

    def test_the_first_page_makes_a_fixed_number_of_queries(
        self, signed_in, owner, monkeypatch, django_assert_num_queries
    ):
        from accounts import listing

        admin = make_user(owner, is_superuser=True, privilege_level=10)
        client = signed_in(admin)
        finance = make_department(owner, "Finance")
        role = make_role(owner, "Clerk")
        for _ in range(5):
            make_user(owner, role=role).departments.set([finance])
        client.get("/users/")  # the permission cache, and the filters drawn once
        # Session, user; the count (up to the cap); the page; its departments; what the forms
        # offer (the filters' roles and departments, the bulk bar's update reasons) in one.
        with django_assert_num_queries(6):
            assert client.get("/users/").status_code == 200
        # Past the cap, one EXPLAIN for the estimate, and never a count of every user.
        monkeypatch.setattr(listing, "COUNT_CAP", 2)
        with django_assert_num_queries(7) as made:
            page = client.get("/users/")
        assert "More than 2 users" in page.content.decode() or "About" in page.content.decode()
        assert any(q["sql"].startswith("EXPLAIN") for q in made.captured_queries)
        assert not any(
            "COUNT(*)" in q["sql"] and "LIMIT 3" not in q["sql"] for q in made.captured_queries
        )

    def test_a_row_is_drawn_anew_when_what_it_shows_changes(self, signed_in, admin_user, owner):
        client = signed_in(admin_user)
        user = make_user(owner, first_name="Ada", last_name="Lovelace")
        finance = make_department(owner, "Finance")
        assert "Lovelace" in client.get("/users/").content.decode()
        user.last_name = "Byron"
        user.save(update_fields=["last_name"])
        user.departments.set([finance])
        html = client.get("/users/").content.decode()
        assert "Byron" in html and "Lovelace" not in html and ">Finance<" in html

    def test_search_uses_the_trigram_indexes(self, db):
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'accounts_user' "
                "AND indexname LIKE '%%_trgm'"
            )
            names = {row[0] for row in cursor.fetchall()}
        assert names == {"user_search_trgm"}
        from accounts import listing

        queryset = listing.search(User.objects.all(), "fran")
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = off")
            plan = queryset.explain()
        assert "user_search_trgm" in plan and "Seq Scan" not in plan


class TestExport:
    def test_streams_the_filtered_list_and_records_it(self, signed_in, admin_user, owner):
        make_user(owner, username="ann", first_name="=HYPERLINK(1)", last_name="Archer")
        make_user(owner, username="bob", allow_login=False)
        response = signed_in(admin_user).get("/users/export.csv?login=yes&sort=username")
        assert response.status_code == 200
        assert response["Content-Type"] == "text/csv"
        rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
        assert rows[0][:5] == ["Username", "First name", "Last name", "Display name", "Email"]
        assert [r[0] for r in rows[1:]] == ["admin", "ann"]
        assert rows[2][1] == "'=HYPERLINK(1)"  # never a formula in a spreadsheet
        event = AuditEvent.objects.get(action="sensitive_viewed")
        assert event.context["export"] == "users_csv" and event.context["filters"] == {
            "login": "yes"
        }


class TestExtensionPoints:
    def test_registered_actions_and_security_panels(
        self, signed_in, owner, admin_user, subject, monkeypatch, tmp_path, settings
    ):
        from accounts import record

        monkeypatch.setattr(record, "ACTIONS", [])
        monkeypatch.setattr(record, "SECURITY_PANELS", [])
        record.register_action(
            record.RecordAction("accounts:user_security", "Unlock", "users", "full")
        )
        record.register_action(
            record.RecordAction(
                "accounts:user_activity",
                "Never here",
                "users",
                "full",
                applies=lambda subject: False,
            )
        )
        (tmp_path / "panel.html").write_text(
            "<section><h2>Two-factor</h2>{{ panel.state }}</section>"
        )
        settings.TEMPLATES = [
            {**settings.TEMPLATES[0], "DIRS": [*settings.TEMPLATES[0]["DIRS"], tmp_path]}
        ]
        record.register_security_panel(
            record.SecurityPanel(
                "2fa",
                "panel.html",
                "users",
                "read",
                context=lambda request, subject: {"state": "Enrolled"},
            )
        )
        page = signed_in(admin_user).get(f"/users/{subject.pk}/security/").content.decode()
        assert ">Unlock<" in page and "Never here" not in page
        assert "<h2>Two-factor</h2>Enrolled" in page
        reader = make_user(owner, grants={"users": "read"})
        page = signed_in(reader).get(f"/users/{subject.pk}/security/").content.decode()
        assert ">Unlock<" not in page and "Enrolled" in page


def test_the_list_counts_up_to_a_cap(signed_in, admin_user, owner, monkeypatch):
    from accounts import listing

    for _ in range(3):
        make_user(owner)
    monkeypatch.setattr(listing, "COUNT_CAP", 2)
    client = signed_in(admin_user)
    # Past the cap the page says PostgreSQL's estimate when it is above the cap ...
    monkeypatch.setattr(listing, "estimated_count", lambda queryset: 123_456)
    assert "About 120,000 users" in client.get("/users/").content.decode()
    # ... and only that there are more when the estimate is no help (stale statistics).
    monkeypatch.setattr(listing, "estimated_count", lambda queryset: 1)
    assert "More than 2 users" in client.get("/users/").content.decode()
    assert listing.capped_count(User.objects.filter(owner=owner), 10) == (4, False)


def test_the_estimate_past_the_cap_is_the_planners(owner, db):
    from accounts import listing

    for _ in range(3):
        make_user(owner)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE accounts_user")
    # Analysed, the planner knows the owner's rows; `about` keeps two significant digits.
    assert listing.estimated_count(User.objects.filter(owner=owner)) == 3
    assert [listing.about(n) for n in (7, 99, 123, 98_765, 100_056)] == [
        7,
        99,
        120,
        99_000,
        100_000,
    ]
