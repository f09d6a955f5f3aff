"""Screens of just-in-time access: request, my requests, the approvers' queue, active elevations,
eligibility on roles and users, and the reviewer dashboard's tiles."""

import datetime
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from audit.models import AuditEvent
from delivery.worker import run_due
from portal.stepup import PROOF_AT
from roles import catalog, elevations
from roles.choices import RequestState
from roles.models import AccessRequest, Eligibility
from tests.access_helpers import assert_screen_access
from tests.builders import make_owner, make_role, make_role_group, make_user

pytestmark = pytest.mark.django_db

NEW = "/me/access-requests/new/"
MINE = "/me/access-requests/"
QUEUE = "/access/requests/"
ELEVATIONS = "/access/elevations/"
HOUR = datetime.timedelta(hours=1)


@pytest.fixture
def payments(owner):
    return make_role_group(owner, "Payment releasers", {"payments": "full"})


@pytest.fixture
def clerk(owner, payments):
    """A clerk who holds invoices standing and is eligible for payments full."""
    role = make_role(owner, "Clerk", groups=[make_role_group(owner, "Inv", {"invoices": "full"})])
    role.eligible_role_groups.add(payments)
    return make_user(owner, username="clara", role=role, privilege_level=3)


@pytest.fixture
def approver(owner):
    return make_user(
        owner,
        username="anna",
        grants={
            catalog.ACCESS_REQUESTS: catalog.APPROVE,
            "payments": "full",
            catalog.USERS: catalog.FULL,
            catalog.USER_ACTIVITY: catalog.READ,
        },
        privilege_level=8,
    )


@pytest.fixture
def reader(owner):
    return make_user(owner, username="rita", grants={catalog.ACCESS_REQUESTS: catalog.READ})


def prove(client, moment=None):
    """Record a recent step-up proof in the client's session (as sign-in or /me/confirm/ do)."""
    session = client.session
    session[PROOF_AT] = (moment or timezone.now()).isoformat()
    session.save()
    return client


def ask(user, group, hours=2, **kwargs):
    kwargs.setdefault("justification", "Month-end payment run")
    return elevations.request_access(user, group, hours=hours, **kwargs)


def form_data(group, **more):
    data = {
        "action": "request",
        "role_group": group.pk,
        "start": "now",
        "hours": 2,
        "justification": "Month-end payment run",
        "ticket": "FIN-42",
    }
    data.update(more)
    return data


def field_errors(response, name):
    form = response.context["form"]
    return " ".join(form.errors.get(name, []))


def actions():
    return list(AuditEvent.objects.order_by("id").values_list("action", flat=True))


# Who may open what ------------------------------------------------------------------------------


def test_screen_access(signed_in, owner, clerk, approver, reader, payments):
    plain = make_user(owner, username="paul")
    assert_screen_access(signed_in, [NEW, MINE, "/me/access/"], allowed=[clerk, plain])
    assert_screen_access(signed_in, [QUEUE, ELEVATIONS], allowed=[approver, reader], denied=clerk)
    waiting = ask(clerk, payments)
    assert_screen_access(
        signed_in, [f"{QUEUE}{waiting.pk}/"], allowed=[approver, reader], denied=clerk
    )
    eligibility = f"/access/users/{clerk.pk}/eligibility/"
    assert_screen_access(signed_in, [eligibility], allowed=approver, denied=[reader, clerk])


def test_the_menu_offers_request_access_only_to_people_with_something_eligible(
    signed_in, owner, clerk, approver, payments
):
    page = signed_in(clerk).get("/").content.decode()
    assert 'href="/me/access-requests/new/"' in page and 'href="/me/access-requests/"' in page
    assert 'href="/access/requests/"' not in page  # the queue needs Access Requests read
    plain = make_user(owner, username="paul")
    page = signed_in(plain).get("/").content.decode()
    assert "/me/access-requests/" not in page
    # Made eligible through the service, the menu follows at once (the user's version moved).
    elevations.make_eligible(plain, payments, actor=approver, reason="Covers for Clara")
    plain.refresh_from_db()
    assert 'href="/me/access-requests/new/"' in signed_in(plain).get("/").content.decode()
    page = signed_in(approver).get("/").content.decode()
    assert 'href="/access/requests/"' in page and 'href="/access/elevations/"' in page


def test_nothing_to_ask_for_shows_an_empty_state(signed_in, owner):
    page = signed_in(make_user(owner)).get(NEW)
    assert page.status_code == 200
    assert "Nothing to ask for" in page.content.decode()


# Request access ---------------------------------------------------------------------------------


def test_a_request_waits_for_approval_and_emails_the_approvers(
    signed_in, clerk, approver, payments, django_capture_on_commit_callbacks
):
    client = signed_in(clerk)
    page = client.get(NEW).content.decode()
    assert "Payment releasers (someone else approves)" in page
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(NEW, form_data(payments))
    assert response.status_code == 302 and response.url == MINE
    made = AccessRequest.objects.get()
    assert (made.user, made.role_group, made.state) == (clerk, payments, RequestState.PENDING)
    assert made.ticket == "FIN-42" and made.ends_at - made.starts_at == 2 * HOUR
    assert actions()[-1] == "access_requested"
    run_due()  # the worker sends the outbox's email
    assert [m.to for m in mail.outbox] == [[approver.email]]
    assert "/access/requests/" in mail.outbox[0].body
    listing = client.get(MINE).content.decode()
    assert f"#{made.pk}" in listing and "Waiting for approval" in listing and "Withdraw" in listing


def test_refusals_are_shown_next_to_the_fields_and_nothing_is_saved(
    signed_in, clerk, payments, owner
):
    client = signed_in(clerk)
    past = timezone.localtime(timezone.now() - 3 * HOUR).strftime("%Y-%m-%dT%H:%M")
    cases = [
        ({"hours": 9}, "hours", "between 1 and 8 hours"),  # the owner's maximum is 8
        ({"hours": 0}, "hours", "between 1 and 8 hours"),
        ({"justification": ""}, "justification", "Say why"),
        ({"start": "later", "starts_at": ""}, "starts_at", "Choose when it starts"),
        ({"start": "later", "starts_at": past}, "starts_at", "in the past"),
        ({"role_group": make_role_group(owner, "Not mine").pk}, "role_group", "eligible"),
    ]
    for changes, field, message in cases:
        response = client.post(NEW, form_data(payments, **changes))
        assert response.status_code == 400, changes
        assert message in field_errors(response, field), (changes, response.context["form"].errors)
    assert not AccessRequest.objects.exists()
    assert "access_requested" not in actions()


def test_a_double_submit_is_refused_next_to_the_group(signed_in, clerk, payments):
    client = signed_in(clerk)
    assert client.post(NEW, form_data(payments)).status_code == 302
    again = client.post(NEW, form_data(payments))
    assert again.status_code == 400
    assert "You already asked for Payment releasers" in field_errors(again, "role_group")
    assert AccessRequest.objects.count() == 1


def test_a_later_start_is_read_in_the_persons_time_zone(signed_in, clerk, payments):
    clerk.time_zone = "Europe/Paris"
    clerk.save(update_fields=["time_zone"])
    start = (timezone.now() + datetime.timedelta(days=1)).replace(second=0, microsecond=0)
    typed = start.astimezone(ZoneInfo("Europe/Paris")).strftime("%Y-%m-%dT%H:%M")
    response = signed_in(clerk).post(NEW, form_data(payments, start="later", starts_at=typed))
    assert response.status_code == 302
    assert AccessRequest.objects.get().starts_at == start


def test_self_activation_asks_for_a_recent_step_up_first(signed_in, clerk, payments):
    payments.self_activation = True
    payments.save(update_fields=["self_activation"])
    client = signed_in(clerk)
    response = client.post(NEW, form_data(payments), HTTP_REFERER=f"http://testserver{NEW}")
    assert response.status_code == 302 and response.url.startswith("/me/confirm/")
    assert not AccessRequest.objects.exists()
    prove(client)
    response = client.post(NEW, form_data(payments))
    assert response.status_code == 302
    made = AccessRequest.objects.get()
    assert made.state == RequestState.APPROVED and made.decided_by == clerk
    assert actions()[-1] == "elevation_activated"
    page = client.get("/me/access/").content.decode()
    assert "elevation until" in page and f"request #{made.pk}" in page


def test_emergency_access_is_for_emergency_accounts_with_a_step_up_and_a_reason(
    signed_in, owner, clerk, approver, payments, django_capture_on_commit_callbacks
):
    emergency = {
        "action": "emergency",
        "emergency-role_group": payments.pk,
        "emergency-hours": 1,
        "emergency-justification": "Payment run stuck, nobody reachable",
    }
    client = signed_in(clerk)
    assert "Emergency access" not in client.get(NEW).content.decode()
    assert client.post(NEW, emergency).status_code == 403

    clerk.is_emergency_account = True
    clerk.save(update_fields=["is_emergency_account"])
    assert "Emergency access" in client.get(NEW).content.decode()
    assert client.post(NEW, emergency).url.startswith("/me/confirm/")
    prove(client)
    missing = client.post(NEW, {**emergency, "emergency-justification": ""})
    assert missing.status_code == 400
    assert "Say what the emergency is" in " ".join(
        missing.context["emergency_form"].errors["justification"]
    )
    assert not AccessRequest.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(NEW, emergency).status_code == 302
    made = AccessRequest.objects.get()
    assert made.break_glass and made.state == RequestState.APPROVED
    assert actions()[-1] == "break_glass"
    run_due()  # the worker sends the outbox's email
    assert [m.to for m in mail.outbox] == [[approver.email]]
    assert "EMERGENCY ACCESS" in mail.outbox[0].subject


# My requests ------------------------------------------------------------------------------------


def test_withdraw_a_waiting_request_and_end_an_active_one(signed_in, owner, clerk, approver):
    refunds = make_role_group(owner, "Refunds", {"transactions": "full"})
    clerk.role.eligible_role_groups.add(refunds)
    waiting = ask(clerk, refunds)
    client = signed_in(clerk)
    assert client.post(f"{MINE}{waiting.pk}/withdraw/").status_code == 302
    waiting.refresh_from_db()
    assert waiting.state == RequestState.WITHDRAWN
    again = client.post(f"{MINE}{waiting.pk}/withdraw/", follow=True)
    assert "no longer waiting" in again.content.decode()

    payments = clerk.role.eligible_role_groups.get(name="Payment releasers")
    active = elevations.approve(ask(clerk, payments), actor=approver)
    assert "End now" in client.get(MINE).content.decode()
    assert client.post(f"{MINE}{active.pk}/end/").status_code == 302
    active.refresh_from_db()
    assert active.status() == "ended" and active.ended_by == clerk
    assert actions()[-1] == "elevation_ended"


def test_nobody_withdraws_or_ends_another_persons_request(signed_in, owner, clerk, payments):
    waiting = ask(clerk, payments)
    other = make_user(owner)
    assert signed_in(other).post(f"{MINE}{waiting.pk}/withdraw/").status_code == 404
    assert signed_in(other).post(f"{MINE}{waiting.pk}/end/").status_code == 404
    waiting.refresh_from_db()
    assert waiting.state == RequestState.PENDING


# The queue and decisions ------------------------------------------------------------------------


def test_the_queue_shows_what_a_request_would_add(signed_in, clerk, reader, payments):
    waiting = ask(clerk, payments, ticket="FIN-42")
    page = signed_in(reader).get(QUEUE).content.decode()
    assert "Clara" in page or "clara" in page
    assert "Month-end payment run" in page and "FIN-42" in page
    assert "Payments" in page and "level--full" in page
    decide = signed_in(reader).get(f"{QUEUE}{waiting.pk}/").content.decode()
    assert "Impact on users" in decide and "raised" in decide
    assert "Deciding needs Approve on Access Requests" in decide
    assert signed_in(reader).post(f"{QUEUE}{waiting.pk}/", {"action": "deny"}).status_code == 403


def test_approving_asks_for_a_step_up_then_approves_a_shorter_window(
    signed_in, clerk, approver, payments, django_capture_on_commit_callbacks
):
    waiting = ask(clerk, payments, hours=4)
    client = signed_in(approver)
    url = f"{QUEUE}{waiting.pk}/"
    body = {"action": "approve", "approve-hours": 1, "approve-note": "One hour is enough"}
    body["approve-row_version"] = waiting.row_version
    response = client.post(url, body, HTTP_REFERER=f"http://testserver{url}")
    assert response.status_code == 302 and response.url.startswith("/me/confirm/?next=")
    waiting.refresh_from_db()
    assert waiting.state == RequestState.PENDING
    prove(client)
    too_long = client.post(url, {**body, "approve-hours": 5})
    assert too_long.status_code == 400
    assert "between 1 and 4 hours" in " ".join(too_long.context["approve_form"].errors["hours"])
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, body)
    assert response.status_code == 302 and response.url == QUEUE
    waiting.refresh_from_db()
    assert waiting.state == RequestState.APPROVED and waiting.ends_at - waiting.starts_at == HOUR
    assert actions()[-2:] == ["access_approved", "elevation_activated"]
    run_due()  # the worker sends the outbox's email (the request's, then the decision's)
    assert [m.to for m in mail.outbox][-1:] == [[clerk.email]]
    assert "One hour is enough" in mail.outbox[-1].body


def test_deny_needs_a_reason(signed_in, clerk, approver, payments):
    waiting = ask(clerk, payments)
    client = signed_in(approver)
    url = f"{QUEUE}{waiting.pk}/"
    body = {"action": "deny", "deny-reason": "", "deny-row_version": waiting.row_version}
    missing = client.post(url, body)
    assert missing.status_code == 400
    assert "Say why" in " ".join(missing.context["deny_form"].errors["reason"])
    waiting.refresh_from_db()
    assert waiting.state == RequestState.PENDING
    assert client.post(url, {**body, "deny-reason": "Not this month"}).status_code == 302
    waiting.refresh_from_db()
    assert waiting.state == RequestState.DENIED and waiting.decision_reason == "Not this month"


def test_two_approvers_at_once_the_second_is_told(signed_in, owner, clerk, approver, payments):
    waiting = ask(clerk, payments)
    other = make_user(
        owner,
        username="otto",
        grants={catalog.ACCESS_REQUESTS: catalog.APPROVE, "payments": "full"},
        privilege_level=8,
    )
    opened_at = waiting.row_version  # both opened the page before either decided
    elevations.approve(waiting, actor=approver)
    client = prove(signed_in(other))
    late = client.post(
        f"{QUEUE}{waiting.pk}/",
        {"action": "approve", "approve-hours": "", "approve-row_version": opened_at},
    )
    assert late.status_code == 400
    page = late.content.decode()
    assert "was already approved by" in page and "nothing was changed" in page
    assert actions().count("access_approved") == 1


def test_own_requests_and_other_owners_requests_cannot_be_decided(
    signed_in, owner, clerk, payments
):
    selfish = make_user(
        owner,
        grants={catalog.ACCESS_REQUESTS: catalog.APPROVE, "invoices": "full"},
        privilege_level=8,
    )
    selfish.eligibilities.create(
        owner=owner, role_group=payments, reason="test", created_by=selfish
    )
    mine = ask(selfish, payments)
    client = prove(signed_in(selfish))
    page = client.get(f"{QUEUE}{mine.pk}/").content.decode()
    assert "This is your own request" in page
    refused = client.post(
        f"{QUEUE}{mine.pk}/", {"action": "approve", "approve-row_version": mine.row_version}
    )
    assert refused.status_code == 400 and "Nobody approves their own request" in (
        refused.content.decode()
    )
    stranger = make_user(
        make_owner(), grants={catalog.ACCESS_REQUESTS: catalog.APPROVE}, privilege_level=8
    )
    assert signed_in(stranger).get(f"{QUEUE}{mine.pk}/").status_code == 404
    mine.refresh_from_db()
    assert mine.state == RequestState.PENDING


# Active elevations ------------------------------------------------------------------------------


def test_active_elevations_list_and_end_now_with_a_reason(
    signed_in, clerk, approver, reader, payments
):
    active = elevations.approve(ask(clerk, payments), actor=approver, reason="Run day")
    page = signed_in(reader).get(ELEVATIONS).content.decode()
    assert "Payment releasers" in page and "Month-end payment run" in page
    assert approver.label in page and "End now" not in page
    client = signed_in(approver)
    assert "End now" in client.get(ELEVATIONS).content.decode()
    url = f"{ELEVATIONS}{active.pk}/end/"
    assert client.get(url).status_code == 200
    assert signed_in(reader).get(url).status_code == 403
    client = signed_in(approver)
    missing = client.post(url, {"reason": ""})
    assert missing.status_code == 400
    active.refresh_from_db()
    assert active.status() == "active"
    assert client.post(url, {"reason": "Run finished"}).status_code == 302
    active.refresh_from_db()
    assert active.status() == "ended" and active.end_reason == "Run finished"
    assert actions()[-1] == "elevation_revoked"
    assert "Recently ended" in client.get(ELEVATIONS).content.decode()


# Eligibility ------------------------------------------------------------------------------------


def test_a_roles_eligible_groups_are_set_on_the_role_form(signed_in, owner, admin_user, payments):
    role = make_role(owner, "Clerk")
    client = signed_in(admin_user)
    page = client.get(f"/access/roles/{role.pk}/").content.decode()
    assert "Eligible role groups" in page
    body = {
        "name": "Clerk",
        "description": "",
        "eligible_role_groups": [payments.pk],
        "reason": "Clerks release the month-end run",
        "row_version": role.row_version,
    }
    assert client.post(f"/access/roles/{role.pk}/", body).status_code == 302
    assert list(role.eligible_role_groups.all()) == [payments]
    event = AuditEvent.objects.get(action="eligibility_changed")
    assert event.reason == "Clerks release the month-end run"
    both = client.post(
        f"/access/roles/{role.pk}/",
        {**body, "role_groups": [payments.pk], "previewed": str(payments.pk)},
    )
    assert both.status_code == 400
    assert "either granted or eligible" in " ".join(
        both.context["form"].errors["eligible_role_groups"]
    )


def test_a_user_is_made_eligible_and_the_eligibility_removed(
    signed_in, owner, admin_user, clerk, payments
):
    refunds = make_role_group(owner, "Refunds", {"transactions": "full"})
    client = signed_in(admin_user)
    page = client.get(f"/access/users/{clerk.pk}/").content.decode()
    assert "Eligible role groups" in page and "Payment releasers" in page and "role Clerk" in page
    url = f"/access/users/{clerk.pk}/eligibility/"
    missing = client.post(url, {"role_group": refunds.pk, "reason": ""})
    assert missing.status_code == 400
    assert "Say why" in " ".join(missing.context["form"].errors["reason"])
    assert client.post(url, {"role_group": refunds.pk, "reason": "Covers refunds"}).status_code == (
        302
    )
    eligibility = Eligibility.objects.get(user=clerk)
    assert eligibility.role_group == refunds
    tab = client.get(f"/users/{clerk.pk}/permissions/").content.decode()
    assert "Refunds" in tab and "personal: Covers refunds" in tab
    remove = f"/access/eligibilities/{eligibility.pk}/remove/"
    assert client.get(remove).status_code == 200
    assert client.post(remove, {"reason": "Back to normal"}).status_code == 302
    assert not Eligibility.objects.filter(user=clerk).exists()
    assert actions().count("eligibility_changed") == 2
    stranger = make_user(make_owner())
    assert client.get(f"/access/users/{stranger.pk}/eligibility/").status_code == 404


def test_my_access_and_who_has_access_show_eligibility(signed_in, clerk, admin_user, payments):
    page = signed_in(clerk).get("/me/access/").content.decode()
    assert "Eligible role groups" in page and "Payment releasers" in page
    assert f"/me/access-requests/new/?group={payments.pk}" in page
    who = signed_in(admin_user).get("/access/who-has-access/?area=payments&level=full")
    assert "Eligible, not holding it now" in who.content.decode()
    assert clerk.label in who.content.decode()


def test_the_matrix_says_whether_a_group_activates_itself(signed_in, admin_user, payments):
    page = signed_in(admin_user).get(f"/access/role-groups/{payments.pk}/").content.decode()
    assert "need someone else's approval" in page


# Dashboard and command --------------------------------------------------------------------------


def test_the_reviewer_dashboard_counts_elevations_and_waiting_requests(
    signed_in, owner, clerk, approver, payments
):
    elevations.approve(ask(clerk, payments), actor=approver)
    other = make_user(owner, role=clerk.role)
    ask(other, payments)
    page = signed_in(approver).get("/reviews/").content.decode()
    assert "Active elevations" in page and "Waiting requests" in page
    assert 'href="/access/elevations/"' in page and 'href="/access/requests/"' in page


def test_the_command_records_expiries_once(clerk, approver, payments, capsys):
    waiting = ask(clerk, payments, hours=1)
    now = timezone.now()
    elevations.approve(waiting, actor=approver, now=now)
    later = now + 2 * HOUR
    with mock.patch("django.utils.timezone.now", return_value=later):
        call_command("record_elevation_events")
        call_command("record_elevation_events")
    out = capsys.readouterr().out
    assert "Recorded 0 activations and 1 expiry." in out
    assert "Recorded 0 activations and 0 expiries." in out
    assert actions().count("elevation_expired") == 1
