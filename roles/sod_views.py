"""Screens of separation of duties: thin views over `roles.sod`.

- Rules (`roles:sod_rule_list`): User Groups read to look; full to add the starter rules, create,
  edit (`roles:sod_rule_create`, `roles:sod_rule_edit`) and delete (`roles:sod_rule_delete`).
- Violations and exceptions report (`roles:sod_report`, `roles:sod_report_csv`): User Groups
  read, as "who has access" (the report reads the same grants).
- Exceptions (`roles:sod_exception_list`): Access Requests read to look; Approve to grant
  (`roles:sod_exception_create`) and revoke (`roles:sod_exception_revoke`), as for access
  requests. The service checks the rest (someone else asks, an expiry within a year).
"""

from __future__ import annotations

import csv

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import formats, timezone
from django.views.decorators.http import require_GET, require_http_methods

from portal.access import requires
from portal.owned import get_owned_or_404

from . import catalog, sod
from .choices import SodEffect
from .forms import ReasonForm
from .guards import EscalationRefused
from .models import SodException, SodRule
from .sod_forms import DEFAULT_ROWS, SodExceptionForm, SodRuleForm, posted_rows

VIEW = (catalog.USER_GROUPS, catalog.READ)
CHANGE = (catalog.USER_GROUPS, catalog.FULL)
EXCEPTIONS = (catalog.ACCESS_REQUESTS, catalog.READ)
APPROVE = (catalog.ACCESS_REQUESTS, catalog.APPROVE)
REFUSALS = (EscalationRefused, PermissionDenied, ValidationError)
REPORT_ROWS = 100
ENDED_ROWS = 50
CSV_CHUNK = 2000


def _refusal(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return " ".join(exc.messages)
    return str(exc) or "Not allowed."


def _when(moment) -> str:
    return formats.date_format(timezone.localtime(moment), "j M Y H:i")


def _sides(rule: SodRule) -> None:
    """Attach the rule's two sides in words (what the templates and the CSV show)."""
    rule.left_text = sod.describe_side(rule.left, rule.left_join)
    rule.right_text = sod.describe_side(rule.right, rule.right_join)


# Rules ---------------------------------------------------------------------------------------


@requires(*VIEW, write=catalog.FULL)
@require_http_methods(["GET", "POST"])
def sod_rule_list(request):
    """List the owner's rules with how many people violate each now; offer the starter rules."""
    if request.method == "POST":
        if request.POST.get("action") != "starter":
            return redirect("roles:sod_rule_list")
        try:
            created = sod.install_starter_rules(actor=request.user)
        except REFUSALS as exc:
            messages.error(request, _refusal(exc))
        else:
            if created:
                messages.success(
                    request,
                    f"{len(created)} starter rule{'s' if len(created) != 1 else ''} added: "
                    "edit or delete them to fit your organisation.",
                )
            else:
                messages.info(request, "You have every starter rule already.")
        return redirect("roles:sod_rule_list")
    now = timezone.now()
    rules = list(
        SodRule.objects.filter(owner_id=request.user.owner_id).annotate(
            exceptions_in_force=Count(
                "exceptions",
                filter=Q(exceptions__revoked_at__isnull=True, exceptions__expires_at__gt=now),
            )
        )
    )
    found = sod.violation_figures(request.user.owner, now=now, rules=rules) if rules else {}
    for rule in rules:
        _sides(rule)
        rule.violator_count = found[rule.pk].total if rule.pk in found else 0
    starters = [
        {
            "name": name,
            "description": description,
            "left": sod.describe_side(left, "any"),
            "right": sod.describe_side(right, "any"),
        }
        for name, description, left, right in sod.STARTER_RULES
    ]
    return render(
        request,
        "roles/sod_rule_list.html",
        {
            "rules": rules,
            "starters": starters,
            "can_change": request.permissions.has(*CHANGE),
            "sees_exceptions": request.permissions.has(*EXCEPTIONS),
        },
    )


def _rule_rows(rule: SodRule | None) -> dict[str, int]:
    if rule is None:
        return {"left": DEFAULT_ROWS, "right": DEFAULT_ROWS}
    return {side: max(DEFAULT_ROWS, len(getattr(rule, side)) + 1) for side in ("left", "right")}


@requires(*CHANGE)
@require_http_methods(["GET", "POST"])
def sod_rule_edit(request, pk=None):
    """Create or change a rule; the service's refusals are shown beside the fields they name."""
    rule = get_owned_or_404(request.user, SodRule.objects.all(), pk) if pk else None
    status = 200
    if request.method != "POST":
        form = SodRuleForm(
            initial=SodRuleForm.initial_for(rule) if rule else {}, rows=_rule_rows(rule)
        )
    else:
        rows = {side: max(1, posted_rows(request.POST, side)) for side in ("left", "right")}
        more = request.POST.get("action", "")
        if more in ("more-left", "more-right"):
            # More rows for a side: the page again with what was typed, nothing checked yet.
            rows[more[5:]] += 2
            form = SodRuleForm(initial=request.POST.dict(), rows=rows)
        else:
            form = SodRuleForm(request.POST, rows=rows)
            status = 400
            if form.is_valid():
                data = form.cleaned_data
                try:
                    saved = sod.save_rule(
                        rule,
                        form.rule_data(),
                        actor=request.user,
                        reason=data["reason"].strip(),
                        expected_row_version=data["row_version"] if rule else None,
                    )
                except ValidationError as exc:
                    if hasattr(exc, "error_dict"):
                        form.show_errors(exc.message_dict)
                    else:
                        form.add_error(None, exc)
                except PermissionDenied as exc:
                    form.add_error(None, str(exc))
                else:
                    verb = "saved" if rule else "created"
                    messages.success(request, f"Rule “{saved.name}” {verb}.")
                    return redirect("roles:sod_rule_list")
    return render(
        request, "roles/sod_rule_form.html", {"form": form, "object": rule}, status=status
    )


@requires(*CHANGE)
@require_http_methods(["GET", "POST"])
def sod_rule_delete(request, pk):
    """Confirm, with a reason, and delete a rule (its exceptions go with it)."""
    rule = get_owned_or_404(request.user, SodRule.objects.all(), pk)
    form = ReasonForm(request.POST or None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                sod.delete_rule(rule, actor=request.user, reason=form.cleaned_data["reason"])
            except ValidationError as exc:
                form.add_error("reason" if hasattr(exc, "error_dict") else None, exc.messages)
            except PermissionDenied as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, f"Rule “{rule.name}” deleted.")
                return redirect("roles:sod_rule_list")
    _sides(rule)
    in_force = SodException.objects.in_force().filter(rule=rule).count()
    consequences = [
        "Changes of access are no longer checked against it; the audit log keeps the rule as "
        "it was, with your reason.",
    ]
    if in_force:
        consequences.append(
            f"Its {in_force} exception{'s' if in_force != 1 else ''} in force "
            f"{'are' if in_force != 1 else 'is'} deleted with it."
        )
    return render(
        request,
        "components/confirm.html",
        {
            "title": f"Delete the rule {rule.name}",
            "question": f"“{rule.name}”: {rule.left_text}, against {rule.right_text}. Delete it?",
            "consequences": consequences,
            "form": form,
            "confirm_label": "Delete rule",
            "cancel_url": reverse("roles:sod_rule_list"),
        },
        status=status,
    )


# The report ----------------------------------------------------------------------------------


def _in_force(owner_id: int, now):
    return SodException.objects.filter(owner_id=owner_id).in_force(now)


def _covering(owner_id: int, now) -> dict[tuple[int, int], SodException]:
    """Return the exceptions in force by (rule id, user id): the latest ending one of each."""
    found: dict[tuple[int, int], SodException] = {}
    for exception in _in_force(owner_id, now).select_related("approved_by", "requested_by"):
        key = (exception.rule_id, exception.user_id)
        if key not in found or exception.expires_at > found[key].expires_at:
            found[key] = exception
    return found


@require_GET
@requires(*VIEW)
def sod_report(request):
    """Show, per rule, the people who hold both sides now and whether an exception covers them."""
    owner_id = request.user.owner_id
    now = timezone.now()
    found = sod.report(request.user.owner, now=now, rows=REPORT_ROWS)
    covering = _covering(owner_id, now) if any(s.covered for s in found) else {}
    sections = []
    for section in found:
        _sides(section.rule)
        rows = [
            {"user": user, "exception": covering.get((section.rule.pk, user.pk))}
            for user in section.users
        ]
        sections.append(
            {"rule": section.rule, "rows": rows, "total": section.total, "covered": section.covered}
        )
    total = sum(s["total"] for s in sections)
    covered = sum(s["covered"] for s in sections)
    return render(
        request,
        "roles/sod_report.html",
        {
            "sections": sections,
            "total": total,
            "covered": covered,
            "uncovered": total - covered,
            "row_limit": REPORT_ROWS,
            "may_approve": request.permissions.has(*APPROVE),
            "sees_exceptions": request.permissions.has(*EXCEPTIONS),
            "can_change": request.permissions.has(*CHANGE),
        },
    )


class _Echo:
    """A file-like object whose write returns the line, for csv.writer in a generator."""

    def write(self, value):
        return value


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
REPORT_COLUMNS = [
    "Rule",
    "Effect",
    "First side",
    "Second side",
    "Person",
    "Username",
    "Email",
    "Role",
    "Exception",
    "Exception ends",
    "Exception reason",
    "Asked by",
    "Approved by",
]


def _cell(value) -> str:
    """Return a CSV cell that a spreadsheet will not run as a formula (names are typed input)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def report_lines(owner_id: int, now, tz):
    """Yield the CSV lines of the report: one per rule and person violating it, streamed."""
    writer = csv.writer(_Echo())
    yield writer.writerow(REPORT_COLUMNS)
    covering = _covering(owner_id, now)
    effects = dict(SodEffect.choices)
    for rule in SodRule.objects.filter(owner_id=owner_id).select_related("owner"):
        _sides(rule)
        people = (
            sod.violators(rule, now=now)
            .order_by("last_name", "first_name", "username")
            .values_list(
                "pk", "username", "display_name", "first_name", "last_name", "email", "role__name"
            )
        )
        for pk, username, display, first, last, email, role in people.iterator(CSV_CHUNK):
            exception = covering.get((rule.pk, pk))
            yield writer.writerow(
                [
                    _cell(value)
                    for value in (
                        rule.name,
                        effects.get(rule.effect, rule.effect),
                        rule.left_text,
                        rule.right_text,
                        display or f"{first} {last}".strip() or username,
                        username,
                        email,
                        role or "",
                        "yes" if exception else "no",
                        exception.expires_at.astimezone(tz).isoformat(timespec="minutes")
                        if exception
                        else "",
                        exception.reason if exception else "",
                        exception.requested_by.label
                        if exception and exception.requested_by
                        else "",
                        exception.approved_by.label if exception and exception.approved_by else "",
                    )
                ]
            )


@require_GET
@requires(*VIEW)
def sod_report_csv(request):
    """Stream the report as CSV: every person violating every rule, none left out."""
    tz = timezone.get_current_timezone()
    now = timezone.now()
    stamp = timezone.localtime(now, tz).strftime("%Y%m%d-%H%M")
    response = StreamingHttpResponse(
        report_lines(request.user.owner_id, now, tz), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = (
        f'attachment; filename="separation-of-duties-{request.user.owner.slug}-{stamp}.csv"'
    )
    response["Cache-Control"] = "no-store"
    return response


# Exceptions ----------------------------------------------------------------------------------


@require_GET
@requires(*EXCEPTIONS)
def sod_exception_list(request):
    """List the exceptions in force (soonest ending first) and those that ended lately."""
    owner_id = request.user.owner_id
    now = timezone.now()
    related = ("rule", "user", "requested_by", "approved_by")
    in_force = _in_force(owner_id, now).select_related(*related).order_by("expires_at", "pk")
    page = Paginator(in_force, 50).get_page(request.GET.get("page"))
    ended = list(
        SodException.objects.filter(owner_id=owner_id)
        .filter(Q(revoked_at__isnull=False) | Q(expires_at__lte=now))
        .select_related(*related)
        .order_by("-created_at", "-pk")[:ENDED_ROWS]
    )
    for exception in ended:
        exception.ended_at = exception.revoked_at or exception.expires_at
    return render(
        request,
        "roles/sod_exception_list.html",
        {
            "page": page,
            "exceptions": page.object_list,
            "ended": ended,
            "may_approve": request.permissions.has(*APPROVE),
            "takes_exceptions": SodRule.objects.filter(
                owner_id=owner_id, effect=SodEffect.EXCEPTION
            ).exists(),
        },
    )


@requires(*APPROVE)
@require_http_methods(["GET", "POST"])
def sod_exception_create(request):
    """Approve an exception to a rule for one person, asked for by a colleague."""
    owner = request.user.owner
    initial = {}
    if request.method == "GET":
        rule_id, user_id = request.GET.get("rule", ""), request.GET.get("user", "")
        if rule_id.isdigit():
            initial["rule"] = rule_id
        if user_id.isdigit():
            person = get_user_model().objects.filter(owner=owner, pk=user_id).first()
            if person is not None:
                initial["user"] = person.username
    form = SodExceptionForm(
        request.POST or None, owner=owner, approver=request.user, initial=initial
    )
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            data = form.cleaned_data
            try:
                made = sod.grant_exception(
                    data["rule"],
                    data["user"],
                    actor=request.user,
                    requested_by=data["requested_by"],
                    reason=data["reason"],
                    expires_at=data["expires_at"],
                )
            except ValidationError as exc:
                if hasattr(exc, "error_dict"):
                    for field, errors in exc.error_dict.items():
                        form.add_error(field if field in form.fields else None, errors)
                else:
                    form.add_error(None, exc)
            except PermissionDenied as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(
                    request,
                    f"Exception granted: {made.user.label} may hold both sides of "
                    f"“{made.rule.name}” until {_when(made.expires_at)}.",
                )
                return redirect("roles:sod_exception_list")
    return render(
        request,
        "roles/sod_exception_form.html",
        {
            "form": form,
            "has_rules": form.fields["rule"].queryset.exists(),
        },
        status=status,
    )


@requires(*APPROVE)
@require_http_methods(["GET", "POST"])
def sod_exception_revoke(request, pk):
    """Confirm, with a reason, and end an exception now."""
    exception = get_owned_or_404(
        request.user,
        SodException.objects.select_related("rule", "user", "approved_by"),
        pk,
    )
    form = ReasonForm(request.POST or None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                ended = sod.revoke_exception(
                    exception, actor=request.user, reason=form.cleaned_data["reason"]
                )
            except REFUSALS as exc:
                form.add_error(None, _refusal(exc))
            else:
                if not ended:  # the service found it no longer in force: nothing was recorded
                    form.add_error(None, "This exception has ended already.")
                else:
                    messages.success(
                        request,
                        f"Exception ended: {exception.user.label} may no longer hold both sides "
                        f"of “{exception.rule.name}”.",
                    )
                    return redirect("roles:sod_exception_list")
    return render(
        request,
        "components/confirm.html",
        {
            "title": f"End the exception for {exception.user.label}",
            "question": (
                f"{exception.user.label} may hold both sides of “{exception.rule.name}” until "
                f"{_when(exception.expires_at)} ({exception.reason}). End it now?"
            ),
            "consequences": [
                "Access they hold already stays: the report lists them as violating the rule, "
                "without an exception.",
                "A change that would give them both sides again is refused.",
                "The audit log records it, with your reason.",
            ],
            "form": form,
            "confirm_label": "End the exception",
            "cancel_url": reverse("roles:sod_exception_list"),
        },
        status=status,
    )
