"""One trigram GIN index over all the searched text of a user (PostgreSQL only).

It replaces the five per-column indexes of 0004: one index scan answers a search word wherever
it appears (name, username or email), where five indexes needed a five-way bitmap OR that the
planner often priced above a full scan. The expression is the one `accounts.listing.SEARCH_TEXT`
filters on with `icontains` (`UPPER((…)::text) LIKE UPPER(…)`); keep the two identical.
"""

from django.db import migrations

OLD_COLUMNS = ("username", "email", "first_name", "last_name", "display_name")
SEARCH_EXPRESSION = (
    "username || ' ' || email || ' ' || first_name || ' ' || last_name || ' ' || display_name"
)


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for column in OLD_COLUMNS:
        schema_editor.execute(f"DROP INDEX IF EXISTS user_{column}_trgm")
    schema_editor.execute(
        "CREATE INDEX IF NOT EXISTS user_search_trgm ON accounts_user "
        f"USING gin ((UPPER(({SEARCH_EXPRESSION})::text)) gin_trgm_ops)"
    )


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("DROP INDEX IF EXISTS user_search_trgm")
    for column in OLD_COLUMNS:
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS user_{column}_trgm ON accounts_user "
            f"USING gin ((UPPER(({column})::text)) gin_trgm_ops)"
        )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0004_user_search_trigram_indexes"),
    ]

    operations = [
        migrations.RunPython(forwards, backwards, elidable=False),
    ]
