"""Access reviews and just-in-time eligibility: an item lists what its user may ask for apart
from standing access, and a decision removes one of the user's own eligibilities through the
eligibility service, audited with the campaign as its reason."""

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from audit.choices import AuditAction
from audit.models import AuditEvent
from reviews import services
from reviews.choices import Decision, ScopeKind
from roles import elevations
from roles.models import Eligibility
from tests.builders import make_role, make_role_group, make_user

pytestmark = pytest.mark.django_db

TOMORROW = timezone.localdate() + datetime.timedelta(days=1)


@pytest.fixture
def groups(owner):
    return {
        "invoices": make_role_group(owner, "Invoice clerks", {"invoices": "full"}),
        "payments": make_role_group(owner, "Payment releasers", {"payments": "full"}),
        "debits": make_role_group(owner, "Direct debit runs", {"parameters": "read"}),
    }


@pytest.fixture
def clerk(owner, groups, admin_user):
    role = make_role(owner, "Clerk", groups=[groups["invoices"]])
    role.eligible_role_groups.add(groups["payments"])
    clara = make_user(owner, username="clara", first_name="Clara", last_name="Clerk", role=role)
    elevations.make_eligible(clara, groups["debits"], actor=admin_user, reason="Covers for Dan")
    return clara


def open_campaign(actor, **kwargs):
    kwargs.setdefault("name", "Q3 review")
    kwargs.setdefault("scope_kind", ScopeKind.ALL)
    kwargs.setdefault("reviewers", [actor])
    kwargs.setdefault("due_date", TOMORROW)
    return services.create_campaign(actor=actor, **kwargs)


def test_the_snapshot_records_eligibility_apart_from_standing_access(clerk, admin_user, groups):
    item = open_campaign(admin_user).items.get(user=clerk)
    own = Eligibility.objects.get(user=clerk)
    assert item.snapshot["eligible"] == [
        {
            "group_id": groups["debits"].pk,
            "group": "Direct debit runs",
            "via": "user",
            "eligibility_id": own.pk,
            "reason": "Covers for Dan",
            "held": False,
        },
        {
            "group_id": groups["payments"].pk,
            "group": "Payment releasers",
            "via": "role",
            "role_id": clerk.role_id,
            "role": "Clerk",
            "held": False,
        },
    ]
    # Eligible access is not standing access: neither group's areas are in the permissions.
    assert "payments" not in item.snapshot["application"]
    assert "parameters" not in item.snapshot["application"]
    assert item.snapshot["application"]["invoices"] == "full"


def test_the_item_page_shows_eligibility_in_its_own_section(signed_in, clerk, admin_user):
    campaign = open_campaign(admin_user)
    item = campaign.items.get(user=clerk)
    response = signed_in(admin_user).get(f"/reviews/campaigns/{campaign.pk}/items/{item.pk}/")
    assert response.status_code == 200
    page = response.content.decode()
    section = page[page.index('id="eligible-heading"') : page.index("Effective application")]
    assert "not standing access" in section
    assert section.count('badge--eligible">eligible') == 2
    assert "Direct debit runs" in section and "Their own: Covers for Dan" in section
    assert "Payment releasers" in section
    assert f'href="/access/roles/{clerk.role_id}/">Clerk</a>' in section
    # Only the user's own eligibility can be removed here; the role's stays the role's.
    form = response.context["form"]
    assert Decision.REMOVE_ELIGIBILITY in dict(form.fields["decision"].choices)
    own = Eligibility.objects.get(user=clerk)
    assert [c[0] for c in form.fields["eligibility_id"].choices] == ["", own.pk]


def test_without_own_eligibility_the_decision_is_not_offered(owner, signed_in, admin_user, groups):
    role = make_role(owner, "Payer", groups=[groups["invoices"]])
    role.eligible_role_groups.add(groups["payments"])
    paul = make_user(owner, username="paul", role=role)
    campaign = open_campaign(admin_user)
    item = campaign.items.get(user=paul)
    url = f"/reviews/campaigns/{campaign.pk}/items/{item.pk}/"
    response = signed_in(admin_user).get(url)
    assert Decision.REMOVE_ELIGIBILITY not in dict(
        response.context["form"].fields["decision"].choices
    )
    assert "Payment releasers" in response.content.decode()
    response = signed_in(admin_user).post(
        url, {"decision": "remove_eligibility", "comment": "Not needed"}
    )
    assert response.status_code == 400
    item.refresh_from_db()
    assert item.decision == Decision.PENDING


def test_the_role_eligibility_cannot_be_named_and_a_comment_is_required(clerk, admin_user, groups):
    item = open_campaign(admin_user).items.get(user=clerk)
    with pytest.raises(ValidationError) as refused:
        services.record_decision(
            item,
            actor=admin_user,
            decision="remove_eligibility",
            eligibility_id=None,
            comment="Role eligibility",
        )
    assert "own eligibilities" in str(refused.value)
    own = Eligibility.objects.get(user=clerk)
    with pytest.raises(ValidationError):
        services.record_decision(
            item, actor=admin_user, decision="remove_eligibility", eligibility_id=own.pk
        )
    with pytest.raises(ValidationError):
        services.record_decision(
            item,
            actor=admin_user,
            decision="remove_eligibility",
            eligibility_id=own.pk + 1000,
            comment="Someone else's",
        )
    item.refresh_from_db()
    assert item.decision == Decision.PENDING


def test_removal_is_applied_audited_and_the_user_can_no_longer_ask(
    signed_in, clerk, admin_user, groups
):
    campaign = open_campaign(admin_user)
    item = campaign.items.get(user=clerk)
    own = Eligibility.objects.get(user=clerk)
    version = clerk.permissions_version
    client = signed_in(admin_user)
    url = f"/reviews/campaigns/{campaign.pk}/items/{item.pk}/"
    response = client.post(
        url,
        {"decision": "remove_eligibility", "eligibility_id": own.pk, "comment": "Dan is back"},
    )
    assert response.status_code == 302
    item.refresh_from_db()
    assert item.decision == Decision.REMOVE_ELIGIBILITY and item.eligibility_id == own.pk
    # Recorded, not applied: the person may still ask.
    assert Eligibility.objects.filter(pk=own.pk).exists()
    assert (
        "Remove eligibility</strong>: Direct debit runs"
        in client.get(f"/reviews/campaigns/{campaign.pk}/").content.decode()
    )

    assert client.post(f"/reviews/campaigns/{campaign.pk}/apply/").status_code == 302

    item.refresh_from_db()
    assert item.applied_at is not None and item.apply_error == ""
    assert item.outcome == "Eligibility removed: Direct debit runs (can no longer be requested)."
    assert not Eligibility.objects.filter(pk=own.pk).exists()
    event = AuditEvent.objects.filter(action=AuditAction.ELIGIBILITY_CHANGED).latest("seq")
    assert event.actor_id == admin_user.pk and event.target_id == str(clerk.pk)
    assert event.reason == "Access review: Q3 review"
    assert event.details == "Dan is back"
    assert event.changes == {"eligible_for": ["Direct debit runs", None]}
    assert event.context["campaign"] == campaign.pk
    clerk.refresh_from_db()
    assert clerk.permissions_version > version
    # The role's eligibility stays; the removed one can no longer be asked for.
    assert [g.name for g in elevations.eligible_groups(clerk)] == ["Payment releasers"]
    with pytest.raises(ValidationError) as refused:
        elevations.request_access(clerk, groups["debits"], justification="Cover", hours=2)
    assert "not eligible" in str(refused.value)
    page = signed_in(clerk).get("/me/access-requests/new/").content.decode()
    assert "Direct debit runs" not in page and "Payment releasers" in page


def test_an_eligibility_gone_before_applying_changes_nothing(clerk, admin_user):
    campaign = open_campaign(admin_user)
    item = campaign.items.get(user=clerk)
    own = Eligibility.objects.get(user=clerk)
    services.record_decision(
        item, actor=admin_user, decision="remove_eligibility", eligibility_id=own.pk, comment="x"
    )
    elevations.remove_eligibility(own, actor=admin_user, reason="Removed on the user's screen")
    before = AuditEvent.objects.filter(action=AuditAction.ELIGIBILITY_CHANGED).count()
    result = services.apply_decisions(campaign, actor=admin_user)
    assert [i.pk for i in result.applied] == [item.pk]
    item.refresh_from_db()
    assert item.outcome == "No change: the eligibility was already gone."
    assert AuditEvent.objects.filter(action=AuditAction.ELIGIBILITY_CHANGED).count() == before


def test_the_eligibility_service_needs_a_reason(clerk, admin_user):
    own = Eligibility.objects.get(user=clerk)
    with pytest.raises(ValidationError):
        elevations.remove_eligibility(own, actor=admin_user, reason="  ")
    assert Eligibility.objects.filter(pk=own.pk).exists()


def test_the_item_page_costs_the_same_queries_whatever_the_eligibility(
    owner, signed_in, clerk, admin_user, groups, django_assert_num_queries
):
    for n in range(8):
        extra = make_role_group(owner, f"Extra {n}", {"invoices": "read"})
        elevations.make_eligible(clerk, extra, actor=admin_user, reason=f"Cover {n}")
        clerk.role.eligible_role_groups.add(make_role_group(owner, f"Role extra {n}", {}))
    few = make_user(owner, username="few", role=make_role(owner, "Plain"))
    campaign = open_campaign(admin_user)
    client = signed_in(admin_user)
    many_url = f"/reviews/campaigns/{campaign.pk}/items/{campaign.items.get(user=clerk).pk}/"
    few_url = f"/reviews/campaigns/{campaign.pk}/items/{campaign.items.get(user=few).pk}/"
    client.get(few_url)  # warm the permission cache
    # The session, the user, the campaign, the item, the reviewer check, the item's rules of
    # separation of duties and the messages: eligibility comes from the snapshot, for free.
    with django_assert_num_queries(7):
        assert client.get(few_url).status_code == 200
    with django_assert_num_queries(7):
        page = client.get(many_url)
    assert page.status_code == 200 and page.content.decode().count("badge--eligible") == 18
