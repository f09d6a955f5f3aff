"""The demo owner's month: people, access and a history a reviewer can find things in.

`manage.py seed_demo` (run by `make run`) calls `seed`. It writes three layers, in one
transaction:

1. **Structure** (direct writes, as any loader does): the owner, its settings lists, role groups
   and roles, and a few dozen people across departments, some with an authenticator app, a
   dormant one, a leaver, an API integration with a token that expires within days, and an
   override that expires.
2. **Seeded history** (the month before today): sign-ins and sign-outs on working days,
   mistyped passwords, a night of password guessing, a lockout cleared by support, and record
   changes with their Update Reasons. These events are given their past times, so they are
   appended with `audit.bulk` (chained and hashed exactly as `audit.record` does, so
   `audit_verify` passes); their request ids start with `demo-`. A few facts of that history
   are written straight to the tables because a service would refuse them today; each says so
   where it is written.
3. **Today** (through the services, audited now): the role groups a finance clerk is eligible
   for, the starter separation-of-duties rules, one waiting access request and one active
   elevation, and an open access review with some decisions made.

The story is told once: a second run finds its people and adds nothing.
"""

from __future__ import annotations

import datetime
import random
from dataclasses import dataclass, field
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.utils import timezone

from accounts.models import CommissionProfile, Department, Owner, UpdateReason, User
from accounts.tokens import lifecycle
from accounts.tokens.models import ApiToken
from accounts.twofactor.models import TOTPDevice
from accounts.users import snapshot
from audit import bulk, queries
from audit.choices import AuditAction
from audit.services import diff
from roles import catalog, elevations, sod
from roles.models import Grant, PermissionOverride, Role, RoleGroup
from security.choices import SignInFailure
from security.models import PasswordPolicy

DEMO_PASSWORD = "correct horse battery staple"
SIGN_IN_USERS = ("admin", "support", "finance", "auditor")
HISTORY_DAYS = 30

DEPARTMENTS = ["Finance", "Customer Support", "Operations", "Sales", "IT"]
UPDATE_REASONS = ["New starter", "Change of role", "Leaver", "Access review", "Correction"]
COMMISSION_PROFILES = ["Standard sales", "Partner channel", "Enterprise"]

ROLE_GROUPS: dict[str, tuple[str, Any]] = {
    "Administrators": ("application", "all-full"),
    "Finance": (
        "application",
        {
            "invoices": "full",
            "payments": "read",
            "billing": "read",
            "transactions": "read",
            "reports": "run",
        },
    ),
    "Payments": (
        "application",
        {
            "payments": "full",
            "payment_cards": "read",
            "payment_card_payments": "full",
            "direct_debit_payments": "read",
            "transactions": "read",
            "customers": "read",
        },
    ),
    "Direct Debit Runs": (
        "application",
        {
            "direct_debit_runs": "execute",
            "billing_direct_debits": "full",
            "direct_debit_payments": "full",
        },
    ),
    "Billing Operations": (
        "application",
        {
            "billing_billing_run": "execute",
            "billing_processing": "execute",
            "billing_billing_runs": "full",
            "billing_billing_cycles": "read",
            "billing_calls": "read",
            "billing_cdr_files": "read",
            "billing_tasks": "run",
            "tariffs": "read",
            "reports": "run",
        },
    ),
    "Sales": (
        "application",
        {
            "customers": "full",
            "customer_contacts": "full",
            "tariffs": "read",
            "discount_plans": "read",
            "numbers": "read",
            "features": "read",
            "services": "read",
            "notes": "full",
            "reports": "read",
        },
    ),
    "Customer Support": (
        "application",
        {
            "customers": "read",
            "tickets": "full",
            "notes": "full",
            "users": "read",
            "dp_data_protection_access": "full",
            "customer_contacts": "read",
        },
    ),
    "Security Review": (
        "application",
        {
            "users": "read",
            "user_activity": "read",
            "dp_user_activity": "read",
            "settings_user_groups": "read",
        },
    ),
    # No role uses it any more: the "role groups no role uses" report finds it.
    "Legacy Reporting": ("application", {"reports": "read", "customer_activity": "read"}),
    "Integration API": (
        "api",
        {
            "api_customers": "write",
            "api_invoices": "read",
            "api_users": "read",
            "api_authorization": "read",
        },
    ),
}
ROLES = {
    "Administrator": ["Administrators"],
    "Finance clerk": ["Finance"],
    "Payments clerk": ["Payments"],
    "Billing operator": ["Billing Operations"],
    "Sales representative": ["Sales"],
    "Support agent": ["Customer Support"],
    "Security reviewer": ["Security Review"],
    "Integration": ["Integration API"],
}
# Asked for and approved for a few hours at a time (set through the service, today).
ELIGIBLE = {"Finance clerk": ["Direct Debit Runs"]}


@dataclass(frozen=True)
class Person:
    """One demo person: who they are, what they hold and how they use the portal.

    `habit`: daily (most working days), often (about half of them), dormant (not for months),
    new (created days ago, not signed in yet), leaver (until their last day), api (no sign-in).
    """

    username: str
    first: str
    last: str
    role: str
    departments: tuple[str, ...]
    privilege: int = 3
    habit: str = "daily"
    totp: bool = False
    extra_groups: tuple[str, ...] = ()
    fields: dict = field(default_factory=dict)
    joined_days_ago: int = 400


PEOPLE = [
    # IT and security.
    Person("admin", "Alex", "Admin", "Administrator", ("IT",), 10, fields={"expert_level": 3}),
    Person(
        "martin.fischer",
        "Martin",
        "Fischer",
        "Administrator",
        ("IT",),
        9,
        totp=True,
        fields={"expert_level": 2},
    ),
    Person("auditor", "Ada", "Auditor", "Security reviewer", ("IT",), 6),
    Person("elena.popescu", "Elena", "Popescu", "Security reviewer", ("IT",), 6, "often", True),
    # Finance.
    Person(
        "finance",
        "Fran",
        "Finance",
        "Finance clerk",
        ("Finance",),
        fields={"is_commission_holder": True},
    ),
    Person("leaver", "Lee", "Leaver", "Finance clerk", ("Finance",), habit="leaver"),
    Person(
        "priya.shah",
        "Priya",
        "Shah",
        "Finance clerk",
        ("Finance",),
        4,
        totp=True,
        extra_groups=("Payments",),
    ),
    Person("tom.okafor", "Tom", "Okafor", "Finance clerk", ("Finance",), totp=True),
    Person("mei.chen", "Mei", "Chen", "Finance clerk", ("Finance",), 4, totp=True),
    Person("hannah.weber", "Hannah", "Weber", "Finance clerk", ("Finance",), habit="often"),
    Person("olga.novak", "Olga", "Novak", "Payments clerk", ("Finance",), totp=True),
    Person("raj.patel", "Raj", "Patel", "Payments clerk", ("Finance",)),
    # Customer support.
    Person("support", "Sam", "Support", "Support agent", ("Customer Support",), 6),
    Person("chris.morgan", "Chris", "Morgan", "Support agent", ("Customer Support",), 4),
    Person("nadia.haddad", "Nadia", "Haddad", "Support agent", ("Customer Support",), 4, totp=True),
    Person("luis.garcia", "Luis", "Garcia", "Support agent", ("Customer Support",), 4, "often"),
    Person("emma.brown", "Emma", "Brown", "Support agent", ("Customer Support",), 4, totp=True),
    Person(
        "yusuf.demir",
        "Yusuf",
        "Demir",
        "Support agent",
        ("Customer Support",),
        4,
        joined_days_ago=27,
    ),
    Person("zoe.clark", "Zoe", "Clark", "Support agent", ("Customer Support",), 4, "often"),
    Person("ben.harris", "Ben", "Harris", "Support agent", ("Customer Support",), 4, totp=True),
    # Operations.
    Person("diego.ramos", "Diego", "Ramos", "Billing operator", ("Operations",), 4, totp=True),
    Person("anna.kowalski", "Anna", "Kowalski", "Billing operator", ("Operations",), 4, totp=True),
    Person("kofi.mensah", "Kofi", "Mensah", "Billing operator", ("Operations",), 4, "often"),
    Person("ivy.nguyen", "Ivy", "Nguyen", "Billing operator", ("Operations",), 4),
    # Sales.
    Person(
        "lucy.taylor",
        "Lucy",
        "Taylor",
        "Sales representative",
        ("Sales",),
        fields={"is_account_manager": True, "is_commission_holder": True},
    ),
    Person(
        "omar.farouk",
        "Omar",
        "Farouk",
        "Sales representative",
        ("Sales",),
        fields={"is_commission_holder": True},
    ),
    Person("sofia.rossi", "Sofia", "Rossi", "Sales representative", ("Sales",), habit="often"),
    Person("noah.evans", "Noah", "Evans", "Sales representative", ("Sales",), habit="often"),
    Person(
        "jack.wilson",
        "Jack",
        "Wilson",
        "Sales representative",
        ("Sales",),
        habit="dormant",
        extra_groups=("Legacy Reporting",),
    ),
    Person(
        "grace.kim",
        "Grace",
        "Kim",
        "Sales representative",
        ("Sales",),
        habit="new",
        joined_days_ago=3,
    ),
    # The CRM integration.
    Person(
        "crm-sync",
        "CRM",
        "Sync",
        "Integration",
        ("IT",),
        1,
        "api",
        fields={
            "kind": "api",
            "allow_login": False,
            "allow_api_read": True,
            "allow_api_write": True,
        },
    ),
]
# Whose arrival in the database means the story has been told (created with the rest).
STORY_ANCHOR = "priya.shah"

USER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Safari/537.36",
]
PHONE_AGENT = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/18.1 Mobile/15E148 Safari/604.1"
)
ATTACKER_AGENT = "python-requests/2.32.3"
HOME_PREFIXES = ["81.2.69.", "62.30.112.", "90.214.8.", "86.188.30.", "2.24.80."]
ATTACKER_IPS = ["45.155.205.233", "193.32.162.74"]


@dataclass
class Seeded:
    """What one run added, for the command's summary."""

    people: int = 0
    structure: int = 0
    events: int = 0
    story: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def anything(self) -> bool:
        return bool(self.people or self.structure or self.events or self.story)


def seed(
    name: str = "Acme Telecom", *, now: datetime.datetime | None = None
) -> tuple[Owner, Seeded]:
    """Load the demo owner `name` and, the first time, its month of history. Idempotent."""
    now = now or timezone.now()
    seeded = Seeded()
    with transaction.atomic():
        owner = _structure(name, seeded)
        created = _people(owner, seeded, now)
        if STORY_ANCHOR in created:
            seeded.story = True
            names = [p.username for p in PEOPLE]
            people = {u.username: u for u in User.objects.filter(owner=owner, username__in=names)}
            story = Story(owner, people, now)
            story.prepare()
            seeded.events += bulk.append(owner.pk, story.history())
            seeded.events += story.today()
    if seeded.events:
        queries.forget_daily_counts()  # past days now hold events they did not hold before
    return owner, seeded


def _structure(name: str, seeded: Seeded) -> Owner:
    slug = name.lower().replace(" ", "-")
    owner, created = Owner.objects.get_or_create(slug=slug, defaults={"name": name})
    seeded.structure += created
    seeded.structure += PasswordPolicy.objects.get_or_create(owner=owner)[1]
    for model, names in (
        (Department, DEPARTMENTS),
        (UpdateReason, UPDATE_REASONS),
        (CommissionProfile, COMMISSION_PROFILES),
    ):
        for item in names:
            seeded.structure += model.objects.get_or_create(owner=owner, name=item)[1]
    for group_name, (kind, grants) in ROLE_GROUPS.items():
        group, created = RoleGroup.objects.get_or_create(
            owner=owner, name=group_name, defaults={"kind": kind}
        )
        if created:
            seeded.structure += 1
            if grants == "all-full":
                grants = {a.code: a.top for a in catalog.areas_for(group.channel)}
            Grant.objects.bulk_create(
                [Grant(role_group=group, area=a, level=lvl) for a, lvl in grants.items()]
            )
    groups = {g.name: g for g in RoleGroup.objects.filter(owner=owner)}
    for role_name, group_names in ROLES.items():
        role, created = Role.objects.get_or_create(owner=owner, name=role_name)
        if created:
            seeded.structure += 1
            role.role_groups.set([groups[g] for g in group_names])
    return owner


def _people(owner: Owner, seeded: Seeded, now: datetime.datetime) -> dict[str, User]:
    """Create the people who do not exist yet; return those created, by username."""
    roles = {r.name: r for r in Role.objects.filter(owner=owner)}
    groups = {g.name: g for g in RoleGroup.objects.filter(owner=owner)}
    departments = {d.name: d for d in Department.objects.filter(owner=owner)}
    existing = {u.lower() for u in User.objects.values_list("username", flat=True)}
    password = make_password(DEMO_PASSWORD)
    created = {}
    for person in PEOPLE:
        if person.username.lower() in existing:
            continue
        joined = now - datetime.timedelta(days=person.joined_days_ago, hours=3)
        fields = dict(person.fields)
        if person.habit == "leaver":
            fields["allow_login"] = False
        user = User.objects.create(
            owner=owner,
            username=person.username,
            email=f"{person.username}@acme-telecom.example",
            first_name=person.first,
            last_name=person.last,
            role=roles[person.role],
            privilege_level=person.privilege,
            password=password if person.habit != "api" else make_password(None),
            password_changed_at=joined if person.habit != "api" else None,
            created_at=joined,
            updated_at=joined,
            **fields,
        )
        user.departments.set([departments[d] for d in person.departments])
        if person.extra_groups:
            user.extra_role_groups.set([groups[g] for g in person.extra_groups])
        created[person.username] = user
    seeded.people = len(created)
    if created:
        User.objects.people_changed(owner.pk)
    return created


def _at(day: datetime.date, hour: float) -> datetime.datetime:
    """Return `hour` (fractional, UTC) of `day`."""
    start = datetime.datetime.combine(day, datetime.time(0), tzinfo=datetime.UTC)
    return start + datetime.timedelta(hours=hour)


class Story:
    """The demo's month, built once, in time order, then appended to the owner's chain."""

    def __init__(self, owner: Owner, people: dict[str, User], now: datetime.datetime):
        self.owner = owner
        self.people = people
        self.by_name = {p.username: p for p in PEOPLE}
        self.now = now
        self.random = random.Random(23)  # the same month every time
        self.events: list[SimpleNamespace] = []
        self.last_sign_in: dict[int, datetime.datetime] = {}
        self.desks = {
            name: f"10.20.{i // 200}.{10 + i % 200}" for i, name in enumerate(self.by_name)
        }
        self.homes = {
            name: self.random.choice(HOME_PREFIXES) + str(self.random.randrange(2, 250))
            for name in self.by_name
        }
        self.agents = {
            name: USER_AGENTS[i % len(USER_AGENTS)] for i, name in enumerate(self.by_name)
        }
        self.first_day = (now - datetime.timedelta(days=HISTORY_DAYS)).date()
        self.token: ApiToken | None = None
        self.override: PermissionOverride | None = None

    # Helpers ------------------------------------------------------------------------------------

    def user(self, username: str) -> User:
        return self.people[username]

    def day(self, days_ago: int) -> datetime.date:
        return (self.now - datetime.timedelta(days=days_ago)).date()

    def add(self, action, when: datetime.datetime, *, who: str | None = None, **fields) -> None:
        """Add one event at `when`, from `who`'s desk and browser unless told otherwise."""
        if when >= self.now:
            return
        fields.setdefault("ip", self.desks.get(who or "", "10.20.0.2"))
        fields.setdefault("user_agent", self.agents.get(who or "", USER_AGENTS[0]))
        fields.setdefault("request_id", f"demo-{self.random.getrandbits(48):012x}")
        self.events.append(bulk.event(action, occurred_at=when, owner_id=self.owner.pk, **fields))

    def change(self, when, actor: str, action, target: User, *, changes, reason, **more) -> None:
        self.add(
            action,
            when,
            who=actor,
            actor=self.user(actor),
            target=target,
            changes=changes,
            reason=reason,
            **more,
        )

    def new_starter(self, user: User, *, by: str) -> None:
        """The creation of a person who joined during the month, on the users screen."""
        self.change(
            user.created_at,
            by,
            AuditAction.USER_CREATED,
            user,
            changes=diff({}, snapshot(user)),
            reason="New starter",
            context={"source": "screen", "row_version": 1},
        )

    # Structure that the history speaks of -------------------------------------------------------

    def prepare(self) -> None:
        """Write the rows the history refers to: 2FA devices, the token, the override."""
        rng = self.random
        for username, user in self.people.items():
            if self.by_name[username].totp and not TOTPDevice.objects.filter(user=user).exists():
                device = TOTPDevice.with_new_key(user)
                device.confirmed = True
                device.confirmed_at = user.created_at + datetime.timedelta(days=1)
                device.save()
        crm = self.people.get("crm-sync")
        if crm is not None:
            # Made by Alex 26 days ago for 30 days: it expires within the week.
            self.token = ApiToken.objects.create(
                user=crm,
                name="CRM nightly sync",
                prefix=lifecycle.free_prefix(ApiToken),
                secret_hash=lifecycle.hash_secret(lifecycle.new_secret()),
                areas=["api_customers", "api_invoices"],
                allowed_networks=["10.20.0.0/16"],
                created_at=self.now - datetime.timedelta(days=26, hours=5),
                created_by=self.user("admin"),
                expires_at=self.now + datetime.timedelta(days=4, hours=19),
                last_used_at=self.now - datetime.timedelta(hours=2, minutes=rng.randrange(60)),
            )
        hannah = self.people.get("hannah.weber")
        if hannah is not None:
            # Quarter-end cover, set 4 days ago until 10 days from now.
            self.override = PermissionOverride.objects.create(
                user=hannah,
                area="reports",
                level="full",
                reason="Quarter-end reporting cover",
                expires_at=self.now + datetime.timedelta(days=10),
                created_by=self.user("admin"),
                created_at=self.now - datetime.timedelta(days=4, hours=6),
            )
        lucy = self.people.get("lucy.taylor")
        if lucy is not None:
            profile = CommissionProfile.objects.get(owner=self.owner, name="Standard sales")
            User.objects.filter(pk=lucy.pk).update(
                commission_reference_date=datetime.date(self.now.year, 1, 1),
                commission_annual_target=Decimal("120000.00"),
                one_off_commission_profile=profile,
                recurring_commission_profile=profile,
            )

    # The month ----------------------------------------------------------------------------------

    def history(self) -> list[SimpleNamespace]:
        """Return the month's events, oldest first."""
        for days_ago in range(HISTORY_DAYS, -1, -1):
            day = self.day(days_ago)
            if day.weekday() < 5:
                for username in self.people:
                    self.working_day(username, day, days_ago)
        self.dormant()
        self.guessing_night(days_ago=16)
        self.lockout(days_ago=9)
        self.record_changes()
        self.events.sort(key=lambda e: e.occurred_at)
        for user_id, when in self.last_sign_in.items():
            User.objects.filter(pk=user_id).update(last_sign_in_at=when)
        return self.events

    def working_day(self, username: str, day: datetime.date, days_ago: int) -> None:
        person, user, rng = self.by_name[username], self.user(username), self.random
        habit = person.habit
        if habit in ("api", "dormant", "new"):
            return
        if day < user.created_at.date() or (habit == "leaver" and days_ago <= 12):
            return
        if username == "chris.morgan" and days_ago == 9:
            return  # the day of the lockout, told on its own
        if rng.random() > (0.9 if habit in ("daily", "leaver") else 0.45):
            return
        at_home = rng.random() < 0.3
        ip = self.homes[username] if at_home else self.desks[username]
        agent = PHONE_AGENT if at_home and rng.random() < 0.2 else self.agents[username]
        start = _at(day, 7.5 + rng.random() * 2)
        if rng.random() < 0.06:  # a mistyped password first
            self.failed(username, start - datetime.timedelta(seconds=40), ip=ip, agent=agent)
        if person.totp and rng.random() < 0.03:
            self.add(
                AuditAction.TOTP_FAILED,
                start - datetime.timedelta(seconds=20),
                who=username,
                actor_label=username,
                target=user,
                ip=ip,
                user_agent=agent,
                context={"stage": "sign_in"},
            )
        self.sign_in(username, start, ip=ip, agent=agent)
        end = _at(day, 16.5 + rng.random() * 2)
        if rng.random() < 0.6:
            self.add(
                AuditAction.SIGN_OUT,
                end,
                who=username,
                actor=user,
                target=user,
                ip=ip,
                user_agent=agent,
            )
        else:
            self.add(
                AuditAction.SESSION_EXPIRED,
                end,
                who=username,
                actor=user,
                target=user,
                ip=ip,
                user_agent=agent,
                reason="idle for 30 min",
                context={"kind": "idle"},
            )

    def sign_in(self, username: str, when, *, ip=None, agent=None) -> None:
        user = self.user(username)
        factor = {"second_factor": "totp"} if self.by_name[username].totp else {}
        self.add(
            AuditAction.SIGN_IN,
            when,
            who=username,
            actor=user,
            target=user,
            method="password",
            context=factor,
            **({"ip": ip} if ip else {}),
            **({"user_agent": agent} if agent else {}),
        )
        if when < self.now:
            self.last_sign_in[user.pk] = max(when, self.last_sign_in.get(user.pk, when))

    def failed(self, login: str, when, *, reason="wrong_password", ip=None, agent=None) -> None:
        user = self.people.get(login)
        self.add(
            AuditAction.SIGN_IN_FAILED,
            when,
            who=login,
            actor_label=login,
            target=user,
            subject_user=user,
            reason=SignInFailure.LABELS.get(reason, reason),
            method="password",
            context={"reason": reason, "login": login},
            **({"ip": ip} if ip else {}),
            **({"user_agent": agent} if agent else {}),
        )

    def dormant(self) -> None:
        """Jack last signed in four months ago: the dormant accounts report finds him."""
        if "jack.wilson" in self.people:
            when = self.now - datetime.timedelta(days=118, hours=7)
            self.sign_in("jack.wilson", when, ip=self.homes["jack.wilson"])

    def guessing_night(self, *, days_ago: int) -> None:
        """Someone tries common logins and the demo sign-ins at night, from two addresses."""
        rng, start = self.random, _at(self.day(days_ago), 2.2)
        logins = ["admin", "admin", "admin", "finance", "finance", "auditor", "support", "leaver"]
        for n, login in enumerate(logins * 2):
            when = start + datetime.timedelta(seconds=20 * n + rng.randrange(15))
            reason = "login_disabled" if login == "leaver" else "wrong_password"
            self.failed(login, when, reason=reason, ip=ATTACKER_IPS[n % 2], agent=ATTACKER_AGENT)

    def lockout(self, *, days_ago: int) -> None:
        """Chris forgets his password after a holiday, is locked out, and support clears it."""
        if "chris.morgan" not in self.people or "support" not in self.people:
            return
        chris, start = self.user("chris.morgan"), _at(self.day(days_ago), 8.3)
        threshold = PasswordPolicy.objects.get(owner=self.owner).lockout_threshold
        for n in range(threshold):
            self.failed("chris.morgan", start + datetime.timedelta(seconds=35 * n))
        locked_at = start + datetime.timedelta(seconds=35 * (threshold - 1), milliseconds=5)
        self.add(
            AuditAction.LOCKED_OUT,
            locked_at,
            who="chris.morgan",
            actor_label="chris.morgan",
            target=chris,
            reason=f"{threshold} failed attempts",
            context={"failures": threshold, "last_reason": "wrong_password", "lockout_minutes": 15},
        )
        self.failed("chris.morgan", locked_at + datetime.timedelta(minutes=2), reason="locked_out")
        self.add(
            AuditAction.SENSITIVE_VIEWED,
            locked_at + datetime.timedelta(minutes=9),
            who="support",
            actor=self.user("support"),
            target=chris,
            details="Security tab",
        )
        self.change(
            locked_at + datetime.timedelta(minutes=11),
            "support",
            AuditAction.LOCKOUT_CLEARED,
            chris,
            changes=None,
            reason="Identity confirmed by a call back to his desk phone",
            context={"was_locked": True},
        )
        self.sign_in("chris.morgan", locked_at + datetime.timedelta(minutes=14))
        self.add(
            AuditAction.PASSWORD_CHANGED,
            locked_at + datetime.timedelta(minutes=15),
            who="chris.morgan",
            actor=chris,
            target=chris,
            context={"via": "self_service"},
        )

    def record_changes(self) -> None:
        """Changes to records over the month, each with its Update Reason."""
        at, p = self.at_work, self.people
        if "yusuf.demir" in p:
            self.new_starter(p["yusuf.demir"], by="admin")
        if self.token is not None:
            self.token_created(self.token)
        if "priya.shah" in p:
            # Seeded history: Priya was given Payments to cover month end before the
            # separation-of-duties rules existed, so she now holds both sides of "Invoicing vs
            # recording payments". Written straight to the tables above (the service would
            # refuse it today); this event is the record of it.
            self.change(
                at(24, 10.2),
                "martin.fischer",
                AuditAction.USER_CHANGED,
                p["priya.shah"],
                changes={"extra_role_groups": [[], ["Payments"]]},
                reason="Change of role",
                details="Covering payments while the payments team is short (seeded history: "
                "before the separation-of-duties rules)",
                context={"source": "screen", "row_version": 2},
            )
        if "lucy.taylor" in p:
            self.change(
                at(20, 14.1),
                "admin",
                AuditAction.USER_CHANGED,
                p["lucy.taylor"],
                changes={
                    "commission_annual_target": ["90000.00", "120000.00"],
                    "one_off_commission_profile": [None, "Standard sales"],
                    "recurring_commission_profile": [None, "Standard sales"],
                },
                reason="Correction",
                details="Target agreed at the sales kick-off",
                context={"source": "screen", "row_version": 2},
            )
        if "diego.ramos" in p:
            self.change(
                at(14, 9.6),
                "admin",
                AuditAction.USER_CHANGED,
                p["diego.ramos"],
                changes={
                    "role": ["Support agent", "Billing operator"],
                    "departments": [["Customer Support"], ["Operations"]],
                },
                reason="Change of role",
                details="Moved to the billing operations team",
                context={"source": "screen", "row_version": 2},
            )
        if "leaver" in p:
            self.change(
                at(12, 17.4),
                "admin",
                AuditAction.USER_DEACTIVATED,
                p["leaver"],
                changes={"allow_login": [True, False]},
                reason="Leaver",
                details="Last working day",
                context={"source": "screen", "row_version": 2, "sessions_ended": 1},
            )
            self.failed("leaver", at(11, 8.1), reason="login_disabled", ip=self.homes["leaver"])
        self.change(
            at(18, 11.3),
            "admin",
            AuditAction.SETTINGS_ITEM_CHANGED,
            CommissionProfile.objects.get(owner=self.owner, name="Partner channel"),
            changes={"name": ["Partners", "Partner channel"]},
            reason="Correction",
            context={"list": "commission_profiles"},
        )
        if "sofia.rossi" in p:
            self.add(
                AuditAction.ACCESS_REFUSED,
                at(7, 10.4),
                who="sofia.rossi",
                actor=p["sofia.rossi"],
                target=p["sofia.rossi"],
                details="/users/",
            )
        if self.override is not None:
            override = self.override
            self.change(
                override.created_at,
                "admin",
                AuditAction.OVERRIDE_SET,
                override.user,
                changes={"reports": [None, "full"]},
                reason=override.reason,
                context={
                    "area": "Reports",
                    "expires_at": override.expires_at.isoformat(),
                    "previous_expires_at": None,
                },
            )
        if "auditor" in p:
            self.add(
                AuditAction.AUDIT_EXPORTED,
                at(5, 15.2),
                who="auditor",
                actor=p["auditor"],
                target=("audit_log", "", "Activity log"),
                details="CSV export (failed)",
                context={"filters": {"tab": "failed"}, "scope": "failed"},
            )
        if "grace.kim" in p:
            self.new_starter(p["grace.kim"], by="martin.fischer")
        if "emma.brown" in p:
            user = p["emma.brown"]
            self.change(
                at(2, 13.7),
                "support",
                AuditAction.USER_CHANGED,
                user,
                changes={"email": ["emma.b@acme-telecom.example", user.email]},
                reason="Correction",
                context={"source": "screen", "row_version": 2},
            )

    def token_created(self, token: ApiToken) -> None:
        self.add(
            AuditAction.TOKEN_CREATED,
            token.created_at,
            who="admin",
            actor=self.user("admin"),
            target=token,
            subject_user=token.user,
            reason="CRM integration renewed for the new contract",
            context={
                "prefix": token.prefix,
                "name": token.name,
                "expires_at": token.expires_at.isoformat(),
                "read_only": token.read_only,
                "areas": list(token.areas),
                "allowed_networks": list(token.allowed_networks),
            },
        )

    def at_work(self, days_ago: int, hour: float) -> datetime.datetime:
        return _at(self.day(days_ago), hour)

    # Today, through the services ------------------------------------------------------------------

    def today(self) -> int:
        """Do what happens today through the services (each audited now); return the events."""
        from audit.models import AuditEvent
        from reviews import services as reviews
        from reviews.choices import Decision, ScopeKind

        before = AuditEvent.objects.filter(owner_id=self.owner.pk).count()
        p = self.people
        admin, martin = p["admin"], p["martin.fischer"]
        groups = {g.name: g for g in RoleGroup.objects.filter(owner=self.owner)}
        for role_name, names in ELIGIBLE.items():
            elevations.set_role_eligibility(
                Role.objects.get(owner=self.owner, name=role_name),
                [groups[n] for n in names],
                actor=admin,
                reason="Direct-debit runs on request, not standing",
            )
        sod.install_starter_rules(actor=admin)
        runs = groups["Direct Debit Runs"]
        tomorrow = (self.now + datetime.timedelta(days=1)).date()
        elevations.request_access(
            p["tom.okafor"],
            runs,
            justification="Month-end direct-debit run",
            ticket="FIN-2304",
            hours=6,
            starts_at=_at(tomorrow, 7),
        )
        request = elevations.request_access(
            p["mei.chen"],
            runs,
            justification="Re-run the direct-debit batch that failed on the 1st",
            ticket="FIN-2291",
            hours=4,
        )
        elevations.approve(request, actor=martin, reason="Checked with the bank's file")
        auditor = p["auditor"]
        campaign = reviews.create_campaign(
            actor=admin,
            name="Finance access review",
            scope_kind=ScopeKind.DEPARTMENT,
            department=Department.objects.get(owner=self.owner, name="Finance"),
            reviewers=[auditor, p["elena.popescu"]],
            due_date=timezone.localdate(self.now) + datetime.timedelta(days=14),
        )
        items = {i.user.username: i for i in campaign.items.select_related("user")}
        for username in ("finance", "olga.novak", "raj.patel"):
            reviews.record_decision(items[username], actor=auditor, decision=Decision.KEEP)
        hannah = items["hannah.weber"]
        reviews.record_decision(
            hannah,
            actor=auditor,
            decision=Decision.REMOVE_OVERRIDE,
            comment="The quarter-end cover is over by the time this applies.",
            override_id=hannah.snapshot["overrides"][0]["id"],
        )
        return AuditEvent.objects.filter(owner_id=self.owner.pk).count() - before
