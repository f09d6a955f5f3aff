"""Token screens: your tokens, an API user's tokens, the inventory, revoke."""

import pytest
from django.urls import reverse

from accounts.models import ApiToken
from audit.models import AuditEvent
from tests.access_helpers import assert_screen_access
from tests.builders import make_api_user, make_owner, make_token, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def api_person(owner):
    """An interactive person who may also use the API."""
    return make_api_user(
        owner, api_grants={"api_users": "read"}, kind="interactive", allow_login=True
    )


@pytest.fixture
def api_user(owner):
    return make_api_user(owner, api_grants={"api_users": "write"}, username="billing-sync")


def test_your_tokens_needs_a_session_and_api_access(signed_in, owner, api_person):
    url = reverse("tokens:my_tokens")
    reader = make_user(owner, grants={"users": "read"})
    assert_screen_access(signed_in, [url], allowed=api_person, denied=reader)
    assert b"Create a token" in signed_in(api_person).get(url).content


def test_creating_your_token_shows_it_once(signed_in, api_person):
    client = signed_in(api_person)
    url = reverse("tokens:my_tokens")
    refused = client.post(url, {"name": "", "lifetime_days": 9999})
    assert refused.status_code == 400
    assert not ApiToken.objects.exists()
    response = client.post(
        url, {"name": "Laptop script", "lifetime_days": 30, "allowed_networks": "10.0.0.0/8"}
    )
    assert response.status_code == 201
    assert response["Cache-Control"] == "no-store"
    token = ApiToken.objects.get()
    text = response.context["text"]
    assert text.startswith(f"ba_{token.prefix}_")
    assert text.encode() in response.content
    assert token.allowed_networks == ["10.0.0.0/8"]
    assert AuditEvent.objects.filter(action="token_created", actor_id=api_person.pk).exists()
    listing = client.get(url)
    assert text.encode() not in listing.content
    assert token.display_prefix.encode() in listing.content


def test_a_scope_above_the_user_is_refused_on_the_form(signed_in, api_person):
    client = signed_in(api_person)
    response = client.post(
        reverse("tokens:my_tokens"),
        {"name": "x", "lifetime_days": 30, "areas": ["api_audit_events"]},
    )
    assert response.status_code == 400
    assert not ApiToken.objects.exists()


def test_user_tokens_needs_users_full(signed_in, owner, admin_user, api_user):
    url = reverse("tokens:user_tokens", args=[api_user.pk])
    reader = make_user(owner, grants={"users": "read"})
    assert_screen_access(signed_in, [url], allowed=admin_user, denied=reader)
    response = signed_in(admin_user).post(url, {"name": "Nightly sync", "lifetime_days": 7})
    assert response.status_code == 201
    token = ApiToken.objects.get()
    assert token.user == api_user
    assert token.created_by == admin_user


def test_user_tokens_of_another_owner_answer_404(signed_in, admin_user):
    stranger = make_api_user(make_owner(), api_grants={"api_users": "read"})
    response = signed_in(admin_user).get(reverse("tokens:user_tokens", args=[stranger.pk]))
    assert response.status_code == 404


def test_inventory_lists_the_owner_s_tokens_only(signed_in, owner, admin_user, api_user):
    url = reverse("tokens:token_list")
    assert_screen_access(signed_in, [url], denied=make_user(owner, grants={"users": "read"}))
    mine, _ = make_token(api_user, actor=admin_user, name="Ours")
    stranger = make_api_user(make_owner(), api_grants={"api_users": "read"})
    make_token(stranger, name="Theirs")
    client = signed_in(admin_user)
    response = client.get(url)
    assert response.status_code == 200
    assert list(response.context["tokens"]) == [mine]
    assert client.get(url, {"q": "nothing-like-it"}).context["tokens"].__len__() == 0
    assert client.get(url, {"state": "revoked"}).context["tokens"].__len__() == 0


def test_revoke_own_token_and_administrator_revokes(signed_in, owner, admin_user, api_person):
    token, _ = make_token(api_person)
    other = make_user(owner, grants={"users": "read"})
    url = reverse("tokens:token_revoke", args=[token.pk])
    assert signed_in(other).post(url).status_code == 404
    client = signed_in(api_person)
    assert client.get(url).status_code == 200
    response = client.post(url, {"next": "https://evil.example/"})
    assert response.status_code == 302
    assert response["Location"] == reverse("tokens:my_tokens")
    token.refresh_from_db()
    assert token.revoked_by == api_person
    second, _ = make_token(api_person)
    client = signed_in(admin_user)
    response = client.post(reverse("tokens:token_revoke", args=[second.pk]))
    assert response.status_code == 302
    second.refresh_from_db()
    assert second.revoked_by == admin_user
    assert AuditEvent.objects.filter(action="token_revoked").count() == 2
    assert client.post(reverse("tokens:token_revoke", args=[second.pk])).status_code == 400
