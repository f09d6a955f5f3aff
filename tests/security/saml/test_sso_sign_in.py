"""SSO sign-in with a real, signing IdP (pysaml2's Server): JIT, group mapping, refusals."""

import pytest

from accounts.models import User
from audit.models import AuditEvent
from security.saml_models import SamlGroupMapping, SsoIdentity
from tests.builders import make_role, make_role_group
from tests.security.saml.conftest import sign_in

pytestmark = pytest.mark.django_db

OKTA_FRAN = {
    "email": "fran@acme.test",
    "firstName": "Fran",
    "lastName": "Finance",
    "groups": ["billing-clerks", "Everyone"],
}


def last_event():
    return AuditEvent.objects.order_by("-id").first()


def test_jit_sign_in_creates_the_user_with_the_mapped_role(client, owner, idp, provider):
    clerk = make_role(owner, "Clerk", groups=[make_role_group(owner, grants={"users": "read"})])
    SamlGroupMapping.objects.create(provider=provider, idp_group="billing-clerks", role=clerk)

    response = sign_in(client, idp, provider, "00u1fran", OKTA_FRAN)

    assert response.status_code == 302, response.content.decode()[:2000]
    assert response.headers["Location"] == "/"
    user = User.objects.get(username="00u1fran")
    assert user.owner == owner
    assert user.auth_source == "saml"
    assert not user.has_usable_password()
    assert user.role == clerk
    assert (user.email, user.first_name, user.last_name) == ("fran@acme.test", "Fran", "Finance")
    assert SsoIdentity.objects.get(provider=provider, name_id="00u1fran").user == user
    assert int(client.session["_auth_user_id"]) == user.pk
    event = last_event()
    assert (event.action, event.method, event.actor_id) == ("sign_in", "saml", user.pk)
    assert AuditEvent.objects.filter(action="user_created", target_id=str(user.pk)).exists()
