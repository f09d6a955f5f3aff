"""The users list: search, filters, sorting, keyset pagination and the CSV export.

Search words each match a name, the username or the email (`icontains` on one text made of
them, served on PostgreSQL by the trigram index of migration 0005). Pages are cut by keyset (the
sort values of the row at the page's edge, signed into the link), so the last page costs what the
first does. The total is counted exactly up to `COUNT_CAP` only; past it the page says "about N",
N being PostgreSQL's own estimate of the rows (no count over every user of a large owner on each
request).

Other apps add filters to the list with `register_filter(UserFilter(...))`: a form field and a
function that narrows the queryset (two-factor state and lockout come that way).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.core import signing
from django.db import connection
from django.db.models import F, QuerySet, Value
from django.db.models.fields.tuple_lookups import Tuple, TupleGreaterThan, TupleLessThan

from security import lockout

from .models import User

PAGE_SIZE = 50
COUNT_CAP = 1_000
_CURSOR_SALT = "accounts.users.cursor"


@dataclass(frozen=True)
class UserFilter:
    """A filter of the users list: its form field and how it narrows the queryset."""

    name: str
    field: Callable[[Any], forms.Field]
    apply: Callable[[QuerySet, Any, Any], QuerySet]  # (queryset, value, owner)


USER_FILTERS: list[UserFilter] = []


def register_filter(user_filter: UserFilter) -> None:
    """Add a filter to the users list (called from another app's `ready()` or urls module)."""
    if user_filter.name not in {f.name for f in USER_FILTERS}:
        USER_FILTERS.append(user_filter)


def locked_out_filter() -> UserFilter:
    """The "Locked out" filter: people the lockout (security.lockout) holds out right now."""

    def field(owner):
        return forms.ChoiceField(
            label="Locked out",
            required=False,
            choices=[("", "Any"), ("yes", "Locked out"), ("no", "Not locked out")],
        )

    def apply(queryset, value, owner):
        if value not in ("yes", "no"):
            return queryset
        locked = lockout.locked_user_ids(owner)
        return queryset.filter(pk__in=locked) if value == "yes" else queryset.exclude(pk__in=locked)

    return UserFilter("locked", field, apply)


@dataclass(frozen=True)
class Sort:
    label: str
    keys: tuple[str, ...]


SORTS = {
    "name": Sort("Name", ("last_name", "first_name", "id")),
    "username": Sort("Username", ("username", "id")),
    "email": Sort("Email", ("email", "id")),
    "created": Sort("Created", ("created_at", "id")),
}
DEFAULT_SORT = "name"


def parse_sort(value: str | None) -> tuple[str, bool]:
    """Return (sort name, descending) from a `sort` parameter such as `-created`."""
    value = value or DEFAULT_SORT
    descending = value.startswith("-")
    name = value.lstrip("-")
    if name not in SORTS:
        return DEFAULT_SORT, False
    return name, descending


def search(queryset: QuerySet, text: str) -> QuerySet:
    """Keep users matching every word of `text` in a name, the username or the email."""
    return queryset.matching(text)


def filtered(owner, data: dict) -> QuerySet:
    """Return the owner's users narrowed by the cleaned data of a `UserFilterForm`."""
    queryset = User.objects.for_owner(owner)
    queryset = search(queryset, data.get("q") or "")
    if data.get("role"):
        queryset = queryset.filter(role=data["role"])
    if data.get("kind"):
        queryset = queryset.filter(kind=data["kind"])
    if data.get("login") == "yes":
        queryset = queryset.filter(allow_login=True)
    elif data.get("login") == "no":
        queryset = queryset.filter(allow_login=False)
    if data.get("status") == "account_manager":
        queryset = queryset.filter(is_account_manager=True)
    elif data.get("status") == "commission_holder":
        queryset = queryset.filter(is_commission_holder=True)
    if data.get("department"):
        queryset = queryset.filter(departments=data["department"])
    if data.get("auth_source"):
        queryset = queryset.filter(auth_source=data["auth_source"])
    for extra in USER_FILTERS:
        value = data.get(extra.name)
        if value not in (None, "", [], ()):
            queryset = extra.apply(queryset, value, owner)
    return queryset


def capped_count(queryset: QuerySet, cap: int | None = None) -> tuple[int, bool]:
    """Return (count, more): the number of rows up to `cap`, and whether there are more."""
    cap = COUNT_CAP if cap is None else cap
    count = queryset.order_by()[: cap + 1].count()
    return min(count, cap), count > cap


def estimated_count(queryset: QuerySet) -> int | None:
    """Return the planner's estimate of the rows of `queryset` (PostgreSQL; None elsewhere).

    EXPLAIN plans the query without running it: the estimate comes from the statistics that
    ANALYZE (autovacuum) keeps, so it costs a fraction of a millisecond at any size.
    """
    if connection.vendor != "postgresql":
        return None
    sql, params = queryset.order_by().values("pk").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    try:
        return int(plan[0]["Plan"]["Plan Rows"])
    except (KeyError, IndexError, TypeError, ValueError):
        return None


def about(count: int) -> int:
    """Return `count` rounded to two significant digits (an estimate claims no more)."""
    if count < 100:
        return count
    digits = len(str(count)) - 2
    return round(count, -digits)


def ordered(queryset: QuerySet, sort: str, descending: bool) -> QuerySet:
    keys = SORTS[sort].keys
    return queryset.order_by(*[f"-{k}" if descending else k for k in keys])


@dataclass
class KeysetPage:
    """One page of the list and the links around it (None where there is nowhere to go)."""

    rows: list
    first_url: str | None = None
    previous_url: str | None = None
    next_url: str | None = None
    last_url: str | None = None

    @property
    def has_previous(self) -> bool:
        return self.previous_url is not None

    @property
    def has_next(self) -> bool:
        return self.next_url is not None


def encode_cursor(row: User, keys: tuple[str, ...]) -> str:
    values = []
    for key in keys:
        value = getattr(row, key)
        values.append(value.isoformat() if hasattr(value, "isoformat") else value)
    return signing.dumps(values, salt=_CURSOR_SALT, compress=True)


def decode_cursor(token: str | None, keys: tuple[str, ...]) -> tuple | None:
    """Return the sort values signed into a cursor, or None for a missing or altered one."""
    if not token:
        return None
    try:
        values = signing.loads(token, salt=_CURSOR_SALT)
    except signing.BadSignature:
        return None
    if not isinstance(values, list) or len(values) != len(keys):
        return None
    try:
        return tuple(
            User._meta.get_field(key).to_python(value)
            for key, value in zip(keys, values, strict=True)
        )
    except forms.ValidationError:
        return None
    except Exception:  # noqa: BLE001 - any undecodable cursor means "start again"
        return None


def keyset_page(
    queryset: QuerySet,
    *,
    sort: str,
    descending: bool,
    params: dict,
    size: int = PAGE_SIZE,
) -> KeysetPage:
    """Cut one page from `queryset` by keyset: `after` / `before` cursors or `page=last`."""
    keys = SORTS[sort].keys
    row = Tuple(*[F(k) for k in keys])
    after = decode_cursor(params.get("after"), keys)
    before = None if after else decode_cursor(params.get("before"), keys)
    last = not after and not before and params.get("page") == "last"
    forward_gt = not descending  # moving forward means larger values when ascending

    if before is not None or last:
        backward = ordered(queryset, sort, not descending)
        if before is not None:
            lookup = TupleLessThan if forward_gt else TupleGreaterThan
            backward = backward.filter(lookup(row, before))
        rows = list(backward[: size + 1])
        more_before = len(rows) > size
        rows = list(reversed(rows[:size]))
        has_previous, has_next = more_before, before is not None
    else:
        forward = ordered(queryset, sort, descending)
        if after is not None:
            lookup = TupleGreaterThan if forward_gt else TupleLessThan
            forward = forward.filter(lookup(row, after))
        rows = list(forward[: size + 1])
        has_next = len(rows) > size
        rows = rows[:size]
        has_previous = after is not None

    base = {k: v for k, v in params.items() if k not in {"after", "before", "page"} and v}

    def link(**extra) -> str:
        return "?" + urlencode({**base, **extra})

    page = KeysetPage(rows=rows)
    if rows and has_previous:
        page.first_url = link()
        page.previous_url = link(before=encode_cursor(rows[0], keys))
    if rows and has_next:
        page.next_url = link(after=encode_cursor(rows[-1], keys))
        page.last_url = link(page="last")
    return page


# ---------------------------------------------------------------------------------------------
# Drawing the page once per distinct content (`{% memo %}` in accounts/user_list.html)


# The columns a row of the list shows or its links need (the sort keys among them): the rest of
# a user's forty-odd columns are left in the database.
ROW_FIELDS = (
    "id",
    "owner_id",
    "username",
    "email",
    "first_name",
    "last_name",
    "display_name",
    "kind",
    "auth_source",
    "allow_login",
    "allow_api_read",
    "allow_api_write",
    "created_at",
    "role__name",
)


def add_department_names(users: list[User]) -> None:
    """Set `department_names` on each user: their departments' names, in one query (what the
    row shows, without a related manager per user)."""
    names: dict[int, list[str]] = {user.pk: [] for user in users}
    through = User.departments.through.objects.filter(user_id__in=list(names))
    for user_id, name in through.order_by("department__name").values_list(
        "user_id", "department__name"
    ):
        names[user_id].append(name)
    for user in users:
        user.department_names = names[user.pk]


def row_key(user: User, *, bulk: bool, zone: str) -> tuple:
    """Return every value the list's row of `user` shows (with the time zone its date is in),
    so that the row is drawn once per distinct key: a change to any of them draws it anew.
    A column added to the row must add what it shows here."""
    role = user.role.name if user.role_id else None
    return (
        user.pk,
        user.username,
        user.email,
        user.first_name,
        user.last_name,
        user.display_name,
        role,
        tuple(user.department_names),
        user.kind,
        user.auth_source,
        user.allow_login,
        user.allow_api_read,
        user.allow_api_write,
        user.created_at,
        zone,
        bulk,
    )


def offered(form, reasons: QuerySet | None) -> dict[str, tuple]:
    """Return the (id, name) choices the page's forms offer, in one query: the filters' roles
    and departments, and the bulk bar's update reasons (`reasons`, None when it is not shown).
    Sorted, as keys: they say whether anything offered changed, not in which order it shows."""
    parts = {"role": form.fields["role"].queryset, "department": form.fields["department"].queryset}
    if reasons is not None:
        parts["reason"] = reasons
    tagged = [
        queryset.annotate(part=Value(name)).values_list("part", "pk", "name").order_by()
        for name, queryset in parts.items()
    ]
    found: dict[str, list] = {name: [] for name in parts}
    for part, pk, name in tagged[0].union(*tagged[1:], all=True):
        found[part].append((pk, name))
    return {name: tuple(sorted(rows)) for name, rows in found.items()}


def filter_key(form, offered: dict[str, tuple]) -> tuple | None:
    """Return what the filter fields show when it is all they show (blank, or valid: no error
    messages): the values typed and the roles and departments offered. None else."""
    if form.is_bound and not form.is_valid():
        return None
    typed = tuple(form.data.get(name, "") for name in form.fields) if form.is_bound else None
    return (tuple(form.fields), offered["role"], offered["department"], typed)


# ---------------------------------------------------------------------------------------------
# CSV export

CSV_COLUMNS = (
    ("Username", lambda u: u.username),
    ("First name", lambda u: u.first_name),
    ("Last name", lambda u: u.last_name),
    ("Display name", lambda u: u.display_name),
    ("Email", lambda u: u.email),
    ("Kind", lambda u: u.get_kind_display()),
    ("Auth source", lambda u: u.get_auth_source_display()),
    ("Login", lambda u: "yes" if u.allow_login else "no"),
    ("API read", lambda u: "yes" if u.allow_api_read else "no"),
    ("API write", lambda u: "yes" if u.allow_api_write else "no"),
    ("Role", lambda u: u.role.name if u.role_id else ""),
    ("Departments", lambda u: "; ".join(d.name for d in u.departments.all())),
    ("Privilege level", lambda u: u.privilege_level),
    ("Expert level", lambda u: u.expert_level),
    ("Last sign-in", lambda u: u.last_sign_in_at.isoformat() if u.last_sign_in_at else ""),
    ("Created", lambda u: u.created_at.isoformat()),
)
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    """Return a cell that a spreadsheet will not run as a formula."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_rows(queryset: QuerySet) -> Iterator[str]:
    """Yield the CSV lines of `queryset` (header first), fetching rows in chunks."""
    writer = csv.writer(_Echo())
    yield writer.writerow([label for label, _ in CSV_COLUMNS])
    rows = queryset.select_related("role").prefetch_related("departments")
    for user in rows.iterator(chunk_size=2000):
        yield writer.writerow([_cell(get(user)) for _, get in CSV_COLUMNS])
