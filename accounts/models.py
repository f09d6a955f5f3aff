"""Identity: owners (tenants), their settings lists, and users."""

from __future__ import annotations

import datetime
import hashlib
import zoneinfo

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.expressions import RawSQL
from django.db.models.functions import Lower
from django.utils import timezone

from . import lookups  # noqa: F401  (registers field__ci)
from .choices import (
    EXPERT_LEVELS,
    PRIVILEGE_LEVELS,
    AuthSource,
    CustomerAccessScope,
    Locale,
    UserKind,
)

AMOUNT_HELP = "An amount from 0 to 999,999,999,999.99."
EARLIEST_COMMISSION_DATE = datetime.date(2000, 1, 1)


def validate_commission_date(value: datetime.date) -> None:
    """Refuse a reference date before 2000 or more than five years ahead (a typing slip)."""
    latest = timezone.localdate() + datetime.timedelta(days=5 * 365)
    if value < EARLIEST_COMMISSION_DATE or value > latest:
        raise ValidationError(
            f"Choose a date between 1 Jan 2000 and {latest:%-d %b %Y}.", code="out_of_range"
        )


def _amount(label: str | None = None):
    """A commission amount: never negative, at most what the column holds."""
    return models.DecimalField(
        *([label] if label else []),
        max_digits=14,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(0, message="An amount cannot be negative.")],
        help_text=AMOUNT_HELP,
    )


def validate_time_zone(value: str) -> None:
    """Refuse a time zone name that the IANA database does not know."""
    if value not in zoneinfo.available_timezones():
        raise ValidationError("Choose a time zone from the list, such as Europe/London.")


class Owner(models.Model):
    """A tenant of the portal: every user, role and setting belongs to exactly one owner.

    `authz_epoch` is bumped whenever a change can move the permissions of many of the owner's users
    at once (a role group's matrix, a role's groups); it is part of every permission cache key.
    `people_version` moves whenever one of the owner's users is added or a searched field of one
    changes (login, email, names); it is part of the key of kept search results.
    """

    name = models.CharField(max_length=200, unique=True)
    slug = models.SlugField(max_length=60, unique=True)
    authz_epoch = models.PositiveBigIntegerField(default=1)
    people_version = models.PositiveBigIntegerField(default=1)
    data_protection_min_privilege = models.PositiveSmallIntegerField(
        default=5,
        validators=[MaxValueValidator(10)],
        help_text="Users below this privilege level never receive data-protection areas.",
    )
    audit_retention_days = models.PositiveIntegerField(
        default=2555, validators=[MinValueValidator(90)], help_text="At least 90 days."
    )
    max_elevation_hours = models.PositiveSmallIntegerField(
        default=8,
        validators=[MinValueValidator(1), MaxValueValidator(72)],
        help_text="The longest a just-in-time elevation may last, in hours (1 to 72).",
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class OwnedQuerySet(models.QuerySet):
    def for_owner(self, owner):
        return self.filter(owner=owner)

    def active(self):
        return self.filter(retired=False)


class SettingsListItem(models.Model):
    """An entry of one of an owner's settings lists; retired entries stay for history."""

    owner = models.ForeignKey(Owner, on_delete=models.CASCADE)
    name = models.CharField(max_length=120)
    retired = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    objects = OwnedQuerySet.as_manager()

    class Meta:
        abstract = True
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Department(SettingsListItem):
    """A department of the owner's organisation; users belong to any number of them."""

    class Meta(SettingsListItem.Meta):
        constraints = [
            models.UniqueConstraint("owner", Lower("name"), name="department_unique_name_per_owner")
        ]


class UpdateReason(SettingsListItem):
    """A reason an administrator picks when changing a user record (the Update Reason list)."""

    class Meta(SettingsListItem.Meta):
        constraints = [
            models.UniqueConstraint(
                "owner", Lower("name"), name="updatereason_unique_name_per_owner"
            )
        ]


class CommissionProfile(SettingsListItem):
    """A commission profile that a user's commission details can point to."""

    class Meta(SettingsListItem.Meta):
        constraints = [
            models.UniqueConstraint(
                "owner", Lower("name"), name="commissionprofile_unique_name_per_owner"
            )
        ]


# The searched text of a user: the expression of the trigram index of migration 0005, which
# serves `icontains` on it. A search word has no space, so it never matches across two fields.
SEARCH_TEXT_SQL = (
    '"accounts_user"."username" || \' \' || "accounts_user"."email" || \' \' || '
    '"accounts_user"."first_name" || \' \' || "accounts_user"."last_name" || \' \' || '
    '"accounts_user"."display_name"'
)
MAX_SEARCH_WORDS = 5
# The fields the search reads: a change to one of them moves the owner's people_version.
SEARCHED_FIELDS = frozenset({"username", "email", "first_name", "last_name", "display_name"})
# Kept search results live this long at most, should a writer ever miss moving the version.
SEARCH_KEPT_FOR = 600  # seconds


class UserQuerySet(models.QuerySet):
    def for_owner(self, owner):
        return self.filter(owner=owner)

    def matching(self, text: str):
        """Keep users matching every word of `text` in a name, the username or the email."""
        words = (text or "").split()[:MAX_SEARCH_WORDS]
        if not words:
            return self
        text_sql = RawSQL(SEARCH_TEXT_SQL, [], output_field=models.TextField())  # noqa: S611 - constant
        queryset = self.alias(search_text=text_sql)
        for word in words:
            queryset = queryset.filter(search_text__icontains=word)
        return queryset


class UserManager(BaseUserManager.from_queryset(UserQuerySet)):
    use_in_migrations = True

    def ids_matching(self, owner: Owner, text: str, *, limit: int = 100) -> list[int]:
        """Return the ids of at most `limit` users of `owner` that `matching(text)` finds.

        The answer is kept under the owner's people_version, which every new user and every
        change to a searched field moves, so a filter applied again (the next page, another
        event type, the export) costs no search of the users.
        """
        words = (text or "").split()[:MAX_SEARCH_WORDS]
        digest = hashlib.sha256("\x00".join(words).encode()).hexdigest()
        key = f"accounts:people:{owner.pk}:{owner.people_version}:{limit}:{digest}"
        ids = cache.get(key)
        if ids is None:
            ids = list(
                self.filter(owner_id=owner.pk).matching(text).values_list("pk", flat=True)[:limit]
            )
            cache.set(key, ids, SEARCH_KEPT_FOR)
        return ids

    def named(self, owner: Owner, login: str) -> tuple[int, str, str] | None:
        """Return (id, login, label) of the user of `owner` whose login is `login` (any case),
        or None; kept under the owner's people_version as `ids_matching` is."""
        digest = hashlib.sha256(login.encode()).hexdigest()
        key = f"accounts:person:{owner.pk}:{owner.people_version}:{digest}"
        found = cache.get(key)
        if found is None:
            user = (
                self.filter(owner_id=owner.pk, username__ci=login)
                .only("pk", "username", "display_name", "first_name", "last_name")
                .first()
            )
            found = (user.pk, user.username, user.label) if user else ()
            cache.set(key, found, SEARCH_KEPT_FOR)
        return found or None

    def people_changed(self, owner_id: int) -> None:
        """Move the owner's people_version: a user was added, or a searched field changed."""
        Owner.objects.filter(pk=owner_id).update(people_version=models.F("people_version") + 1)

    def get_by_natural_key(self, username):
        return self.get(username__ci=username)

    def find_by_login(self, login: str):
        """Return the user whose username or email matches `login` (case-insensitive), or None."""
        login = (login or "").strip()
        if not login:
            return None
        return (
            self.select_related("owner", "owner__password_policy")
            .filter(models.Q(username__ci=login) | models.Q(email__ci=login))
            .first()
        )

    def create_user(self, username, email, password=None, *, owner=None, **fields):
        """Create a user of `owner` (the platform owner when none is given)."""
        if not username:
            raise ValueError("A username is required.")
        if not email:
            raise ValueError("An email address is required.")
        if owner is None and "owner_id" not in fields:
            owner = Owner.objects.get_or_create(slug="platform", defaults={"name": "Platform"})[0]
        user = self.model(
            username=username, email=self.normalize_email(email), owner=owner, **fields
        )
        user.set_password(password)
        user.save(using=self._db)
        self.people_changed(user.owner_id)
        return user

    def create_superuser(self, username, email, password=None, **fields):
        """Create a platform administrator: every area, every owner's escalation rules waived."""
        fields.setdefault("is_superuser", True)
        fields.setdefault("privilege_level", 10)
        fields.setdefault("expert_level", 3)
        fields.setdefault("first_name", "Platform")
        fields.setdefault("last_name", "Administrator")
        return self.create_user(username, email, password, **fields)


class User(AbstractBaseUser):
    """A person or an integration that can be granted access to the billing platform.

    Sign-in is allowed only while the Login flag (`allow_login`) is set and the user is interactive;
    API use only while an API flag is set. `permissions_version` is bumped by every change that can
    move this user's effective permissions and is part of the permission cache key. `row_version`
    counts saves of the record so that concurrent edits are detected. `session_epoch` is bumped
    whenever some of the user's sessions are ended, so that every live session re-reads its
    tracking row at its next request (and only then).
    """

    owner = models.ForeignKey(Owner, on_delete=models.PROTECT, related_name="users")
    username = models.CharField(
        "login", max_length=150, help_text="Used to sign in. Letters, digits and @ . + - _ only."
    )
    email = models.EmailField("email address", max_length=254)
    first_name = models.CharField(max_length=150, blank=True)
    last_name = models.CharField(max_length=150, blank=True)
    display_name = models.CharField(max_length=200, blank=True)
    locale = models.CharField(max_length=10, choices=Locale.choices, default=Locale.EN_GB)
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])

    kind = models.CharField(max_length=20, choices=UserKind.choices, default=UserKind.INTERACTIVE)
    auth_source = models.CharField(
        max_length=20, choices=AuthSource.choices, default=AuthSource.LOCAL
    )

    # Allow Access flags.
    allow_login = models.BooleanField("login", default=True)
    allow_api_read = models.BooleanField("API read", default=False)
    allow_api_write = models.BooleanField("API write", default=False)
    allow_email_reports = models.BooleanField("email reports", default=False)
    customer_access_scope = models.CharField(
        max_length=20, choices=CustomerAccessScope.choices, default=CustomerAccessScope.ALL
    )

    privilege_level = models.PositiveSmallIntegerField(
        default=1, choices=PRIVILEGE_LEVELS, validators=[MaxValueValidator(10)]
    )
    expert_level = models.PositiveSmallIntegerField(
        default=0, choices=EXPERT_LEVELS, validators=[MaxValueValidator(3)]
    )

    # User Status flags.
    is_account_manager = models.BooleanField("account manager", default=False)
    is_commission_holder = models.BooleanField("commission holder", default=False)
    is_emergency_account = models.BooleanField(
        "emergency account",
        default=False,
        help_text="May activate eligible access without approval, with a reason; every approver "
        "is told at once.",
    )

    departments = models.ManyToManyField(Department, blank=True, related_name="users")
    role = models.ForeignKey(
        "roles.Role", on_delete=models.PROTECT, null=True, blank=True, related_name="users"
    )
    extra_role_groups = models.ManyToManyField(
        "roles.RoleGroup", blank=True, related_name="extra_users"
    )

    # Commission details.
    commission_reference_date = models.DateField(
        null=True,
        blank=True,
        validators=[validate_commission_date],
        help_text="From 1 Jan 2000 to five years ahead.",
    )
    commission_annual_target = _amount()
    commission_target_one_off = _amount("annual target (one-off charges)")
    commission_target_recurring = _amount("annual target (recurring charges)")
    commission_target_calls = _amount("annual target (call charges)")
    one_off_commission_profile = models.ForeignKey(
        CommissionProfile, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    recurring_commission_profile = models.ForeignKey(
        CommissionProfile, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    call_commission_profile = models.ForeignKey(
        CommissionProfile, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    commission_paid = _amount()

    is_superuser = models.BooleanField(
        "platform administrator",
        default=False,
        help_text="Holds every area of every owner; only created from the command line.",
    )
    permissions_version = models.PositiveBigIntegerField(default=1)
    session_epoch = models.PositiveIntegerField(default=0)
    row_version = models.PositiveIntegerField(default=1)
    password_changed_at = models.DateTimeField(null=True, blank=True)
    must_change_password = models.BooleanField(default=False)
    last_sign_in_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "username"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["email"]

    class Meta:
        ordering = ["username"]
        constraints = [
            models.UniqueConstraint(Lower("username"), name="user_unique_username_ci"),
            models.UniqueConstraint(Lower("email"), name="user_unique_email_ci"),
        ]
        indexes = [
            models.Index(fields=["owner", "last_name", "first_name", "id"], name="user_owner_name"),
            models.Index(fields=["owner", "allow_login"], name="user_owner_login"),
            # Keyset pagination of the users list, one index per sortable column.
            models.Index(fields=["owner", "username", "id"], name="user_owner_username"),
            models.Index(fields=["owner", "email", "id"], name="user_owner_email"),
            models.Index(fields=["owner", "created_at", "id"], name="user_owner_created"),
            # Separation of duties counts people by role and gates without reading their rows
            # (index-only scans): the columns after `id` are carried, not searched.
            models.Index(
                fields=[
                    "owner",
                    "role",
                    "is_superuser",
                    "id",
                    "allow_login",
                    "kind",
                    "privilege_level",
                ],
                name="user_owner_role_gates",
            ),
        ]

    def __str__(self) -> str:
        return self.label

    @property
    def label(self) -> str:
        """Return the name people see: display name, else full name, else the login."""
        return self.display_name or self.get_full_name() or self.username

    def get_full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    def get_short_name(self) -> str:
        return self.first_name or self.username

    @property
    def is_active(self) -> bool:
        """Say whether this user may hold an application session (the Login flag)."""
        return self.allow_login and self.kind == UserKind.INTERACTIVE

    @property
    def is_staff(self) -> bool:
        return self.is_superuser

    @property
    def has_api_access(self) -> bool:
        return self.allow_api_read or self.allow_api_write

    @property
    def is_sso_managed(self) -> bool:
        return self.auth_source == AuthSource.SAML

    # Django's admin (mounted by the benchmark settings only) asks these.
    def has_perm(self, perm, obj=None) -> bool:
        return self.is_superuser

    def has_perms(self, perms, obj=None) -> bool:
        return self.is_superuser

    def has_module_perms(self, app_label) -> bool:
        return self.is_superuser

    def clean(self):
        super().clean()
        self.email = type(self).objects.normalize_email(self.email)


class PasswordSetTokenQuerySet(models.QuerySet):
    def usable(self, now=None):
        """Return the tokens that can still be used: not used, not voided, not expired."""
        now = now or timezone.now()
        return self.filter(used_at__isnull=True, voided_at__isnull=True, expires_at__gt=now)


class PasswordSetToken(models.Model):
    """A single-use, time-limited link to set a password, sent by the access email.

    Only the SHA-256 of the token is stored; the token itself exists in the email alone. Sending a
    newer link voids the older ones of the same user.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="password_set_tokens")
    token_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)

    objects = PasswordSetTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"password link of user {self.user_id} until {self.expires_at:%Y-%m-%d %H:%M}"


from .takeover.models import *  # noqa: E402,F403
from .tokens.models import *  # noqa: E402,F403
from .twofactor.models import *  # noqa: E402,F403
