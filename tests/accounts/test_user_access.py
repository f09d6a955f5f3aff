"""A user's access has one writer: the rules of `accounts.users` hold at every door.

The screens, the JSON API and access reviews each reach `set_user_access` / `update_user`; each
door is named on the audit event (`context.source`). The SAML and SCIM doors are tested beside
their flows (tests/sso/test_sso_user_record.py, tests/scim/test_groups.py).
"""

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.http import Http404
from django.utils import timezone

from accounts.choices import AccessSource, AuthSource
from accounts.models import User
from accounts.users import set_user_access, update_user
from audit.models import AuditEvent
from reviews import services as reviews
from reviews.choices import Decision, ScopeKind
from roles import catalog, permissions
from roles.guards import EscalationRefused
from sso.models import SamlIdentityProvider, SsoIdentity
from tests.api.conftest import ApiClient
from tests.builders import (
    make_api_user,
    make_owner,
    make_role,
    make_role_group,
    make_token,
    make_update_reason,
    make_user,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def manager(owner):
    """Someone who administers users but holds little else."""
    return make_user(
        owner,
        username="manager",
        grants={catalog.USERS: "full", "invoices": "read", catalog.DP_RESPONSIBILITIES: "full"},
        privilege_level=5,
    )


@pytest.fixture
def big_role(owner):
    return make_role(
        owner, "Tariff master", groups=[make_role_group(owner, "Tariffs", {"tariffs": "full"})]
    )


@pytest.fixture
def small_role(owner):
    return make_role(
        owner, "Clerk", groups=[make_role_group(owner, "Invoices", {"invoices": "read"})]
    )


def fresh(user):
    return User.objects.get(pk=user.pk)


def level(user, area):
    return permissions.compute(fresh(user), catalog.Channel.APPLICATION).level(area)


def sso_user(owner, **fields):
    """A person whose role and groups their identity provider sets at every sign-in."""
    user = make_user(owner, auth_source=AuthSource.SAML, **fields)
    provider = SamlIdentityProvider.objects.create(
        owner=owner, name="Okta", slug="okta", entity_id="http://idp.example/okta"
    )
    SsoIdentity.objects.create(provider=provider, user=user, name_id=user.username)
    return user


# The writer's rules ---------------------------------------------------------------------------


def test_role_change_checks_escalation_privilege_and_owner(manager, owner, big_role, small_role):
    target = make_user(owner, privilege_level=3)
    with pytest.raises(EscalationRefused):
        set_user_access(target, role=big_role, actor=manager, reason="", source=AccessSource.SCREEN)
    senior = make_user(owner, privilege_level=9)
    with pytest.raises(EscalationRefused, match="privilege level"):
        set_user_access(
            senior, role=small_role, actor=manager, reason="", source=AccessSource.SCREEN
        )
    with pytest.raises(Http404):
        set_user_access(
            make_user(make_owner()),
            role=small_role,
            actor=manager,
            reason="",
            source=AccessSource.SCREEN,
        )
    version = fresh(target).permissions_version
    changes = set_user_access(
        target,
        role=small_role,
        actor=manager,
        reason="New starter",
        details="Ticket 12",
        source=AccessSource.SCREEN,
    )
    target = fresh(target)
    assert changes == {"role": [None, "Clerk"]}
    assert target.role == small_role
    assert target.permissions_version == version + 1
    event = AuditEvent.objects.get(action="user_changed")
    assert event.changes == {"role": [None, "Clerk"]}
    assert (event.reason, event.details) == ("New starter", "Ticket 12")
    assert event.context["source"] == "screen"
    assert level(target, "invoices") == "read"


def test_extra_groups_check_only_the_groups_added(manager, owner):
    big = make_role_group(owner, "Big", {"tariffs": "full"})
    small = make_role_group(owner, "Small", {"invoices": "read"})
    target = make_user(owner, privilege_level=3)
    target.extra_role_groups.add(big)  # given earlier by someone who could
    screen = {"actor": manager, "reason": "", "source": AccessSource.SCREEN}
    set_user_access(target, extra_groups=[big, small], **screen)
    assert level(target, "invoices") == "read"
    set_user_access(target, extra_groups=[small], **screen)
    with pytest.raises(EscalationRefused):
        set_user_access(target, extra_groups=[small, big], **screen)
    assert AuditEvent.objects.filter(action="user_changed").count() == 2


def test_another_owners_role_is_refused(manager, owner):
    theirs = make_role(make_owner(), "Theirs")
    target = make_user(owner, privilege_level=3)
    with pytest.raises(ValidationError) as refused:
        set_user_access(target, role=theirs, actor=manager, reason="", source=AccessSource.API)
    assert "role" in refused.value.error_dict
    assert fresh(target).role_id is None


def test_nothing_to_change_writes_nothing(manager, owner, small_role):
    target = make_user(owner, role=small_role, privilege_level=3)
    assert (
        set_user_access(
            target, role=small_role, actor=manager, reason="", source=AccessSource.SCREEN
        )
        == {}
    )
    assert not AuditEvent.objects.filter(action="user_changed").exists()


def test_the_last_administrator_keeps_the_ability(owner):
    only_admin = make_user(
        owner, username="only", grants={catalog.USERS: "full"}, privilege_level=5
    )
    plain = make_role(owner, "Plain")
    with pytest.raises(EscalationRefused, match="nobody able to administer users"):
        set_user_access(
            only_admin, role=plain, actor=only_admin, reason="", source=AccessSource.SCREEN
        )
    assert fresh(only_admin).role.name != "Plain"


def test_a_system_source_must_say_who_acts(owner, small_role):
    with pytest.raises(ValueError, match="Say who acts"):
        set_user_access(
            make_user(owner), role=small_role, actor=None, reason="", source=AccessSource.SCIM
        )


# The doors -------------------------------------------------------------------------------------


def test_identity_provider_fields_are_refused_from_every_other_door(manager, owner, small_role):
    user = sso_user(owner, privilege_level=3)
    for source in (AccessSource.SCREEN, AccessSource.API, AccessSource.REVIEW):
        with pytest.raises(ValidationError) as refused:
            set_user_access(user, role=small_role, actor=manager, reason="", source=source)
        assert "role" in refused.value.error_dict
    # The provider itself writes them (its mapping was checked when an administrator saved it).
    set_user_access(
        user, role=small_role, actor=None, actor_label="SSO: Okta", reason="", source="saml"
    )
    assert fresh(user).role == small_role


def test_the_screen_door(signed_in, manager, owner, big_role, small_role):
    reason = make_update_reason(owner, "Role change")
    target = make_user(owner, username="tess", privilege_level=3)
    client = signed_in(manager)

    def save(role):
        return client.post(
            f"/users/{target.pk}/edit/",
            {
                **edit_values(fresh(target)),
                "role": role.pk,
                "update_reason": reason.pk,
                "row_version": fresh(target).row_version,
            },
        )

    refused = save(big_role)
    assert refused.status_code == 400
    assert "Tariffs" in refused.content.decode() or "tariff" in refused.content.decode().lower()
    assert fresh(target).role_id is None
    assert save(small_role).status_code == 302
    event = AuditEvent.objects.get(action="user_changed")
    assert (event.context["source"], event.reason) == ("screen", "Role change")
    assert fresh(target).role == small_role


def edit_values(user):
    """The edit form's values as the screen would post them back unchanged."""
    from accounts.forms import UserEditForm

    form = UserEditForm(owner=user.owner, instance=user)
    values = {}
    for name, field in form.fields.items():
        value = form.initial.get(name, field.initial)
        if value is None or value is False or field.disabled:
            continue
        if hasattr(value, "pk"):
            value = value.pk
        elif isinstance(value, (list, tuple)) or hasattr(value, "all"):
            value = [getattr(v, "pk", v) for v in (value.all() if hasattr(value, "all") else value)]
        values[name] = value
    return values


def test_the_api_door(client, owner, big_role, small_role):
    make_update_reason(owner, "Role change")
    integration = make_api_user(
        owner,
        api_grants={"api_users": "write"},
        app_grants={"invoices": "read"},
        username="provisioner",
        privilege_level=5,
        kind="interactive",  # an administrator calling the API: grants what they hold
        allow_login=True,
    )
    writer = ApiClient(client, make_token(integration)[1])
    target = make_user(owner, username="tess", privilege_level=3)
    path = f"/users/{target.pk}"
    body = {"reason": "Role change", "row_version": 1}
    refused = writer.patch(path, {**body, "role": big_role.pk})
    assert refused.status_code == 403, refused.content
    assert fresh(target).role_id is None
    response = writer.patch(path, {**body, "role": small_role.pk})
    assert response.status_code == 200, response.content
    event = AuditEvent.objects.get(action="user_changed")
    assert event.context["source"] == "api"
    assert fresh(target).role == small_role


def decided_campaign(actor, user, role):
    campaign = reviews.create_campaign(
        actor=actor,
        name="Q4 review",
        scope_kind=ScopeKind.ALL,
        reviewers=[actor],
        due_date=timezone.localdate() + datetime.timedelta(days=1),
    )
    item = campaign.items.get(user=user)
    reviews.record_decision(
        item, actor=actor, decision=Decision.CHANGE_ROLE, new_role=role, comment="Moved team"
    )
    return campaign, item


def test_the_review_door(manager, owner, big_role, small_role):
    target = make_user(owner, username="tess", privilege_level=3)
    campaign, item = decided_campaign(manager, target, big_role)
    result = reviews.apply_decisions(campaign, actor=manager)
    assert [i.pk for i in result.refused] == [item.pk]
    assert fresh(target).role_id is None

    reviews.record_decision(
        item, actor=manager, decision=Decision.CHANGE_ROLE, new_role=small_role, comment="Clerk"
    )
    result = reviews.apply_decisions(campaign, actor=manager)
    assert [i.pk for i in result.applied] == [item.pk]
    event = AuditEvent.objects.get(action="user_changed")
    assert event.context["source"] == "review"
    assert event.context["campaign"] == campaign.pk
    assert fresh(target).role == small_role


def test_a_review_cannot_change_what_the_identity_provider_sets(manager, owner, small_role):
    """Changing an SSO user's role in a review would be undone at their next sign-in."""
    target = sso_user(owner, username="sam", privilege_level=3)
    campaign, item = decided_campaign(manager, target, small_role)
    result = reviews.apply_decisions(campaign, actor=manager)
    assert [i.pk for i in result.refused] == [item.pk]
    item.refresh_from_db()
    assert "identity provider" in item.apply_error
    assert fresh(target).role_id is None
    assert not AuditEvent.objects.filter(action="user_changed").exists()


def test_only_an_approver_marks_an_emergency_account_and_never_their_own(manager, owner):
    target = make_user(owner, username="eve", privilege_level=3)
    screen = {"reason": "On call", "source": AccessSource.SCREEN}
    with pytest.raises(EscalationRefused, match="Approve on Access Requests"):
        update_user(target, actor=manager, data={"is_emergency_account": True}, **screen)
    approver = make_user(
        owner,
        username="ann",
        grants={catalog.USERS: "full", catalog.ACCESS_REQUESTS: catalog.APPROVE},
        privilege_level=5,
    )
    with pytest.raises(EscalationRefused, match="your own"):
        update_user(approver, actor=approver, data={"is_emergency_account": True}, **screen)
    update_user(target, actor=approver, data={"is_emergency_account": True}, **screen)
    assert fresh(target).is_emergency_account
    event = AuditEvent.objects.filter(action="user_changed").latest("id")
    assert event.changes == {"is_emergency_account": [False, True]}
