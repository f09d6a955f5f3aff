"""Screens of separation of duties: who may open each, rules through the form (errors beside the
fields, nothing saved), the starter rules, the report and its CSV, exceptions granted and ended
through the screens, findings in the impact preview, violations and withheld identity-provider
access on the user's page, the reviewers' tile and the review item."""

import csv
import datetime
import io

import pytest
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

import audit
from audit.choices import AuditAction
from audit.models import AuditEvent
from reviews import services as reviews
from reviews.choices import ScopeKind
from roles import catalog, sod
from roles.choices import SodEffect
from roles.models import SodException, SodRule
from tests.access_helpers import assert_screen_access
from tests.builders import make_owner, make_role, make_role_group, make_user

pytestmark = pytest.mark.django_db

DAY = datetime.timedelta(days=1)


def make_rule(actor, *, effect=SodEffect.BLOCK, name="Invoicing vs recording payments"):
    return sod.save_rule(
        None,
        {
            "name": name,
            "left": [["invoices", "full"]],
            "right": [["payments", "full"]],
            "effect": effect,
        },
        actor=actor,
        reason="Finance controls",
    )


@pytest.fixture
def invoicing(owner):
    return make_role_group(owner, "Invoicing", {"invoices": "full"})


@pytest.fixture
def paying(owner):
    return make_role_group(owner, "Paying", {"payments": "full"})


@pytest.fixture
def clerk(owner, invoicing):
    return make_user(
        owner,
        username="ivy",
        first_name="Ivy",
        last_name="Invoicer",
        role=make_role(owner, "Invoice clerk", [invoicing]),
        privilege_level=3,
    )


@pytest.fixture
def both(owner, invoicing, paying):
    """Someone who held both sides before any rule was written."""
    return make_user(
        owner,
        username="bo",
        first_name="Bo",
        last_name="Both",
        role=make_role(owner, "Finance all-rounder", [invoicing, paying]),
        privilege_level=3,
    )


@pytest.fixture
def rule(admin_user):
    return make_rule(admin_user)


@pytest.fixture
def viewer(owner):
    return make_user(
        owner, username="viewer", grants={catalog.USER_GROUPS: "read", catalog.USERS: "read"}
    )


@pytest.fixture
def approver(owner):
    return make_user(
        owner,
        username="olga",
        first_name="Olga",
        last_name="Approver",
        grants={catalog.ACCESS_REQUESTS: catalog.APPROVE},
    )


@pytest.fixture
def nobody(owner):
    return make_user(owner, username="nobody", grants={"invoices": "read"})


def rule_form(**overrides) -> dict:
    data = {
        "name": "Tariffs vs billing runs",
        "description": "Whoever sets tariffs should not also run billing.",
        "left_join": "any",
        "right_join": "any",
        "left-area-0": "tariffs",
        "left-level-0": "full",
        "left-area-1": "",
        "left-level-1": "full",
        "right-area-0": "billing_billing_run",
        "right-level-0": "execute",
        "right-area-1": "",
        "right-level-1": "full",
        "effect": "block",
        "reason": "Audit finding 12",
        "action": "save",
    }
    return {**data, **overrides}


# Who may open each screen ----------------------------------------------------------------------


def test_each_screen_anonymous_forbidden_allowed(
    signed_in, admin_user, viewer, approver, nobody, rule, clerk
):
    exception_rule = make_rule(admin_user, effect=SodEffect.EXCEPTION, name="Second")
    exception = sod.grant_exception(
        exception_rule,
        clerk,
        actor=admin_user,
        requested_by=approver,
        reason="Cover",
        expires_at=timezone.now() + DAY,
    )
    reads = [
        reverse("roles:sod_rule_list"),
        reverse("roles:sod_report"),
        reverse("roles:sod_report_csv"),
    ]
    assert_screen_access(signed_in, reads, allowed=[admin_user, viewer], denied=[nobody, approver])
    changes = [
        reverse("roles:sod_rule_create"),
        reverse("roles:sod_rule_edit", args=[rule.pk]),
        reverse("roles:sod_rule_delete", args=[rule.pk]),
    ]
    assert_screen_access(signed_in, changes, allowed=admin_user, denied=[viewer, nobody])
    assert_screen_access(
        signed_in,
        [reverse("roles:sod_exception_list")],
        allowed=[admin_user, approver],
        denied=[viewer, nobody],
    )
    reader = make_user(rule.owner, grants={catalog.ACCESS_REQUESTS: catalog.READ})
    assert_screen_access(
        signed_in,
        [
            reverse("roles:sod_exception_create"),
            reverse("roles:sod_exception_revoke", args=[exception.pk]),
        ],
        allowed=[admin_user, approver],
        denied=[reader, viewer],
    )


def test_another_owners_rule_and_exception_answer_404(signed_in, admin_user, rule):
    other = make_owner()
    stranger = make_user(
        other,
        grants={catalog.USER_GROUPS: "full", catalog.ACCESS_REQUESTS: "approve"},
        privilege_level=9,
    )
    client = signed_in(stranger)
    assert client.get(reverse("roles:sod_rule_edit", args=[rule.pk])).status_code == 404
    assert client.get(reverse("roles:sod_rule_delete", args=[rule.pk])).status_code == 404
    page = client.get(reverse("roles:sod_rule_list")).content.decode()
    assert reverse("roles:sod_rule_edit", args=[rule.pk]) not in page
    assert "No separation-of-duties rules yet" in page


def test_the_menu_offers_the_screens_the_person_may_open(signed_in, viewer, approver):
    page = signed_in(viewer).get("/").content.decode()

    def linked(name):
        return f'href="{reverse(name)}"' in page

    assert linked("roles:sod_rule_list") and linked("roles:sod_report")
    assert not linked("roles:sod_exception_list")
    page = signed_in(approver).get("/").content.decode()
    assert linked("roles:sod_exception_list")
    assert not linked("roles:sod_rule_list") and not linked("roles:sod_report")


# Rules -----------------------------------------------------------------------------------------


def test_creating_a_rule_through_the_form(signed_in, admin_user):
    client = signed_in(admin_user)
    page = client.get(reverse("roles:sod_rule_create")).content.decode()
    assert '<optgroup label="Billing permissions">' in page  # areas grouped by category

    response = client.post(reverse("roles:sod_rule_create"), rule_form())

    assert response.status_code == 302
    made = SodRule.objects.get()
    assert (made.name, made.effect) == ("Tariffs vs billing runs", "block")
    assert made.left == [["tariffs", "full"]]
    assert made.right == [["billing_billing_run", "execute"]]
    event = AuditEvent.objects.get(action=AuditAction.SOD_RULE_CREATED)
    assert event.reason == "Audit finding 12"
    listing = client.get(reverse("roles:sod_rule_list")).content.decode()
    assert "Tariffs (full)" in listing and "Billing Run (execute)" in listing


@pytest.mark.parametrize(
    "overrides, side, message",
    [
        ({"right-area-0": "tariffs", "right-level-0": "read"}, "right", "The two sides overlap"),
        ({"left-area-0": ""}, "left", "name at least one area and level"),
        ({"left-level-0": "execute"}, "left", "Tariffs has no level"),
    ],
)
def test_a_bad_rule_shows_its_errors_beside_the_side_and_saves_nothing(
    signed_in, admin_user, overrides, side, message
):
    response = signed_in(admin_user).post(reverse("roles:sod_rule_create"), rule_form(**overrides))

    assert response.status_code == 400
    page = response.content.decode()
    assert f'<ul class="errorlist" id="{side}-errors">' in page
    errors = page.split(f'id="{side}-errors">', 1)[1].split("</ul>", 1)[0]
    assert message in errors
    assert "Nothing was saved" in page
    # What was typed is still there.
    assert 'value="Tariffs vs billing runs"' in page
    assert not SodRule.objects.exists()
    assert not AuditEvent.objects.filter(action=AuditAction.SOD_RULE_CREATED).exists()


def test_a_duplicate_name_is_shown_beside_the_name(signed_in, admin_user, rule):
    response = signed_in(admin_user).post(
        reverse("roles:sod_rule_create"), rule_form(name=rule.name.upper())
    )
    assert response.status_code == 400
    page = response.content.decode()
    name_field = page.split('for="id_name"', 1)[1].split('id="id_name"', 1)[0]
    assert "Another rule has this name." in name_field
    assert SodRule.objects.count() == 1


def test_more_rows_keeps_what_was_typed_and_saves_nothing(signed_in, admin_user):
    response = signed_in(admin_user).post(
        reverse("roles:sod_rule_create"), rule_form(action="more-left")
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert 'name="left-area-3"' in page and 'name="left-area-4"' not in page
    assert 'name="right-area-1"' in page and 'name="right-area-2"' not in page
    assert 'value="Tariffs vs billing runs"' in page
    assert '<option value="tariffs" selected>' in page
    assert "errorlist" not in page
    assert not SodRule.objects.exists()


def test_editing_a_rule_shows_its_sides_and_saves_the_change(signed_in, admin_user, rule):
    client = signed_in(admin_user)
    url = reverse("roles:sod_rule_edit", args=[rule.pk])
    page = client.get(url).content.decode()
    assert '<option value="invoices" selected>' in page
    assert '<option value="payments" selected>' in page

    response = client.post(
        url,
        {
            "name": rule.name,
            "left_join": "any",
            "right_join": "all",
            "left-area-0": "invoices",
            "left-level-0": "full",
            "right-area-0": "payments",
            "right-level-0": "full",
            "right-area-1": "payment_card_runs",
            "right-level-1": "execute",
            "effect": "exception",
            "row_version": rule.row_version,
            "action": "save",
        },
    )

    assert response.status_code == 302
    rule.refresh_from_db()
    assert rule.effect == SodEffect.EXCEPTION and rule.right_join == "all"
    assert rule.right == [["payment_card_runs", "execute"], ["payments", "full"]]
    event = AuditEvent.objects.get(action=AuditAction.SOD_RULE_CHANGED)
    assert event.changes["effect"] == ["block", "exception"]


def test_a_stale_edit_is_refused(signed_in, admin_user, rule):
    data = rule_form(name=rule.name, row_version=rule.row_version)
    sod.save_rule(  # someone else saves it meanwhile
        rule,
        {"name": rule.name, "left": rule.left, "right": rule.right, "description": "Changed"},
        actor=admin_user,
        reason="",
    )
    response = signed_in(admin_user).post(reverse("roles:sod_rule_edit", args=[rule.pk]), data)
    assert response.status_code == 400
    assert "Someone else changed this rule" in response.content.decode()


def test_deleting_a_rule_needs_a_reason(signed_in, admin_user, rule):
    client = signed_in(admin_user)
    url = reverse("roles:sod_rule_delete", args=[rule.pk])
    assert "Invoices (full), against Payments (full)" in client.get(url).content.decode()
    assert client.post(url, {"reason": ""}).status_code == 400
    assert SodRule.objects.filter(pk=rule.pk).exists()

    response = client.post(url, {"reason": "Replaced by the finance policy"})

    assert response.status_code == 302
    assert not SodRule.objects.exists()
    event = AuditEvent.objects.get(action=AuditAction.SOD_RULE_DELETED)
    assert event.reason == "Replaced by the finance policy"


def test_the_rule_list_counts_who_violates_each_rule(signed_in, viewer, rule, both, clerk):
    page = signed_in(viewer).get(reverse("roles:sod_rule_list")).content.decode()
    assert "Invoices (full)" in page and "Payments (full)" in page
    assert ">2<span" in page  # Bo and the administrator hold both sides; Ivy one
    assert 'href="/access/separation-of-duties/new/"' not in page  # reading only


def test_the_starter_rules_are_offered_when_there_are_none(signed_in, admin_user, viewer):
    client = signed_in(viewer)
    page = client.get(reverse("roles:sod_rule_list")).content.decode()
    assert "Starter rules for billing" in page and "Add the starter rules" not in page
    assert client.post(reverse("roles:sod_rule_list"), {"action": "starter"}).status_code == 403

    client = signed_in(admin_user)
    page = client.get(reverse("roles:sod_rule_list")).content.decode()
    assert "Add the starter rules for billing" in page
    assert "Direct Debits (full)" in page

    response = client.post(reverse("roles:sod_rule_list"), {"action": "starter"}, follow=True)

    assert SodRule.objects.count() == len(sod.STARTER_RULES)
    page = response.content.decode()
    assert "5 starter rules added" in page
    assert "Add the starter rules" not in page
    assert all(name in page for name, *_ in sod.STARTER_RULES)
    assert AuditEvent.objects.filter(action=AuditAction.SOD_RULE_CREATED).count() == 5


# The report ------------------------------------------------------------------------------------


@pytest.fixture
def excepted(owner, admin_user, approver, invoicing, paying):
    """A rule taking exceptions, and a person holding both sides under one."""
    rule = make_rule(admin_user, effect=SodEffect.EXCEPTION, name="Exception rule")
    person = make_user(
        owner,
        username="xena",
        first_name="Xena",
        last_name="Excepted",
        role=make_role(owner, "Both again", [invoicing, paying]),
    )
    exception = sod.grant_exception(
        rule,
        person,
        actor=approver,
        requested_by=admin_user,
        reason="Month-end cover",
        expires_at=timezone.now() + 10 * DAY,
    )
    return rule, person, exception


def test_the_report_lists_violators_and_their_exceptions(signed_in, viewer, rule, both, excepted):
    exception_rule, person, exception = excepted

    page = signed_in(viewer).get(reverse("roles:sod_report")).content.decode()

    blocking = page.split(f'id="rule-{rule.pk}"', 1)[1].split("</section>", 1)[0]
    assert "Bo Both" in blocking and "Xena Excepted" in blocking
    assert "Takes none" in blocking
    taking = page.split(f'id="rule-{exception_rule.pk}"', 1)[1].split("</section>", 1)[0]
    assert "Month-end cover" in taking and "approved by Olga Approver" in taking
    assert '<span class="badge badge--danger">None</span>' in taking  # Bo: nothing covers him
    assert "Grant an exception" not in taking  # the viewer may not approve
    assert "Ivy" not in page  # one side only


def test_the_report_csv_has_every_violation(signed_in, viewer, rule, both, excepted):
    exception_rule, person, exception = excepted

    response = signed_in(viewer).get(reverse("roles:sod_report_csv"))

    assert response.streaming
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    found = {(r["Rule"], r["Username"]): r for r in rows}
    assert set(found) == {
        (name, username)
        for name in (rule.name, "Exception rule")
        for username in ("admin", "bo", "xena")  # the administrator holds every area
    }
    covered = found[("Exception rule", "xena")]
    assert covered["Exception"] == "yes" and covered["Exception reason"] == "Month-end cover"
    assert covered["Approved by"] == "Olga Approver" and covered["Asked by"] == admin_name()
    assert found[(rule.name, "bo")]["Exception"] == "no"
    assert found[(rule.name, "bo")]["First side"] == "Invoices (full)"


def admin_name():
    from accounts.models import User

    return User.objects.get(username="admin").label


def test_a_name_that_looks_like_a_formula_is_defused_in_the_csv(signed_in, viewer, rule, both):
    both.first_name, both.last_name = "=HYPERLINK(1)", ""
    both.save(update_fields=["first_name", "last_name"])
    content = b"".join(signed_in(viewer).get(reverse("roles:sod_report_csv")).streaming_content)
    assert "'=HYPERLINK(1)" in content.decode()


# Exceptions ------------------------------------------------------------------------------------


def test_granting_and_ending_an_exception_through_the_screens(
    signed_in, owner, admin_user, approver, clerk, paying
):
    rule = make_rule(admin_user, effect=SodEffect.EXCEPTION)
    client = signed_in(approver)
    url = reverse("roles:sod_exception_create")
    page = client.get(f"{url}?rule={rule.pk}&user={clerk.pk}").content.decode()
    assert 'value="ivy"' in page  # the person, from the report's link
    ends = (timezone.localtime() + 7 * DAY).strftime("%Y-%m-%dT%H:%M")
    data = {
        "rule": rule.pk,
        "user": "ivy",
        "requested_by": "olga",
        "reason": "Month-end cover",
        "expires_at": ends,
    }

    # The approver does not ask for it too.
    response = client.post(url, data)
    assert response.status_code == 400
    page = response.content.decode()
    asked = page.split('for="id_requested_by"', 1)[1].split('id="id_requested_by"', 1)[0]
    assert "someone else asks for it" in asked
    unknown = client.post(url, {**data, "requested_by": "ghost"})
    assert "Nobody in your organisation" in unknown.content.decode()
    assert not SodException.objects.exists()

    response = client.post(url, {**data, "requested_by": admin_user.email})

    assert response.status_code == 302
    exception = SodException.objects.get()
    assert (exception.user, exception.requested_by, exception.approved_by) == (
        clerk,
        admin_user,
        approver,
    )
    assert AuditEvent.objects.filter(action=AuditAction.SOD_EXCEPTION_GRANTED).count() == 1
    listing = client.get(reverse("roles:sod_exception_list")).content.decode()
    assert "Ivy Invoicer" in listing and "Month-end cover" in listing

    # With it, the change goes through.
    from accounts.choices import AccessSource
    from accounts.users import set_user_access

    set_user_access(
        clerk, extra_groups=[paying], actor=admin_user, reason="", source=AccessSource.SCREEN
    )
    assert clerk in sod.violators(rule)

    revoke = reverse("roles:sod_exception_revoke", args=[exception.pk])
    assert client.post(revoke, {"reason": ""}).status_code == 400
    response = client.post(revoke, {"reason": "Month end is over"})

    assert response.status_code == 302
    exception.refresh_from_db()
    assert exception.revoked_at is not None
    event = AuditEvent.objects.get(action=AuditAction.SOD_EXCEPTION_REVOKED)
    assert event.reason == "Month end is over"
    listing = client.get(reverse("roles:sod_exception_list")).content.decode()
    assert "Ended early" in listing
    again = client.post(revoke, {"reason": "again"})
    assert again.status_code == 400
    assert "This exception has ended already." in again.content.decode()
    assert AuditEvent.objects.filter(action=AuditAction.SOD_EXCEPTION_REVOKED).count() == 1


def test_an_exception_needs_an_expiry_within_a_year(signed_in, admin_user, approver, clerk):
    rule = make_rule(admin_user, effect=SodEffect.EXCEPTION)
    ends = (timezone.localtime() + 400 * DAY).strftime("%Y-%m-%dT%H:%M")
    response = signed_in(approver).post(
        reverse("roles:sod_exception_create"),
        {
            "rule": rule.pk,
            "user": "ivy",
            "requested_by": "admin",
            "reason": "Cover",
            "expires_at": ends,
        },
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "a year at most" in page.split('for="id_expires_at"', 1)[1]
    assert not SodException.objects.exists()


def test_a_blocking_rule_takes_no_exception(signed_in, approver, rule):
    page = signed_in(approver).get(reverse("roles:sod_exception_create")).content.decode()
    assert "No rule takes exceptions" in page


# The impact preview ----------------------------------------------------------------------------


def test_the_matrix_preview_lists_the_violation_a_change_would_create(
    signed_in, admin_user, rule, clerk, invoicing
):
    response = signed_in(admin_user).post(
        reverse("roles:rolegroup_matrix", args=[invoicing.pk]),
        {"row_version": invoicing.row_version, "action": "preview", "cell-payments": "full"},
    )

    assert response.status_code == 200
    page = response.content.decode()
    assert "Separation of duties: 1 violation" in page
    assert "Ivy Invoicer would hold both sides of “Invoicing vs recording payments”" in page
    assert "Saving will be refused." in page


def test_the_role_preview_lists_the_violation(signed_in, admin_user, rule, clerk, paying):
    role = clerk.role
    response = signed_in(admin_user).post(
        reverse("roles:role_edit", args=[role.pk]),
        {
            "name": role.name,
            "role_groups": [*role.role_groups.values_list("pk", flat=True), paying.pk],
            "row_version": role.row_version,
        },
    )
    page = response.content.decode()
    assert "Separation of duties: 1 violation" in page
    assert "Ivy Invoicer would hold both sides" in page


def test_the_override_preview_marks_a_violation_an_exception_covers(
    signed_in, admin_user, approver, clerk
):
    rule = make_rule(admin_user, effect=SodEffect.EXCEPTION)
    sod.grant_exception(
        rule,
        clerk,
        actor=approver,
        requested_by=admin_user,
        reason="Cover",
        expires_at=timezone.now() + DAY,
    )
    response = signed_in(admin_user).post(
        reverse("roles:override_add", args=[clerk.pk]),
        {"area": "payments", "level": "full", "reason": "Cover"},
    )
    page = response.content.decode()
    assert "Separation of duties: 1 violation" in page
    assert "Covered by an exception in force" in page
    assert "Saving will be refused." not in page


def test_a_preview_without_a_violation_says_nothing_of_rules(
    signed_in, admin_user, rule, clerk, invoicing
):
    response = signed_in(admin_user).post(
        reverse("roles:rolegroup_matrix", args=[invoicing.pk]),
        {"row_version": invoicing.row_version, "action": "preview", "cell-tariffs": "read"},
    )
    assert "Separation of duties:" not in response.content.decode()


# The user's page, the reviewers' dashboard, review items ---------------------------------------


def test_the_user_page_lists_violations_and_withheld_access(signed_in, admin_user, rule, both):
    with transaction.atomic():
        audit.record(
            AuditAction.SOD_WITHHELD,
            actor_label="Okta",
            target=both,
            details="group Paying left out: it would break “Invoicing vs recording payments”",
            context={"withheld": [["group Paying", rule.name]], "source": "saml"},
        )

    for url in (
        reverse("roles:user_permissions", args=[both.pk]),
        reverse("accounts:user_permissions", args=[both.pk]),
    ):
        page = signed_in(admin_user).get(url).content.decode()
        card = page.split('id="separation-of-duties"', 1)[1].split("</section>", 1)[0]
        assert "Invoicing vs recording payments" in card
        assert "Invoices (full) <strong>and</strong> Payments (full)" in card
        assert "Withheld from the identity provider" in card
        assert "group Paying left out" in card


@pytest.mark.usefixtures("rule")
def test_the_user_page_of_someone_without_violations_has_no_card(signed_in, admin_user, clerk):
    page = signed_in(admin_user).get(reverse("roles:user_permissions", args=[clerk.pk]))
    assert 'id="separation-of-duties"' not in page.content.decode()


def test_the_reviewers_dashboard_counts_violations(signed_in, owner, rule, both, excepted):
    reviewer = make_user(owner, grants={catalog.USER_ACTIVITY: "read"})
    page = signed_in(reviewer).get(reverse("reviews:dashboard")).content.decode()
    tile = page.split("Separation-of-duties violations", 1)[0].rsplit("tile__count", 1)[1]
    assert ">6<" in tile  # Bo, Xena and the administrator, under both rules
    assert f'href="{reverse("roles:sod_report")}"' not in page  # no User Groups read

    both_reader = make_user(
        owner, grants={catalog.USER_ACTIVITY: "read", catalog.USER_GROUPS: "read"}
    )
    page = signed_in(both_reader).get(reverse("reviews:dashboard")).content.decode()
    assert f'href="{reverse("roles:sod_report")}"' in page


def test_a_review_item_shows_the_persons_violations(signed_in, admin_user, rule, both):
    campaign = reviews.create_campaign(
        actor=admin_user,
        name="Q3 review",
        scope_kind=ScopeKind.ALL,
        reviewers=[admin_user],
        due_date=timezone.localdate() + DAY,
    )
    item = campaign.items.get(user=both)
    page = (
        signed_in(admin_user)
        .get(reverse("reviews:item_decide", args=[campaign.pk, item.pk]))
        .content.decode()
    )
    card = page.split('id="sod-review-heading"', 1)[1].split("</section>", 1)[0]
    assert "Invoicing vs recording payments" in card
    assert "Violates" in card


def test_the_campaign_list_of_items_badges_who_breaks_a_blocking_rule(
    signed_in, owner, admin_user, rule, both, clerk
):
    exception_rule = make_rule(admin_user, effect=SodEffect.EXCEPTION, name="Needs an exception")
    campaign = reviews.create_campaign(
        actor=admin_user,
        name="Q3 review",
        scope_kind=ScopeKind.ALL,
        reviewers=[admin_user],
        due_date=timezone.localdate() + DAY,
    )
    page = (
        signed_in(admin_user)
        .get(reverse("reviews:campaign_detail", args=[campaign.pk]))
        .content.decode()
    )
    rows = page.split('<tr><th scope="row">')[1:]
    (bo,) = [row.split("</tr>", 1)[0] for row in rows if ">Bo Both<" in row]
    (ivy,) = [row.split("</tr>", 1)[0] for row in rows if ">Ivy Invoicer<" in row]
    assert "Breaks 1 blocking rule" in bo
    assert "Invoicing vs recording payments" in bo
    assert exception_rule.name not in bo  # only the rules that block
    assert "Breaks" not in ivy


def _queries_of(client, url) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def _more_people(owner, invoicing, paying, n=12):
    both_role = make_role(owner, "Both again", [invoicing, paying])
    for i in range(n):
        make_user(owner, username=f"more{i}", last_name=f"More {i}", role=both_role)


def test_the_campaign_page_adds_one_query_for_the_badges(
    signed_in, owner, admin_user, both, clerk, invoicing, paying, django_assert_num_queries
):
    def campaign_url():
        campaign = reviews.create_campaign(
            actor=admin_user,
            name=f"Review {SodRule.objects.count()}",
            scope_kind=ScopeKind.ALL,
            reviewers=[admin_user],
            due_date=timezone.localdate() + DAY,
        )
        return reverse("reviews:campaign_detail", args=[campaign.pk])

    client = signed_in(admin_user)
    client.get(campaign_url())  # warm the permission cache of the session
    without_rules = _queries_of(client, campaign_url())
    make_rule(admin_user)
    make_rule(admin_user, name="Second rule")
    _more_people(owner, invoicing, paying)
    url = campaign_url()
    with_rules = _queries_of(client, url)
    assert with_rules == without_rules  # the badges' query runs with or without rules
    with django_assert_num_queries(with_rules):
        page = client.get(url).content.decode()
    assert page.count("Breaks 2 blocking rules") == 14  # Bo, the twelve, the administrator


def test_the_rule_list_report_and_tile_take_the_same_queries_at_any_size(
    signed_in, owner, admin_user, viewer, rule, both, invoicing, paying
):
    reviewer = make_user(owner, grants={catalog.USER_ACTIVITY: "read", catalog.USER_GROUPS: "read"})
    urls = {
        viewer: [reverse("roles:sod_rule_list"), reverse("roles:sod_report")],
        reviewer: [reverse("reviews:dashboard")],
    }
    clients = {}
    for user in urls:
        clients[user] = Client()
        clients[user].force_login(user, backend="accounts.backends.PortalBackend")
    before = {}
    for user, pages in urls.items():
        client = clients[user]
        for url in pages:
            client.get(url)  # warm
            before[url] = _queries_of(client, url)
    _more_people(owner, invoicing, paying, n=30)
    make_rule(admin_user, name="Second rule")
    for user, pages in urls.items():
        client = clients[user]
        for url in pages:
            assert _queries_of(client, url) == before[url], url
    # The separation-of-duties part of each: the rule list reads the rules and their figures;
    # the report its rules, figures, first violators and their rows; the tile its figures.
    assert before[reverse("roles:sod_rule_list")] - before[reverse("roles:sod_report")] == -2
