"""Long values people typed: every screen that lists them keeps them to one line of their column
(cut with an ellipsis, whole in the title) or wraps them, so no table pushes a column off."""

import pytest
from django.template import Context, Template
from django.urls import reverse

import audit
from accounts.models import Department
from audit import context as request_context
from audit.choices import AuditAction
from tests.builders import (
    make_api_user,
    make_department,
    make_role,
    make_role_group,
    make_token,
    make_user,
)

pytestmark = pytest.mark.django_db

LONG = "Q" * 120  # the longest a settings entry or a role may be, with nowhere to break


def clipped(value: str) -> str:
    return f'<span class="truncate" title="{value}">{value}</span>'


def test_clip_keeps_a_value_to_one_line_with_the_whole_of_it_in_the_title():
    render = Template("{% load text %}{{ value|clip }}").render
    assert render(Context({"value": "Finance"})) == '<span class="truncate">Finance</span>'
    assert render(Context({"value": LONG})) == clipped(LONG)
    assert render(Context({"value": '<b>"x"</b>' * 5})) == (
        '<span class="truncate" title="{0}">{0}</span>'.format(
            "&lt;b&gt;&quot;x&quot;&lt;/b&gt;" * 5
        )
    )
    assert render(Context({"value": None})) == '<span class="truncate"></span>'


@pytest.fixture
def long_everything(owner, admin_user):
    """A department, role, role group, person, token and audit events as long as they may be."""
    department = make_department(owner, LONG)
    group = make_role_group(owner, "G" * 120, grants={"invoices": "read"})
    role = make_role(owner, "R" * 120, groups=[group])
    person = make_user(
        owner,
        username="u" * 150,
        first_name="F" * 150,
        last_name="L" * 150,
        email="e" * 64 + "@" + "x" * 180 + ".test",  # 250 characters, the longest allowed
        role=role,
    )
    person.departments.add(department)
    robot = make_api_user(owner, api_grants={"api_users": "read"}, username="robot")
    make_token(robot, actor=admin_user, name="T" * 120)
    token = request_context.set_current(
        request_context.RequestFacts(request_id="long", ip="203.0.113.9", user_agent="A" * 400)
    )
    try:
        audit.record(
            AuditAction.USER_CHANGED,
            actor=admin_user,
            target=person,
            changes={"display_name": ["a" * 200, "b" * 200]},
            reason="r" * 300,
            details="d" * 3000,
        )
        audit.record(
            AuditAction.TOKEN_REFUSED,
            actor=None,
            actor_label="l" * 150,
            owner=owner,
            reason="x" * 300,
        )
    finally:
        request_context.reset(token)
    return {"department": department, "group": group, "role": role, "person": person}


def test_lists_clip_long_names(signed_in, admin_user, long_everything):
    client = signed_in(admin_user)
    person = long_everything["person"]
    expected = {
        reverse("accounts:department_list"): [clipped(LONG)],
        reverse("accounts:user_list"): [
            clipped(person.label),
            clipped("u" * 150),
            clipped(person.email),
            clipped("R" * 120),
            clipped(LONG),  # the department
        ],
        reverse("roles:role_list"): [clipped("R" * 120), clipped("G" * 120)],
        reverse("roles:rolegroup_list"): [clipped("G" * 120)],
        reverse("tokens:token_list"): [clipped("T" * 120)],
        reverse("accounts:user_detail", args=[person.pk]): [clipped(LONG)],
    }
    for url, spans in expected.items():
        html = client.get(url).content.decode()
        for span in spans:
            assert span in html, (url, span[:60])


def test_activity_keeps_its_columns_whatever_the_values(signed_in, admin_user, long_everything):
    client = signed_in(admin_user)
    person = long_everything["person"]
    label = person.label[:300]  # as the event copied it
    for tab, name in (("changes", label), ("failed", "l" * 150), ("all", label)):
        html = client.get(reverse("audit:activity_tab", args=[tab])).content.decode()
        # A fixed layout: the columns' widths come from the header, never from a value.
        assert '<table class="activity">' in html
        assert '<th scope="col" class="col-time">Time</th>' in html
        assert clipped(name) in html, tab
    html = client.get(reverse("audit:activity_tab", args=["all"])).content.decode()
    assert '<th scope="col" class="col-ip">IP address</th>' in html
    assert "203.0.113.9" in html


def test_a_settings_entry_as_long_as_allowed_is_accepted_and_shown(signed_in, admin_user):
    client = signed_in(admin_user)
    response = client.post(reverse("accounts:department_create"), {"name": LONG})
    assert response.status_code == 302
    assert Department.objects.filter(name=LONG).exists()
    assert clipped(LONG) in client.get(reverse("accounts:department_list")).content.decode()
