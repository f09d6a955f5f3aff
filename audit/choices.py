"""Every kind of audit event, in one enumeration."""

import functools

from django.db import models


class EventCategory(models.TextChoices):
    SIGN_IN = "sign_in", "Sign-in"
    FAILED = "failed", "Failed attempt"
    CHANGE = "change", "Record change"
    VIEW = "view", "Sensitive view"
    SECURITY = "security", "Security event"


class AuditAction(models.TextChoices):
    # Sign-in and sessions.
    SIGN_IN = "sign_in", "Signed in"
    SIGN_IN_FAILED = "sign_in_failed", "Sign-in failed"
    SIGN_OUT = "sign_out", "Signed out"
    SESSION_EXPIRED = "session_expired", "Session expired"
    SESSIONS_ENDED = "sessions_ended", "Sessions ended"
    LOCKED_OUT = "locked_out", "Locked out"
    LOCKOUT_CLEARED = "lockout_cleared", "Lockout cleared"
    ACCESS_REFUSED = "access_refused", "Access refused"
    # Users and settings lists.
    USER_CREATED = "user_created", "User created"
    USER_CHANGED = "user_changed", "User changed"
    USER_DEACTIVATED = "user_deactivated", "User deactivated"
    USER_REACTIVATED = "user_reactivated", "User reactivated"
    USER_DELETED = "user_deleted", "User deleted"
    SETTINGS_ITEM_CREATED = "settings_item_created", "Settings entry created"
    SETTINGS_ITEM_CHANGED = "settings_item_changed", "Settings entry changed"
    SETTINGS_ITEM_RETIRED = "settings_item_retired", "Settings entry retired"
    OWNER_CHANGED = "owner_changed", "Owner settings changed"
    # Authorization.
    ROLE_CREATED = "role_created", "Role created"
    ROLE_CHANGED = "role_changed", "Role changed"
    ROLE_DELETED = "role_deleted", "Role deleted"
    ROLE_GROUP_CREATED = "role_group_created", "Role group created"
    ROLE_GROUP_CHANGED = "role_group_changed", "Role group changed"
    ROLE_GROUP_DELETED = "role_group_deleted", "Role group deleted"
    MATRIX_CHANGED = "matrix_changed", "Permission matrix changed"
    OVERRIDE_SET = "override_set", "Permission override set"
    OVERRIDE_REMOVED = "override_removed", "Permission override removed"
    ROLE_MODEL_IMPORTED = "role_model_imported", "Role model imported"
    # Passwords, policy, 2FA, recovery, tokens, SSO.
    POLICY_CHANGED = "policy_changed", "Password policy changed"
    PASSWORD_CHANGED = "password_changed", "Password changed"
    PASSWORD_SET = "password_set", "Password set"
    PASSWORD_EXPIRED = "password_expired", "Password expired"
    TOTP_ENROLLED = "totp_enrolled", "Two-factor device enrolled"
    TOTP_REMOVED = "totp_removed", "Two-factor device removed"
    TOTP_RESET = "totp_reset", "Two-factor device reset"
    TOTP_FAILED = "totp_failed", "Two-factor code refused"
    BACKUP_CODE_USED = "backup_code_used", "Backup code used"
    BACKUP_CODES_REGENERATED = "backup_codes_regenerated", "Backup codes regenerated"
    ACCESS_EMAIL_SENT = "access_email_sent", "Access email sent"
    RECOVERY_CODE_SENT = "recovery_code_sent", "Recovery code sent"
    RECOVERY_CODE_USED = "recovery_code_used", "Recovery code used"
    RECOVERY_CODE_FAILED = "recovery_code_failed", "Recovery code refused"
    TOKEN_CREATED = "token_created", "API token created"
    TOKEN_REVOKED = "token_revoked", "API token revoked"
    TOKEN_REFUSED = "token_refused", "API token refused"
    SSO_PROVIDER_CHANGED = "sso_provider_changed", "Identity provider changed"
    SSO_REFUSED = "sso_refused", "Single sign-on refused"
    STEP_UP = "step_up", "Identity re-confirmed"
    # Passkeys and account-takeover signals.
    PASSKEY_ADDED = "passkey_added", "Passkey added"
    PASSKEY_REMOVED = "passkey_removed", "Passkey removed"
    PASSKEY_REFUSED = "passkey_refused", "Passkey refused"
    AUTHENTICATOR_REVOKED = "authenticator_revoked", "Authenticator revoked"
    UNFAMILIAR_SIGN_IN = "unfamiliar_sign_in", "Sign-in from a new device or country"
    SECURITY_NOTICE_SENT = "security_notice_sent", "Security notice emailed"
    # Views of sensitive records and the log itself.
    SENSITIVE_VIEWED = "sensitive_viewed", "Sensitive record viewed"
    AUDIT_EXPORTED = "audit_exported", "Audit log exported"
    AUDIT_PURGED = "audit_purged", "Audit log purged"
    # Reviews.
    REVIEW_CHANGED = "review_changed", "Access review changed"
    # Just-in-time access: eligibility, requests and elevations.
    ELIGIBILITY_CHANGED = "eligibility_changed", "Eligibility changed"
    ACCESS_REQUESTED = "access_requested", "Access requested"
    ACCESS_APPROVED = "access_approved", "Access request approved"
    ACCESS_DENIED = "access_denied", "Access request denied"
    ACCESS_WITHDRAWN = "access_withdrawn", "Access request withdrawn"
    ELEVATION_ACTIVATED = "elevation_activated", "Elevation activated"
    ELEVATION_ENDED = "elevation_ended", "Elevation ended"
    ELEVATION_REVOKED = "elevation_revoked", "Elevation revoked"
    ELEVATION_EXPIRED = "elevation_expired", "Elevation expired"
    BREAK_GLASS = "break_glass", "Emergency access activated"
    # Separation of duties.
    SOD_RULE_CREATED = "sod_rule_created", "Separation-of-duties rule created"
    SOD_RULE_CHANGED = "sod_rule_changed", "Separation-of-duties rule changed"
    SOD_RULE_DELETED = "sod_rule_deleted", "Separation-of-duties rule deleted"
    SOD_BLOCKED = "sod_blocked", "Change blocked by separation of duties"
    SOD_WITHHELD = "sod_withheld", "Identity provider access withheld by separation of duties"
    SOD_EXCEPTION_GRANTED = "sod_exception_granted", "Separation-of-duties exception granted"
    SOD_EXCEPTION_REVOKED = "sod_exception_revoked", "Separation-of-duties exception revoked"


_SIGN_IN = {
    AuditAction.SIGN_IN,
    AuditAction.SIGN_OUT,
    AuditAction.SESSION_EXPIRED,
}
# Refused attempts to get in or to prove an identity. ACCESS_REFUSED (a signed-in person asking
# for a page they may not open) is a security event, not a failed attempt to get in.
_FAILED_SUFFIXES = ("_failed", "_refused")
_VIEW = {AuditAction.SENSITIVE_VIEWED, AuditAction.AUDIT_EXPORTED}
_CHANGE_PREFIXES = (
    "user_",
    "settings_item_",
    "owner_",
    "role_",
    "matrix_",
    "override_",
    "review_",
    "eligibility_",
    "access_requested",
    "access_approved",
    "access_denied",
    "access_withdrawn",
    "elevation_",
    "sod_rule_",
    "sod_exception_",
)


def category_of(action: str) -> str:
    """Return the event category shown by the activity screens for an action."""
    if action in _SIGN_IN:
        return EventCategory.SIGN_IN
    if action.endswith(_FAILED_SUFFIXES) and action != AuditAction.ACCESS_REFUSED:
        return EventCategory.FAILED
    if action in _VIEW:
        return EventCategory.VIEW
    if action.startswith(_CHANGE_PREFIXES):
        return EventCategory.CHANGE
    return EventCategory.SECURITY


@functools.cache
def actions_in(category: str) -> tuple[tuple[str, str], ...]:
    """Return the (value, label) pairs of the actions filed under `category`."""
    choices = AuditAction.choices
    return tuple((value, label) for value, label in choices if category_of(value) == category)
