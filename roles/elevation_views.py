"""Screens of just-in-time access: thin views over `roles.elevations`.

- Request access (`roles:request_create`): anyone with an eligible role group; a self-activating
  group and emergency access (break-glass, emergency accounts only) ask for a recent step-up.
- My requests (`roles:request_list`): one's own requests, withdraw a waiting one, end an active one.
- Requests (`roles:request_queue`, `roles:request_decide`): Access Requests read to look, Approve
  to decide (approving asks for a recent step-up); the service checks the rest (someone else,
  holding what the group gives).
- Active elevations (`roles:elevation_list`): who holds what now and until when; Approve on
  Access Requests ends one early with a reason (`roles:elevation_end`).
- A user's own eligibilities (`roles:eligibility_add`, `roles:eligibility_remove`): Users full.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Prefetch
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import formats, timezone
from django.views.decorators.http import require_http_methods, require_POST

from portal.access import requires, signed_in
from portal.forms import apply_service_errors
from portal.owned import get_owned_or_404
from portal.stepup import require_recent_proof

from . import catalog, elevations, permissions, services
from .choices import RequestState
from .forms import (
    AccessRequestForm,
    ApproveForm,
    DenyForm,
    EligibilityForm,
    EmergencyAccessForm,
    EndElevationForm,
    ReasonForm,
)
from .guards import EscalationRefused
from .models import AccessRequest, Eligibility, Grant

READ = (catalog.ACCESS_REQUESTS, catalog.READ)
DECIDE = (catalog.ACCESS_REQUESTS, catalog.APPROVE)
IMPACT_ROWS = 200
REFUSALS = (EscalationRefused, PermissionDenied, ValidationError)


def _when(moment) -> str:
    return formats.date_format(timezone.localtime(moment), "j M Y H:i")


def _refusal(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return " ".join(exc.messages)
    return str(exc) or "Not allowed."


# The menu's condition ------------------------------------------------------------------------

_may_request: OrderedDict[tuple, bool] = OrderedDict()
_may_request_lock = threading.Lock()
MAY_REQUEST_SIZE = 4096


def may_request(user) -> bool:
    """Say whether `user` has a role group to ask for (the condition of the menu entries).

    Every page draws the menu, so the answer is kept per (user, permissions version, owner,
    authorization epoch): every change of eligibility, role or groups bumps one of them, so a
    kept answer is never stale and a page costs no query for it.
    """
    key = (user.pk, user.permissions_version, user.owner_id, user.owner.authz_epoch)
    with _may_request_lock:
        found = _may_request.get(key)
    if found is None:
        found = bool(elevations.eligible_groups(user))
        with _may_request_lock:
            _may_request[key] = found
            while len(_may_request) > MAY_REQUEST_SIZE:
                _may_request.popitem(last=False)
    return found


# Request access ------------------------------------------------------------------------------


@signed_in
@require_http_methods(["GET", "POST"])
def request_create(request):
    """Ask for an eligible role group (or, on an emergency account, activate one at once)."""
    user = request.user
    groups = elevations.eligible_groups(user)
    limit = elevations.max_hours(user.owner)
    action = request.POST.get("action", "request") if request.method == "POST" else None
    chosen = request.GET.get("group", "")
    initial = {"role_group": chosen} if chosen.isdigit() else {}
    form = AccessRequestForm(
        request.POST if action == "request" else None,
        groups=groups,
        max_hours=limit,
        initial=initial,
    )
    emergency = None
    if user.is_emergency_account:
        emergency = EmergencyAccessForm(
            request.POST if action == "emergency" else None,
            groups=groups,
            max_hours=limit,
            prefix="emergency",
            initial=initial,
        )
    status = 200
    if action is not None:
        bound = emergency if action == "emergency" else form
        if bound is None or action not in ("request", "emergency"):
            raise PermissionDenied("Only an emergency account may activate access at once.")
        if bound.is_valid():
            data = bound.cleaned_data
            group = data["role_group"]
            if action == "emergency" or group.self_activation:
                # Activation without an approver: the person proves who they are first.
                refusal = require_recent_proof(request)
                if refusal is not None:
                    return refusal
            try:
                if action == "emergency":
                    made = elevations.break_glass(
                        user, group, reason=data["justification"], hours=data["hours"]
                    )
                else:
                    made = elevations.request_access(
                        user,
                        group,
                        justification=data["justification"],
                        hours=data["hours"],
                        ticket=data["ticket"],
                        starts_at=data["starts_at"],
                    )
            except REFUSALS as exc:
                apply_service_errors(bound, exc)
            else:
                messages.success(request, _created_message(made))
                return redirect("roles:request_list")
        status = 400
    return render(
        request,
        "roles/request_form.html",
        {
            "form": form,
            "emergency_form": emergency,
            "groups": groups,
            "max_hours": limit,
            "self_activating": [g for g in groups if g.self_activation],
        },
        status=status,
    )


def _created_message(made: AccessRequest) -> str:
    group = made.role_group.name
    if made.break_glass:
        return (
            f"Emergency access to {group} is active until {_when(made.ends_at)}. Every approver "
            "has been told."
        )
    if made.state == RequestState.APPROVED:
        if made.starts_at > timezone.now():
            return f"{group} is activated from {_when(made.starts_at)} to {_when(made.ends_at)}."
        return f"{group} is active until {_when(made.ends_at)}; it ends by itself then."
    return (
        f"Request #{made.pk} for {group} sent. The people who may approve it have been emailed; "
        "you will get an email when it is decided."
    )


# My requests ---------------------------------------------------------------------------------


@signed_in
def request_list(request):
    """List the person's own requests, newest first, with what can still be done to each."""
    now = timezone.now()
    rows = AccessRequest.objects.filter(user_id=request.user.pk).select_related(
        "role_group", "decided_by", "ended_by"
    )
    page = Paginator(rows, 50).get_page(request.GET.get("page"))
    for row in page.object_list:
        row.now_status = row.status(now)
    return render(
        request,
        "roles/request_list.html",
        {
            "page": page,
            "requests": page.object_list,
            "may_request": may_request(request.user),
            "end_form": EndElevationForm(),
        },
    )


def _own_request(request, pk) -> AccessRequest:
    found = (
        AccessRequest.objects.select_related("role_group", "user")
        .filter(pk=pk, user_id=request.user.pk)
        .first()
    )
    if found is None:
        raise Http404("Not found.")
    return found


@signed_in
@require_POST
def request_withdraw(request, pk):
    """Withdraw one's own waiting request."""
    access_request = _own_request(request, pk)
    try:
        elevations.withdraw(access_request, actor=request.user)
    except REFUSALS as exc:
        messages.error(request, _refusal(exc))
    else:
        messages.success(request, f"Request #{access_request.pk} withdrawn.")
    return redirect("roles:request_list")


@signed_in
@require_POST
def request_end(request, pk):
    """End one's own elevation now (or cancel one that has not started)."""
    access_request = _own_request(request, pk)
    form = EndElevationForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    try:
        elevations.end(access_request, actor=request.user, reason=reason)
    except REFUSALS as exc:
        messages.error(request, _refusal(exc))
    else:
        messages.success(
            request, f"{access_request.role_group.name} ended; you no longer hold what it gives."
        )
    return redirect("roles:request_list")


# The approvers' queue ------------------------------------------------------------------------


def _with_grants(queryset):
    return queryset.select_related(
        "role_group", "user", "user__owner", "user__role"
    ).prefetch_related(Prefetch("role_group__grants", queryset=Grant.objects.order_by("area")))


def _adds(access_request: AccessRequest) -> list[dict]:
    """Return the areas the request would raise for its requester: area, now, with it."""
    group = access_request.role_group
    held = permissions.for_user(access_request.user, group.channel)
    rows = []
    for grant in group.grants.all():
        area = catalog.BY_CODE.get(grant.area)
        if area is None or not area.is_level(grant.level) or grant.level == catalog.NONE:
            continue
        now = held.level(area.code)
        if area.rank(grant.level) > area.rank(now):
            rows.append({"area": area, "now": now, "then": grant.level})
    return rows


@requires(*READ)
def request_queue(request):
    """List the requests waiting for a decision, with what each would add."""
    now = timezone.now()
    waiting = _with_grants(
        AccessRequest.objects.for_owner(request.user.owner).filter(
            state=RequestState.PENDING, requested_ends_at__gt=now
        )
    ).order_by("created_at", "pk")
    page = Paginator(waiting, 25).get_page(request.GET.get("page"))
    may_decide = request.permissions.has(*DECIDE)
    for row in page.object_list:
        row.adds = _adds(row)
        row.mine = row.user_id == request.user.pk
        row.hours = round((row.requested_ends_at - row.starts_at).total_seconds() / 3600, 1)
    decided = (
        AccessRequest.objects.for_owner(request.user.owner)
        .exclude(state=RequestState.PENDING)
        .exclude(decided_at=None)
        .select_related("role_group", "user", "decided_by")
        .order_by("-decided_at", "-pk")[:10]
    )
    return render(
        request,
        "roles/request_queue.html",
        {
            "page": page,
            "requests": page.object_list,
            "may_decide": may_decide,
            "decided": decided,
        },
    )


def _decision_page(request, access_request, *, approve_form, deny_form, status=200):
    user = access_request.user
    group = access_request.role_group
    now = timezone.now()
    current_groups = set(user.extra_role_groups.values_list("pk", flat=True))
    impact = services.impact_preview(user.owner, user_groups={user.pk: current_groups | {group.pk}})
    user_impact = impact.for_user(user.pk)
    others = (
        AccessRequest.objects.not_over(now)
        .filter(user_id=user.pk)
        .exclude(pk=access_request.pk)
        .select_related("role_group")
    )
    may_decide = (
        access_request.status(now) == RequestState.PENDING
        and request.permissions.has(*DECIDE)
        and elevations.can_approve(request.user, access_request)
    )
    return render(
        request,
        "roles/request_decide.html",
        {
            "object": access_request,
            "subject": user,
            "status": access_request.status(now),
            "hours": round(
                (access_request.requested_ends_at - access_request.starts_at).total_seconds()
                / 3600,
                1,
            ),
            "extra_groups": list(user.extra_role_groups.order_by("name")),
            "elevations": list(others),
            "adds": _adds(access_request),
            "impact": impact,
            "impact_rows": [user_impact] if user_impact else [],
            "may_decide": may_decide,
            "mine": access_request.user_id == request.user.pk,
            "approve_form": approve_form,
            "deny_form": deny_form,
        },
        status=status,
    )


@requires(*READ, write=catalog.APPROVE)
@require_http_methods(["GET", "POST"])
def request_decide(request, pk):
    """Show one request with the requester's access and its impact; approve or deny it."""
    access_request = get_owned_or_404(request.user, _with_grants(AccessRequest.objects.all()), pk)
    version = {"row_version": access_request.row_version}
    action = request.POST.get("action") if request.method == "POST" else None
    approve_form = ApproveForm(
        request.POST if action == "approve" else None, prefix="approve", initial=version
    )
    deny_form = DenyForm(request.POST if action == "deny" else None, prefix="deny", initial=version)
    if action is None:
        return _decision_page(
            request, access_request, approve_form=approve_form, deny_form=deny_form
        )
    if action == "approve":
        # Giving someone access asks the approver to prove who they are first.
        refusal = require_recent_proof(request)
        if refusal is not None:
            return refusal
        form = approve_form
    elif action == "deny":
        form = deny_form
    else:
        raise Http404("Not found.")
    if form.is_valid():
        data = form.cleaned_data
        try:
            if action == "approve":
                decided = elevations.approve(
                    access_request,
                    actor=request.user,
                    reason=data["note"],
                    hours=data["hours"],
                    expected_row_version=data["row_version"],
                )
            else:
                decided = elevations.deny(
                    access_request,
                    actor=request.user,
                    reason=data["reason"],
                    expected_row_version=data["row_version"],
                )
        except REFUSALS as exc:
            apply_service_errors(form, exc)
            access_request = get_owned_or_404(
                request.user, _with_grants(AccessRequest.objects.all()), pk
            )
        else:
            person = decided.user.label
            if action == "approve":
                messages.success(
                    request,
                    f"Approved: {person} holds {decided.role_group.name} from "
                    f"{_when(decided.starts_at)} until {_when(decided.ends_at)}. They have been "
                    "emailed.",
                )
            else:
                messages.success(request, f"Denied; {person} has been emailed the reason.")
            return redirect("roles:request_queue")
    return _decision_page(
        request, access_request, approve_form=approve_form, deny_form=deny_form, status=400
    )


# Active elevations ---------------------------------------------------------------------------


@requires(*READ)
def elevation_list(request):
    """List the elevations in force and those approved to start later."""
    now = timezone.now()
    rows = (
        AccessRequest.objects.for_owner(request.user.owner)
        .not_over(now)
        .select_related("role_group", "user", "decided_by")
        .order_by("ends_at", "pk")
    )
    page = Paginator(rows, 50).get_page(request.GET.get("page"))
    for row in page.object_list:
        row.now_status = row.status(now)
    ended = (
        AccessRequest.objects.for_owner(request.user.owner)
        .filter(state=RequestState.APPROVED, ends_at__lte=now)
        .select_related("role_group", "user", "decided_by", "ended_by")
        .order_by("-ends_at", "-pk")[:10]
    )
    ended = list(ended)
    for row in ended:
        row.now_status = row.status(now)
    return render(
        request,
        "roles/elevation_list.html",
        {
            "page": page,
            "elevations": page.object_list,
            "ended": ended,
            "may_end": request.permissions.has(*DECIDE),
        },
    )


@requires(*DECIDE)
@require_http_methods(["GET", "POST"])
def elevation_end(request, pk):
    """Confirm, with a reason, and end someone's elevation now."""
    elevation = get_owned_or_404(
        request.user,
        AccessRequest.objects.select_related("role_group", "user", "decided_by"),
        pk,
    )
    form = ReasonForm(request.POST or None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                elevations.end(elevation, actor=request.user, reason=form.cleaned_data["reason"])
            except REFUSALS as exc:
                apply_service_errors(form, exc)
            else:
                messages.success(
                    request,
                    f"Ended: {elevation.user.label} no longer holds {elevation.role_group.name}.",
                )
                return redirect("roles:elevation_list")
    return render(
        request,
        "components/confirm.html",
        {
            "title": f"End {elevation.role_group.name} for {elevation.user.label}",
            "question": (
                f"{elevation.user.label} holds {elevation.role_group.name} until "
                f"{_when(elevation.ends_at)} (request #{elevation.pk}: "
                f"{elevation.justification}). End it now?"
            ),
            "consequences": [
                "They lose what the group gives at their next request.",
                "The audit log records it as revoked, with your reason.",
            ],
            "form": form,
            "confirm_label": "End now",
            "cancel_url": reverse("roles:elevation_list"),
        },
        status=status,
    )


# A user's own eligibilities ------------------------------------------------------------------


def _user_of(request, pk):
    return get_owned_or_404(
        request.user, get_user_model().objects.select_related("owner", "role"), pk
    )


@requires(catalog.USERS, catalog.FULL)
@require_http_methods(["GET", "POST"])
def eligibility_add(request, pk):
    """Make one user eligible for a role group, with a reason."""
    user = _user_of(request, pk)
    held = Eligibility.objects.filter(user_id=user.pk).values_list("role_group_id", flat=True)
    form = EligibilityForm(request.POST or None, owner=user.owner, exclude=list(held))
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            group = form.cleaned_data["role_group"]
            try:
                elevations.make_eligible(
                    user, group, actor=request.user, reason=form.cleaned_data["reason"]
                )
            except REFUSALS as exc:
                apply_service_errors(form, exc)
            else:
                messages.success(request, f"{user.label} may now ask for {group.name}.")
                return redirect("roles:user_permissions", pk=user.pk)
    return render(
        request, "roles/eligibility_form.html", {"form": form, "subject": user}, status=status
    )


@requires(catalog.USERS, catalog.FULL)
@require_http_methods(["GET", "POST"])
def eligibility_remove(request, pk):
    """Confirm, with a reason, and take one user's own eligibility away."""
    eligibility = (
        Eligibility.objects.select_related("user", "user__owner", "role_group")
        .filter(pk=pk)
        .first()
    )
    if eligibility is None:
        raise Http404("Not found.")
    user = _user_of(request, eligibility.user_id)
    form = ReasonForm(request.POST or None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                elevations.remove_eligibility(
                    eligibility, actor=request.user, reason=form.cleaned_data["reason"]
                )
            except REFUSALS as exc:
                apply_service_errors(form, exc)
            else:
                messages.success(
                    request,
                    f"{user.label} may no longer ask for {eligibility.role_group.name}.",
                )
                return redirect("roles:user_permissions", pk=user.pk)
    return render(
        request,
        "components/confirm.html",
        {
            "title": f"Remove eligibility for {eligibility.role_group.name}",
            "question": (
                f"{user.label} may ask for {eligibility.role_group.name} "
                f"({eligibility.reason}). Take that away?"
            ),
            "consequences": [
                "They can no longer ask for it; an elevation already approved runs to its end "
                "(end it from Active elevations if needed).",
            ],
            "form": form,
            "confirm_label": "Remove eligibility",
            "cancel_url": reverse("roles:user_permissions", args=[user.pk]),
        },
        status=status,
    )
