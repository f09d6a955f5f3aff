"""The replay store: an assertion id is refused while it lives, forgotten once it expired."""

import datetime

import pytest
from django.utils import timezone

from sso.models import SamlAssertionId
from sso.responses import Assertion, SsoRefused
from sso.services import consume_assertion_id

pytestmark = pytest.mark.django_db


def assertion(assertion_id, expires_at):
    return Assertion(assertion_id, "00u1fran", {}, expires_at)


def test_an_assertion_id_is_accepted_once_until_it_expires(provider):
    now = timezone.now()
    first = assertion("id-1", now + datetime.timedelta(minutes=5))
    consume_assertion_id(provider, first, now=now)
    with pytest.raises(SsoRefused) as refused:
        consume_assertion_id(provider, first, now=now + datetime.timedelta(minutes=4))
    assert refused.value.reason == "replayed"


def test_expired_ids_are_purged_on_the_next_sign_in(provider):
    now = timezone.now()
    consume_assertion_id(provider, assertion("old", now + datetime.timedelta(minutes=5)), now=now)
    later = now + datetime.timedelta(hours=1)
    consume_assertion_id(
        provider, assertion("new", later + datetime.timedelta(minutes=5)), now=later
    )
    assert list(SamlAssertionId.objects.values_list("assertion_id", flat=True)) == ["new"]
