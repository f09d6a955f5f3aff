import pytest
from accounts import services
from tests.builders import (
    PASSWORD,
    make_department,
    make_update_reason,
    make_user,
    make_role,
    make_role_group,
    make_commission_profile,
)

pytestmark = [pytest.mark.django_db(transaction=True)]


def test_tour(page, live_server, admin_user, owner, screenshot_dir):
    reason = make_update_reason(owner, "Correction")
    make_department(owner, "Finance")
    make_department(owner, "Sales")
    make_commission_profile(owner, "Standard")
    role = make_role(
        owner,
        "Finance clerk",
        groups=[make_role_group(owner, "Finance", grants={"invoices": "full", "payments": "read"})],
    )
    u = make_user(owner, username="fran", first_name="Fran", last_name="Finance", role=role)
    services.update_user(
        u,
        actor=admin_user,
        data={"first_name": "Frances", "privilege_level": 3},
        expected_row_version=1,
        reason="Correction",
        details="Typo in the first name",
    )
    services.send_access_email(u, actor=admin_user)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{live_server.url}/sign-in/")
    page.get_by_label("Username or email").fill("admin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/")
    for name, url in [
        ("tour-users", "/users/"),
        ("tour-edit", f"/users/{u.pk}/edit/"),
        ("tour-perms", f"/users/{u.pk}/permissions/"),
        ("tour-security", f"/users/{u.pk}/security/"),
        ("tour-activity", f"/users/{u.pk}/activity/"),
        ("tour-commission", f"/users/{u.pk}/commission/"),
        ("tour-deactivate", f"/users/{u.pk}/deactivate/"),
        ("tour-departments", "/settings/departments/"),
        ("tour-new", "/users/new/"),
    ]:
        page.goto(live_server.url + url)
        page.screenshot(path=str(screenshot_dir / f"{name}.png"), full_page=True)
    page.goto(f"{live_server.url}/users/{u.pk}/")
    page.get_by_text("Actions", exact=True).click()
    page.screenshot(path=str(screenshot_dir / "tour-actions.png"))
    # conflict
    page.goto(f"{live_server.url}/users/{u.pk}/edit/")
    services.update_user(
        u,
        actor=admin_user,
        data={"last_name": "Fernsby"},
        expected_row_version=2,
        reason="Correction",
    )
    page.locator("#id_display_name").fill("Frankie")
    page.locator("#id_update_reason").select_option(label="Correction")
    page.get_by_role("button", name="Save changes").click()
    page.screenshot(path=str(screenshot_dir / "tour-conflict.png"), full_page=False)
