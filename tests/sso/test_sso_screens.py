"""SSO screens: identity providers and group mappings (Parameters read to see, full to change)."""

import re

import pytest
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile

from audit.models import AuditEvent
from sso.models import SamlGroupMapping, SamlIdentityProvider
from tests.access_helpers import assert_screen_access
from tests.builders import PASSWORD, make_owner, make_role, make_role_group, make_user
from tests.sso.conftest import make_provider

pytestmark = pytest.mark.django_db

LIST = "/saml2/providers/"
NEW = "/saml2/providers/new/"
EVIL_METADATA = (
    '<?xml version="1.0"?><!DOCTYPE m [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="&x;"/>'
)


def last_event():
    return AuditEvent.objects.order_by("-id").first()


def provider_form(metadata_xml="", **fields):
    data = {
        "name": "Acme Okta",
        "metadata_xml": metadata_xml,
        "preset": "okta",
        "jit_provisioning": "on",
        "enabled": "on",
    }
    data.update(fields)
    return {k: v for k, v in data.items() if v is not None}


@pytest.fixture
def reader(owner):
    return make_user(owner, username="reader", grants={"parameters": "read"})


class TestAccess:
    def test_anonymous_and_without_parameters_are_refused(self, signed_in, owner, idp):
        provider = make_provider(owner, idp)
        without = make_user(owner, grants={"users": "full"})
        urls = [LIST, NEW, f"/saml2/providers/{provider.pk}/"]
        assert_screen_access(signed_in, urls, denied=without)

    def test_read_sees_but_cannot_change(self, signed_in, owner, idp, reader):
        provider = make_provider(owner, idp)
        client = signed_in(reader)
        page = client.get(LIST)
        assert page.status_code == 200
        assert provider.name in page.content.decode()
        assert "Add identity provider" not in page.content.decode()
        detail = client.get(f"/saml2/providers/{provider.pk}/")
        assert detail.status_code == 200
        assert "Edit" not in detail.content.decode().split("<main", 1)[1].split("Settings")[0]
        assert client.get(NEW).status_code == 403
        assert client.post(NEW, provider_form(provider.metadata_xml)).status_code == 403
        assert client.get(f"/saml2/providers/{provider.pk}/edit/").status_code == 403

    def test_another_owners_provider_is_not_found(self, signed_in, admin_user, idp):
        theirs = make_provider(make_owner("Globex"), idp)
        client = signed_in(admin_user)
        for suffix in ("", "edit/", "delete/", "mappings/new/"):
            assert client.get(f"/saml2/providers/{theirs.pk}/{suffix}").status_code == 404
        assert client.post(f"/saml2/providers/{theirs.pk}/delete/").status_code == 404
        assert SamlIdentityProvider.objects.filter(pk=theirs.pk).exists()
        assert theirs.name not in client.get(LIST).content.decode()


class TestProviderChanges:
    def test_refuses_metadata_with_an_external_entity(self, signed_in, admin_user):
        client = signed_in(admin_user)
        response = client.post(NEW, provider_form(EVIL_METADATA))
        assert response.status_code == 400
        assert "declares a DTD or entities" in response.content.decode()
        assert not SamlIdentityProvider.objects.exists()

    def test_refuses_metadata_without_a_signing_certificate(self, signed_in, admin_user, idp):
        stripped = re.sub(r"<ns0:KeyDescriptor.*?</ns0:KeyDescriptor>", "", idp.metadata_xml)
        response = signed_in(admin_user).post(NEW, provider_form(stripped))
        assert response.status_code == 400
        assert "no signing certificate" in response.content.decode()
        assert not SamlIdentityProvider.objects.exists()

    def test_refuses_what_is_not_xml(self, signed_in, admin_user):
        response = signed_in(admin_user).post(NEW, provider_form("<nope"))
        assert response.status_code == 400
        assert "not well-formed XML" in response.content.decode()
        response = signed_in(admin_user).post(NEW, provider_form(""))
        assert response.status_code == 400

    def test_creates_from_an_uploaded_file_with_the_okta_preset(
        self, signed_in, admin_user, owner, idp
    ):
        client = signed_in(admin_user)
        upload = SimpleUploadedFile("okta.xml", idp.metadata_xml.encode(), "text/xml")
        response = client.post(NEW, {**provider_form(), "metadata_file": upload})
        assert response.status_code == 302, response.content.decode()[-3000:]
        provider = SamlIdentityProvider.objects.get()
        assert response.headers["Location"] == f"/saml2/providers/{provider.pk}/"
        assert (provider.owner, provider.entity_id) == (owner, idp.entity_id)
        assert (provider.email_attribute, provider.groups_attribute) == ("email", "groups")
        assert provider.jit_provisioning and not provider.allow_idp_initiated
        event = last_event()
        assert (event.action, event.actor_id) == ("sso_provider_changed", admin_user.pk)
        assert event.changes["entity_id"] == [None, idp.entity_id]
        detail = client.get(response.headers["Location"]).content.decode()
        assert "https://idp.example.test/metadata" in detail
        assert f"/saml2/login/?idp={provider.pk}" in detail

    def test_an_error_keeps_the_chosen_preset_and_file(self, signed_in, admin_user, idp):
        client = signed_in(admin_user)
        upload = SimpleUploadedFile("okta-<b>.xml", idp.metadata_xml.encode(), "text/xml")
        response = client.post(
            NEW, {**provider_form(name="", preset="entra"), "metadata_file": upload}
        )
        assert response.status_code == 400
        form = response.context["form"]
        assert "name" in form.errors
        assert form["preset"].value() == "entra"
        assert form["metadata_xml"].value() == idp.metadata_xml
        html = response.content.decode()
        assert '<option value="entra" selected>' in html
        assert "okta-&lt;b&gt;.xml is kept in the box below" in html
        # Saved again with the name, without choosing the file again.
        data = {k: v for k, v in form.data.items() if k != "csrfmiddlewaretoken"}
        assert client.post(NEW, {**data, "name": "Acme Entra"}).status_code == 302
        saved = SamlIdentityProvider.objects.get(name="Acme Entra")
        assert saved.preset == "entra" and saved.entity_id == idp.entity_id

    def test_creates_from_pasted_metadata_with_the_entra_preset(self, signed_in, admin_user, idp):
        client = signed_in(admin_user)
        response = client.post(NEW, provider_form(idp.metadata_xml, name="Entra", preset="entra"))
        assert response.status_code == 302
        provider = SamlIdentityProvider.objects.get()
        assert provider.groups_attribute == (
            "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups"
        )
        assert provider.email_attribute.endswith("/claims/emailaddress")

    def test_edit_disables_and_records_before_and_after(self, signed_in, admin_user, owner, idp):
        provider = make_provider(owner, idp, name="Acme Okta")
        client = signed_in(admin_user)
        form = provider_form(provider.metadata_xml, enabled=None, row_version=provider.row_version)
        response = client.post(f"/saml2/providers/{provider.pk}/edit/", form)
        assert response.status_code == 302
        provider.refresh_from_db()
        assert not provider.enabled
        assert last_event().changes == {"enabled": [True, False]}

    def test_edit_refuses_a_stale_form(self, signed_in, admin_user, owner, idp):
        provider = make_provider(owner, idp, name="Acme Okta")
        SamlIdentityProvider.objects.filter(pk=provider.pk).update(row_version=5)
        form = provider_form(provider.metadata_xml, enabled=None, row_version=1)
        response = signed_in(admin_user).post(f"/saml2/providers/{provider.pk}/edit/", form)
        assert response.status_code == 400
        assert "Someone else changed" in response.content.decode()
        provider.refresh_from_db()
        assert provider.enabled

    def test_default_role_above_the_actors_access_is_refused(self, signed_in, owner, idp):
        admin_of_sso = make_user(owner, grants={"parameters": "full"})
        mighty = make_role(
            owner, "Mighty", groups=[make_role_group(owner, grants={"users": "full"})]
        )
        response = signed_in(admin_of_sso).post(
            NEW, provider_form(idp.metadata_xml, default_role=mighty.pk)
        )
        assert response.status_code == 400
        assert (
            "You cannot grant the role group Group" in response.content.decode()
            and "which gives what you do not hold: Users (full; you hold none)."
            in response.content.decode()
        )
        assert not SamlIdentityProvider.objects.exists()

    def test_delete(self, signed_in, admin_user, owner, idp):
        provider = make_provider(owner, idp)
        client = signed_in(admin_user)
        assert client.get(f"/saml2/providers/{provider.pk}/delete/").status_code == 200
        response = client.post(f"/saml2/providers/{provider.pk}/delete/")
        assert response.status_code == 302
        assert not SamlIdentityProvider.objects.exists()
        assert last_event().details.startswith("Identity provider deleted")


class TestGroupMappings:
    def test_maps_a_group_to_a_role_and_groups(self, signed_in, admin_user, owner, idp):
        provider = make_provider(owner, idp)
        clerk = make_role(owner, "Clerk")
        readers = make_role_group(owner, "Readers", grants={"users": "read"})
        client = signed_in(admin_user)
        url = f"/saml2/providers/{provider.pk}/mappings/new/"
        assert client.get(url).status_code == 200
        response = client.post(
            url, {"idp_group": "billing-clerks", "role": clerk.pk, "role_groups": [readers.pk]}
        )
        assert response.status_code == 302
        mapping = SamlGroupMapping.objects.get()
        assert (mapping.role, list(mapping.role_groups.all())) == (clerk, [readers])
        assert last_event().changes == {
            "mapping billing-clerks": [
                None,
                {"idp_group": "billing-clerks", "role": "Clerk", "role_groups": ["Readers"]},
            ]
        }
        page = client.get(f"/saml2/providers/{provider.pk}/").content.decode()
        assert "billing-clerks" in page and "Readers" in page

    def test_refuses_groups_above_the_actors_access(self, signed_in, owner, idp):
        provider = make_provider(owner, idp)
        admin_of_sso = make_user(owner, grants={"parameters": "full"})
        mighty = make_role_group(owner, "Mighty", grants={"users": "full"})
        response = signed_in(admin_of_sso).post(
            f"/saml2/providers/{provider.pk}/mappings/new/",
            {"idp_group": "admins", "role_groups": [mighty.pk]},
        )
        assert response.status_code == 400
        assert (
            "You cannot grant the role group Mighty, which gives what you do not hold: "
            "Users (full; you hold none)." in response.content.decode()
        )
        assert not SamlGroupMapping.objects.exists()

    def test_refuses_another_owners_role_and_an_empty_mapping(self, signed_in, admin_user, idp):
        provider = make_provider(admin_user.owner, idp)
        theirs = make_role(make_owner("Globex"), "Theirs")
        client = signed_in(admin_user)
        url = f"/saml2/providers/{provider.pk}/mappings/new/"
        assert client.post(url, {"idp_group": "x", "role": theirs.pk}).status_code == 400
        response = client.post(url, {"idp_group": "x"})
        assert response.status_code == 400
        assert "Choose a role, role groups, or both." in response.content.decode()
        assert not SamlGroupMapping.objects.exists()

    def test_delete_a_mapping(self, signed_in, admin_user, owner, idp):
        provider = make_provider(owner, idp)
        mapping = SamlGroupMapping.objects.create(
            provider=provider, idp_group="g", role=make_role(owner)
        )
        client = signed_in(admin_user)
        url = f"/saml2/providers/{provider.pk}/mappings/{mapping.pk}/delete/"
        assert client.get(url).status_code == 200
        assert client.post(url).status_code == 302
        assert not SamlGroupMapping.objects.exists()
        assert "mapping g" in last_event().changes


class TestServiceProviderAndSignInPage:
    def test_sp_metadata_is_served_at_a_stable_url(self, client, db):
        response = client.get("/saml2/metadata/")
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/xml")
        body = response.content.decode()
        assert 'entityID="http://127.0.0.1:8000/saml2/metadata/"' in body
        assert 'Location="http://127.0.0.1:8000/saml2/acs/"' in body
        assert "X509Certificate" in body
        assert 'WantAssertionsSigned="true"' in body
        download = client.get("/saml2/metadata/?download=1")
        assert download["Content-Disposition"].startswith("attachment;")

    def test_sign_in_page_offers_enabled_providers(self, client, owner, idp):
        make_provider(owner, idp, name="Acme Okta")
        make_provider(owner, idp, name="Old Entra", slug="old", enabled=False)
        page = client.get("/sign-in/").content.decode()
        assert "Sign in with Acme Okta" in page
        assert "Old Entra" not in page


def test_detail_lists_the_people_linked(signed_in, admin_user, owner, idp):
    from sso.models import SsoIdentity

    provider = make_provider(owner, idp)
    fran = make_user(owner, username="fran", auth_source="saml")
    SsoIdentity.objects.create(provider=provider, user=fran, name_id="00u1fran")
    page = signed_in(admin_user).get(f"/saml2/providers/{provider.pk}/").content.decode()
    assert "00u1fran" in page and "1 in all." in page


def test_sso_users_cannot_be_given_a_local_password(owner):
    sso_user = make_user(owner, auth_source="saml")
    with pytest.raises(ValidationError, match="identity provider"):
        validate_password(PASSWORD + " new", sso_user)
    validate_password(PASSWORD + " new", make_user(owner))


class TestStartingSignIn:
    def test_an_idp_without_redirect_binding_gets_a_signed_post_form(self, client, owner, idp):
        post_only = re.sub(
            r"<ns0:SingleSignOnService Binding=\"urn:oasis:names:tc:SAML:2.0:bindings:"
            r"HTTP-Redirect\"[^>]*/>",
            "",
            idp.metadata_xml,
        )
        assert "HTTP-Redirect" not in post_only.split("SingleSignOnService", 1)[1][:120]
        provider = make_provider(owner, idp, metadata_xml=post_only)
        response = client.get(f"/saml2/login/?idp={provider.pk}&next=/me/access/")
        assert response.status_code == 200
        page = response.content.decode()
        assert 'action="https://idp.example.test/sso/post"' in page
        assert "form-action 'self' https://idp.example.test" in response["Content-Security-Policy"]
        saml_request = re.search(r'name="SAMLRequest" value="([^"]+)"', page).group(1)
        import base64

        xml = base64.b64decode(saml_request).decode()
        assert "rsa-sha256" in xml and "SignatureValue" in xml
        assert 'name="RelayState" value="/me/access/"' in page

    def test_sign_in_page_queries_do_not_grow_with_providers(
        self, client, owner, idp, django_assert_max_num_queries
    ):
        for n in range(5):
            make_provider(owner, idp, name=f"IdP {n}", slug=f"idp-{n}")
        with django_assert_max_num_queries(3):
            page = client.get("/sign-in/").content.decode()
        assert page.count("Sign in with IdP") == 5
