"""Make the audit table append-only in the database itself.

UPDATE and DELETE on audit_auditevent are refused by triggers, whatever code (or person at a SQL
prompt) issues them. The one exception is the retention purge (`manage.py audit_purge`), which
sets a transaction-local permit that the delete trigger honours:

- PostgreSQL: `SET LOCAL audit.allow_purge = 'on'`, read with `current_setting(…, true)`;
- SQLite (development): a one-row table `audit_purge_permit` whose flag the purge raises and
  lowers inside its transaction.

The chain heads (audit_auditchainhead) stay updatable: they move with every appended event.
"""

from django.db import migrations

POSTGRESQL_INSTALL = [
    """
    CREATE OR REPLACE FUNCTION audit_event_refuse_change() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'DELETE' AND current_setting('audit.allow_purge', true) = 'on' THEN
            RETURN OLD;
        END IF;
        RAISE EXCEPTION USING
            MESSAGE = 'audit events are append-only: ' || TG_OP || ' refused',
            ERRCODE = 'insufficient_privilege',
            HINT = 'Only the retention purge (manage.py audit_purge) may delete events.';
    END;
    $$;
    """,
    """
    CREATE TRIGGER audit_event_append_only
    BEFORE UPDATE OR DELETE ON audit_auditevent
    FOR EACH ROW EXECUTE FUNCTION audit_event_refuse_change();
    """,
]
POSTGRESQL_REMOVE = [
    "DROP TRIGGER IF EXISTS audit_event_append_only ON audit_auditevent;",
    "DROP FUNCTION IF EXISTS audit_event_refuse_change();",
]

SQLITE_INSTALL = [
    """
    CREATE TABLE IF NOT EXISTS audit_purge_permit (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        allowed INTEGER NOT NULL DEFAULT 0
    );
    """,
    "INSERT OR IGNORE INTO audit_purge_permit (id, allowed) VALUES (1, 0);",
    """
    CREATE TRIGGER IF NOT EXISTS audit_event_refuse_update
    BEFORE UPDATE ON audit_auditevent
    BEGIN
        SELECT RAISE(ABORT, 'audit events are append-only: UPDATE refused');
    END;
    """,
    """
    CREATE TRIGGER IF NOT EXISTS audit_event_refuse_delete
    BEFORE DELETE ON audit_auditevent
    WHEN coalesce((SELECT allowed FROM audit_purge_permit WHERE id = 1), 0) <> 1
    BEGIN
        SELECT RAISE(ABORT, 'audit events are append-only: DELETE refused outside a purge');
    END;
    """,
]
SQLITE_REMOVE = [
    "DROP TRIGGER IF EXISTS audit_event_refuse_update;",
    "DROP TRIGGER IF EXISTS audit_event_refuse_delete;",
    "DROP TABLE IF EXISTS audit_purge_permit;",
]

STATEMENTS = {
    "postgresql": (POSTGRESQL_INSTALL, POSTGRESQL_REMOVE),
    "sqlite": (SQLITE_INSTALL, SQLITE_REMOVE),
}


def _run(schema_editor, index):
    statements = STATEMENTS.get(schema_editor.connection.vendor)
    if statements is None:
        # Other databases are not supported by the portal; hash-chaining still detects tampering.
        return
    for sql in statements[index]:
        schema_editor.execute(sql)


def install(apps, schema_editor):
    _run(schema_editor, 0)


def remove(apps, schema_editor):
    _run(schema_editor, 1)


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0002_failed_category_and_ip_keyset_index"),
    ]

    operations = [
        migrations.RunPython(install, remove, elidable=False),
    ]
