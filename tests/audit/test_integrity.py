"""The audit log's defences: append-only triggers, hash-chain verification, retention purge."""

import datetime
import importlib
import sqlite3
import threading
from unittest import mock

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

import audit
from audit import hashing, integrity, services
from audit.choices import AuditAction
from audit.models import AuditChainHead, AuditEvent
from tests.builders import make_owner, make_user

triggers_migration = importlib.import_module("audit.migrations.0003_append_only_triggers")

pytestmark = pytest.mark.django_db


def write_events(owner, count, *, at=None):
    user = make_user(owner)
    events = []
    for n in range(count):
        with mock.patch("django.utils.timezone.now", return_value=at or timezone.now()):
            events.append(
                audit.record(
                    AuditAction.USER_CHANGED,
                    actor=user,
                    target=user,
                    changes={"email": [f"old{n}@example.test", f"new{n}@example.test"]},
                )
            )
    return events


def behind_the_triggers_back(sql, params=()):
    """Run SQL with the append-only trigger disabled (inside the test's transaction)."""
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_event_append_only")
        cursor.execute(sql, params)
        cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER audit_event_append_only")


# Append-only in the database.


def test_the_database_refuses_to_update_an_event(owner):
    event = write_events(owner, 1)[0]
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(reason="rewritten")
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("UPDATE audit_auditevent SET details = 'x' WHERE id = %s", [event.pk])
    assert AuditEvent.objects.get(pk=event.pk).reason == ""


def test_the_database_refuses_to_delete_an_event(owner):
    event = write_events(owner, 1)[0]
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("DELETE FROM audit_auditevent")
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_the_chain_head_stays_updatable(owner):
    write_events(owner, 1)
    assert AuditChainHead.objects.filter(chain=owner.pk).update(seq=1) == 1


def test_a_purge_permit_lets_deletes_through_only_inside_its_block(owner):
    event = write_events(owner, 2)[0]
    with transaction.atomic():
        with integrity.purge_permit():
            AuditEvent.objects.filter(pk=event.pk).delete()
        with pytest.raises(DatabaseError), transaction.atomic():
            AuditEvent.objects.all().delete()
    # Outside a transaction there is no permit to give.
    with (
        mock.patch.object(connection, "in_atomic_block", False),
        pytest.raises(RuntimeError),
        integrity.purge_permit(),
    ):
        pass


def test_the_triggers_are_reported_installed():
    assert integrity.triggers_installed()


def test_the_sqlite_triggers_refuse_update_and_delete_outside_a_purge():
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE audit_auditevent (id INTEGER PRIMARY KEY, details TEXT)")
    db.execute("CREATE TABLE audit_auditchainhead (chain INTEGER PRIMARY KEY, seq INTEGER)")
    for sql in triggers_migration.SQLITE_INSTALL:
        db.execute(sql)
    db.execute("INSERT INTO audit_auditevent (id, details) VALUES (1, 'a'), (2, 'b')")
    db.execute("INSERT INTO audit_auditchainhead VALUES (1, 2)")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("UPDATE audit_auditevent SET details = 'x'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("DELETE FROM audit_auditevent WHERE id = 1")
    db.execute("UPDATE audit_auditchainhead SET seq = 3")  # the head still moves
    db.execute("UPDATE audit_purge_permit SET allowed = 1")
    db.execute("DELETE FROM audit_auditevent WHERE id = 1")
    db.execute("UPDATE audit_purge_permit SET allowed = 0")
    with pytest.raises(sqlite3.IntegrityError):
        db.execute("DELETE FROM audit_auditevent WHERE id = 2")
    assert [row[0] for row in db.execute("SELECT id FROM audit_auditevent")] == [2]
    for sql in triggers_migration.SQLITE_REMOVE:
        db.execute(sql)
    db.execute("DELETE FROM audit_auditevent")


# Verification.


def test_verify_passes_on_an_intact_log(owner):
    write_events(owner, 5)
    write_events(make_owner(), 3)
    report = integrity.verify(chunk_size=2)
    assert report.ok, report.breaks
    assert (report.events, report.chains) == (8, 2)


def test_verify_catches_an_edited_row(owner):
    events = write_events(owner, 5)
    behind_the_triggers_back(
        "UPDATE audit_auditevent SET reason = 'nothing to see' WHERE id = %s", [events[2].pk]
    )
    report = integrity.verify()
    assert not report.ok
    assert len(report.breaks) == 1
    assert report.breaks[0].seq == 3
    assert "content changed" in report.breaks[0].problem


def test_verify_catches_an_edited_row_even_with_a_recomputed_hash(owner):
    events = write_events(owner, 3)
    forged = AuditEvent.objects.get(pk=events[1].pk)
    forged.reason = "forged"
    behind_the_triggers_back(
        "UPDATE audit_auditevent SET reason = 'forged', hash = %s WHERE id = %s",
        [hashing.content_hash(forged), forged.pk],
    )
    report = integrity.verify()
    assert [b.seq for b in report.breaks] == [3]
    assert "link broken" in report.breaks[0].problem


def test_verify_catches_a_deleted_row(owner):
    events = write_events(owner, 5)
    behind_the_triggers_back("DELETE FROM audit_auditevent WHERE id = %s", [events[1].pk])
    report = integrity.verify()
    assert [(b.seq, b.event_id) for b in report.breaks] == [(3, events[2].pk)]
    assert "missing" in report.breaks[0].problem


def test_verify_catches_deleted_newest_and_oldest_rows(owner):
    events = write_events(owner, 4)
    behind_the_triggers_back("DELETE FROM audit_auditevent WHERE id = %s", [events[-1].pk])
    assert "newest events are missing" in integrity.verify().breaks[0].problem
    behind_the_triggers_back("DELETE FROM audit_auditevent WHERE id = %s", [events[0].pk])
    problems = [b.problem for b in integrity.verify().breaks]
    assert any("before seq 2 are missing" in p for p in problems)


def test_audit_verify_command_exits_non_zero_on_a_break(owner, capsys):
    events = write_events(owner, 3)
    call_command("audit_verify")
    assert "Every chain is intact" in capsys.readouterr().out
    behind_the_triggers_back("DELETE FROM audit_auditevent WHERE id = %s", [events[1].pk])
    with pytest.raises(CommandError) as failure:
        call_command("audit_verify")
    assert failure.value.returncode == 1
    assert f"chain {owner.pk}, seq 3" in capsys.readouterr().err


def test_audit_verify_reports_a_disabled_trigger(owner, capsys):
    write_events(owner, 1)
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_event_append_only")
    with pytest.raises(CommandError):
        call_command("audit_verify")
    assert "triggers are missing or disabled" in capsys.readouterr().err


def test_hashes_survive_the_database_round_trip_of_awkward_values(owner):
    from audit.context import RequestFacts, reset, set_current

    token = set_current(RequestFacts("req-12345678", "2001:0DB8:0000::0001", "UA\x00 agent"))
    try:
        event = audit.record(
            AuditAction.SIGN_IN_FAILED,
            actor_label="mal\x00lory",
            owner=owner,
            reason="Wrong password",
            context={"login": "mal\x00lory", "n": 1.5, "list": [1, "é"]},
        )
    finally:
        reset(token)
    stored = AuditEvent.objects.get(pk=event.pk)
    assert stored.ip == "2001:db8::1"
    assert stored.actor_label == "mallory"
    assert integrity.verify().ok


def test_an_invalid_forwarded_address_is_not_stored(owner):
    from audit.context import RequestFacts, reset, set_current

    token = set_current(RequestFacts("req-12345678", "not-an-ip", ""))
    try:
        event = audit.record(AuditAction.SIGN_IN_FAILED, owner=owner, actor_label="x")
    finally:
        reset(token)
    assert AuditEvent.objects.get(pk=event.pk).ip is None


def test_segments_are_stitched_by_their_boundary_links(owner):
    events = write_events(owner, 7)
    assert integrity.verify(segment_size=2).ok
    # Removing the first event of a segment leaves a gap at the boundary.
    behind_the_triggers_back("DELETE FROM audit_auditevent WHERE id = %s", [events[2].pk])
    report = integrity.verify(segment_size=2)
    assert [(b.seq, b.event_id) for b in report.breaks] == [(4, events[3].pk)]
    assert report.breaks == integrity.verify(segment_size=1000).breaks


def test_a_forged_link_at_a_segment_boundary_is_caught(owner):
    events = write_events(owner, 4)
    forged = AuditEvent.objects.get(pk=events[2].pk)
    forged.prev_hash = "f" * 64
    behind_the_triggers_back(
        "UPDATE audit_auditevent SET prev_hash = %s, hash = %s WHERE id = %s",
        [forged.prev_hash, hashing.content_hash(forged), forged.pk],
    )
    for size in (2, 1000):
        report = integrity.verify(segment_size=size)
        assert [b.seq for b in report.breaks] == [3], size
        assert "link broken" in report.breaks[0].problem


@pytest.mark.django_db(transaction=True)
def test_parallel_workers_prove_what_one_walk_proves():
    owner = make_owner()
    other = make_owner()
    events = write_events(owner, 9)
    write_events(other, 4)
    report = integrity.verify(workers=2, segment_size=3)
    assert report.ok, report.breaks
    assert (report.events, report.chains) == (13, 2)
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_event_append_only")
        try:
            cursor.execute("DELETE FROM audit_auditevent WHERE id = %s", [events[5].pk])
            cursor.execute("UPDATE audit_auditevent SET reason = 'x' WHERE id = %s", [events[1].pk])
        finally:
            cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER audit_event_append_only")
    parallel = integrity.verify(workers=2, segment_size=3)
    assert [(b.chain, b.seq) for b in parallel.breaks] == [(owner.pk, 2)]
    assert parallel.breaks == integrity.verify().breaks
    with pytest.raises(CommandError):
        call_command("audit_verify", workers=2, segment_size=3, verbosity=0)


# Retention purge.


def test_purge_deletes_only_what_is_past_retention_and_records_itself(owner):
    owner.audit_retention_days = 90
    owner.save()
    now = timezone.now()
    old = write_events(owner, 3, at=now - datetime.timedelta(days=100))
    recent = write_events(owner, 2, at=now - datetime.timedelta(days=10))
    other = make_owner()
    kept_elsewhere = write_events(other, 2, at=now - datetime.timedelta(days=100))

    results = services.purge_expired(now=now)

    assert [(r.chain, r.deleted, r.first_kept_seq) for r in results] == [(owner.pk, 3, 4)]
    assert not AuditEvent.objects.filter(pk__in=[e.pk for e in old]).exists()
    assert AuditEvent.objects.filter(pk__in=[e.pk for e in recent + kept_elsewhere]).count() == 4
    purge = AuditEvent.objects.get(action=AuditAction.AUDIT_PURGED)
    assert purge.owner_id == owner.pk
    assert purge.context["deleted"] == 3
    assert purge.context["first_kept_prev_hash"] == old[-1].hash
    report = integrity.verify()
    assert report.ok, report.breaks


def test_purging_twice_and_everything_keeps_verification_green(owner):
    owner.audit_retention_days = 90
    owner.save()
    now = timezone.now()
    write_events(owner, 3, at=now - datetime.timedelta(days=200))
    write_events(owner, 2, at=now - datetime.timedelta(days=50))
    with mock.patch("django.utils.timezone.now", return_value=now - datetime.timedelta(days=60)):
        services.purge_expired()
    assert integrity.verify().ok
    # Later, everything (the earlier purge event included) is past retention.
    later = now + datetime.timedelta(days=365)
    with mock.patch("django.utils.timezone.now", return_value=later):
        results = services.purge_expired()
    assert results[0].deleted == 3  # two events and the first purge event
    assert list(AuditEvent.objects.values_list("action", flat=True)) == [AuditAction.AUDIT_PURGED]
    report = integrity.verify()
    assert report.ok, report.breaks
    assert services.purge_expired(now=later) == []  # nothing more to do, nothing recorded


def test_a_deleted_chain_start_without_a_purge_is_still_caught(owner):
    owner.audit_retention_days = 90
    owner.save()
    now = timezone.now()
    events = write_events(owner, 3, at=now - datetime.timedelta(days=100))
    write_events(owner, 2, at=now)
    services.purge_expired(now=now)
    behind_the_triggers_back(
        "DELETE FROM audit_auditevent WHERE seq = 4 AND chain = %s", [events[0].chain]
    )
    assert not integrity.verify().ok


def test_audit_purge_command(owner, capsys):
    owner.audit_retention_days = 90
    owner.save()
    write_events(owner, 2, at=timezone.now() - datetime.timedelta(days=91))
    call_command("audit_purge")
    assert "deleted 2 events" in capsys.readouterr().out
    call_command("audit_purge")
    assert "Nothing is older" in capsys.readouterr().out


# Concurrency: writers never fork a chain.


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_keep_one_contiguous_chain():
    owner = make_owner()
    user = make_user(owner)
    threads, per_thread, errors = 6, 8, []
    barrier = threading.Barrier(threads)

    def writer():
        try:
            barrier.wait()
            for _ in range(per_thread):
                with transaction.atomic():
                    audit.record(AuditAction.USER_CHANGED, actor=user, target=user)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    workers = [threading.Thread(target=writer) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
    chain = AuditEvent.objects.filter(chain=owner.pk).order_by("seq")
    seqs = list(chain.values_list("seq", flat=True))
    assert seqs == list(range(1, threads * per_thread + 1))
    report = integrity.verify()
    assert report.ok, report.breaks
    assert AuditChainHead.objects.get(chain=owner.pk).seq == threads * per_thread
