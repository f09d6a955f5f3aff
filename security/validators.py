"""Password validation by the owner's policy, used on every path that sets a password."""

from __future__ import annotations

import unicodedata

from django.contrib.auth.hashers import check_password
from django.contrib.auth.password_validation import (
    CommonPasswordValidator,
    UserAttributeSimilarityValidator,
)
from django.core.exceptions import ValidationError

from .models import MAX_LENGTH, PasswordPolicy


def policy_for(user) -> PasswordPolicy:
    """Return the policy of the user's owner (the defaults when the owner has none saved).

    When the owner was loaded with `select_related("owner__password_policy")` (as the
    authentication backend does), this costs no query.
    """
    owner_id = getattr(user, "owner_id", None)
    if owner_id is None:
        return PasswordPolicy()
    owner = user._state.fields_cache.get("owner") if hasattr(user, "_state") else None
    if owner is not None:
        try:
            return owner.password_policy
        except PasswordPolicy.DoesNotExist:
            return PasswordPolicy(owner_id=owner_id)
    policy = PasswordPolicy.objects.filter(owner_id=owner_id).first()
    return policy or PasswordPolicy(owner_id=owner_id)


class OwnerPolicyValidator:
    """Apply the user's owner policy: length, classes, allowed characters, history, and the
    common-password and user-attribute checks that current guidance asks for."""

    def validate(self, password: str, user=None) -> None:
        policy = policy_for(user)
        errors: list[ValidationError] = []
        length = len(unicodedata.normalize("NFC", password))
        if length < policy.min_length:
            errors.append(
                ValidationError(
                    f"Use at least {policy.min_length} characters (this one has {length}).",
                    code="password_too_short",
                )
            )
        if length > MAX_LENGTH:
            errors.append(
                ValidationError(f"Use at most {MAX_LENGTH} characters.", code="password_too_long")
            )
        if policy.require_upper and not any(c.isupper() for c in password):
            errors.append(
                ValidationError("Include an upper-case letter.", code="password_no_upper")
            )
        if policy.require_lower and not any(c.islower() for c in password):
            errors.append(ValidationError("Include a lower-case letter.", code="password_no_lower"))
        if policy.require_digit and not any(c.isdigit() for c in password):
            errors.append(ValidationError("Include a digit.", code="password_no_digit"))
        if policy.require_symbol and all(c.isalnum() or c.isspace() for c in password):
            errors.append(
                ValidationError("Include a symbol such as ! or #.", code="password_no_symbol")
            )
        if policy.allowed_characters:
            allowed = set(policy.allowed_characters)
            refused = sorted({c for c in password if c not in allowed and not c.isalnum()})
            if refused:
                names = ", ".join("space" if c == " " else c for c in refused)
                listed = " ".join("space" if c == " " else c for c in sorted(allowed))
                errors.append(
                    ValidationError(
                        f"These characters are not allowed: {names}. Besides letters and "
                        f"digits, use only: {listed}",
                        code="password_character_not_allowed",
                    )
                )
        for validator in (
            CommonPasswordValidator(),
            UserAttributeSimilarityValidator(
                user_attributes=("username", "first_name", "last_name", "email", "display_name")
            ),
        ):
            try:
                validator.validate(password, user)
            except ValidationError as exc:
                errors.extend(exc.error_list)
        has_history = user is not None and getattr(user, "pk", None) and policy.history_depth
        if has_history and self._reused(password, user, policy.history_depth):
            errors.append(
                ValidationError(
                    f"Choose a password you have not used for your last "
                    f"{policy.history_depth} passwords.",
                    code="password_reused",
                )
            )
        if errors:
            raise ValidationError(errors)

    @staticmethod
    def _reused(password: str, user, depth: int) -> bool:
        if user.password and check_password(password, user.password):
            return True
        previous = user.password_history.values_list("password", flat=True)[: max(depth - 1, 0)]
        return any(check_password(password, encoded) for encoded in previous)

    def get_help_text(self) -> str:
        return "Use a long passphrase; any characters, spaces and emoji are welcome."
