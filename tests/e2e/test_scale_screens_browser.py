"""Browser: the screens made for large owners read right: who has access pages by name with a
capped count and a way to count everyone, and the users list says its estimate past the cap."""

import pytest

from tests.builders import make_role, make_role_group, make_user
from tests.e2e.session import sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_who_has_access_pages_and_counts(page, live_server, screenshot_dir, owner, monkeypatch):
    from accounts import listing
    from roles import reports

    finance = make_role_group(owner, "Finance", {"invoices": "full"})
    role = make_role(owner, "Clerk", groups=[finance])
    for n in range(7):
        make_user(owner, username=f"clerk-{n}", first_name="Clerk", last_name=f"No {n}", role=role)
    admin = make_user(owner, is_superuser=True, privilege_level=10, last_name="Zed")
    monkeypatch.setattr(reports, "PAGE_SIZE", 3)
    monkeypatch.setattr(reports, "COUNT_CAP", 5)
    sign_in(page, live_server, admin)
    page.goto(f"{live_server.url}/access/who-has-access/?area=invoices&level=full")
    heading = page.locator("#result-heading")
    assert heading.inner_text() == "More than 5 users reach full on Invoices"
    assert page.locator("tbody tr").count() == 3
    page.screenshot(path=str(screenshot_dir / "scale-who-has-access.png"), full_page=True)
    page.get_by_role("link", name="Next").click()
    assert page.locator("tbody tr").first.inner_text().startswith("Clerk No 3")
    page.get_by_role("link", name="Previous").click()
    assert page.locator("tbody tr").first.inner_text().startswith("Clerk No 0")
    page.get_by_role("link", name="Count them all").click()
    assert heading.inner_text() == "8 users reach full on Invoices"

    monkeypatch.setattr(listing, "COUNT_CAP", 5)
    monkeypatch.setattr(listing, "estimated_count", lambda queryset: 98_765)
    page.goto(f"{live_server.url}/users/")
    assert "About 99,000 users." in page.locator(".page-header").inner_text()
    page.screenshot(path=str(screenshot_dir / "scale-users.png"), full_page=True)
