"""The single sign-on models moved from the security app to sso: an install that had identity
providers keeps them, with their mappings, identities and the SCIM tokens that point at them."""

import datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from roles.models import RoleGroup
from scim.models import ScimToken
from sso.models import SamlGroupMapping, SamlIdentityProvider, SsoIdentity
from tests.builders import make_owner, make_user

BEFORE = [("security", "0004_passkey_policy"), ("scim", "0001_provisioning"), ("sso", None)]


def _in(days: int = 0) -> datetime.datetime:
    return timezone.now() + datetime.timedelta(days=days)


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state([node for node in targets if node[1]]).apps


@pytest.mark.django_db(transaction=True)
def test_rows_written_before_the_move_are_read_after_it():
    owner = make_owner("Moved Ltd")
    person = make_user(owner)
    group = RoleGroup.objects.create(owner=owner, name="Moved")
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    try:
        old = _migrate(BEFORE)
        provider = old.get_model("security", "SamlIdentityProvider").objects.create(
            owner_id=owner.pk,
            name="Okta",
            slug="okta",
            entity_id="https://idp",
            metadata_xml="<x/>",
        )
        mapping = old.get_model("security", "SamlGroupMapping").objects.create(
            provider=provider, idp_group="billing"
        )
        mapping.role_groups.add(group.pk)
        old.get_model("security", "SsoIdentity").objects.create(
            provider=provider, user_id=person.pk, name_id="moved@idp"
        )
        token = old.get_model("scim", "ScimToken").objects.create(
            owner_id=owner.pk,
            name="Okta",
            prefix="moved001",
            secret_hash="0" * 64,
            provider=provider,
            created_at=_in(),
            expires_at=_in(days=30),
        )
    finally:
        _migrate(latest)

    moved = SamlIdentityProvider.objects.get(pk=provider.pk)
    assert [g.name for g in SamlGroupMapping.objects.get(provider=moved).role_groups.all()] == [
        "Moved"
    ]
    assert SsoIdentity.objects.get(provider=moved).user_id == person.pk
    assert ScimToken.objects.get(pk=token.pk).provider == moved
    moved.delete()  # the foreign keys still cascade (and set null) as they did
    assert not SsoIdentity.objects.filter(user_id=person.pk).exists()
    assert ScimToken.objects.get(pk=token.pk).provider is None
