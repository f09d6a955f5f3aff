"""Screens of the accounts app: home, the users list, the user record and its actions, and the
public set-password page of the access email."""

from __future__ import annotations

from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.functional import SimpleLazyObject
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.generic import TemplateView

from audit.models import AuditEvent
from portal.access import public, requires, signed_in
from portal.forms import apply_service_errors
from portal.generic import PortalConfirmView, PortalFormView, PortalMixin
from portal.navigation import link, links_for, menu_for
from portal.owned import get_owned_or_404
from roles import catalog, permissions
from roles.guards import EscalationRefused, check_can_manage_user

from . import listing, record, services, users
from .choices import AccessSource
from .forms import (
    BulkDeactivateForm,
    LoginFlagForm,
    SetPasswordForm,
    UserCreateForm,
    UserEditForm,
    UserFilterForm,
    reason_text,
)
from .models import PasswordSetToken, UpdateReason, User

USERS, READ, FULL = catalog.USERS, catalog.READ, catalog.FULL


@signed_in
def home(request):
    """Show who is signed in and the screens they may open."""
    sections = tuple((name, items) for name, items in menu_for(request) if name != "You")
    return render(
        request,
        "home.html",
        {"sections": sections, "my_access_url": link("roles:my_access", links_for(request))},
    )


# ---------------------------------------------------------------------------------------------
# Users list and export


def _list_params(request, form) -> dict:
    allowed = set(form.fields) | {"sort", "after", "before", "page"}
    return {k: v for k, v in request.GET.items() if k in allowed and v}


def _sort_links(params: dict, sort: str, descending: bool) -> dict:
    """Return, per sortable column, its link (toggling the direction) and its aria-sort state."""
    base = {k: v for k, v in params.items() if k not in {"sort", "after", "before", "page"}}
    links = {}
    for name in listing.SORTS:
        current = name == sort
        target = f"-{name}" if current and not descending else name
        state = ("descending" if descending else "ascending") if current else "none"
        links[name] = {"url": "?" + urlencode({**base, "sort": target}), "state": state}
    return links


def can_bulk_deactivate(request) -> bool:
    user = request.user
    return request.permissions.has(USERS, FULL) and (
        user.is_superuser or user.expert_level >= users.EXPERT_LEVEL_FOR_BULK
    )


@requires(USERS, READ)
@require_GET
def user_list(request):
    """List the owner's users: search, filters, sortable columns, keyset pages, bulk actions."""
    owner = request.user.owner
    form = UserFilterForm(request.GET or None, owner=owner)
    data = form.cleaned_data if form.is_bound and form.is_valid() else {}
    sort, descending = listing.parse_sort(request.GET.get("sort"))
    params = _list_params(request, form)
    queryset = listing.filtered(owner, data)
    total, more = listing.capped_count(queryset)
    # Past the cap, PostgreSQL's estimate rather than a count of every user on every page.
    estimate = listing.about(listing.estimated_count(queryset) or 0) if more else 0
    page = listing.keyset_page(
        queryset.select_related("role").only(*listing.ROW_FIELDS),
        sort=sort,
        descending=descending,
        params=params,
        size=listing.PAGE_SIZE,
    )
    export_params = {k: v for k, v in params.items() if k not in {"after", "before", "page"}}
    bulk = bool(can_bulk_deactivate(request) and page.rows)
    zone = timezone.get_current_timezone_name()
    listing.add_department_names(page.rows)
    for user in page.rows:
        user.row_key = listing.row_key(user, bulk=bulk, zone=zone)
    offered = listing.offered(
        form, UpdateReason.objects.for_owner(owner).active() if bulk else None
    )
    return render(
        request,
        "accounts/user_list.html",
        {
            "form": form,
            "page": page,
            "users": page.rows,
            "total": total,
            "more": more,
            "estimate": estimate,
            "sort_links": _sort_links(params, sort, descending),
            "export_query": urlencode(export_params),
            "back_query": urlencode(params),
            "can_change": request.permissions.has(USERS, FULL),
            "bulk": bulk,
            # Built only when its fields are drawn (a key not seen yet): the reasons offered.
            "bulk_form": SimpleLazyObject(lambda: BulkDeactivateForm(owner=owner)),
            "bulk_key": offered.get("reason"),
            "filter_key": listing.filter_key(form, offered),
        },
    )


@requires(USERS, READ)
@require_GET
def user_export(request):
    """Stream the filtered users list as CSV (every page), and record the export."""
    owner = request.user.owner
    form = UserFilterForm(request.GET or None, owner=owner)
    data = form.cleaned_data if form.is_bound and form.is_valid() else {}
    sort, descending = listing.parse_sort(request.GET.get("sort"))
    queryset = listing.ordered(listing.filtered(owner, data), sort, descending)
    services.record_user_export(
        actor=request.user, filters={k: v for k, v in data.items() if v not in (None, "")}
    )
    response = StreamingHttpResponse(listing.csv_rows(queryset), content_type="text/csv")
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="users-{stamp}.csv"'
    response["Cache-Control"] = "no-store"
    return response


@requires(USERS, FULL)
@require_POST
def user_bulk_deactivate(request):
    """Deactivate the users ticked on the list (expert level 2 or more), all or none."""
    owner = request.user.owner
    back = reverse("accounts:user_list")
    if request.POST.get("back"):
        back += "?" + request.POST["back"].lstrip("?").replace("\n", "").replace("\r", "")
    form = BulkDeactivateForm(request.POST, owner=owner)
    if not form.is_valid():
        errors = [e for errs in form.errors.values() for e in errs]
        messages.error(request, "Nothing was deactivated: " + " ".join(errors))
        return redirect(back)
    try:
        done = users.bulk_deactivate(
            form.cleaned_data["users"],
            actor=request.user,
            source=AccessSource.SCREEN,
            reason=reason_text(form.cleaned_data["update_reason"]),
        )
    except (PermissionDenied, ValidationError) as exc:
        text = " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
        messages.error(request, "Nothing was deactivated: " + text)
        return redirect(back)
    if done:
        messages.success(request, f"Deactivated {len(done)} user{'s' if len(done) != 1 else ''}.")
    else:
        messages.info(request, "The ticked users were already deactivated.")
    return redirect(back)


# ---------------------------------------------------------------------------------------------
# Create and edit


class OwnerFormMixin:
    def get_form_kwargs(self):
        kwargs = super().get_form_kwargs()
        kwargs["owner"] = self.request.user.owner
        return kwargs


class UserCreateView(OwnerFormMixin, PortalFormView):
    """Create a user; the person then gets a password through the access email."""

    permission = (USERS, FULL)
    form_class = UserCreateForm
    template_name = "accounts/user_form.html"

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "actor": self.request.user}

    def perform(self, form):
        return users.create_user(
            actor=self.request.user,
            data=form.service_data(),
            reason="",
            source=AccessSource.SCREEN,
        )

    def get_success_url(self):
        return reverse("accounts:user_detail", args=[self.result.pk])

    def form_valid(self, form):
        response = super().form_valid(form)
        if getattr(self, "result", None) is not None:
            messages.success(
                self.request,
                f"{self.result.label} was created. Send the access email so they can set a "
                "password.",
            )
        return response


class UserRecordMixin(PortalMixin):
    """A screen about one user of the owner: another owner's user answers 404."""

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated:
            self.subject = get_owned_or_404(
                request.user,
                User.objects.select_related("owner", "role"),
                kwargs["pk"],
            )
        return super().dispatch(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(record_context(self.request, self.subject, getattr(self, "tab", "")))
        return context


class UserEditView(OwnerFormMixin, UserRecordMixin, PortalFormView):
    """Edit a user's record with an Update Reason; a concurrent save is never lost silently."""

    permission = (USERS, FULL)
    form_class = UserEditForm
    template_name = "accounts/user_form.html"
    tab = "details"

    def get_form_kwargs(self):
        kwargs = super().get_form_kwargs()
        kwargs["instance"] = User.objects.get(pk=self.subject.pk)
        kwargs["actor"] = self.request.user
        return kwargs

    def form_valid(self, form):
        # As PortalFormView, with one more case: a lost update also needs the current
        # row_version in the form and the list of what changed meanwhile.
        try:
            self.result = users.update_user(
                self.subject,
                actor=self.request.user,
                source=AccessSource.SCREEN,
                data=form.service_data(),
                expected_row_version=form.cleaned_data["row_version"],
                reason=reason_text(form.cleaned_data["update_reason"]),
                details=form.cleaned_data["update_details"],
            )
        except users.RecordChanged as exc:
            form.data = form.data.copy()
            form.data["row_version"] = str(exc.current_row_version)
            form.add_error(None, exc.messages[0])
            self.conflict_events = exc.events
            return self.form_invalid(form)
        except (EscalationRefused, ValidationError) as exc:
            apply_service_errors(form, exc)
            return self.form_invalid(form)
        return redirect(self.get_success_url())

    def get_success_url(self):
        if self.result:
            messages.success(self.request, f"Saved the changes to {self.subject.label}.")
        else:
            messages.info(self.request, "Nothing changed, so nothing was saved.")
        return reverse("accounts:user_detail", args=[self.subject.pk])

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["conflict_events"] = [event_rows(e) for e in getattr(self, "conflict_events", [])]
        return context


# ---------------------------------------------------------------------------------------------
# The user record and its tabs

TABS = (
    ("details", "Details", "accounts:user_detail"),
    ("permissions", "Permissions", "accounts:user_permissions"),
    ("security", "Security", "accounts:user_security"),
    ("activity", "Activity", "accounts:user_activity"),
    ("commission", "Commission", "accounts:user_commission"),
)


def record_context(request, subject: User, tab: str) -> dict:
    """Return what every page about one user shows: the tabs and the actions allowed."""
    can_change = request.permissions.has(USERS, FULL)
    may_manage = _may_manage(request.user, subject)
    return {
        "extra_actions": record.actions_for(request, subject, may_manage=may_manage),
        "subject": subject,
        "tabs": [
            (reverse(url_name, args=[subject.pk]), label, slug == tab)
            for slug, label, url_name in TABS
        ],
        "can_change": can_change and may_manage,
        "can_send_access_email": (
            request.permissions.has(catalog.DP_ACCESS, FULL)
            and _may_manage(request.user, subject)
            and subject.allow_login
            and subject.kind == "interactive"
            and subject.auth_source == "local"
        ),
    }


def _may_manage(actor: User, subject: User) -> bool:
    try:
        check_can_manage_user(actor, subject)
    except PermissionDenied:
        return False
    return True


class UserTabView(UserRecordMixin, TemplateView):
    permission = (USERS, READ)


class UserDetailView(UserTabView):
    """The user's details, access flags and departments."""

    tab = "details"
    template_name = "accounts/user_detail.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        subject = self.subject
        context["departments"] = list(subject.departments.all())
        context["extra_groups"] = list(subject.extra_role_groups.all())
        context["can_delete"] = context["can_change"] and not users.has_history(subject)
        return context


class UserPermissionsView(UserTabView):
    """The user's effective permissions and what gives each level."""

    tab = "permissions"
    template_name = "accounts/user_permissions.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        subject = self.subject
        effective = permissions.explained(subject, catalog.Channel.APPLICATION)
        api = (
            permissions.explained(subject, catalog.Channel.API) if subject.has_api_access else None
        )
        context.update(
            granted=effective.granted(),
            api_granted=api.granted() if api else [],
        )
        return context


class UserSecurityView(UserTabView):
    """What protects the account today: Login flag, auth source, password, sign-ins, links."""

    tab = "security"
    template_name = "accounts/user_security.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        subject = self.subject
        now = timezone.now()
        link = PasswordSetToken.objects.filter(user=subject).first()
        link_state = ""
        if link is not None:
            if link.used_at:
                link_state = "used"
            elif link.voided_at:
                link_state = "replaced"
            elif link.expires_at <= now:
                link_state = "expired"
            else:
                link_state = "waiting"
        from audit.services import record_view

        record_view(self.request.user, subject, "Security tab")
        context.update(
            panels=record.panels_for(self.request, subject),
            has_password=subject.has_usable_password(),
            last_link=link,
            link_state=link_state,
        )
        return context


class UserActivityView(UserTabView):
    """The user's timeline: events about or by them, newest first, in pages of 25.

    Personal events (sign-ins, failures, security events: addresses, places, devices) appear only
    for viewers holding Data protection: User Activity read, and their view is recorded; others
    see the record changes.
    """

    tab = "activity"
    template_name = "accounts/user_activity.html"
    page_size = 25

    def get_context_data(self, **kwargs):
        from audit import display, queries
        from audit.services import record_view

        context = super().get_context_data(**kwargs)
        personal = self.request.permissions.has(catalog.DP_USER_ACTIVITY, catalog.READ)
        before = parse_datetime(self.request.GET.get("before", "") or "")
        events = queries.timeline(
            self.subject.pk, before=before, limit=self.page_size + 1, personal_data=personal
        )
        older = events[self.page_size - 1].occurred_at if len(events) > self.page_size else None
        events = display.decorate(events[: self.page_size])
        if personal:
            record_view(self.request.user, self.subject, "Activity tab (personal events)")
        more_url = ""
        if self.request.permissions.has(catalog.USER_ACTIVITY, catalog.READ):
            more_url = (
                reverse("audit:activity_tab", args=["all"])
                + "?"
                + urlencode({"person": self.subject.username})
            )
        context.update(
            timeline=events,
            personal=personal,
            older_url=f"?{urlencode({'before': older.isoformat()})}" if older else "",
            newest_url=self.request.path if before else "",
            timeline_more_url=more_url,
        )
        return context


class UserCommissionView(UserTabView):
    """The user's commission details."""

    tab = "commission"
    template_name = "accounts/user_commission.html"


FIELD_LABELS = {"username": "Username", "allow_login": "Login flag"}


def field_label(name: str) -> str:
    if name in FIELD_LABELS:
        return FIELD_LABELS[name]
    try:
        return str(User._meta.get_field(name).verbose_name).capitalize()
    except Exception:  # noqa: BLE001 - a field renamed or gone since the event
        return name.replace("_", " ").capitalize()


def _show(value) -> str:
    if value is None or value == "" or value == []:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def event_rows(event: AuditEvent) -> dict:
    """Return an event with its changes as (label, before, after) rows for the templates."""
    return {
        "event": event,
        "changes": [
            (field_label(name), _show(pair[0]), _show(pair[1]))
            for name, pair in (event.changes or {}).items()
            if isinstance(pair, list) and len(pair) == 2
        ],
    }


# ---------------------------------------------------------------------------------------------
# Actions: deactivate, reactivate, delete, send access email


class UserActionView(OwnerFormMixin, UserRecordMixin, PortalConfirmView):
    permission = (USERS, FULL)

    def get_success_url(self):
        return reverse("accounts:user_detail", args=[self.subject.pk])

    def get_cancel_url(self):
        return reverse("accounts:user_detail", args=[self.subject.pk])


class UserDeactivateView(UserActionView):
    """Remove the Login flag: sign-in refused at once, live sessions end at their next request."""

    form_class = LoginFlagForm
    confirm_label = "Deactivate"

    def get_context_data(self, **kwargs):
        self.title = f"Deactivate {self.subject.label}"
        self.question = f"Deactivate {self.subject.label} ({self.subject.username})?"
        return super().get_context_data(**kwargs)

    def consequences(self):
        return [
            "Sign-in is refused from now on.",
            "Any session they have open ends at its next request.",
            "Their record, access settings and history are kept; you can reactivate them.",
        ]

    def perform(self, form):
        users.deactivate_user(
            self.subject,
            actor=self.request.user,
            source=AccessSource.SCREEN,
            reason=reason_text(form.cleaned_data["update_reason"]),
            details=form.cleaned_data["update_details"],
        )
        messages.success(self.request, f"{self.subject.label} is deactivated.")


class UserReactivateView(UserActionView):
    """Give the Login flag back."""

    form_class = LoginFlagForm
    confirm_label = "Reactivate"

    def get_context_data(self, **kwargs):
        self.title = f"Reactivate {self.subject.label}"
        self.question = f"Reactivate {self.subject.label} ({self.subject.username})?"
        return super().get_context_data(**kwargs)

    def consequences(self):
        return ["They can sign in again with their password, with the access they had."]

    def perform(self, form):
        users.reactivate_user(
            self.subject,
            actor=self.request.user,
            source=AccessSource.SCREEN,
            reason=reason_text(form.cleaned_data["update_reason"]),
            details=form.cleaned_data["update_details"],
        )
        messages.success(self.request, f"{self.subject.label} can sign in again.")


class UserDeleteView(UserActionView):
    """Delete a user created by mistake (only without any history)."""

    form_class = forms.Form
    confirm_label = "Delete"

    def get_form_kwargs(self):
        kwargs = super().get_form_kwargs()
        kwargs.pop("owner")
        return kwargs

    def get_context_data(self, **kwargs):
        self.title = f"Delete {self.subject.label}"
        self.question = f"Delete {self.subject.label} ({self.subject.username}) for good?"
        return super().get_context_data(**kwargs)

    def consequences(self):
        return [
            "Only a user without any history can be deleted; the deletion itself is recorded.",
            "To stop someone signing in, deactivate them instead.",
        ]

    def perform(self, form):
        label = self.subject.label
        users.delete_user(
            self.subject,
            actor=self.request.user,
            reason="Created by mistake; no history.",
            source=AccessSource.SCREEN,
        )
        messages.success(self.request, f"{label} was deleted.")

    def get_success_url(self):
        return reverse("accounts:user_list")


class UserSendAccessEmailView(UserActionView):
    """Email the user their login name and a single-use link to set a password.

    Support staff use it: it needs Data Protection Access (full) and read on Users, never
    shows the link, and is refused for SSO and API users.
    """

    permission = (catalog.DP_ACCESS, FULL)
    form_class = forms.Form
    confirm_label = "Send access email"

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated and not request.permissions.has(USERS, READ):
            raise PermissionDenied("Needs read on Users.")
        return super().dispatch(request, *args, **kwargs)

    def get_form_kwargs(self):
        kwargs = super().get_form_kwargs()
        kwargs.pop("owner")
        return kwargs

    def get_context_data(self, **kwargs):
        self.title = f"Send access email to {self.subject.label}"
        self.question = f"Send {self.subject.label} their sign-in details at {self.subject.email}?"
        return super().get_context_data(**kwargs)

    def consequences(self):
        hours = services.access_link_hours()
        return [
            "The email holds their login name and a link to set a password.",
            f"The link works once and expires in {hours} hours. You will not see it.",
            "Any link sent to them earlier stops working.",
        ]

    def perform(self, form):
        sent = services.send_access_email(self.subject, actor=self.request.user)
        expires = timezone.localtime(sent.expires_at)
        messages.success(
            self.request,
            f"Access email sent to {sent.sent_to}. The link expires {expires:%d %b %Y %H:%M}.",
        )


# ---------------------------------------------------------------------------------------------
# Set password from the access email (public)

_TOKEN_SESSION_KEY = "password_set_token"


@public
@never_cache
@require_GET
def set_password_link(request, token):
    """Keep the link's token in the session and continue on an address without it, so the
    token never travels on in a Referer header or stays in the browser history."""
    request.session[_TOKEN_SESSION_KEY] = token[:200]
    return redirect("accounts:set_password_form")


@public
@never_cache
@csrf_protect
@require_http_methods(["GET", "POST"])
def set_password(request):
    """Set a password with the access email's link; then the person signs in as usual."""
    token = request.session.get(_TOKEN_SESSION_KEY, "")
    try:
        record = services.find_password_set_token(token)
    except services.LinkNotUsable:
        return render(request, "accounts/set_password_invalid.html", status=400)
    form = SetPasswordForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.set_password_with_link(token, form.cleaned_data["password1"])
        except services.LinkNotUsable:
            return render(request, "accounts/set_password_invalid.html", status=400)
        except ValidationError as exc:
            form.add_error("password1", exc)
        else:
            request.session.pop(_TOKEN_SESSION_KEY, None)
            messages.success(request, "Your password is set. Sign in with it now.")
            return redirect("accounts:sign_in")
    status = 400 if form.is_bound and form.errors else 200
    return render(
        request,
        "accounts/set_password.html",
        {
            "form": form,
            "person": record.user,
            "expires_at": record.expires_at,
        },
        status=status,
    )
