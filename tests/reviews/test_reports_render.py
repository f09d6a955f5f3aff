"""Every governance report and every dashboard tile renders with data in it.

A report that only ever rendered empty hid a broken link (a URL name that had moved) behind a
server error the first time an API token existed; these pages are drawn with a row of each kind.
"""

import datetime
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.builders import make_api_user, make_override, make_role_group, make_token, make_user

pytestmark = pytest.mark.django_db

REPORTS = [
    "reviews:report_dormant",
    "reviews:report_without_2fa",
    "reviews:report_tokens",
    "reviews:report_overrides",
    "reviews:report_unused_groups",
    "reviews:report_privileged",
]


@pytest.fixture
def data(owner, admin_user):
    """One row for every report: a dormant user, a privileged one without 2FA, an override,
    an unused role group, and an API token that expires soon and was never used."""
    dormant = make_user(owner, username="dora", grants={"invoices": "full"}, privilege_level=9)
    dormant.last_sign_in_at = timezone.now() - datetime.timedelta(days=400)
    dormant.save(update_fields=["last_sign_in_at"])
    make_override(dormant, "payments", "full", reason="Cover", expires_at=None)
    make_role_group(owner, "Nobody uses this")
    integration = make_api_user(owner, api_grants={"api_users": "read"}, username="crm")
    make_token(integration, actor=admin_user, days=3)
    return dormant


@pytest.mark.parametrize("name", REPORTS)
def test_each_report_renders_its_rows(signed_in, admin_user, data, name):
    response = signed_in(admin_user).get(reverse(name))
    assert response.status_code == 200, name
    assert "<table" in response.content.decode()


def test_every_dashboard_tile_and_link_opens(signed_in, admin_user, data, client):
    page = signed_in(admin_user).get(reverse("reviews:dashboard"))
    assert page.status_code == 200
    links = set(re.findall(r'href="(/reviews/[^"#?]*)', page.content.decode()))
    assert len(links) >= len(REPORTS)
    for link in sorted(links):
        assert client.get(link).status_code == 200, link


def test_the_tokens_report_links_to_the_users_tokens(signed_in, admin_user, data):
    html = signed_in(admin_user).get(reverse("reviews:report_tokens")).content.decode()
    assert "crm" in html
    assert re.search(r'href="/users/\d+/tokens/"', html)
