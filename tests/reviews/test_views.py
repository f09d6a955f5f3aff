"""Governance screens: access of every view, the campaign workflow through the screens, the
report and its CSV, another owner's campaign."""

import csv
import datetime
import io

import pytest
from django.utils import timezone

from audit.choices import AuditAction
from audit.models import AuditEvent
from reviews import services
from reviews.choices import CampaignStatus, ScopeKind
from reviews.models import ReviewCampaign
from roles import catalog
from tests.access_helpers import assert_screen_access
from tests.builders import make_owner, make_role, make_role_group, make_user

pytestmark = pytest.mark.django_db

TOMORROW = timezone.localdate() + datetime.timedelta(days=1)


@pytest.fixture
def clerk(owner):
    role = make_role(owner, "Clerk", groups=[make_role_group(owner, grants={"invoices": "full"})])
    return make_user(owner, username="clara", first_name="Clara", last_name="Clerk", role=role)


@pytest.fixture
def campaign(admin_user, clerk):
    return services.create_campaign(
        actor=admin_user,
        name="Q3 review",
        scope_kind=ScopeKind.ALL,
        reviewers=[admin_user],
        due_date=TOMORROW,
    )


def read_urls(campaign, item):
    return [
        "/reviews/",
        "/reviews/campaigns/",
        f"/reviews/campaigns/{campaign.pk}/",
        f"/reviews/campaigns/{campaign.pk}/items/{item.pk}/",
        f"/reviews/campaigns/{campaign.pk}/report/",
        f"/reviews/campaigns/{campaign.pk}/report.csv",
        "/reviews/reports/dormant/",
        "/reviews/reports/without-2fa/",
        "/reviews/reports/tokens/",
        "/reviews/reports/overrides/",
        "/reviews/reports/unused-role-groups/",
        "/reviews/reports/privileged/",
    ]


def test_every_screen_anonymous_forbidden_allowed(owner, signed_in, admin_user, campaign, clerk):
    item = campaign.items.get(user=clerk)
    nobody = make_user(owner, grants={catalog.USERS: "read"})
    urls = [
        *read_urls(campaign, item),
        "/reviews/campaigns/new/",
        f"/reviews/campaigns/{campaign.pk}/apply/",
        f"/reviews/campaigns/{campaign.pk}/close/",
    ]
    assert_screen_access(signed_in, urls, allowed=admin_user, denied=nobody)


def test_a_reviewer_without_data_protection_rights_cannot_open_or_close(owner, signed_in, campaign):
    reviewer = make_user(owner, grants={catalog.USER_ACTIVITY: "read"})
    client = signed_in(reviewer)
    assert client.get("/reviews/campaigns/new/").status_code == 403
    assert client.post(f"/reviews/campaigns/{campaign.pk}/close/").status_code == 403
    # Not listed and no Users full: reading yes, deciding and applying no.
    item = campaign.items.first()
    assert client.get(f"/reviews/campaigns/{campaign.pk}/").status_code == 200
    url = f"/reviews/campaigns/{campaign.pk}/items/{item.pk}/"
    assert client.post(url, {"decision": "keep"}).status_code == 403
    assert client.post(f"/reviews/campaigns/{campaign.pk}/apply/").status_code == 403


def test_another_owners_campaign_answers_404(signed_in, campaign):
    stranger = make_user(
        make_owner("Elsewhere"),
        grants={a.code: a.top for a in catalog.areas_for("application")},
        privilege_level=10,
    )
    client = signed_in(stranger)
    assert client.get(f"/reviews/campaigns/{campaign.pk}/").status_code == 404
    assert client.get(f"/reviews/campaigns/{campaign.pk}/report.csv").status_code == 404


def test_open_a_campaign_with_bad_then_good_input(signed_in, admin_user, clerk):
    client = signed_in(admin_user)
    bad = client.post(
        "/reviews/campaigns/new/",
        {"name": "", "scope_kind": "role", "reviewers": [admin_user.pk], "due_date": "2000-01-01"},
    )
    assert bad.status_code == 400
    assert b"Choose the role whose users are reviewed." in bad.content
    assert b"Enter" in bad.content or b"required" in bad.content
    assert not ReviewCampaign.objects.exists()

    good = client.post(
        "/reviews/campaigns/new/",
        {
            "name": "Clerks",
            "scope_kind": "role",
            "role": clerk.role_id,
            "reviewers": [admin_user.pk],
            "due_date": TOMORROW.isoformat(),
            "level": "full",
        },
    )
    campaign = ReviewCampaign.objects.get()
    assert good.status_code == 302
    assert good["Location"] == f"/reviews/campaigns/{campaign.pk}/"
    assert list(campaign.items.values_list("user", flat=True)) == [clerk.pk]


def test_decide_apply_close_and_report_through_the_screens(signed_in, admin_user, campaign, clerk):
    client = signed_in(admin_user)
    item = campaign.items.get(user=clerk)
    url = f"/reviews/campaigns/{campaign.pk}/items/{item.pk}/"
    refused = client.post(url, {"decision": "deactivate", "comment": ""})
    assert refused.status_code == 400
    assert b"comment is required" in refused.content

    assert client.post(url, {"decision": "deactivate", "comment": "Left"}).status_code == 302
    page = client.get(f"/reviews/campaigns/{campaign.pk}/?show=decided")
    assert b"Clara Clerk" in page.content
    assert b"1 of 2 decided" in page.content

    response = client.post(f"/reviews/campaigns/{campaign.pk}/close/")
    assert response.status_code == 400
    assert b"still undecided or not applied" in response.content

    assert client.post(f"/reviews/campaigns/{campaign.pk}/apply/").status_code == 302
    clerk.refresh_from_db()
    assert clerk.allow_login is False
    event = AuditEvent.objects.get(action=AuditAction.USER_DEACTIVATED)
    assert event.reason == "Access review: Q3 review"

    other = make_user(clerk.owner, grants={catalog.USERS: "full"})
    services.record_decision(campaign.items.get(user=admin_user), actor=other, decision="keep")
    services.apply_decisions(campaign, actor=other)
    assert client.post(f"/reviews/campaigns/{campaign.pk}/close/").status_code == 302
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.CLOSED

    report = client.get(f"/reviews/campaigns/{campaign.pk}/report/")
    assert b"Deactivated: Login flag removed." in report.content
    rows = list(
        csv.DictReader(
            io.StringIO(client.get(f"/reviews/campaigns/{campaign.pk}/report.csv").content.decode())
        )
    )
    clara = next(r for r in rows if r["Login"] == "clara")
    assert clara["Decision"] == "Deactivate"
    assert clara["Comment"] == "Left"
    assert clara["What changed"] == "Deactivated: Login flag removed."
    assert clara["Role at review"] == "Clerk"


def test_a_superseded_decisions_comment_is_left_behind(signed_in, admin_user, campaign, clerk):
    client = signed_in(admin_user)
    item = campaign.items.get(user=clerk)
    url = f"/reviews/campaigns/{campaign.pk}/items/{item.pk}/"
    assert client.post(url, {"decision": "deactivate", "comment": "Left in May"}).status_code == 302
    form = client.get(url).context["form"]
    assert form.initial["comment"] == "Left in May"  # the form opens with what was recorded
    # The reviewer changes their mind and keeps the access, leaving the comment untouched.
    assert client.post(url, {"decision": "keep", "comment": "Left in May"}).status_code == 302
    item.refresh_from_db()
    assert (item.decision, item.comment) == ("keep", "")
    report = client.get(f"/reviews/campaigns/{campaign.pk}/report/").content.decode()
    assert "Left in May" not in report
    # Back to a decision that needs a reason: the old one is not taken for it.
    client.post(url, {"decision": "deactivate", "comment": "Left in May"})
    refused = client.post(url, {"decision": "change_role", "comment": "Left in May"})
    assert refused.status_code == 400
    assert "This comment explains the earlier decision (Deactivate)" in refused.content.decode()
    item.refresh_from_db()
    assert (item.decision, item.comment) == ("deactivate", "Left in May")
    assert (
        client.post(url, {"decision": "deactivate", "comment": "Left in June"}).status_code == 302
    )
    item.refresh_from_db()
    assert item.comment == "Left in June"  # the same decision, its comment corrected


def test_dormant_report_takes_the_number_of_days(signed_in, admin_user, owner):
    make_user(owner, username="sleepy", last_sign_in_at=timezone.now() - datetime.timedelta(40))
    client = signed_in(admin_user)
    assert b"sleepy" not in client.get("/reviews/reports/dormant/").content
    assert b"sleepy" in client.get("/reviews/reports/dormant/?days=30").content
    assert client.get("/reviews/reports/dormant/?days=abc").status_code == 400


def test_dashboard_shows_counts_and_the_chart(signed_in, admin_user, campaign):
    response = signed_in(admin_user).get("/reviews/")
    assert b"Sign-ins and failed attempts" in response.content
    assert b"Q3 review" in response.content
    assert b"Dormant accounts" in response.content


def test_an_open_campaign_past_its_due_date_shows_as_overdue(signed_in, admin_user, campaign):
    client = signed_in(admin_user)
    assert b"Overdue" not in client.get("/reviews/campaigns/").content
    ReviewCampaign.objects.filter(pk=campaign.pk).update(
        due_date=timezone.localdate() - datetime.timedelta(days=1)
    )
    assert b"Overdue" in client.get("/reviews/campaigns/").content
    assert b"Overdue" in client.get("/reviews/").content
