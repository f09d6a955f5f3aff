"""Every write of access reviews: create a campaign, record a decision, apply the decisions,
close the campaign.

Who may do what:
- creating and closing a campaign needs full on Data Protection Responsibilities (the people
  answerable for who sees personal data own the review);
- deciding and applying needs to be one of the campaign's reviewers, or to hold full on Users;
  nobody decides on their own access;
- applying goes through the same domain services as the screens (`accounts.users`,
  `roles.services`, `roles.elevations` for an eligibility), with the campaign as the reason,
  so each change is audited and checked for escalation with the applying person as its
  actor. A refusal is written on the item.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import Http404
from django.utils import timezone

import audit
from audit.choices import AuditAction
from roles import catalog, elevations, permissions
from roles.models import Eligibility, PermissionOverride, Role

from . import reports
from .choices import CampaignStatus, Decision, ScopeKind
from .models import ReviewCampaign, ReviewItem


def can_manage(actor) -> bool:
    """Say whether `actor` may create and close campaigns."""
    return permissions.for_user(actor).has(catalog.DP_RESPONSIBILITIES, catalog.FULL)


def can_decide(actor, campaign: ReviewCampaign) -> bool:
    """Say whether `actor` may decide on and apply the items of `campaign`."""
    if actor.is_superuser or permissions.for_user(actor).has(catalog.USERS, catalog.FULL):
        return True
    return campaign.reviewers.filter(pk=actor.pk).exists()


def _check_owner(actor, campaign: ReviewCampaign) -> None:
    if campaign.owner_id != actor.owner_id and not actor.is_superuser:
        raise Http404("Not found.")


def _check_open(campaign: ReviewCampaign) -> None:
    if campaign.status != CampaignStatus.OPEN:
        raise ValidationError("This campaign is closed; nothing in it can change.")


def _lock(campaign: ReviewCampaign) -> ReviewCampaign:
    return ReviewCampaign.objects.select_for_update().get(pk=campaign.pk)


# Create ----------------------------------------------------------------------------------------


def users_in_scope(owner, kind: str, scope: dict, *, now: datetime.datetime):
    """Return the queryset of the owner's users that a campaign of this scope reviews.

    "All users" means everyone who can still use the platform (Login or an API flag); a role
    or a department means every user of it; an area means everyone whose effective level on it
    reaches the level (the "who has access" query).
    """
    from django.db.models import Q

    from accounts.models import User

    users = User.objects.filter(owner=owner)
    if kind == ScopeKind.ALL:
        return users.filter(Q(allow_login=True) | Q(allow_api_read=True) | Q(allow_api_write=True))
    if kind == ScopeKind.ROLE:
        return users.filter(role_id=scope["role_id"])
    if kind == ScopeKind.DEPARTMENT:
        return users.filter(departments=scope["department_id"])
    if kind == ScopeKind.AREA:
        return reports.who_has_access(owner, scope["area"], scope["level"], now=now)
    raise ValidationError({"scope_kind": "Choose what the campaign covers."})


def _scope_of(actor, kind: str, *, role=None, department=None, area: str = "", level: str = ""):
    if kind == ScopeKind.ROLE:
        if role is None:
            raise ValidationError({"role": "Choose the role whose users are reviewed."})
        if role.owner_id != actor.owner_id:
            raise Http404("Not found.")
        return {"role_id": role.pk, "role": role.name}
    if kind == ScopeKind.DEPARTMENT:
        if department is None:
            raise ValidationError({"department": "Choose the department whose users are reviewed."})
        if department.owner_id != actor.owner_id:
            raise Http404("Not found.")
        return {"department_id": department.pk, "department": department.name}
    if kind == ScopeKind.AREA:
        try:
            info = catalog.validate(area, level)
        except ValueError as exc:
            raise ValidationError({"area": str(exc)}) from exc
        if level == catalog.NONE:
            raise ValidationError({"level": "Choose a level above no access."})
        return {"area": area, "area_label": info.label, "level": level}
    if kind == ScopeKind.ALL:
        return {}
    raise ValidationError({"scope_kind": "Choose what the campaign covers."})


def create_campaign(
    *,
    actor,
    name: str,
    scope_kind: str,
    reviewers: Iterable,
    due_date: datetime.date,
    role: Role | None = None,
    department=None,
    area: str = "",
    level: str = "",
    now: datetime.datetime | None = None,
) -> ReviewCampaign:
    """Open an access review of the users in scope, freezing what each of them holds now.

    Every user in scope gets an item whose snapshot (role, extra groups, overrides, effective
    application and API levels) is taken in a fixed number of queries and never recomputed.
    """
    if not can_manage(actor):
        raise PermissionDenied("Opening a review needs full Data Protection Responsibilities.")
    now = now or timezone.now()
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "Enter a name."})
    if due_date < timezone.localdate(now):
        raise ValidationError({"due_date": "Choose a due date from today on."})
    reviewers = list(reviewers)
    if not reviewers:
        raise ValidationError({"reviewers": "Choose at least one reviewer."})
    if any(r.owner_id != actor.owner_id or not r.is_active for r in reviewers):
        raise ValidationError({"reviewers": "Reviewers must be active users of your organisation."})
    scope = _scope_of(actor, scope_kind, role=role, department=department, area=area, level=level)
    owner = actor.owner
    with transaction.atomic():
        frozen = reports.snapshots(
            owner, users_in_scope(owner, scope_kind, scope, now=now), now=now
        )
        if not frozen:
            raise ValidationError("Nobody is in this scope: there is nothing to review.")
        campaign = ReviewCampaign.objects.create(
            owner=owner,
            name=name,
            scope_kind=scope_kind,
            scope=scope,
            due_date=due_date,
            created_by=actor,
            created_at=now,
        )
        campaign.reviewers.set(reviewers)
        ReviewItem.objects.bulk_create(
            [ReviewItem(campaign=campaign, user_id=pk, snapshot=s) for pk, s in frozen.items()]
        )
        audit.record(
            AuditAction.REVIEW_CHANGED,
            actor=actor,
            target=campaign,
            owner=owner,
            changes={"status": [None, CampaignStatus.OPEN]},
            details=f"Opened with {len(frozen)} user{'s' if len(frozen) != 1 else ''} to review.",
            context={
                "scope": campaign.scope_text(),
                "users": len(frozen),
                "due_date": due_date.isoformat(),
                "reviewers": sorted(r.label for r in reviewers),
            },
        )
    return campaign


# Decide ----------------------------------------------------------------------------------------


def record_decision(
    item: ReviewItem,
    *,
    actor,
    decision: str,
    comment: str = "",
    new_role: Role | None = None,
    override_id: int | None = None,
    eligibility_id: int | None = None,
    now: datetime.datetime | None = None,
) -> ReviewItem:
    """Record a reviewer's decision on one user; a comment is required for anything but keep.

    Removing an eligibility names one of the user's own eligibilities at the review's start; an
    eligibility that comes from the role is the role's (changed on the role, for all its
    holders, or by changing this user's role), so a review item never removes it.

    Nothing changes in the user's access until the decisions are applied.
    """
    campaign = item.campaign
    _check_owner(actor, campaign)
    if not can_decide(actor, campaign):
        raise PermissionDenied("Only the campaign's reviewers or user administrators decide.")
    comment = (comment or "").strip()
    if decision not in Decision.values or decision == Decision.PENDING:
        raise ValidationError({"decision": "Choose a decision."})
    if decision != Decision.KEEP and not comment:
        raise ValidationError({"comment": "Say why: a comment is required unless access is kept."})
    if item.user_id == actor.pk:
        raise ValidationError("Nobody decides on their own access: ask another reviewer.")
    if item.user_id is None and decision != Decision.KEEP:
        raise ValidationError("This user no longer exists; only keep can be recorded.")
    if decision == Decision.CHANGE_ROLE:
        if new_role is None:
            raise ValidationError({"new_role": "Choose the new role."})
        if new_role.owner_id != campaign.owner_id:
            raise Http404("Not found.")
        if new_role.pk == item.snapshot.get("role_id"):
            raise ValidationError({"new_role": "That is the role the user already has."})
    else:
        new_role = None
    if decision == Decision.REMOVE_OVERRIDE:
        ids = {o.get("id") for o in item.snapshot.get("overrides", [])}
        if override_id is None or int(override_id) not in ids:
            raise ValidationError({"override_id": "Choose one of the user's overrides."})
        override_id = int(override_id)
    else:
        override_id = None
    if decision == Decision.REMOVE_ELIGIBILITY:
        ids = {e.get("eligibility_id") for e in item.own_eligibilities()}
        if eligibility_id is None or int(eligibility_id) not in ids:
            raise ValidationError({"eligibility_id": "Choose one of the user's own eligibilities."})
        eligibility_id = int(eligibility_id)
    else:
        eligibility_id = None
    if decision == Decision.DEACTIVATE and item.snapshot.get("kind") == "api":
        raise ValidationError(
            {"decision": "API users do not sign in: change their role or revoke their tokens."}
        )
    now = now or timezone.now()
    with transaction.atomic():
        _lock(campaign)
        _check_open(campaign)
        locked = ReviewItem.objects.select_for_update().get(pk=item.pk)
        if locked.applied_at is not None:
            raise ValidationError("This decision was already applied; it can no longer change.")
        before = locked.decision
        locked.decision = decision
        locked.new_role = new_role
        locked.override_id = override_id
        locked.eligibility_id = eligibility_id
        locked.comment = comment
        locked.decided_by = actor
        locked.decided_at = now
        locked.apply_error = ""
        locked.save(
            update_fields=[
                "decision",
                "new_role",
                "override_id",
                "eligibility_id",
                "comment",
                "decided_by",
                "decided_at",
                "apply_error",
            ]
        )
        audit.record(
            AuditAction.REVIEW_CHANGED,
            actor=actor,
            target=campaign,
            owner=campaign.owner_id,
            subject_user=locked.user_id,
            changes={f"decision on {locked.label}": [before, decision]},
            details=comment,
            context=_decision_context(locked),
        )
    return locked


def _decision_context(item: ReviewItem) -> dict:
    context = {"item": item.pk, "user": item.label}
    if item.new_role_id:
        context["new_role"] = item.new_role.name
    override = item.override_snapshot()
    if override:
        context["override"] = f"{override['label']} ({override['level']})"
    eligibility = item.eligibility_snapshot()
    if eligibility:
        context["eligibility"] = eligibility["group"]
    return context


# Apply -----------------------------------------------------------------------------------------


@dataclass
class ApplyResult:
    applied: list[ReviewItem] = field(default_factory=list)
    refused: list[ReviewItem] = field(default_factory=list)


def _carry_out(item: ReviewItem, *, actor, reason: str) -> str:
    """Make the change a decision asks for through the domain services; return what changed."""
    from accounts import users
    from accounts.choices import AccessSource
    from accounts.models import User
    from roles import services as roles_services

    if item.decision == Decision.KEEP:
        return "No change: access kept."
    user = User.objects.select_related("owner", "role").filter(pk=item.user_id).first()
    if user is None:
        raise ValidationError("This user no longer exists.")
    if item.decision == Decision.CHANGE_ROLE:
        if item.new_role is None:
            raise ValidationError("The chosen role no longer exists; decide again.")
        before = user.role.name if user.role_id else "no role"
        if user.role_id == item.new_role_id:
            return f"No change: the role was already {item.new_role.name}."
        users.set_user_access(
            user,
            role=item.new_role,
            actor=actor,
            reason=reason,
            details=item.comment,
            source=AccessSource.REVIEW,
            context={"campaign": item.campaign_id},
        )
        return f"Role {before} → {item.new_role.name}."
    if item.decision == Decision.REMOVE_OVERRIDE:
        override = PermissionOverride.objects.filter(pk=item.override_id, user=user).first()
        if override is None:
            return "No change: the override was already gone."
        label = catalog.BY_CODE[override.area].label if override.area in catalog.BY_CODE else ""
        roles_services.remove_override(override, actor=actor, reason=reason)
        return f"Override removed: {label or override.area} ({override.level})."
    if item.decision == Decision.REMOVE_ELIGIBILITY:
        eligibility = (
            Eligibility.objects.select_related("user", "user__owner", "role_group")
            .filter(pk=item.eligibility_id, user=user)
            .first()
        )
        if eligibility is None:
            return "No change: the eligibility was already gone."
        group = eligibility.role_group.name
        removed = elevations.remove_eligibility(
            eligibility,
            actor=actor,
            reason=reason,
            details=item.comment,
            context={"campaign": item.campaign_id, "item": item.pk},
        )
        if not removed:
            return "No change: the eligibility was already gone."
        return f"Eligibility removed: {group} (can no longer be requested)."
    if item.decision == Decision.DEACTIVATE:
        if not user.allow_login:
            return "No change: the user was already deactivated."
        users.deactivate_user(
            user, actor=actor, reason=reason, details=item.comment, source=AccessSource.REVIEW
        )
        return "Deactivated: Login flag removed."
    raise ValidationError("This item has no decision to apply.")


def _message(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return " ".join(exc.messages)
    if isinstance(exc, Http404):
        return "The user or the record the decision names is not in your organisation."
    return str(exc) or "Refused."


def apply_decisions(
    campaign: ReviewCampaign, *, actor, now: datetime.datetime | None = None
) -> ApplyResult:
    """Apply every decided, not yet applied item of a campaign, each in its own transaction.

    A decision refused by a domain rule (escalation, last administrator, user gone) is recorded
    on its item (`apply_error`) and the others go on; a refused item stays unapplied until it
    is decided again.
    """
    _check_owner(actor, campaign)
    if not can_decide(actor, campaign):
        raise PermissionDenied("Only the campaign's reviewers or user administrators apply.")
    _check_open(campaign)
    now = now or timezone.now()
    result = ApplyResult()
    waiting = list(
        campaign.items.exclude(decision=Decision.PENDING)
        .filter(applied_at__isnull=True, apply_error="")
        .select_related("new_role")
    )
    for item in waiting:
        try:
            with transaction.atomic():
                outcome = _carry_out(item, actor=actor, reason=campaign.reason)
                ReviewItem.objects.filter(pk=item.pk).update(
                    applied_at=now, applied_by=actor, outcome=outcome, apply_error=""
                )
        except (PermissionDenied, ValidationError, Http404) as exc:
            item.apply_error = _message(exc)
            ReviewItem.objects.filter(pk=item.pk).update(apply_error=item.apply_error)
            result.refused.append(item)
        else:
            item.applied_at, item.outcome = now, outcome
            result.applied.append(item)
    if waiting:
        with transaction.atomic():
            audit.record(
                AuditAction.REVIEW_CHANGED,
                actor=actor,
                target=campaign,
                owner=campaign.owner_id,
                details=(
                    f"Applied {len(result.applied)} decision(s); {len(result.refused)} refused."
                ),
                context={
                    "applied": [f"{i.label}: {i.outcome}" for i in result.applied],
                    "refused": [f"{i.label}: {i.apply_error}" for i in result.refused],
                },
            )
    return result


# Close -----------------------------------------------------------------------------------------


def open_items(campaign: ReviewCampaign):
    """Return the items that keep a campaign open: undecided, or decided but not applied."""
    return campaign.items.filter(applied_at__isnull=True)


def close_campaign(
    campaign: ReviewCampaign, *, actor, now: datetime.datetime | None = None
) -> ReviewCampaign:
    """Close a campaign whose every decision is made and applied; it is read-only afterwards."""
    _check_owner(actor, campaign)
    if not can_manage(actor):
        raise PermissionDenied("Closing a review needs full Data Protection Responsibilities.")
    now = now or timezone.now()
    with transaction.atomic():
        locked = _lock(campaign)
        _check_open(locked)
        waiting = open_items(locked).count()
        if waiting:
            raise ValidationError(
                f"{waiting} item{'s are' if waiting != 1 else ' is'} still undecided or not "
                "applied: decide and apply every item before closing."
            )
        locked.status = CampaignStatus.CLOSED
        locked.closed_at = now
        locked.closed_by = actor
        locked.save(update_fields=["status", "closed_at", "closed_by"])
        audit.record(
            AuditAction.REVIEW_CHANGED,
            actor=actor,
            target=locked,
            owner=locked.owner_id,
            changes={"status": [CampaignStatus.OPEN, CampaignStatus.CLOSED]},
            context={"items": locked.items.count()},
        )
    return locked
