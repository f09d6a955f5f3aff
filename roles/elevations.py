"""Just-in-time access: eligibility, requests, approval by someone else, elevations in time.

A role lists *eligible* role groups beside the ones it grants, and an administrator can make a
single user eligible for a group. Eligible access never counts until a request for it is
approved: the approved request is an *elevation* that the resolver counts only while
`starts_at <= now < ends_at`, so it ends exactly on time with no job. Every step is an audit
event naming the request: requested, approved, denied, withdrawn, activated, ended, revoked,
expired, and emergency (break-glass) activation.

Proving who one is (step-up) before activating is the screens' part; these services take the
decision that follows.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.http import Http404
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

import audit
from audit.choices import AuditAction
from delivery import email as outbox
from delivery.choices import EmailKind
from portal.reasons import required_reason

from . import catalog, permissions, sod
from .choices import RequestState
from .guards import EscalationRefused, check_can_grant_groups, check_can_manage_user
from .impact import Proposal
from .models import AccessRequest, Eligibility, Role, RoleGroup
from .versions import bump_owner, bump_user

log = logging.getLogger(__name__)

EARLIEST_START_SLACK = datetime.timedelta(minutes=5)  # a start "now" typed a moment ago
LATEST_START = datetime.timedelta(days=30)
MAX_HOURS_CEILING = 72


def _check_owner(actor, *objects) -> None:
    for obj in objects:
        if obj is not None and not actor.is_superuser and obj.owner_id != actor.owner_id:
            raise Http404("Not found.")


def _label(request: AccessRequest) -> str:
    return f"Request #{request.pk}: {request.justification}"


def _context(request: AccessRequest, **more) -> dict:
    return {
        "request": request.pk,
        "role_group": request.role_group.name,
        "starts_at": request.starts_at.isoformat(),
        "ends_at": request.ends_at.isoformat(),
        **({"ticket": request.ticket} if request.ticket else {}),
        **more,
    }


# Eligibility ----------------------------------------------------------------------------------


def eligible_groups(user) -> list[RoleGroup]:
    """Return the role groups `user` may ask for: their role's eligible groups and their own
    eligibilities, less the groups they already hold standing, by name."""
    reach = Q(eligibilities__user_id=user.pk)
    if user.role_id is not None:
        reach |= Q(eligible_in_roles__id=user.role_id)
    held = set(user.extra_role_groups.values_list("pk", flat=True))
    if user.role_id is not None:
        held |= set(
            Role.role_groups.through.objects.filter(role_id=user.role_id).values_list(
                "rolegroup_id", flat=True
            )
        )
    groups = RoleGroup.objects.filter(reach, owner_id=user.owner_id).distinct().order_by("name")
    return [g for g in groups if g.pk not in held]


def is_eligible(user, group: RoleGroup) -> bool:
    """Say whether `user` may ask for `group`."""
    return any(g.pk == group.pk for g in eligible_groups(user))


def set_role_eligibility(
    role: Role, groups: Iterable[RoleGroup], *, actor, reason: str
) -> dict[str, list]:
    """Replace the role groups a role's holders are eligible for; return what changed.

    The actor may list only groups they could grant themselves (an approver must hold them too,
    so nothing is widened here, but nobody is offered what their administrator could not give).
    """
    groups = list(groups)
    _check_owner(actor, role, *groups)
    with transaction.atomic():
        role = Role.objects.select_for_update().get(pk=role.pk)
        current = list(role.eligible_role_groups.all())
        current_ids = {g.pk for g in current}
        if current_ids == {g.pk for g in groups}:
            return {}
        check_can_grant_groups(actor, [g for g in groups if g.pk not in current_ids])
        role.eligible_role_groups.set(groups)
        bump_owner(role.owner)  # screens show eligibility beside standing access
        changes = {
            "eligible_role_groups": [
                sorted(g.name for g in current),
                sorted(g.name for g in groups),
            ]
        }
        audit.record(
            AuditAction.ELIGIBILITY_CHANGED,
            actor=actor,
            target=role,
            changes=changes,
            reason=reason,
        )
    return changes


def make_eligible(user, group: RoleGroup, *, actor, reason: str) -> Eligibility:
    """Make one user eligible for one role group, with a reason."""
    _check_owner(actor, user, group)
    reason = required_reason(reason, "Say why this person may ask for it.")
    check_can_manage_user(actor, user)
    check_can_grant_groups(actor, [group])
    with transaction.atomic():
        if Eligibility.objects.filter(user_id=user.pk, role_group=group).exists():
            raise ValidationError({"role_group": f"{user} is already eligible for {group.name}."})
        eligibility = Eligibility.objects.create(
            owner_id=user.owner_id, user=user, role_group=group, reason=reason, created_by=actor
        )
        bump_user(user)
        audit.record(
            AuditAction.ELIGIBILITY_CHANGED,
            actor=actor,
            target=user,
            changes={"eligible_for": [None, group.name]},
            reason=reason,
        )
    return eligibility


def remove_eligibility(
    eligibility: Eligibility,
    *,
    actor,
    reason: str,
    details: str = "",
    context: dict | None = None,
) -> bool:
    """Take a user's own eligibility for a role group away, with a reason; return False when it
    was already gone (nothing is written then).

    Every door (the user's eligibility screen, an access review's decision) comes here. The
    person can no longer ask for the group; an elevation already approved runs to its end.
    """
    user, group = eligibility.user, eligibility.role_group
    _check_owner(actor, user)
    reason = required_reason(reason, "Say why; the reason is kept in the audit log.")
    check_can_manage_user(actor, user)
    with transaction.atomic():
        deleted, _ = Eligibility.objects.filter(pk=eligibility.pk).delete()
        if not deleted:
            return False
        bump_user(user)
        audit.record(
            AuditAction.ELIGIBILITY_CHANGED,
            actor=actor,
            target=user,
            changes={"eligible_for": [group.name, None]},
            reason=reason,
            details=details,
            context=context,
        )
    return True


# Requests -------------------------------------------------------------------------------------


def max_hours(owner) -> int:
    """Return the longest elevation the owner allows, in hours."""
    return max(1, min(MAX_HOURS_CEILING, int(getattr(owner, "max_elevation_hours", 8) or 8)))


def set_max_hours(owner, hours, *, actor, reason: str) -> dict[str, list]:
    """Set the longest elevation the owner allows (1 to MAX_HOURS_CEILING hours); return what
    changed.

    Requests already made keep their windows; the limit applies to requests and approvals from
    now on. A change needs a reason (setting the same value changes nothing and needs none).
    The caller has checked that `actor` may change the owner's policy.
    """
    if not actor.is_superuser and owner.pk != actor.owner_id:
        raise Http404("Not found.")
    if not isinstance(hours, int) or isinstance(hours, bool) or not 1 <= hours <= MAX_HOURS_CEILING:
        raise ValidationError(
            {
                "max_elevation_hours": (
                    f"Choose a whole number of hours from 1 to {MAX_HOURS_CEILING} (three days)."
                )
            }
        )
    reason = (reason or "").strip()
    with transaction.atomic():
        locked = type(owner).objects.select_for_update().get(pk=owner.pk)
        before = locked.max_elevation_hours
        if before == hours:
            return {}
        if not reason:
            raise ValidationError({"reason": "Say why the limit changes; the audit log keeps it."})
        if len(reason) > 500:
            raise ValidationError({"reason": "Keep the reason under 500 characters."})
        locked.max_elevation_hours = hours
        locked.save(update_fields=["max_elevation_hours"])
        owner.max_elevation_hours = hours
        changes = {"max_elevation_hours": [before, hours]}
        audit.record(
            AuditAction.OWNER_CHANGED,
            actor=actor,
            target=locked,
            owner=locked.pk,
            changes=changes,
            reason=reason,
        )
    return changes


def _window(owner, starts_at, hours, now) -> tuple[datetime.datetime, datetime.datetime]:
    errors = {}
    limit = max_hours(owner)
    if hours is None or not 1 <= hours <= limit:
        errors["hours"] = f"Choose between 1 and {limit} hours (your organisation's maximum)."
    start = now if starts_at is None else starts_at
    if start < now - EARLIEST_START_SLACK:
        errors["starts_at"] = "The start is in the past; choose now or a later time."
    elif start > now + LATEST_START:
        errors["starts_at"] = "Choose a start within the next 30 days."
    if errors:
        raise ValidationError(errors)
    start = max(start, now)
    return start, start + datetime.timedelta(hours=hours)


def _holds_everything(user, group: RoleGroup, now) -> bool:
    levels = group.levels()
    if not levels:
        return False
    held = permissions.compute(user, group.channel, now=now, explain=False)
    return all(
        catalog.BY_CODE[code].at_least(held.level(code), level)
        for code, level in levels.items()
        if code
        in catalog.BY_CODE  # a grant of an area since retired from the catalog gives nothing
    )


def _check_no_duplicate(user, group: RoleGroup, now) -> None:
    open_ = AccessRequest.objects.filter(user_id=user.pk, role_group=group).filter(
        Q(state=RequestState.PENDING, requested_ends_at__gt=now)
        | Q(state=RequestState.APPROVED, ends_at__gt=now)
    )
    existing = open_.order_by("created_at").first()
    if existing is not None:
        where = (
            "is waiting for approval"
            if existing.state == RequestState.PENDING
            else ("is in force" if existing.starts_at <= now else "is approved and starts later")
        )
        raise ValidationError(
            {"role_group": f"You already asked for {group.name}: request #{existing.pk} {where}."}
        )


def request_access(
    user,
    group: RoleGroup,
    *,
    justification: str,
    hours: int,
    ticket: str = "",
    starts_at: datetime.datetime | None = None,
    now: datetime.datetime | None = None,
) -> AccessRequest:
    """Ask for an eligible role group for `hours` from `starts_at` (now when None).

    A group that allows self-activation is active at once (the screens have had the person
    confirm who they are); any other waits for someone else to approve it, and its approvers
    are emailed.
    """
    now = now or timezone.now()
    _check_owner(user, group)
    justification = (justification or "").strip()
    if not justification:
        raise ValidationError({"justification": "Say why you need it; approvers read this."})
    if len(justification) > 1000:
        raise ValidationError({"justification": "Keep the justification under 1,000 characters."})
    ticket = (ticket or "").strip()[:120]
    if not is_eligible(user, group):
        raise ValidationError({"role_group": f"You are not eligible for {group.name}."})
    start, end = _window(user.owner, starts_at, hours, now)
    if _holds_everything(user, group, now):
        raise ValidationError({"role_group": f"You already hold everything {group.name} gives."})
    with transaction.atomic():
        type(user).objects.select_for_update().filter(pk=user.pk).first()  # one at a time
        _check_no_duplicate(user, group, now)
        request = AccessRequest.objects.create(
            owner_id=user.owner_id,
            user=user,
            role_group=group,
            starts_at=start,
            ends_at=end,
            requested_ends_at=end,
            justification=justification,
            ticket=ticket,
            created_at=now,
        )
        if group.self_activation:
            _approve(request, actor=user, now=now, reason="Self-activation")
        else:
            audit.record(
                AuditAction.ACCESS_REQUESTED,
                actor=user,
                target=user,
                reason=_label(request),
                context=_context(request),
            )
            _notify(request.pk, "requested")
    return request


def break_glass(
    user,
    group: RoleGroup,
    *,
    reason: str,
    hours: int,
    now: datetime.datetime | None = None,
) -> AccessRequest:
    """Activate an eligible role group at once on an emergency account, without approval.

    Needs a reason; every approver of the owner is emailed immediately and the event has its
    own type, so that emergency use is never quiet.
    """
    now = now or timezone.now()
    _check_owner(user, group)
    if not user.is_emergency_account:
        raise PermissionDenied("Only an emergency account may activate access without approval.")
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"justification": "Say what the emergency is."})
    if not is_eligible(user, group):
        raise ValidationError({"role_group": f"You are not eligible for {group.name}."})
    start, end = _window(user.owner, None, hours, now)
    with transaction.atomic():
        type(user).objects.select_for_update().filter(pk=user.pk).first()
        _check_no_duplicate(user, group, now)
        request = AccessRequest(
            owner_id=user.owner_id,
            user=user,
            role_group=group,
            starts_at=start,
            ends_at=end,
            requested_ends_at=end,
            justification=reason[:1000],
            state=RequestState.APPROVED,
            break_glass=True,
            decided_by=user,
            decided_at=now,
            decision_reason="Emergency access",
            activation_recorded_at=now,
            created_at=now,
        )
        # Checked before the row exists: the preview counts elevations in force as held, and
        # this one must be what the check adds, not part of what the user holds already.
        _check_duties(request, actor=user, now=now)
        request.save()
        bump_user(user)
        audit.record(
            AuditAction.BREAK_GLASS,
            actor=user,
            target=user,
            reason=_label(request),
            context=_context(request),
        )
        _notify(request.pk, "break_glass")
    return request


# Decisions ------------------------------------------------------------------------------------


def can_approve(actor, request: AccessRequest) -> bool:
    """Say whether `actor` may decide `request` (for the screens; the services check again)."""
    try:
        _check_approver(actor, request)
    except (PermissionDenied, Http404):
        return False
    return True


def _check_approver(actor, request: AccessRequest) -> None:
    _check_owner(actor, request)
    if actor.pk == request.user_id:
        raise PermissionDenied("Nobody approves their own request.")
    held = permissions.for_user(actor)
    if not actor.is_superuser and not held.has(catalog.ACCESS_REQUESTS, catalog.APPROVE):
        raise PermissionDenied("Deciding requests needs Approve on Access Requests.")


def _locked_pending(request: AccessRequest, expected_row_version: int | None, now) -> AccessRequest:
    locked = (
        AccessRequest.objects.select_for_update(of=("self",))
        .select_related("role_group", "user", "user__owner", "decided_by")
        .get(pk=request.pk)
    )
    if locked.state != RequestState.PENDING:
        who = f" by {locked.decided_by.label}" if locked.decided_by else ""
        raise ValidationError(
            f"Request #{locked.pk} was already {locked.get_state_display().lower()}{who}; "
            "nothing was changed.",
            code="stale",
        )
    if expected_row_version is not None and locked.row_version != expected_row_version:
        raise ValidationError(f"Request #{locked.pk} changed since you opened it; look again.")
    if locked.requested_ends_at <= now:
        raise ValidationError(
            f"Request #{locked.pk} lapsed: its window ended before anyone decided. "
            "The person can ask again."
        )
    return locked


def approve(
    request: AccessRequest,
    *,
    actor,
    reason: str = "",
    hours: int | None = None,
    expected_row_version: int | None = None,
    now: datetime.datetime | None = None,
) -> AccessRequest:
    """Approve a waiting request, for its whole window or a shorter one (`hours`).

    The approver is someone else who holds Approve on Access Requests and every level the role
    group gives. Two approvers at once: the first wins, the second is told who did.
    """
    now = now or timezone.now()
    _check_approver(actor, request)
    with transaction.atomic():
        locked = _locked_pending(request, expected_row_version, now)
        check_can_grant_groups(actor, [locked.role_group])
        if hours is not None:
            requested = (locked.requested_ends_at - locked.starts_at).total_seconds() / 3600
            if not 1 <= hours <= requested:
                raise ValidationError(
                    {"hours": f"Choose between 1 and {requested:g} hours (what was asked for)."}
                )
            locked.ends_at = locked.starts_at + datetime.timedelta(hours=hours)
        _approve(locked, actor=actor, now=now, reason=(reason or "").strip()[:500])
    return locked


def _check_duties(request: AccessRequest, *, actor, now) -> None:
    """Refuse an elevation that would give its holder both sides of a separation-of-duties
    rule (counted as if the group were one of their extra groups while it lasts)."""
    user = request.user
    groups = set(user.extra_role_groups.values_list("pk", flat=True)) | {request.role_group_id}
    sod.check(user.owner, Proposal(user_groups={user.pk: groups}), actor=actor, now=now)


def _approve(request: AccessRequest, *, actor, now, reason: str) -> None:
    _check_duties(request, actor=actor, now=now)
    request.state = RequestState.APPROVED
    request.decided_by = actor
    request.decided_at = now
    request.decision_reason = reason
    request.row_version += 1
    if request.starts_at <= now:
        request.activation_recorded_at = now
    request.save(
        update_fields=[
            "state",
            "decided_by",
            "decided_at",
            "decision_reason",
            "ends_at",
            "row_version",
            "activation_recorded_at",
        ]
    )
    bump_user(request.user)
    self_activated = actor.pk == request.user_id
    if not self_activated:
        audit.record(
            AuditAction.ACCESS_APPROVED,
            actor=actor,
            target=request.user,
            reason=_label(request),
            details=reason,
            context=_context(request),
        )
        _notify(request.pk, "approved")
    if request.starts_at <= now:
        audit.record(
            AuditAction.ELEVATION_ACTIVATED,
            actor=actor if self_activated else None,
            actor_label="" if self_activated else "Just-in-time access",
            target=request.user,
            reason=_label(request),
            context=_context(request, self_activated=self_activated),
        )


def deny(
    request: AccessRequest,
    *,
    actor,
    reason: str,
    expected_row_version: int | None = None,
    now: datetime.datetime | None = None,
) -> AccessRequest:
    """Deny a waiting request with a reason the requester is told."""
    now = now or timezone.now()
    _check_approver(actor, request)
    reason = required_reason(reason, "Say why; the requester is told.")
    with transaction.atomic():
        locked = _locked_pending(request, expected_row_version, now)
        locked.state = RequestState.DENIED
        locked.decided_by = actor
        locked.decided_at = now
        locked.decision_reason = reason[:500]
        locked.row_version += 1
        locked.save(
            update_fields=["state", "decided_by", "decided_at", "decision_reason", "row_version"]
        )
        audit.record(
            AuditAction.ACCESS_DENIED,
            actor=actor,
            target=locked.user,
            reason=_label(locked),
            details=locked.decision_reason,
            context=_context(locked),
        )
        _notify(locked.pk, "denied")
    return locked


def withdraw(request: AccessRequest, *, actor, now: datetime.datetime | None = None) -> None:
    """Withdraw one's own waiting request."""
    now = now or timezone.now()
    if actor.pk != request.user_id:
        raise Http404("Not found.")
    with transaction.atomic():
        locked = AccessRequest.objects.select_for_update().get(pk=request.pk)
        if locked.state != RequestState.PENDING:
            raise ValidationError(
                f"Request #{locked.pk} is no longer waiting; nothing changed.", code="stale"
            )
        locked.state = RequestState.WITHDRAWN
        locked.decided_at = now
        locked.row_version += 1
        locked.save(update_fields=["state", "decided_at", "row_version"])
        audit.record(
            AuditAction.ACCESS_WITHDRAWN,
            actor=actor,
            target=actor,
            reason=_label(locked),
            context=_context(locked),
        )


def end(
    request: AccessRequest,
    *,
    actor,
    reason: str = "",
    now: datetime.datetime | None = None,
) -> AccessRequest:
    """End an elevation now (or cancel one that has not started): by its holder, or revoked by
    someone who holds Approve on Access Requests, with a reason."""
    now = now or timezone.now()
    _check_owner(actor, request)
    own = actor.pk == request.user_id
    if not own:
        _check_approver(actor, request)
        reason = required_reason(reason, "Say why you end someone else's access.")
    with transaction.atomic():
        locked = (
            AccessRequest.objects.select_for_update()
            .select_related("role_group", "user")
            .get(pk=request.pk)
        )
        if locked.state != RequestState.APPROVED or locked.ends_at <= now:
            raise ValidationError(
                f"Request #{locked.pk} is not in force; nothing changed.", code="stale"
            )
        locked.ends_at = max(now, locked.starts_at)
        locked.ended_early_at = now
        locked.ended_by = actor
        locked.end_reason = (reason or "").strip()[:500]
        locked.expiry_recorded_at = now
        locked.row_version += 1
        locked.save(
            update_fields=[
                "ends_at",
                "ended_early_at",
                "ended_by",
                "end_reason",
                "expiry_recorded_at",
                "row_version",
            ]
        )
        bump_user(locked.user)
        audit.record(
            AuditAction.ELEVATION_ENDED if own else AuditAction.ELEVATION_REVOKED,
            actor=actor,
            target=locked.user,
            reason=_label(locked),
            details=locked.end_reason,
            context=_context(locked),
        )
    return locked


@dataclass
class Recorded:
    activated: int = 0
    expired: int = 0


def record_transitions(now: datetime.datetime | None = None) -> Recorded:
    """Record the elevations that started or ran out since the last call, once each.

    Nothing depends on this for enforcement (the resolver reads the window); it keeps the
    audit log complete. Safe to run from several processes: each row is claimed under a lock.
    """
    now = now or timezone.now()
    return Recorded(
        activated=_record_once(
            "activation_recorded_at", AuditAction.ELEVATION_ACTIVATED, now, starts_at__lte=now
        ),
        expired=_record_once(
            "expiry_recorded_at", AuditAction.ELEVATION_EXPIRED, now, ends_at__lte=now
        ),
    )


def _record_once(marker: str, action: str, now, **due) -> int:
    """Write `action` for each approved request that is `due` and not yet marked, marking it in
    the same transaction; rows another process holds are left to it. Return how many."""
    unmarked = {f"{marker}__isnull": True}
    pending = AccessRequest.objects.filter(state=RequestState.APPROVED, **due, **unmarked)
    count = 0
    for pk in pending.values_list("pk", flat=True)[:1000]:
        with transaction.atomic():
            row = (
                AccessRequest.objects.select_for_update(skip_locked=True)
                .select_related("role_group", "user")
                .filter(pk=pk, **unmarked)
                .first()
            )
            if row is None:
                continue
            setattr(row, marker, now)
            row.save(update_fields=[marker])
            extra = {"self_activated": False} if action == AuditAction.ELEVATION_ACTIVATED else {}
            audit.record(
                action,
                actor_label="Just-in-time access",
                target=row.user,
                reason=_label(row),
                context=_context(row, **extra),
            )
            count += 1
    return count


# Who is told ----------------------------------------------------------------------------------


def approvers_for(request: AccessRequest) -> list:
    """Return the active people who could approve `request`: Approve on Access Requests, every
    level its role group gives, and not the requester."""
    from .reports import who_has_access

    candidates = who_has_access(request.user.owner, catalog.ACCESS_REQUESTS, catalog.APPROVE)
    approvers = []
    for person in candidates.exclude(pk=request.user_id)[:200]:
        try:
            check_can_grant_groups(person, [request.role_group])
        except EscalationRefused:
            continue
        approvers.append(person)
    return approvers


def _notify(request_pk: int, what: str) -> None:
    """Email the approvers (a request, break-glass) or the requester (a decision) through the
    outbox, in the transaction of the step: the worker sends it once the mail server answers."""
    request = (
        AccessRequest.objects.select_related("role_group", "user", "user__owner", "decided_by")
        .filter(pk=request_pk)
        .first()
    )
    if request is None:
        return
    approvers = []
    if what in ("requested", "break_glass"):
        approvers = [p for p in approvers_for(request) if p.email]
        to = [p.email for p in approvers]
    else:
        to = [request.user.email] if request.user.email else []
    if not to:
        return
    context = {
        "request": request,
        "what": what,
        "queue_url": settings.PUBLIC_URL + reverse("roles:request_queue"),
        "mine_url": settings.PUBLIC_URL + reverse("roles:request_list"),
    }
    subject = render_to_string("roles/email/access_request_subject.txt", context).strip()
    body = render_to_string("roles/email/access_request.txt", context)
    recipients = {p.email: p for p in approvers} if approvers else {to[0]: request.user}
    for address, person in recipients.items():
        outbox.queue(
            to=address,
            subject=subject,
            body=body,
            kind=EmailKind.ACCESS_REQUEST,
            owner=request.user.owner,
            user=person,
        )
