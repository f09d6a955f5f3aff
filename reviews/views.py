"""Governance screens: the reviewers' dashboard, access review campaigns, standing reports.

Reading needs User Activity read (security reviewers). Opening and closing a campaign needs
full Data Protection Responsibilities; deciding and applying is checked by the services
(a listed reviewer, or full on Users).
"""

from __future__ import annotations

import csv
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from audit import charts, queries
from portal.access import requires
from portal.forms import apply_service_errors
from portal.owned import get_owned_or_404
from roles import catalog, sod
from roles.guards import EscalationRefused

from . import reports, services
from .choices import CampaignStatus, Decision
from .forms import CampaignForm, DecisionForm, DormantForm, ItemFilterForm
from .models import ReviewCampaign

READ = (catalog.USER_ACTIVITY, catalog.READ)


def _campaign_or_404(request, pk) -> ReviewCampaign:
    return get_owned_or_404(request.user, ReviewCampaign.objects.all(), pk)


def _progress(campaign: ReviewCampaign) -> dict:
    figures = campaign.items.aggregate(
        total=Count("pk"),
        decided=Count("pk", filter=~Q(decision=Decision.PENDING)),
        applied=Count("pk", filter=Q(applied_at__isnull=False)),
        refused=Count("pk", filter=~Q(apply_error="")),
    )
    total = figures["total"] or 0
    figures["percent"] = round(100 * figures["decided"] / total) if total else 0
    figures["to_apply"] = figures["decided"] - figures["applied"] - figures["refused"]
    figures["pending"] = total - figures["decided"]
    return figures


# Dashboard -------------------------------------------------------------------------------------


@require_GET
@requires(*READ)
def dashboard(request):
    """Show the reviewer's dashboard: report counts, elevations and waiting access requests,
    open campaigns, the sign-in chart."""
    owner = request.user.owner
    campaigns = list(
        ReviewCampaign.objects.filter(owner=owner, status=CampaignStatus.OPEN).annotate(
            total=Count("items"),
            decided=Count("items", filter=~Q(items__decision=Decision.PENDING)),
        )[:10]
    )
    chart = charts.sign_in_chart(queries.daily_sign_ins(queries.scope_for(request)))
    return render(
        request,
        "reviews/dashboard.html",
        {
            "counts": reports.counts(owner),
            "campaigns": campaigns,
            "chart": chart,
            "can_manage": services.can_manage(request.user),
            "dormant_days": reports.DEFAULT_DORMANT_DAYS,
            "sees_requests": request.permissions.has(catalog.ACCESS_REQUESTS, catalog.READ),
        },
    )


# Campaigns -------------------------------------------------------------------------------------


@require_GET
@requires(*READ)
def campaign_list(request):
    """List the owner's campaigns with their progress, open ones first."""
    campaigns = (
        ReviewCampaign.objects.filter(owner_id=request.user.owner_id)
        .annotate(
            total=Count("items"),
            decided=Count("items", filter=~Q(items__decision=Decision.PENDING)),
        )
        .select_related("created_by")
        .order_by("-status", "-created_at", "-pk")  # "open" sorts after "closed"
    )
    page = Paginator(campaigns, 50).get_page(request.GET.get("page"))
    return render(
        request,
        "reviews/campaign_list.html",
        {
            "page": page,
            "campaigns": page.object_list,
            "can_manage": services.can_manage(request.user),
        },
    )


@require_http_methods(["GET", "POST"])
@requires(catalog.DP_RESPONSIBILITIES, catalog.FULL)
def campaign_create(request):
    """Open a campaign: choose its scope, reviewers and due date."""
    form = CampaignForm(request.POST or None, owner=request.user.owner)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            campaign = services.create_campaign(
                actor=request.user,
                name=data["name"],
                scope_kind=data["scope_kind"],
                reviewers=data["reviewers"],
                due_date=data["due_date"],
                role=data.get("role"),
                department=data.get("department"),
                area=data.get("area") or "",
                level=data.get("level") or "",
            )
        except ValidationError as exc:
            apply_service_errors(form, exc)
        else:
            count = campaign.items.count()
            messages.success(
                request, f"Campaign opened: {count} user{'s' if count != 1 else ''} to review."
            )
            return redirect("reviews:campaign_detail", pk=campaign.pk)
    status = 400 if request.method == "POST" else 200
    return render(request, "reviews/campaign_form.html", {"form": form}, status=status)


def _filtered_items(campaign: ReviewCampaign, form: ItemFilterForm):
    items = campaign.items.select_related("decided_by", "new_role")
    if not form.is_valid():
        return items
    show = form.cleaned_data.get("show") or "all"
    if show == "pending":
        items = items.filter(decision=Decision.PENDING)
    elif show == "decided":
        items = items.exclude(decision=Decision.PENDING).filter(
            applied_at__isnull=True, apply_error=""
        )
    elif show == "refused":
        items = items.exclude(apply_error="")
    elif show == "applied":
        items = items.filter(applied_at__isnull=False)
    text = form.cleaned_data.get("q")
    if text:
        items = items.filter(
            Q(snapshot__label__icontains=text) | Q(snapshot__username__icontains=text)
        )
    return items


@require_GET
@requires(*READ)
def campaign_detail(request, pk):
    """Show a campaign: progress, its items (filtered), and what can be done next."""
    campaign = _campaign_or_404(request, pk)
    form = ItemFilterForm(request.GET or None)
    page = Paginator(_filtered_items(campaign, form), 50).get_page(request.GET.get("page"))
    query = urlencode({k: v for k, v in request.GET.items() if k != "page"})
    # One query for the page, whatever its length: the blocking rules each person breaks now.
    breaking = sod.blocking_violations(
        request.user.owner, {item.user_id for item in page.object_list if item.user_id}
    )
    for item in page.object_list:
        item.sod_rules = [name for _, name in breaking.get(item.user_id, [])]
    return render(
        request,
        "reviews/campaign_detail.html",
        {
            "campaign": campaign,
            "progress": _progress(campaign),
            "form": form,
            "page": page,
            "items": page.object_list,
            "query": query,
            "reviewers": campaign.reviewers.order_by("last_name", "first_name"),
            "can_decide": campaign.is_open and services.can_decide(request.user, campaign),
            "can_manage": campaign.is_open and services.can_manage(request.user),
        },
    )


@require_http_methods(["GET", "POST"])
@requires(*READ)
def item_decide(request, pk, item_pk):
    """Show one user's frozen access and record the reviewer's decision on it."""
    campaign = _campaign_or_404(request, pk)
    item = campaign.items.select_related("campaign", "decided_by", "new_role").filter(pk=item_pk)
    item = item.first()
    if item is None:
        raise Http404("Not found.")
    initial = {
        "decision": item.decision if item.is_decided else None,
        "new_role": item.new_role_id,
        "override_id": item.override_id,
        "eligibility_id": item.eligibility_id,
        "comment": item.comment,
    }
    form = DecisionForm(request.POST or None, item=item, initial=initial)
    can_decide = (
        campaign.is_open and not item.applied_at and services.can_decide(request.user, campaign)
    )
    if request.method == "POST":
        if not can_decide:
            raise PermissionDenied("You cannot decide on this item.")
        if form.is_valid():
            data = form.cleaned_data
            try:
                services.record_decision(
                    item,
                    actor=request.user,
                    decision=data["decision"],
                    comment=data["comment"],
                    new_role=data.get("new_role"),
                    override_id=data.get("override_id"),
                    eligibility_id=data.get("eligibility_id"),
                )
            except (ValidationError, EscalationRefused) as exc:
                apply_service_errors(form, exc)
            else:
                messages.success(request, f"Decision recorded for {item.label}.")
                following = (
                    campaign.items.filter(decision=Decision.PENDING, pk__gt=item.pk)
                    .values_list("pk", flat=True)
                    .first()
                )
                if following and request.POST.get("next") == "pending":
                    return redirect("reviews:item_decide", pk=campaign.pk, item_pk=following)
                return redirect(reverse("reviews:campaign_detail", args=[campaign.pk]))
    snapshot = item.snapshot
    application = [
        (catalog.BY_CODE[code], level)
        for code, level in snapshot.get("application", {}).items()
        if code in catalog.BY_CODE
    ]
    api = [
        (catalog.BY_CODE[code], level)
        for code, level in snapshot.get("api", {}).items()
        if code in catalog.BY_CODE
    ]
    return render(
        request,
        "reviews/item_decide.html",
        {
            "campaign": campaign,
            "item": item,
            "form": form,
            "can_decide": can_decide,
            "application": sorted(application, key=lambda p: catalog.AREAS.index(p[0])),
            "api": sorted(api, key=lambda p: catalog.AREAS.index(p[0])),
            "eligible": snapshot.get("eligible", []),
            "sees_roles": request.permissions.has(catalog.USER_GROUPS, catalog.READ),
        },
        status=400 if request.method == "POST" else 200,
    )


@require_http_methods(["GET", "POST"])
@requires(*READ)
def campaign_apply(request, pk):
    """Confirm, then apply every decided item through the domain services."""
    campaign = _campaign_or_404(request, pk)
    if not (campaign.is_open and services.can_decide(request.user, campaign)):
        raise PermissionDenied("You cannot apply the decisions of this campaign.")
    waiting = (
        campaign.items.exclude(decision=Decision.PENDING)
        .filter(applied_at__isnull=True, apply_error="")
        .select_related("new_role")
    )
    if request.method == "POST":
        result = services.apply_decisions(campaign, actor=request.user)
        if result.applied:
            messages.success(request, f"{len(result.applied)} decision(s) applied.")
        if result.refused:
            messages.error(
                request,
                f"{len(result.refused)} decision(s) refused; the reason is shown on each. "
                "Decide them again.",
            )
        if not result.applied and not result.refused:
            messages.info(request, "Nothing was waiting to be applied.")
        return redirect("reviews:campaign_detail", pk=campaign.pk)
    return render(
        request, "reviews/campaign_apply.html", {"campaign": campaign, "waiting": list(waiting)}
    )


@require_http_methods(["GET", "POST"])
@requires(catalog.DP_RESPONSIBILITIES, catalog.FULL)
def campaign_close(request, pk):
    """Confirm, then close a campaign whose every decision is applied."""
    campaign = _campaign_or_404(request, pk)
    error = ""
    if request.method == "POST":
        try:
            services.close_campaign(campaign, actor=request.user)
        except ValidationError as exc:
            error = " ".join(exc.messages)
        else:
            messages.success(request, "Campaign closed. Its report is ready.")
            return redirect("reviews:campaign_report", pk=campaign.pk)
    waiting = services.open_items(campaign).count() if campaign.is_open else 0
    return render(
        request,
        "reviews/campaign_close.html",
        {"campaign": campaign, "waiting": waiting, "error": error},
        status=400 if error else 200,
    )


def _report_items(campaign: ReviewCampaign):
    return campaign.items.select_related("decided_by", "applied_by", "new_role").order_by(
        "snapshot__label", "pk"
    )


@require_GET
@requires(*READ)
def campaign_report(request, pk):
    """Show the printable report of a campaign: who reviewed what, decisions, what changed."""
    campaign = _campaign_or_404(request, pk)
    items = list(_report_items(campaign))
    summary = {label: 0 for _, label in Decision.choices}
    for item in items:
        summary[item.get_decision_display()] += 1
    return render(
        request,
        "reviews/campaign_report.html",
        {
            "campaign": campaign,
            "items": items,
            "summary": [(k, v) for k, v in summary.items() if v],
            "progress": _progress(campaign),
            "reviewers": campaign.reviewers.order_by("last_name", "first_name"),
        },
    )


@require_GET
@requires(*READ)
def campaign_report_csv(request, pk):
    """Download the campaign's report as CSV, one row per reviewed user."""
    campaign = _campaign_or_404(request, pk)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    stamp = timezone.localdate().isoformat()
    filename = f"access-review-{campaign.pk}-{stamp}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    writer = csv.writer(response)
    writer.writerow(
        [
            "User",
            "Login",
            "Role at review",
            "Extra groups",
            "Overrides",
            "Eligible for",
            "Decision",
            "New role",
            "Comment",
            "Decided by",
            "Decided at",
            "Applied at",
            "What changed",
            "Refused because",
        ]
    )
    for item in _report_items(campaign):
        snap = item.snapshot
        writer.writerow(
            [
                _cell(item.label),
                _cell(snap.get("username", "")),
                _cell(snap.get("role") or ""),
                _cell("; ".join(snap.get("extra_groups", []))),
                _cell("; ".join(f"{o['label']}={o['level']}" for o in snap.get("overrides", []))),
                _cell(
                    "; ".join(
                        f"{e['group']} ({'role' if e['via'] == 'role' else 'own'})"
                        for e in snap.get("eligible", [])
                    )
                ),
                _decision_cell(item),
                _cell(item.new_role.name if item.new_role else ""),
                _cell(item.comment),
                _cell(item.decided_by.label if item.decided_by else ""),
                item.decided_at.isoformat() if item.decided_at else "",
                item.applied_at.isoformat() if item.applied_at else "",
                _cell(item.outcome),
                _cell(item.apply_error),
            ]
        )
    return response


def _decision_cell(item) -> str:
    eligibility = item.eligibility_snapshot()
    if eligibility:
        return _cell(f"{item.get_decision_display()}: {eligibility['group']}")
    return item.get_decision_display()


def _cell(value: str) -> str:
    """Neutralise spreadsheet formulas in text cells (CSV injection)."""
    value = str(value or "")
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


# Standing reports ------------------------------------------------------------------------------


def _paged(request, rows, per_page: int = 50):
    return Paginator(rows, per_page).get_page(request.GET.get("page"))


@require_GET
@requires(*READ)
def report_dormant(request):
    """List active users without a sign-in for N days (N from the form, default 90)."""
    form = DormantForm(request.GET or None, initial={"days": reports.DEFAULT_DORMANT_DAYS})
    days = reports.DEFAULT_DORMANT_DAYS
    if form.is_bound and form.is_valid():
        days = form.cleaned_data["days"]
    users = reports.dormant_accounts(request.user.owner, days=days)
    if form.is_bound and not form.is_valid():
        users = users.none()
    page = _paged(request, users)
    return render(
        request,
        "reviews/report_dormant.html",
        {
            "form": form,
            "page": page,
            "rows": page.object_list,
            "days": days,
            "query": urlencode({"days": days}),
        },
        status=400 if form.is_bound and not form.is_valid() else 200,
    )


@require_GET
@requires(*READ)
def report_without_2fa(request):
    """List active local users without two-factor sign-in, where the policy does not force it."""
    owner = request.user.owner
    forced = reports.policy_forces_2fa(owner)
    page = _paged(request, reports.users_without_2fa(owner, forced=forced))
    return render(
        request,
        "reviews/report_without_2fa.html",
        {"page": page, "rows": page.object_list, "forced": forced},
    )


@require_GET
@requires(*READ)
def report_tokens(request):
    """List live API tokens that expire within 14 days or were never used."""
    now = timezone.now()
    page = _paged(request, reports.tokens_to_review(request.user.owner, now=now))
    return render(
        request,
        "reviews/report_tokens.html",
        {"page": page, "rows": page.object_list, "now": now, "days": reports.TOKEN_WARNING_DAYS},
    )


@require_GET
@requires(*READ)
def report_overrides(request):
    """List overrides in force that raise a user's level above what their groups give."""
    rows = reports.overrides_above_role(request.user.owner)
    return render(request, "reviews/report_overrides.html", {"rows": rows})


@require_GET
@requires(*READ)
def report_unused_groups(request):
    """List role groups that no role includes."""
    page = _paged(request, reports.unused_role_groups(request.user.owner))
    return render(
        request, "reviews/report_unused_groups.html", {"page": page, "rows": page.object_list}
    )


@require_GET
@requires(*READ)
def report_privileged(request):
    """List users holding any data-protection area, or full on Users."""
    page = _paged(request, reports.privileged_users(request.user.owner))
    columns = reports.privileged_columns()
    rows = [(user, [getattr(user, name) for name, _ in columns]) for user in page.object_list]
    return render(
        request,
        "reviews/report_privileged.html",
        {"page": page, "rows": rows, "columns": columns},
    )
