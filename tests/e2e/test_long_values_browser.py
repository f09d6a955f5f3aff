"""Browser: values as long as their fields allow never widen a page beyond the window, and the
security events table keeps its IP address column in view."""

import pytest

import audit
from audit import context as request_context
from audit.choices import AuditAction
from tests.builders import make_department, make_user
from tests.e2e.session import sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

LONG = "D" * 120


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
            (f"/activity/all/?person={'p' * 150}", "activity-person"),
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


def test_the_users_list_keeps_long_cells_inside(
    page, live_server, screenshot_dir, owner, admin_user
):
    """Long names, emails and departments: one line each, whole on hover; on a phone the table
    scrolls sideways inside its own frame while the page keeps the window's width."""
    departments = [make_department(owner, f"{n} " + "Department of long names " * 4) for n in "AB"]
    person = make_user(
        owner,
        username="p" * 150,
        first_name="F" * 150,
        last_name="L" * 150,
        email="e" * 64 + "@" + "x" * 180 + ".test",
    )
    person.departments.add(*departments)
    sign_in(page, live_server, admin_user)
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(f"{live_server.url}/users/")
        scroll_width, window_width = page_width(page)
        assert scroll_width <= window_width, (width, scroll_width)
        frame = page.evaluate(
            """() => { const wrap = document.querySelector('.table-wrap');
                const box = wrap.getBoundingClientRect();
                return {right: box.right, scroll: wrap.scrollWidth, client: wrap.clientWidth,
                        overflow: getComputedStyle(wrap).overflowX}; }"""
        )
        assert frame["right"] <= window_width and frame["overflow"] == "auto", frame
        # The whole value on hover.
        email = page.locator(f'.user-table__email .truncate[title="{person.email}"]')
        assert email.is_visible()
        box = email.bounding_box()
        assert box["height"] < 30, box  # one line, cut with an ellipsis
        page.screenshot(path=str(screenshot_dir / f"users-long-{width}.png"), full_page=True)
        if width == 390:
            assert frame["scroll"] > frame["client"], frame  # it scrolls inside its frame
            page.evaluate("document.querySelector('.table-wrap').scrollLeft = 10000")
            assert page.evaluate("document.querySelector('.table-wrap').scrollLeft") > 0
            assert page.evaluate("window.scrollX") == 0  # the page itself did not move
            page.screenshot(
                path=str(screenshot_dir / "users-long-390-scrolled.png"), full_page=True
            )
        else:
            assert frame["scroll"] <= frame["client"], frame  # every column in view at 1280
            # Only the long values are cut: not the headers, not an ordinary address.
            cut = page.evaluate(
                """sel => [...document.querySelectorAll(sel)]
                    .filter(e => e.scrollWidth > e.clientWidth).map(e => e.textContent.trim())""",
                ".user-table thead th, .user-table .truncate",
            )
            cut_headers = page.evaluate(
                """() => [...document.querySelectorAll('.user-table thead th')].filter(th => {
                    const text = document.createRange();
                    text.selectNodeContents(th);
                    const style = getComputedStyle(th);
                    const room = th.clientWidth - parseFloat(style.paddingLeft)
                        - parseFloat(style.paddingRight);
                    return text.getBoundingClientRect().width > room + 0.5;
                }).map(th => th.textContent.trim())"""
            )
            assert cut_headers == [], cut_headers
            assert "admin@example.test" not in cut, cut
            assert person.email in cut and "p" * 150 in cut  # the long ones are cut
            cells = page.locator(".user-table tbody td.col-optional .truncate")
            assert (
                cells.filter(has_text="A Department")
                .first.get_attribute("title")
                .startswith("A Department of long names")
            )
