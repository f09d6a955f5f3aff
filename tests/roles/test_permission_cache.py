"""The permission cache: no query on a hit, at most two on a miss, never stale."""

import pytest
from django.core.cache import cache

from accounts.models import User
from roles import permissions
from tests.builders import make_role, make_role_group, make_user


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()
    permissions.local_entries.clear()


def load(user_id):
    return User.objects.select_related("owner").get(pk=user_id)


@pytest.mark.django_db
@pytest.mark.parametrize("group_count", [1, 10, 50])
def test_query_counts(owner, group_count, django_assert_num_queries):
    groups = [
        make_role_group(owner, grants={"invoices": "read", "payments": "full"})
        for _ in range(group_count)
    ]
    user = make_user(owner, role=make_role(owner, groups=groups[: group_count // 2 + 1]))
    user.extra_role_groups.set(groups[group_count // 2 + 1 :])
    user = load(user.pk)
    with django_assert_num_queries(2):
        result = permissions.for_user(user)
    assert result.level("payments") == "full"
    with django_assert_num_queries(0):
        assert permissions.for_user(user).level("payments") == "full"


@pytest.mark.django_db
def test_a_version_bump_is_seen_at_once(owner):
    group = make_role_group(owner, grants={"invoices": "read"})
    user = make_user(owner, role=make_role(owner, groups=[group]))
    assert permissions.for_user(load(user.pk)).level("invoices") == "read"
    group.grants.update(level="full")
    assert permissions.for_user(load(user.pk)).level("invoices") == "read"  # no bump: cached
    # Without a bump the cached entry would still say "read": every service bumps the epoch.
    type(owner).objects.filter(pk=owner.pk).update(authz_epoch=owner.authz_epoch + 1)
    assert permissions.for_user(load(user.pk)).level("invoices") == "full"


@pytest.mark.django_db
def test_extra_groups_count(owner):
    user = make_user(owner)
    user.extra_role_groups.add(make_role_group(owner, grants={"tickets": "full"}))
    result = permissions.compute(load(user.pk), "application")
    assert result.level("tickets") == "full"
    assert "extra group" in result.explain("tickets").because[0].text


@pytest.mark.django_db
def test_the_shared_cache_serves_another_process(owner):
    """An entry written by one process is read by another (simulated by clearing the LRU)."""
    user = make_user(owner, grants={"invoices": "full"})
    permissions.for_user(load(user.pk))
    permissions.local_entries.clear()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        assert permissions.for_user(load(user.pk)).level("invoices") == "full"
    assert len(queries) == 1  # the user row only: the permissions came from the shared cache


@pytest.mark.django_db
def test_cached_entries_hold_levels_only(owner):
    user = make_user(owner, grants={"invoices": "full"})
    entry = permissions.for_user(load(user.pk))
    assert entry.because == {}
    assert permissions.explained(load(user.pk)).because["invoices"]


@pytest.mark.django_db
def test_explain_area_equals_the_full_explanation_for_every_area(
    owner, django_assert_max_num_queries
):
    from roles import catalog

    finance = make_role_group(owner, grants={"invoices": "full", "payments": "read"})
    support = make_role_group(
        owner, grants={"invoices": "read", "tickets": "full", "users": "read"}
    )
    api = make_role_group(owner, grants={"api_invoices": "write", "api_users": "read"}, kind="api")
    user = make_user(
        owner, role=make_role(owner, groups=[finance, api]), allow_api_read=True, privilege_level=2
    )
    user.extra_role_groups.set([support])
    from tests.builders import make_override

    make_override(user, "tickets", "none", reason="investigation")
    make_override(user, "dp_data_protection_access", "full", reason="cover")
    user = User.objects.select_related("owner", "role").get(pk=user.pk)
    full = {ch: permissions.explained(user, ch) for ch in catalog.Channel.ALL}
    for area in catalog.AREAS:
        expected = full[area.channel].explain(area.code)
        with django_assert_max_num_queries(2):
            got = permissions.explain_area(user, area.code)
        assert (got.level, got.because) == (expected.level, expected.because), area.code
