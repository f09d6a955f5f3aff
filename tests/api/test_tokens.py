"""API tokens: creation rules, hashes at rest, authentication refusals, audit."""

import datetime
import hashlib
from unittest import mock

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.utils import timezone

from accounts.models import ApiToken
from accounts.tokens import services as tokens
from audit.models import AuditEvent
from roles.guards import EscalationRefused
from roles.versions import bump_user
from security.models import PasswordPolicy
from tests.builders import make_api_user, make_owner, make_token, make_user

pytestmark = pytest.mark.django_db

READ_WRITE = {"api_users": "write", "api_roles": "read"}


@pytest.fixture
def api_user(owner):
    return make_api_user(owner, api_grants=READ_WRITE, username="integration")


def test_token_text_has_prefix_and_secret_and_only_a_hash_is_kept(api_user):
    token, text = make_token(api_user)
    prefix, secret = tokens.TOKEN_PATTERN.match(text).groups()
    assert prefix == token.prefix
    row = ApiToken.objects.filter(pk=token.pk).values().get()
    assert secret not in str(row)
    assert row["secret_hash"] == hashlib.sha256(secret.encode()).hexdigest()
    event = AuditEvent.objects.get(action="token_created")
    assert event.target_id == str(token.pk)
    assert event.subject_user_id == api_user.pk
    assert secret not in str(event.context)


def test_a_user_without_api_access_gets_no_token(owner):
    person = make_user(owner, grants={"users": "read"})
    with pytest.raises(PermissionDenied):
        make_token(person)
    assert not ApiToken.objects.exists()


def test_an_area_the_user_does_not_hold_is_refused(api_user):
    with pytest.raises(EscalationRefused):
        make_token(api_user, areas=["api_audit_events"])
    token, _ = make_token(api_user, areas=["api_roles"])
    assert token.areas == ["api_roles"]


def test_expiry_is_required_and_capped_by_the_owner_policy(api_user, owner):
    PasswordPolicy.objects.create(owner=owner, max_token_days=30)
    api_user.owner.refresh_from_db()
    with pytest.raises(ValidationError) as refused:
        make_token(api_user, days=31)
    assert "expires_at" in refused.value.message_dict
    with pytest.raises(ValidationError):
        tokens.create_token(api_user, actor=api_user, name="x", expires_at=None, reason="")
    make_token(api_user, days=30)


def test_networks_are_validated_and_normalised(api_user):
    with pytest.raises(ValidationError) as refused:
        make_token(api_user, allowed_networks=["10.0.0.0/33"])
    assert "allowed_networks" in refused.value.message_dict
    token, _ = make_token(api_user, allowed_networks=["10.1.2.3/8", "2001:db8::1"])
    assert token.allowed_networks == ["10.0.0.0/8", "2001:db8::1/128"]


def test_an_administrator_creates_tokens_for_api_users_only(owner, admin_user, api_user):
    token, _ = make_token(api_user, actor=admin_user)
    assert token.created_by == admin_user
    person = make_user(owner, allow_api_read=True)
    with pytest.raises(PermissionDenied):
        make_token(person, actor=admin_user)


def test_an_administrator_cannot_hand_out_more_than_they_could_grant(owner, api_user):
    weak_admin = make_user(owner, grants={"users": "full"})  # no user groups: cannot grant roles
    with pytest.raises(EscalationRefused):
        make_token(api_user, actor=weak_admin)
    token, _ = make_token(api_user, actor=weak_admin, areas=["api_users"])
    assert token.user == api_user


def test_another_owners_user_answers_404(api_user):
    stranger = make_user(make_owner(), grants={"users": "full"})
    with pytest.raises(Http404):
        make_token(api_user, actor=stranger)


def test_authenticate_returns_the_token_and_notes_its_use_once_a_minute(api_user):
    token, text = make_token(api_user)
    now = timezone.now()
    assert tokens.authenticate(text, ip="127.0.0.1", now=now) == token
    token.refresh_from_db()
    assert token.last_used_at == now
    tokens.authenticate(text, ip="127.0.0.1", now=now + datetime.timedelta(seconds=30))
    token.refresh_from_db()
    assert token.last_used_at == now
    later = now + datetime.timedelta(seconds=61)
    tokens.authenticate(text, ip="127.0.0.1", now=later)
    token.refresh_from_db()
    assert token.last_used_at == later


@pytest.mark.parametrize(
    "mangle",
    [lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"), lambda t: "ba_zz" + t[5:], str.upper],
)
def test_wrong_or_malformed_tokens_are_refused(api_user, mangle):
    _, text = make_token(api_user)
    with pytest.raises(tokens.TokenRefused):
        tokens.authenticate(mangle(text), ip=None)


def test_revoked_token_is_refused_and_audited_once_a_minute(api_user):
    token, text = make_token(api_user)
    tokens.revoke_token(token, actor=api_user, reason="")
    assert AuditEvent.objects.filter(action="token_revoked").count() == 1
    for _ in range(3):
        with pytest.raises(tokens.TokenRefused) as refused:
            tokens.authenticate(text, ip="127.0.0.1")
        assert refused.value.reason == "revoked"
    refusals = AuditEvent.objects.filter(action="token_refused")
    assert refusals.count() == 1
    assert refusals.get().context["reason"] == "revoked"
    with pytest.raises(ValidationError):
        tokens.revoke_token(token, actor=api_user, reason="")


def test_expired_token_is_refused(api_user):
    token, text = make_token(api_user, days=1)
    with pytest.raises(tokens.TokenRefused) as refused:
        tokens.authenticate(text, ip=None, now=token.expires_at)
    assert refused.value.reason == "expired"


def test_token_outside_its_networks_is_refused(api_user):
    _, text = make_token(api_user, allowed_networks=["192.0.2.0/24"])
    assert tokens.authenticate(text, ip="192.0.2.77")
    for ip in ("198.51.100.1", None, "not-an-ip"):
        with pytest.raises(tokens.TokenRefused) as refused:
            tokens.authenticate(text, ip=ip)
        assert refused.value.reason == "network"


def test_removing_the_api_flags_stops_every_token_at_once(api_user):
    _, first = make_token(api_user)
    _, second = make_token(api_user)
    users = type(api_user).objects.filter(pk=api_user.pk)
    users.update(allow_api_read=False, allow_api_write=False)
    for text in (first, second):
        with pytest.raises(tokens.TokenRefused) as refused:
            tokens.authenticate(text, ip=None)
        assert refused.value.reason == "no_api_access"


def test_a_deactivated_interactive_user_s_token_is_refused(owner):
    person = make_api_user(owner, api_grants=READ_WRITE, kind="interactive", allow_login=True)
    _, text = make_token(person)
    assert tokens.authenticate(text, ip=None)
    type(person).objects.filter(pk=person.pk).update(allow_login=False)
    with pytest.raises(tokens.TokenRefused):
        tokens.authenticate(text, ip=None)


def test_token_reach_is_the_user_s_current_levels_narrowed(owner, api_user):
    token, _ = make_token(api_user, read_only=True)
    assert tokens.effective_permissions(token).levels == {"api_users": "read", "api_roles": "read"}
    narrowed, _ = make_token(api_user, areas=["api_users"])
    assert tokens.effective_permissions(narrowed).levels == {"api_users": "write"}
    # The user loses write on Users: felt at once by every token.
    api_user.role.role_groups.first().grants.filter(area="api_users").update(level="read")
    bump_user(api_user)
    narrowed.user.refresh_from_db()
    assert tokens.effective_permissions(narrowed).levels == {"api_users": "read"}


def test_refusal_audit_is_throttled_per_reason(api_user):
    token, text = make_token(api_user, allowed_networks=["192.0.2.0/24"])
    start = timezone.now()
    with mock.patch("django.utils.timezone.now", return_value=start):
        for _ in range(5):
            with pytest.raises(tokens.TokenRefused):
                tokens.authenticate(text, ip="198.51.100.1")
    tokens.revoke_token(token, actor=api_user, reason="")
    with pytest.raises(tokens.TokenRefused):
        tokens.authenticate(text, ip="192.0.2.1")
    reasons = sorted(
        AuditEvent.objects.filter(action="token_refused").values_list("context__reason", flat=True)
    )
    assert reasons == ["network", "revoked"]
