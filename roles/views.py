"""Screens of the permission engine: thin views that parse, call a service or a report, render.

Role groups, roles, compare, export/import and "who has access" need `settings_user_groups`
(read to look, full to change); a user's effective permissions need `users` (read to look, full
to change overrides). Every change that can move access shows its impact before it is saved.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count, OuterRef, Prefetch, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from portal.access import requires, signed_in
from portal.forms import apply_service_errors
from portal.generic import PortalFormView, PortalListView
from portal.owned import get_owned_or_404

from . import catalog, elevations, permissions, reports, services, sod, transfer
from .forms import (
    CELL_PREFIX,
    CloneForm,
    CompareForm,
    MatrixForm,
    OverrideForm,
    ReasonForm,
    RoleForm,
    RoleGroupCreateForm,
    RoleGroupEditForm,
    RoleModelImportForm,
    WhoHasAccessForm,
)
from .guards import EscalationRefused
from .impact import Proposal
from .models import Eligibility, Grant, PermissionOverride, Role, RoleGroup
from .postgres import without_jit
from .resolver import OverrideRule

VIEW = (catalog.USER_GROUPS, catalog.READ)
CHANGE = (catalog.USER_GROUPS, catalog.FULL)
IMPACT_ROWS = 200


def _count(queryset, field: str):
    """Return a subquery counting rows of `queryset` whose `field` is the outer row."""
    return Coalesce(
        Subquery(
            queryset.filter(**{field: OuterRef("pk")})
            .order_by()
            .values(field)
            .annotate(n=Count("*"))
            .values("n")[:1]
        ),
        Value(0),
    )


def _errors_of(exc: ValidationError) -> list[str]:
    return list(exc.messages)


def _can_change(request) -> bool:
    return request.permissions.has(*CHANGE)


def _sod_findings(owner, impact) -> list[sod.Finding]:
    """Return the separation-of-duties violations a previewed change would create, those that
    block first (the impact preview lists them before anything is saved)."""
    if impact is None:
        return []
    return sorted(sod.findings_for(owner, impact), key=lambda finding: not finding.blocks)


@signed_in
def my_access(request):
    """List the signed-in person's effective permissions, with the reason for each level."""
    effective = permissions.explained(request.user, catalog.Channel.APPLICATION)
    api = None
    if request.user.has_api_access:
        api = permissions.explained(request.user, catalog.Channel.API)
    return render(
        request,
        "roles/my_access.html",
        {
            "effective": effective,
            "granted": effective.granted(),
            "api_granted": api.granted() if api else [],
        },
    )


# Role groups ---------------------------------------------------------------------------------


class RoleGroupListView(PortalListView):
    """Every role group of the owner with what it grants and who uses it."""

    model = RoleGroup
    permission = VIEW
    template_name = "roles/rolegroup_list.html"

    def get_queryset(self):
        User = get_user_model()

        queryset = super().get_queryset().order_by("name")
        query = self.request.GET.get("q", "").strip()
        if query:
            queryset = queryset.filter(name__icontains=query)
        return queryset.annotate(
            grant_count=_count(Grant.objects.exclude(level=catalog.NONE), "role_group"),
            role_count=_count(Role.role_groups.through.objects.all(), "rolegroup"),
            extra_count=_count(User.extra_role_groups.through.objects.all(), "rolegroup"),
        )

    def get_context_data(self, **kwargs):
        q = self.request.GET.get("q", "")
        return super().get_context_data(
            q=q,
            query=urlencode({"q": q}) if q else "",
            can_change=_can_change(self.request),
            **kwargs,
        )


class RoleGroupCreateView(PortalFormView):
    permission = CHANGE
    form_class = RoleGroupCreateForm
    template_name = "roles/rolegroup_form.html"

    def perform(self, form):
        return services.create_role_group(actor=self.request.user, reason="", **form.cleaned_data)

    def get_success_url(self):
        messages.success(self.request, f"Role group {self.result.name} created. Set its grants.")
        return reverse("roles:rolegroup_matrix", args=[self.result.pk])


class _OwnedObjectMixin:
    model = RoleGroup

    def dispatch(self, request, *args, **kwargs):
        self.object = get_owned_or_404(request.user, self.model.objects.all(), kwargs["pk"])
        return super().dispatch(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        return super().get_context_data(object=self.object, **kwargs)


class RoleGroupEditView(_OwnedObjectMixin, PortalFormView):
    permission = CHANGE
    form_class = RoleGroupEditForm
    template_name = "roles/rolegroup_form.html"
    success_message = "Role group saved."

    def get_initial(self):
        g = self.object
        return {
            "name": g.name,
            "description": g.description,
            "self_activation": g.self_activation,
            "row_version": g.row_version,
        }

    def perform(self, form):
        return services.update_role_group(
            self.object,
            actor=self.request.user,
            expected_row_version=form.cleaned_data["row_version"],
            name=form.cleaned_data["name"],
            description=form.cleaned_data["description"],
            self_activation=form.cleaned_data["self_activation"],
            reason="",
        )

    def get_success_url(self):
        return reverse("roles:rolegroup_matrix", args=[self.object.pk])


class RoleGroupCloneView(_OwnedObjectMixin, PortalFormView):
    permission = CHANGE
    form_class = CloneForm
    template_name = "roles/clone_form.html"

    def get_initial(self):
        return {"name": f"Copy of {self.object.name}"[:120]}

    def perform(self, form):
        return services.clone_role_group(
            self.object, actor=self.request.user, name=form.cleaned_data["name"], reason=""
        )

    def get_success_url(self):
        messages.success(self.request, f"{self.result.name} created as a copy.")
        return reverse("roles:rolegroup_matrix", args=[self.result.pk])


@requires(*CHANGE)
@require_http_methods(["GET", "POST"])
def rolegroup_delete(request, pk):
    """Confirm and delete a role group; refuse, with the list, while roles or users use it."""
    group = get_owned_or_404(request.user, RoleGroup.objects.all(), pk)
    status = 200
    form = ReasonForm(request.POST or None)
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                services.delete_role_group(
                    group, actor=request.user, reason=form.cleaned_data["reason"]
                )
            except services.InUse:
                pass
            except ValidationError as exc:
                apply_service_errors(form, exc)
            else:
                messages.success(request, f"Role group {group.name} deleted.")
                return redirect("roles:rolegroup_list")
    roles, users, user_count = services.group_usage(group)
    return render(
        request,
        "roles/confirm_delete.html",
        {
            "title": f"Delete role group {group.name}",
            "object": group,
            "form": form,
            "in_use": bool(roles or user_count),
            "roles": roles,
            "users": users,
            "user_count": user_count,
            "cancel_url": reverse("roles:rolegroup_matrix", args=[group.pk]),
        },
        status=status,
    )


def _matrix_rows(group, saved: dict[str, str], proposed: dict[str, str], query: str):
    sections = []
    for category, label, areas in catalog.by_category(group.channel):
        rows = []
        for area in areas:
            if not services.area_matches(area, query):
                continue
            old = saved.get(area.code, catalog.NONE)
            new = proposed.get(area.code, old)
            rows.append(
                {
                    "area": area,
                    "saved": old,
                    "value": new,
                    "changed": new != old,
                    "levels": [(lvl, catalog.LEVEL_LABELS[lvl]) for lvl in area.levels],
                }
            )
        if rows:
            levels = []
            for area in areas:
                levels += [lvl for lvl in area.levels if lvl not in levels]
            sections.append(
                {
                    "category": category,
                    "label": label,
                    "rows": rows,
                    "levels": [(lvl, catalog.LEVEL_LABELS[lvl]) for lvl in levels],
                }
            )
    return sections


@requires(*VIEW, write=catalog.FULL)
@require_http_methods(["GET", "POST"])
def rolegroup_matrix(request, pk):
    """Show a role group's matrix; edit it, preview the impact, then save it in one go."""
    group = get_owned_or_404(request.user, RoleGroup.objects.all(), pk)
    saved = group.levels()
    query = (request.POST.get("q") if request.method == "POST" else request.GET.get("q")) or ""
    proposed: dict[str, str] = {}
    errors: list[str] = []
    status = 200
    row_version = group.row_version
    if request.method == "POST":
        form = MatrixForm(request.POST, channel=group.channel)
        valid = form.is_valid()
        errors = [e for field_errors in form.errors.values() for e in field_errors]
        data = form.cleaned_data
        action = data.get("action", "preview")
        proposed = data.get("cells", {})
        row_version = data.get("row_version") or row_version
        if valid and data["set_category"]:
            category, level = data["set_category"]
            proposed = services.fill_category(
                proposed, channel=group.channel, category=category, level=level, query=query
            )
        changes = {
            code: [saved.get(code, catalog.NONE), level]
            for code, level in sorted(proposed.items())
            if saved.get(code, catalog.NONE) != level
        }
        if errors:
            status = 400
        elif action == "preview":
            if not changes:
                messages.info(request, "Nothing changed: every level is as saved.")
            else:
                impact = services.impact_preview(
                    request.user.owner, grants={group.pk: {c: v[1] for c, v in changes.items()}}
                )
                return render(
                    request,
                    "roles/matrix_preview.html",
                    {
                        "object": group,
                        "changes": [
                            (catalog.get(code), old, new) for code, (old, new) in changes.items()
                        ],
                        "impact": impact,
                        "impact_rows": impact.users[:IMPACT_ROWS],
                        "sod_findings": _sod_findings(request.user.owner, impact),
                        "row_version": row_version,
                        "q": query,
                        "cell_prefix": CELL_PREFIX,
                    },
                )
        elif action == "save":
            try:
                changed = services.set_grants(
                    group,
                    proposed,
                    actor=request.user,
                    expected_row_version=row_version,
                    reason=data.get("reason", ""),
                )
            except (EscalationRefused, ValidationError) as exc:
                errors = [str(exc)] if isinstance(exc, EscalationRefused) else _errors_of(exc)
                status = 400
                group.refresh_from_db()
                saved = group.levels()
            else:
                messages.success(
                    request,
                    f"Saved: {len(changed)} cell{'s' if len(changed) != 1 else ''} changed.",
                )
                url = reverse("roles:rolegroup_matrix", args=[group.pk])
                return redirect(f"{url}?q={query}" if query else url)
    sections = _matrix_rows(group, saved, proposed, query)
    changed_count = sum(1 for s in sections for r in s["rows"] if r["changed"])
    return render(
        request,
        "roles/rolegroup_matrix.html",
        {
            "object": group,
            "sections": sections,
            "errors": errors,
            "q": query,
            "row_version": row_version,
            "changed_count": changed_count,
            "can_change": _can_change(request),
            "granted_count": len(saved),
            "roles": group.roles.order_by("name"),
            "cell_prefix": CELL_PREFIX,
        },
        status=status,
    )


# Roles ---------------------------------------------------------------------------------------


class RoleListView(PortalListView):
    """Every role with its role groups and how many users hold it."""

    model = Role
    permission = VIEW
    template_name = "roles/role_list.html"

    def get_queryset(self):

        queryset = super().get_queryset().order_by("name")
        query = self.request.GET.get("q", "").strip()
        if query:
            queryset = queryset.filter(name__icontains=query)
        return queryset.prefetch_related(
            Prefetch("role_groups", queryset=RoleGroup.objects.order_by("name"))
        )

    def get_context_data(self, **kwargs):
        User = get_user_model()

        context = super().get_context_data(**kwargs)
        roles = list(context["object_list"])
        # One grouped count for the page (a correlated count per role costs far more at 100k).
        counts = dict(
            User.objects.filter(role_id__in=[r.pk for r in roles])
            .values("role_id")
            .annotate(n=Count("pk"))
            .values_list("role_id", "n")
        )
        for role in roles:
            role.member_count = counts.get(role.pk, 0)
        context["object_list"] = roles
        q = self.request.GET.get("q", "")
        context.update(
            q=q, query=urlencode({"q": q}) if q else "", can_change=_can_change(self.request)
        )
        return context


def _fingerprint(groups) -> str:
    return ",".join(str(pk) for pk in sorted(g.pk for g in groups))


@requires(*VIEW, write=catalog.FULL)
@require_http_methods(["GET", "POST"])
def role_edit(request, pk=None):
    """Create or edit a role; a change of groups shows its impact on the holders first."""
    owner = request.user.owner
    role = get_owned_or_404(request.user, Role.objects.all(), pk) if pk else None
    if role is None and not _can_change(request):
        raise PermissionDenied("Needs full on User Groups.")
    initial = {}
    if role is not None:
        initial = {
            "name": role.name,
            "description": role.description,
            "role_groups": list(role.role_groups.all()),
            "eligible_role_groups": list(role.eligible_role_groups.all()),
            "row_version": role.row_version,
        }
    form = RoleForm(request.POST or None, initial=initial, owner=owner)
    impact = None
    status = 200
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        groups = list(data["role_groups"])
        eligible = list(data["eligible_role_groups"])
        reason = data["reason"].strip()
        try:
            if role is None:
                # The role and what its holders may ask for are saved together or not at all.
                with transaction.atomic():
                    created = services.create_role(
                        actor=request.user,
                        name=data["name"],
                        description=data["description"],
                        groups=groups,
                        reason=reason,
                    )
                    elevations.set_role_eligibility(
                        created, eligible, actor=request.user, reason=reason
                    )
                messages.success(request, f"Role {created.name} created.")
                return redirect("roles:role_list")
            moved = _fingerprint(groups) != _fingerprint(role.role_groups.all())
            if moved and data["previewed"] != _fingerprint(groups):
                impact = services.impact_preview(
                    owner, role_groups={role.pk: {g.pk for g in groups}}
                )
                form = RoleForm(
                    _posted_with(request.POST, previewed=_fingerprint(groups)),
                    owner=owner,
                    initial=initial,
                )
                form.is_valid()
            else:
                with transaction.atomic():
                    services.update_role(
                        role,
                        actor=request.user,
                        expected_row_version=data["row_version"],
                        name=data["name"],
                        description=data["description"],
                        groups=groups,
                        reason=reason,
                    )
                    elevations.set_role_eligibility(
                        role, eligible, actor=request.user, reason=reason
                    )
                messages.success(request, f"Role {data['name']} saved.")
                return redirect("roles:role_list")
        except (EscalationRefused, ValidationError) as exc:
            apply_service_errors(form, exc)
    if request.method == "POST" and form.errors:
        status = 400
    return render(
        request,
        "roles/role_form.html",
        {
            "form": form,
            "object": role,
            "impact": impact,
            "impact_rows": impact.users[:IMPACT_ROWS] if impact else [],
            "sod_findings": _sod_findings(owner, impact),
            "can_change": _can_change(request),
            "members": services.role_usage(role, limit=20) if role else ([], 0),
        },
        status=status,
    )


def _posted_with(post, **replace):
    """Return a copy of the posted data with some values replaced (lists kept)."""
    data = post.copy()
    for key, value in replace.items():
        data[key] = value
    return data


class RoleCloneView(_OwnedObjectMixin, PortalFormView):
    model = Role
    permission = CHANGE
    form_class = CloneForm
    template_name = "roles/clone_form.html"

    def get_initial(self):
        return {"name": f"Copy of {self.object.name}"[:120]}

    def perform(self, form):
        return services.clone_role(
            self.object, actor=self.request.user, name=form.cleaned_data["name"], reason=""
        )

    def get_success_url(self):
        messages.success(self.request, f"{self.result.name} created as a copy.")
        return reverse("roles:role_edit", args=[self.result.pk])


@requires(*CHANGE)
@require_http_methods(["GET", "POST"])
def role_delete(request, pk):
    """Confirm and delete a role; refuse, with the list, while users hold it."""
    role = get_owned_or_404(request.user, Role.objects.all(), pk)
    status = 200
    form = ReasonForm(request.POST or None)
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                services.delete_role(role, actor=request.user, reason=form.cleaned_data["reason"])
            except services.InUse:
                pass
            except ValidationError as exc:
                apply_service_errors(form, exc)
            else:
                messages.success(request, f"Role {role.name} deleted.")
                return redirect("roles:role_list")
    users, user_count = services.role_usage(role)
    return render(
        request,
        "roles/confirm_delete.html",
        {
            "title": f"Delete role {role.name}",
            "object": role,
            "form": form,
            "in_use": bool(user_count),
            "roles": [],
            "users": users,
            "user_count": user_count,
            "cancel_url": reverse("roles:role_edit", args=[role.pk]),
        },
        status=status,
    )


# Compare -------------------------------------------------------------------------------------


@requires(*VIEW)
def compare(request):
    """Show two roles or two role groups side by side, differences highlighted."""
    owner = request.user.owner
    data = request.GET.copy()
    kind = data.pop("kind", [""])[0]  # links from a role or group: ?kind=role&left=5
    for side in ("left", "right"):
        if kind in ("group", "role") and data.get(side, "").isdigit():
            data[side] = f"{kind}-{data[side]}"
    if "right" in data:
        form = CompareForm(data, owner=owner)
    else:
        form = CompareForm(initial={"left": data.get("left")}, owner=owner)
    rows, left, right = None, None, None
    status = 200
    if form.is_bound and form.is_valid():
        model = form.cleaned_data["model"]
        left = model.objects.filter(owner=owner, pk=form.cleaned_data["left_pk"]).first()
        right = model.objects.filter(owner=owner, pk=form.cleaned_data["right_pk"]).first()
        if left is None or right is None:
            form.add_error(None, "Choose two entries of your organisation.")
            status = 400
        else:
            rows = reports.compare(left, right)
            if form.cleaned_data["only_differences"]:
                rows = [r for r in rows if r.differs]
    elif form.is_bound:
        status = 400
    return render(
        request,
        "roles/compare.html",
        {
            "form": form,
            "rows": rows,
            "left": left,
            "right": right,
            "differences": sum(1 for r in rows or [] if r.differs),
            "is_role": isinstance(left, Role),
            "left_groups": _names(left),
            "right_groups": _names(right),
        },
        status=status,
    )


def _names(obj):
    if isinstance(obj, Role):
        return sorted(g.name for g in obj.role_groups.all())
    return []


# Export and import ---------------------------------------------------------------------------


@requires(*VIEW)
def role_model(request):
    """Offer the export of the role model and, to those who may change it, its import."""
    return render(
        request,
        "roles/role_model.html",
        {"form": RoleModelImportForm(), "can_change": _can_change(request)},
    )


@requires(*VIEW)
def role_model_export(request):
    """Download the owner's role groups and roles as JSON."""
    owner = request.user.owner
    document = transfer.export_role_model(owner)
    response = HttpResponse(
        json.dumps(document, indent=2, ensure_ascii=False), content_type="application/json"
    )
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="role-model-{owner.slug}-{stamp}.json"'
    return response


@requires(*CHANGE)
@require_POST
def role_model_import(request):
    """Preview an uploaded role model's changes and impact; import it once confirmed."""
    owner = request.user.owner
    if request.POST.get("confirm"):
        try:
            model = transfer.parse_role_model(request.POST.get("document", ""))
            epoch = request.POST.get("epoch", "")
            plan = transfer.import_role_model(
                model,
                actor=request.user,
                reason=request.POST.get("reason", "").strip()[:300],
                expected_epoch=int(epoch) if epoch.isdigit() else 0,
            )
        except EscalationRefused as exc:
            return _import_error(request, [str(exc)])
        except ValidationError as exc:
            return _import_error(request, _errors_of(exc))
        messages.success(
            request,
            f"Imported: {len(plan.new_groups)} role groups and {len(plan.new_roles)} roles "
            f"created, {len(plan.changed_groups)} groups and {len(plan.changed_roles)} roles "
            "changed.",
        )
        return redirect("roles:role_list")
    form = RoleModelImportForm(request.POST, request.FILES)
    if not form.is_valid():
        return render(
            request,
            "roles/role_model.html",
            {"form": form, "can_change": True},
            status=400,
        )
    try:
        model = transfer.parse_role_model(form.cleaned_data["document"])
        plan = transfer.plan_import(owner, model)
    except ValidationError as exc:
        return _import_error(request, _errors_of(exc), form=form)
    return render(
        request,
        "roles/import_preview.html",
        {
            "plan": plan,
            "changed_cells": [
                (name, catalog.get(code), old, new)
                for name, cells in plan.changed_groups.items()
                for code, (old, new) in cells.items()
            ],
            "document": json.dumps(model),
            "impact": plan.impact,
            "impact_rows": plan.impact.users[:IMPACT_ROWS] if plan.impact else [],
            "sod_findings": _sod_findings(owner, plan.impact),
        },
    )


def _import_error(request, errors, form=None):
    return render(
        request,
        "roles/role_model.html",
        {"form": form or RoleModelImportForm(), "can_change": True, "import_errors": errors},
        status=400,
    )


# Who has access ------------------------------------------------------------------------------


@requires(*VIEW)
def who_has_access(request):
    """List every user whose effective level on an area reaches a minimum, and through what."""
    owner = request.user.owner
    form = WhoHasAccessForm(request.GET or None)
    page, rows, eligible, status = None, [], [], 200
    total, more = 0, False
    if request.GET:
        if form.is_valid():
            area, level = form.cleaned_data["area"], form.cleaned_data["level"]
            users = reports.who_has_access(owner, area, level)
            # A page and a capped count stop early, below the cost at which PostgreSQL would
            # compile them (JIT); counting everyone may not.
            page = reports.page_by_name(
                users.select_related("role").only(*reports.SHOWN_FIELDS),
                after=request.GET.get("after"),
                before=request.GET.get("before"),
            )
            if request.GET.get("count") == "all":
                with without_jit():
                    total, more = users.count(), False
            else:
                total, more = reports.count_up_to(users)
            rows = reports.explain_access(owner, area, page.users)
            eligible = _eligible_for(owner, area, level)
        else:
            status = 400
    query = request.GET.copy()
    for name in ("after", "before", "page"):
        query.pop(name, None)
    if page is not None:
        joiner = f"?{query.urlencode()}&" if query else "?"
        page.next_url = f"{joiner}after={page.next_cursor}" if page.has_next else ""
        page.previous_url = f"{joiner}before={page.previous_cursor}" if page.has_previous else ""
    count_query = query.copy()
    count_query["count"] = "all"
    return render(
        request,
        "roles/who_has_access.html",
        {
            "form": form,
            "page": page,
            "rows": rows,
            "total": total,
            "more": more,
            "count_url": "?" + count_query.urlencode(),
            # A blank or valid form shows nothing but its two choices (a list of every area).
            "form_key": _form_key(form),
            "eligible": eligible,
            "area": catalog.BY_CODE.get(form.cleaned_data.get("area", "")) if page else None,
        },
        status=status,
    )


def _form_key(form) -> tuple | None:
    if not form.is_bound:
        return ("blank",)
    if form.is_valid():
        return (form.cleaned_data["area"], form.cleaned_data["level"])
    return None


ELIGIBLE_ROWS = 50


def _eligible_for(owner, code: str, level: str):
    """Return the users who do not reach `level` on `code` but may ask for a role group that
    gives it (through their role's eligible groups or their own eligibility).

    Starts from the few eligible people (none: no query over the users at all) and checks each
    against the rule, rather than setting them against everyone who reaches (most of a large
    owner)."""
    User = get_user_model()

    area = catalog.get(code)
    enough = [lvl for lvl in area.levels if lvl != catalog.NONE and area.at_least(lvl, level)]
    granting = Grant.objects.filter(area=code, level__in=enough, role_group__owner=owner).values(
        "role_group_id"
    )
    # One query for both sources, tagged: the role ids and the user ids made eligible (neither
    # side ordered: SQLite refuses an ORDER BY inside a UNION).
    sources = (
        Role.eligible_role_groups.through.objects.filter(rolegroup_id__in=granting)
        .annotate(source=Value("role"))
        .values_list("source", "role_id")
        .order_by()
        .union(
            Eligibility.objects.filter(role_group_id__in=granting)
            .annotate(source=Value("user"))
            .values_list("source", "user_id")
            .order_by()
        )
    )
    role_ids, user_ids = set(), set()
    for source, pk in sources:
        (role_ids if source == "role" else user_ids).add(pk)
    if not role_ids and not user_ids:
        return []
    return list(
        User.objects.filter(owner=owner)
        .filter(Q(role_id__in=role_ids) | Q(pk__in=user_ids))
        .exclude(reports.reaching(owner, code, level))
        .select_related("role")
        .order_by("last_name", "first_name", "username")[:ELIGIBLE_ROWS]
    )


# A user's effective permissions and overrides ------------------------------------------------


def _user_of(request, pk):
    User = get_user_model()

    return get_owned_or_404(
        request.user,
        User.objects.select_related("owner", "role").prefetch_related("extra_role_groups"),
        pk,
    )


def _holds_data_protection(request) -> bool:
    return request.user.is_superuser or any(
        request.permissions.has(a.code, catalog.READ) for a in catalog.AREAS if a.is_data_protection
    )


def _user_page(request, user, *, form=None, status=200, impact=None):
    channels = [catalog.Channel.APPLICATION]
    if user.has_api_access or user.kind == "api":
        channels.append(catalog.Channel.API)
    sections = []
    for channel in channels:
        effective = permissions.explained(user, channel)
        for category, label, areas in catalog.by_category(channel):
            sections.append(
                {
                    "label": label,
                    "category": category,
                    "decisions": [effective.explain(a.code) for a in areas],
                }
            )
    can_change = request.permissions.has(catalog.USERS, catalog.FULL)
    overrides = list(PermissionOverride.objects.filter(user=user).order_by("area"))
    for override in overrides:
        override.info = catalog.BY_CODE.get(override.area)
        override.expired = not override.is_in_force()
    if form is None and can_change:
        form = OverrideForm(exclude_data_protection=not _holds_data_protection(request))
    return render(
        request,
        "roles/user_permissions.html",
        {
            "subject": user,
            "sections": sections,
            "overrides": overrides,
            "form": form,
            "can_change": can_change,
            "impact": impact,
            "impact_rows": impact.users[:IMPACT_ROWS] if impact else [],
            "sod_findings": _sod_findings(user.owner, impact),
        },
        status=status,
    )


@requires(catalog.USERS, catalog.READ)
def user_permissions(request, pk):
    """Show every area of one user: its level and why (group, role, override, gate)."""
    return _user_page(request, _user_of(request, pk))


@requires(catalog.USERS, catalog.FULL)
@require_POST
def override_add(request, pk):
    """Preview then set an override of one area for one user."""
    user = _user_of(request, pk)
    form = OverrideForm(request.POST, exclude_data_protection=not _holds_data_protection(request))
    if not form.is_valid():
        return _user_page(request, user, form=form, status=400)
    data = form.cleaned_data
    if data["previewed"] != form.fingerprint():
        impact = services.impact_preview(
            user.owner,
            Proposal(
                overrides={
                    user.pk: {
                        data["area"]: OverrideRule(
                            data["area"], data["level"], data["reason"], data["expires_at"]
                        )
                    }
                }
            ),
        )
        confirm = OverrideForm(
            _posted_with(request.POST, previewed=form.fingerprint()),
            exclude_data_protection=not _holds_data_protection(request),
        )
        confirm.is_valid()
        return _user_page(request, user, form=confirm, impact=impact)
    try:
        services.set_override(
            user,
            data["area"],
            data["level"],
            actor=request.user,
            reason=data["reason"],
            expires_at=data["expires_at"],
        )
    except (EscalationRefused, ValidationError) as exc:
        apply_service_errors(form, exc)
        return _user_page(request, user, form=form, status=400)
    messages.success(request, f"Override of {catalog.get(data['area']).label} saved.")
    return redirect("roles:user_permissions", pk=user.pk)


@requires(catalog.USERS, catalog.FULL)
@require_http_methods(["GET", "POST"])
def override_remove(request, pk):
    """Confirm, with its impact, and remove one override."""
    User = get_user_model()

    override = PermissionOverride.objects.select_related("user").filter(pk=pk).first()
    if override is None:
        raise Http404("Not found.")
    user = get_owned_or_404(request.user, User.objects.select_related("owner"), override.user_id)
    form = ReasonForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            services.remove_override(
                override, actor=request.user, reason=form.cleaned_data["reason"]
            )
        except (EscalationRefused, ValidationError) as exc:
            apply_service_errors(form, exc)
        else:
            messages.success(request, "Override removed.")
            return redirect("roles:user_permissions", pk=user.pk)
    if request.method == "POST":
        status = 400
    impact = services.impact_preview(
        user.owner, Proposal(overrides={user.pk: {override.area: None}})
    )
    info = catalog.BY_CODE.get(override.area)
    return render(
        request,
        "roles/override_remove.html",
        {
            "form": form,
            "override": override,
            "info": info,
            "subject": user,
            "impact": impact,
            "impact_rows": impact.users[:IMPACT_ROWS],
        },
        status=status,
    )
