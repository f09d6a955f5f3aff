"""Trigram GIN indexes behind the users list search (PostgreSQL only).

The search filters with `icontains`, which PostgreSQL runs as `UPPER(col::text) LIKE UPPER(…)`;
these indexes cover exactly that expression, so a search never scans the table. SQLite (the
development default) has no trigram indexes, so the operation does nothing there.
"""

from django.db import migrations

SEARCHED_COLUMNS = ("username", "email", "first_name", "last_name", "display_name")


def _index_name(column):
    return f"user_{column}_trgm"


def create_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for column in SEARCHED_COLUMNS:
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {_index_name(column)} ON accounts_user "
            f"USING gin ((UPPER(({column})::text)) gin_trgm_ops)"
        )


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for column in SEARCHED_COLUMNS:
        schema_editor.execute(f"DROP INDEX IF EXISTS {_index_name(column)}")


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_user_list_indexes_password_set_token"),
    ]

    operations = [
        migrations.RunPython(create_indexes, drop_indexes, elidable=False),
    ]
