"""Untrusted input never gets past the parsers as anything but a clean refusal."""

import base64

import pytest
from django.core.exceptions import ValidationError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.models import AuditEvent
from sso.metadata import parse_idp_metadata
from sso.services import idp_managed_fields
from tests.builders import make_user
from tests.sso.conftest import sign_in

XMLISH = st.one_of(
    st.text(max_size=300),
    st.builds(
        lambda tag, body: f"<{tag}>{body}</{tag}>",
        st.sampled_from(["md:EntityDescriptor", "EntityDescriptor", "samlp:Response", "x"]),
        st.text(max_size=200),
    ),
)


@given(XMLISH)
@settings(max_examples=80, deadline=None)
def test_metadata_parser_only_ever_refuses_with_a_message(text):
    try:
        parse_idp_metadata(text)
    except ValidationError as exc:
        assert exc.messages
    else:  # pragma: no cover - random text is never valid IdP metadata
        raise AssertionError(f"accepted {text!r}")


@pytest.mark.django_db
@given(st.one_of(st.binary(max_size=400).map(lambda b: base64.b64encode(b).decode()), XMLISH))
@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_acs_refuses_garbage_with_the_generic_page(client, provider, payload):
    response = client.post("/saml2/acs/", {"SAMLResponse": payload})
    assert response.status_code == 403
    assert AuditEvent.objects.order_by("-id").first().action == "sso_refused"


@pytest.mark.django_db
def test_idp_managed_fields(client, owner, idp, provider):
    assert idp_managed_fields(make_user(owner)) == frozenset()
    sign_in(client, idp, provider, "00u1fran", {"email": "fran@acme.test", "firstName": "F"})
    from accounts.models import User

    fields = idp_managed_fields(User.objects.get(username="00u1fran"))
    assert {"email", "first_name", "last_name", "role", "extra_role_groups"} <= fields
