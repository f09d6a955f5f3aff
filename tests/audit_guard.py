"""Every request that saves access data also writes an audit event (test-only middleware).

Access data is what decides who may sign in and what they may do: users, roles, role groups and
their grants, overrides, the password policy, identity providers and their group mappings, API
tokens and two-factor devices. During each request served in the test suite, saves, deletes and
membership changes of those models are counted next to the audit events written; a request
that changed access data without writing any event is a violation, and the test that made the
request fails (see the `_audit_guard` fixture in tests/conftest.py).

Counters that are not access data (sign-in attempt counters, session bookkeeping, "last used"
times, code throttles) are not watched.
"""

from __future__ import annotations

import functools
import threading

from django.apps import apps
from django.db.models.query import QuerySet
from django.db.models.signals import m2m_changed, post_delete, post_save

WATCHED = {
    "accounts.User",
    "accounts.Department",
    "accounts.UpdateReason",
    "accounts.CommissionProfile",
    "accounts.ApiToken",
    "accounts.TOTPDevice",
    "accounts.BackupCodeDevice",
    "django_otp_webauthn.WebAuthnCredential",
    "roles.Role",
    "roles.RoleGroup",
    "roles.Grant",
    "roles.PermissionOverride",
    "security.PasswordPolicy",
    "security.SignInRestriction",
    "security.SamlIdentityProvider",
    "security.SamlGroupMapping",
}
# Fields whose change alone is bookkeeping, not access data.
BOOKKEEPING_FIELDS = {
    "last_sign_in_at",
    "last_used_at",
    "last_t",
    "throttling_failure_count",
    "throttling_failure_timestamp",
    "last_throttled_at",
    "sign_count",  # a passkey's counter and backup state move at each use
    "backup_state",
    "updated_at",
}

_state = threading.local()
violations: list[str] = []


def _current():
    return getattr(_state, "request", None)


def _changed(sender, **kwargs):
    request = _current()
    if request is None:
        return
    label = sender._meta.label
    if label == "audit.AuditEvent":
        request["events"] += 1
        return
    if label not in WATCHED:
        return
    update_fields = kwargs.get("update_fields")
    if update_fields and set(update_fields) <= BOOKKEEPING_FIELDS:
        return
    instance = kwargs.get("instance")
    if getattr(instance, "confirmed", True) is False:
        return  # a pending two-factor secret grants nothing until confirmed (which is audited)
    request["changes"].append(label)


def _m2m_changed(sender, instance, action, **kwargs):
    label = type(instance)._meta.label
    if action.startswith("post_") and _current() is not None and label in WATCHED:
        _current()["changes"].append(f"{label} (membership)")


def _bulk_written(model, fields, how: str) -> None:
    """Note a write that sends no signal (QuerySet.update, bulk_create) on `model`."""
    request = _current()
    if request is None:
        return
    opts = model._meta
    if opts.label == "audit.AuditEvent":
        request["events"] += 1
        return
    if fields is not None:
        if set(fields) <= BOOKKEEPING_FIELDS:
            return
        how = f"{how} of {', '.join(sorted(fields))}"
    if opts.auto_created:  # the table behind a many-to-many field: a membership change
        if opts.auto_created._meta.label in WATCHED:
            request["changes"].append(f"{opts.auto_created._meta.label} (membership, {how})")
    elif opts.label in WATCHED:
        request["changes"].append(f"{opts.label} ({how})")


def _watch_queryset_writes() -> None:
    """Wrap QuerySet.update and bulk_create (once) so that the guard sees them."""
    if getattr(QuerySet.update, "audit_guard", False):
        return
    update, bulk_create = QuerySet.update, QuerySet.bulk_create

    def guarded_update(self, **kwargs):
        rows = update(self, **kwargs)
        if rows:
            _bulk_written(self.model, kwargs, "QuerySet.update")
        return rows

    def guarded_bulk_create(self, objs, *args, **kwargs):
        created = bulk_create(self, objs, *args, **kwargs)
        if created:
            _bulk_written(self.model, None, "bulk_create")
        return created

    for wrapper, original in ((guarded_update, update), (guarded_bulk_create, bulk_create)):
        functools.update_wrapper(wrapper, original)
        wrapper.audit_guard = True
    QuerySet.update, QuerySet.bulk_create = guarded_update, guarded_bulk_create


def connect() -> None:
    post_save.connect(_changed, dispatch_uid="audit_guard_save")
    post_delete.connect(_changed, dispatch_uid="audit_guard_delete")
    m2m_changed.connect(_m2m_changed, dispatch_uid="audit_guard_m2m")
    _watch_queryset_writes()
    apps.get_model("audit", "AuditEvent")  # fail early if the audit app is missing


class AuditGuardMiddleware:
    """Count access-data changes and audit events of one request; remember violations."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        _state.request = {"changes": [], "events": 0}
        try:
            response = self.get_response(request)
        finally:
            seen = _state.request
            _state.request = None
        if seen["changes"] and not seen["events"] and response.status_code < 400:
            violations.append(
                f"{request.method} {request.path} changed {sorted(set(seen['changes']))} "
                "without writing an audit event"
            )
        return response
