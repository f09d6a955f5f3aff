"""The owner's longest just-in-time elevation on the policy screen: who may change it, its
bounds, its audit event with the reason, and the request form that follows it."""

import pytest
from django.core.exceptions import ValidationError
from django.http import Http404
from django.urls import reverse

from accounts.models import Owner
from audit.choices import AuditAction
from audit.models import AuditEvent
from roles import elevations
from tests.builders import make_owner, make_role, make_role_group, make_user

from .conftest import give_proof

pytestmark = pytest.mark.django_db

URL = reverse("security:policy")


def limit_data(hours, reason="Month-end runs take a working day"):
    return {"form": "elevations", "jit-max_elevation_hours": hours, "jit-reason": reason}


@pytest.fixture
def changer(owner):
    return make_user(owner, username="changer", grants={"parameters": "full"})


@pytest.fixture
def clerk(owner):
    payments = make_role_group(owner, "Payment releasers", {"payments": "full"})
    role = make_role(owner, "Clerk")
    role.eligible_role_groups.add(payments)
    return make_user(owner, username="clara", role=role)


def events():
    return AuditEvent.objects.filter(action=AuditAction.OWNER_CHANGED)


def test_the_screen_shows_the_current_limit_and_a_reader_cannot_change_it(signed_in, owner):
    reader = make_user(owner, username="reader", grants={"parameters": "read"})
    client = signed_in(reader)
    page = client.get(URL).content.decode()
    assert "Just-in-time access" in page and 'value="8"' in page
    assert "Save elevation limit" not in page
    assert client.post(URL, limit_data(12)).status_code == 403
    owner.refresh_from_db()
    assert owner.max_elevation_hours == 8 and not events().exists()


def test_changing_the_limit_needs_a_recent_proof(signed_in, changer, owner):
    client = signed_in(changer)
    response = client.post(URL, limit_data(12))
    assert response.status_code == 302
    assert response.headers["Location"].startswith(reverse("security:reauthenticate"))
    owner.refresh_from_db()
    assert owner.max_elevation_hours == 8


@pytest.mark.parametrize(
    ("hours", "message"),
    [
        (0, "from 1 to 72"),
        (73, "from 1 to 72"),
        (-4, "from 1 to 72"),
        ("two", "from 1 to 72"),
        ("", "Enter the longest an elevation may last"),
    ],
)
def test_bad_input_is_refused_next_to_the_field_and_saves_nothing(
    signed_in, changer, owner, hours, message
):
    client = give_proof(signed_in(changer))
    response = client.post(URL, limit_data(hours))
    assert response.status_code == 400
    assert message in " ".join(response.context["elevation_form"].errors["max_elevation_hours"])
    owner.refresh_from_db()
    assert owner.max_elevation_hours == 8 and not events().exists()


def test_a_change_without_a_reason_is_refused(signed_in, changer, owner):
    client = give_proof(signed_in(changer))
    response = client.post(URL, limit_data(12, reason="  "))
    assert response.status_code == 400
    assert "Say why" in " ".join(response.context["elevation_form"].errors["reason"])
    owner.refresh_from_db()
    assert owner.max_elevation_hours == 8 and not events().exists()


def test_the_change_is_saved_and_audited_with_its_reason(signed_in, changer, owner):
    client = give_proof(signed_in(changer))
    response = client.post(URL, limit_data(12))
    assert response.status_code == 302
    owner.refresh_from_db()
    assert owner.max_elevation_hours == 12
    event = events().get()
    assert event.actor_id == changer.pk and event.owner_id == owner.pk
    assert event.changes == {"max_elevation_hours": [8, 12]}
    assert event.reason == "Month-end runs take a working day"
    # Saving the same value again changes nothing and writes nothing.
    assert client.post(URL, limit_data(12, reason="")).status_code == 302
    assert events().count() == 1


def test_the_password_policy_form_still_saves_on_its_own(signed_in, changer, owner):
    client = give_proof(signed_in(changer))
    response = client.post(URL, limit_data(12))
    assert response.status_code == 302
    page = client.get(URL).content.decode()
    assert 'name="jit-max_elevation_hours"' in page and 'value="12"' in page
    assert "Save policy" in page


def test_the_request_form_follows_the_limit(signed_in, changer, clerk, owner):
    client = signed_in(clerk)
    page = client.get("/me/access-requests/new/").content.decode()
    assert "at most 8 hours" in page and "1 to 8;" in page
    elevations.set_max_hours(owner, 3, actor=changer, reason="Shorter windows after the audit")
    page = client.get("/me/access-requests/new/").content.decode()
    assert "at most 3 hours" in page and "1 to 3;" in page
    group = elevations.eligible_groups(clerk)[0]
    response = client.post(
        "/me/access-requests/new/",
        {
            "action": "request",
            "role_group": group.pk,
            "start": "now",
            "hours": 4,
            "justification": "Month-end payment run",
        },
    )
    assert response.status_code == 400
    assert "hours" in response.context["form"].errors
    assert not clerk.access_requests.exists()


def test_the_service_refuses_another_owner_and_out_of_bounds(changer, owner):
    other = make_owner("Other Ltd")
    with pytest.raises(Http404):
        elevations.set_max_hours(other, 4, actor=changer, reason="Not mine")
    for hours in (0, 73, True, 2.5):
        with pytest.raises(ValidationError):
            elevations.set_max_hours(owner, hours, actor=changer, reason="Bounds")
    assert Owner.objects.get(pk=other.pk).max_elevation_hours == 8
