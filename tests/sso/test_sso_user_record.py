"""SSO-managed users on the user screens: IdP fields read-only, the rule held by the service."""

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from accounts import users
from accounts.choices import AccessSource
from accounts.models import User
from roles.services import InUse, delete_role
from tests.builders import make_role, make_update_reason

from .conftest import make_provider, sign_in


@pytest.fixture
def sso_fran(owner, idp, provider):
    sign_in(Client(), idp, provider, "00u1fran", {"email": "fran@acme.test", "firstName": "Fran"})
    return User.objects.get(username="00u1fran")


@pytest.mark.django_db
def test_edit_form_shows_idp_fields_read_only(signed_in, admin_user, sso_fran, owner):
    make_update_reason(owner)
    page = signed_in(admin_user).get(reverse("accounts:user_edit", args=[sso_fran.pk]))
    html = page.content.decode()
    assert page.status_code == 200
    assert "Set by the identity provider" in html
    assert 'name="email"' in html and "disabled" in html


@pytest.mark.django_db
def test_service_refuses_changing_an_idp_field(admin_user, sso_fran):
    with pytest.raises(ValidationError) as refused:
        users.update_user(
            sso_fran,
            source=AccessSource.SCREEN,
            actor=admin_user,
            data={"email": "someone.else@acme.test"},
            expected_row_version=sso_fran.row_version,
            reason="Correction",
        )
    assert "email" in refused.value.error_dict
    sso_fran.refresh_from_db()
    assert sso_fran.email == "fran@acme.test"


@pytest.mark.django_db
def test_deleting_a_providers_default_role_is_refused_cleanly(admin_user, owner, idp):
    role = make_role(owner, name="SSO default")
    make_provider(owner, idp, default_role=role, slug="second", name="Second IdP")
    with pytest.raises(InUse) as refused:
        delete_role(role, actor=admin_user, reason="No longer used")
    assert (
        "Second IdP" in str(refused.value.messages[0]) or "still used" in refused.value.messages[0]
    )
