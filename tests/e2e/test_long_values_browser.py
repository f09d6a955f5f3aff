"""Browser: values as long as their fields allow never widen a page beyond the window, and the
security events table keeps its IP address column in view."""

import pytest
from django.conf import settings
from django.test import Client

import audit
from audit import context as request_context
from audit.choices import AuditAction
from tests.builders import make_department, make_user

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

LONG = "D" * 120


def sign_in(page, live_server, user):
    client = Client()
    client.force_login(user, backend="accounts.backends.PortalBackend")
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    page.context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": live_server.url}])


def page_width(page) -> tuple[int, int]:
    return page.evaluate("[document.scrollingElement.scrollWidth, window.innerWidth]")


def test_long_values_stay_inside_the_window(page, live_server, screenshot_dir, owner, admin_user):
    make_department(owner, LONG)
    person = make_user(owner, username="p" * 150, first_name="F" * 150, last_name="L" * 150)
    token = request_context.set_current(
        request_context.RequestFacts(request_id="long", ip="203.0.113.9", user_agent="A" * 400)
    )
    try:
        audit.record(
            AuditAction.LOCKOUT_CLEARED,
            actor=admin_user,
            target=person,
            reason="r" * 300,
            details="d" * 2000,
        )
    finally:
        request_context.reset(token)
    sign_in(page, live_server, admin_user)
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        for path, name in (
            ("/settings/departments/", "departments"),
            ("/activity/", "activity"),
            ("/activity/security/", "activity-security"),
            ("/activity/all/", "activity-all"),
            ("/users/", "users"),
        ):
            page.goto(f"{live_server.url}{path}")
            scroll_width, window_width = page_width(page)
            assert scroll_width <= window_width, (path, width, scroll_width)
            page.screenshot(path=str(screenshot_dir / f"long-{name}-{width}.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{live_server.url}/activity/security/")
    wrap = page.locator(".table-wrap").first.bounding_box()
    ip_header = page.get_by_role("columnheader", name="IP address").bounding_box()
    assert ip_header["x"] + ip_header["width"] <= wrap["x"] + wrap["width"] + 1
    assert page.get_by_role("cell", name="203.0.113.9").is_visible()
    cut = page.locator(".truncate", has_text="F" * 20).first
    assert cut.get_attribute("title") == person.label[:300]  # the whole value, on hover
