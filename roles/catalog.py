"""Declare every permission area of the portal once.

An area has a stable code (stored in grants and overrides), a label, a category and its ordered
levels. Application areas guard screens (of this portal and of the billing platform); API areas
guard the JSON API of the billing platform and of this portal. Nothing about areas is hard-coded
anywhere else: screens, the matrix editor, the resolver and the API all read this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from django.utils.text import slugify

CATALOG_VERSION = 1

NONE = "none"
READ = "read"
RUN = "run"
EXECUTE = "execute"
FULL = "full"
WRITE = "write"
APPROVE = "approve"

STANDARD_LEVELS = (NONE, READ, FULL)
RUN_LEVELS = (NONE, READ, RUN, FULL)
EXECUTE_LEVELS = (NONE, READ, EXECUTE, FULL)
API_LEVELS = (NONE, READ, WRITE)
APPROVE_LEVELS = (NONE, READ, APPROVE)

LEVEL_LABELS = {
    NONE: "No access",
    READ: "Read",
    RUN: "Run",
    EXECUTE: "Execute",
    FULL: "Full",
    WRITE: "Write",
    APPROVE: "Approve",
}


class Channel:
    """The two channels a permission can be used through."""

    APPLICATION = "application"
    API = "api"
    ALL = (APPLICATION, API)


class Category:
    """Categories of areas, in the order the matrix editor shows them."""

    STANDARD = "standard"
    SETTINGS = "settings"
    BILLING = "billing"
    DATA_PROTECTION = "data_protection"
    API = "api"

    LABELS = {
        STANDARD: "Standard permissions",
        SETTINGS: "Settings permissions",
        BILLING: "Billing permissions",
        DATA_PROTECTION: "Data protection permissions",
        API: "API permissions",
    }
    ORDER = (STANDARD, SETTINGS, BILLING, DATA_PROTECTION, API)


@dataclass(frozen=True)
class Area:
    """One permission area: what a grant or an override names."""

    code: str
    label: str
    category: str
    levels: tuple[str, ...]
    description: str = ""

    @property
    def channel(self) -> str:
        return Channel.API if self.category == Category.API else Channel.APPLICATION

    @property
    def category_label(self) -> str:
        return Category.LABELS[self.category]

    @property
    def top(self) -> str:
        return self.levels[-1]

    def rank(self, level: str) -> int:
        """Return the position of `level` in this area's order (ValueError when unknown)."""
        return self.levels.index(level)

    def is_level(self, level: str) -> bool:
        return level in self.levels

    def at_least(self, held: str, needed: str) -> bool:
        """Say whether holding `held` satisfies a requirement of `needed`."""
        return self.rank(held) >= self.rank(needed)

    @property
    def is_data_protection(self) -> bool:
        return self.category == Category.DATA_PROTECTION


def _areas(category: str, rows: list[tuple], prefix: str = "") -> list[Area]:
    areas = []
    for row in rows:
        label, levels = (row, STANDARD_LEVELS) if isinstance(row, str) else row
        code = prefix + slugify(label.replace("/", " ")).replace("-", "_")
        areas.append(Area(code=code, label=label, category=category, levels=levels))
    return areas


_STANDARD = [
    "Billing",
    ("Reports", RUN_LEVELS),
    "Customers",
    "Direct Debits",
    "Numbers",
    "Features",
    "Invoices",
    "Payments",
    "Transactions",
    "Correspondence",
    "Notes",
    "Tariffs",
    "Discount Plans",
    "Users",
    "Call Overrides",
    "Generated CDRs",
    "Parameters",
    "Bulk Import Files",
    "Image Files",
    "Carrier Transactions",
    "Fixed Fee Tariffs",
    "Sent Emails",
    "Payment Cards",
    "Payment Card Payments",
    ("Payment Card Runs", EXECUTE_LEVELS),
    "Direct Debit Payments",
    ("Direct Debit Runs", EXECUTE_LEVELS),
    "Tickets",
    "Customer Contacts",
    "Feature Discount Schemes",
    "Email Addresses",
    "Customer Activity",
    "User Activity",
    "Ignore Traffic Numbers",
    "Ignore Traffic Chargebands",
    ("Xero Tasks", RUN_LEVELS),
    "Expected Payments",
    ("Billing Tasks", RUN_LEVELS),
    "Disaster Recovery Files",
    "TODOs",
    "Services",
    ("Access Requests", APPROVE_LEVELS),
]

_SETTINGS = [
    "Standard Features",
    "Feature Types",
    "Transaction Types",
    "Service Charge Intervals",
    "Call Types",
    "Carrier Call Types",
    "Call Types AKA",
    "Chargeband Discrepancies",
    "Customer Statuses",
    "Number Statuses",
    "Feature Statuses",
    "Payment Types",
    "Number Types",
    "Customer Groups",
    "User Groups",
    "Departments",
    "Note Types",
    "Ticket Types",
    "Ticket Statuses",
    "Ticket Priorities",
    "Ticket Activity Types",
    "Ticket Suppliers",
    "Ticket Responses",
    "Commission Profiles",
    "Carrier Transaction Types",
    "VAT Rates",
    "Customer Products",
    "Correspondence Types",
    "User Activity Reasons",
    "Call Type Custom Groups",
    "Locations",
    "Ignore Traffic Number Types",
    "Ignore Traffic Chargeband Types",
    "User Activity Types",
    "Invoice Usage Report Customer Profiles",
    "MyAccount Customer Profiles",
    "MyAccount Numbers",
    "MyAccount Campaigns",
    "Xero Task Types",
    "Expected Payment Types",
    "Customer Classes",
    "Carriers",
    "Billing Task Types",
    "Stored Files Provider Types",
    "Stored Files Providers",
    "Auto Topup Profiles",
    "TODO Statuses",
    "TODO Activity Types",
    "TODO Repeat Rules",
    "TODO Action Taken/Next Steps",
    "TODO Types",
    "Service Statuses",
    "Service Types",
]

_BILLING = [
    ("Billing Run", EXECUTE_LEVELS),
    ("Processing", EXECUTE_LEVELS),
    "Direct Debits",
    "Calls",
    "Billing Runs",
    "Billing Cycles",
    "CDR Files",
    "Deleted Calls",
]

_DATA_PROTECTION = [
    "Data Protection Responsibilities",
    "User Activity",
    "Customer Activity",
    "Data Protection Access",
]

_API = [
    ("Users", API_LEVELS),
    ("Roles", API_LEVELS),
    ("Audit Events", API_LEVELS),
    ("Authorization", API_LEVELS),
    ("Customers", API_LEVELS),
    ("Accounts", API_LEVELS),
    ("Invoices", API_LEVELS),
    ("Payments", API_LEVELS),
    ("Transactions", API_LEVELS),
    ("Services", API_LEVELS),
    ("Numbers", API_LEVELS),
    ("Features", API_LEVELS),
    ("Tariffs", API_LEVELS),
    ("Usage Records", API_LEVELS),
    ("Reports", API_LEVELS),
    ("Tickets", API_LEVELS),
    ("Billing Runs", API_LEVELS),
    ("Access Requests", API_LEVELS),
]

AREAS: tuple[Area, ...] = tuple(
    _areas(Category.STANDARD, _STANDARD)
    + _areas(Category.SETTINGS, _SETTINGS, prefix="settings_")
    + _areas(Category.BILLING, _BILLING, prefix="billing_")
    + _areas(Category.DATA_PROTECTION, _DATA_PROTECTION, prefix="dp_")
    + _areas(Category.API, _API, prefix="api_")
)

BY_CODE: dict[str, Area] = {area.code: area for area in AREAS}

if len(BY_CODE) != len(AREAS):  # pragma: no cover - a duplicated code is a programming error
    raise RuntimeError("Two permission areas share a code.")


def get(code: str) -> Area:
    """Return the area with this code (KeyError when there is none)."""
    return BY_CODE[code]


def areas_for(channel: str) -> tuple[Area, ...]:
    """Return the areas that a role group of this channel can grant."""
    return _areas_for(channel)


@cache
def _areas_for(channel: str) -> tuple[Area, ...]:
    return tuple(area for area in AREAS if area.channel == channel)


def by_category(channel: str = Channel.APPLICATION) -> list[tuple[str, str, list[Area]]]:
    """Return (category, label, areas) for the matrix editor, in display order."""
    rows = []
    for category in Category.ORDER:
        members = [a for a in areas_for(channel) if a.category == category]
        if members:
            rows.append((category, Category.LABELS[category], members))
    return rows


def validate(code: str, level: str) -> Area:
    """Return the area after checking that `level` is one of its levels (ValueError otherwise)."""
    try:
        area = BY_CODE[code]
    except KeyError as exc:
        raise ValueError(f"Unknown permission area {code!r}.") from exc
    if not area.is_level(level):
        raise ValueError(
            f"{area.label} has no level {level!r}; choose one of {', '.join(area.levels)}."
        )
    return area


# The portal's own screens, each guarded by a catalog area: used by the menus, the README table
# and the home page.
USERS = "users"
USER_GROUPS = "settings_user_groups"
DEPARTMENTS = "settings_departments"
UPDATE_REASONS = "settings_user_activity_reasons"
COMMISSION_PROFILES = "settings_commission_profiles"
PARAMETERS = "parameters"
USER_ACTIVITY = "user_activity"
DP_USER_ACTIVITY = "dp_user_activity"
DP_ACCESS = "dp_data_protection_access"
DP_RESPONSIBILITIES = "dp_data_protection_responsibilities"
API_USERS = "api_users"
API_ROLES = "api_roles"
API_AUDIT = "api_audit_events"
API_AUTHZ = "api_authorization"
ACCESS_REQUESTS = "access_requests"
API_ACCESS_REQUESTS = "api_access_requests"

# Each API area's application counterpart: granting API read needs read there, API write needs
# its top level, so nobody can give an integration more than they could do on the screens.
API_EQUIVALENT = {
    "api_users": USERS,
    "api_roles": USER_GROUPS,
    "api_audit_events": USER_ACTIVITY,
    "api_authorization": USERS,
    "api_customers": "customers",
    "api_accounts": "customers",
    "api_invoices": "invoices",
    "api_payments": "payments",
    "api_transactions": "transactions",
    "api_services": "services",
    "api_numbers": "numbers",
    "api_features": "features",
    "api_tariffs": "tariffs",
    "api_usage_records": "generated_cdrs",
    "api_reports": "reports",
    "api_tickets": "tickets",
    "api_billing_runs": "billing_billing_runs",
    "api_access_requests": ACCESS_REQUESTS,
}


def application_equivalent(code: str, level: str) -> tuple[str, str]:
    """Return the application (area, level) that granting API `level` on `code` requires."""
    app_code = API_EQUIVALENT[code]
    app_area = BY_CODE[app_code]
    needed = {NONE: NONE, READ: READ, WRITE: app_area.top}[level]
    return app_code, needed
