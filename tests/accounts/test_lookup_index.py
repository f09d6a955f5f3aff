"""Looking a user up by login is served by the case-insensitive unique indexes."""

import pytest
from django.db import connection

from accounts.models import User
from tests.builders import make_user


@pytest.mark.django_db
def test_login_lookup_matches_any_case(owner):
    fran = make_user(owner, username="Fran.Finance", email="Fran@Example.test")
    assert User.objects.find_by_login("fran.finance") == fran
    assert User.objects.find_by_login("FRAN@EXAMPLE.TEST") == fran
    assert User.objects.find_by_login("fran") is None


@pytest.mark.django_db
def test_login_lookup_can_use_the_unique_indexes(owner):
    """The suite runs on PostgreSQL (make test); its plans prove the index serves the lookup."""
    make_user(owner, username="fran")
    for lookup in ({"username__ci": "FRAN"}, {"email__ci": "FRAN@EXAMPLE.TEST"}):
        sql, params = User.objects.filter(**lookup).values("pk").query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute("EXPLAIN " + sql, params)
            plan = "\n".join(row[0] for row in cursor.fetchall())
        assert "Index" in plan and "user_unique_" in plan, plan
