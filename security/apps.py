from django.apps import AppConfig


class SecurityConfig(AppConfig):
    name = "security"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.contrib.auth.signals import user_logged_in

        from . import checks  # noqa: F401  (registers the system checks)
        from .middleware import stamp_session_epoch
        from .sso import checks as sso_checks  # noqa: F401  (and those of single sign-on)

        user_logged_in.connect(stamp_session_epoch, dispatch_uid="security.stamp_session_epoch")

        from accounts.users import register_idp_managed_fields

        from .sso.services import idp_managed_fields

        # The user screens and services refuse changing what a SAML sign-in sets.
        register_idp_managed_fields(idp_managed_fields)

        _register_user_filters()


def _register_user_filters():
    """Add the "locked out" filter to the users list."""
    from django import forms

    from accounts.listing import UserFilter, register_filter

    def field(owner):
        return forms.ChoiceField(
            label="Locked out",
            required=False,
            choices=[("", "Any"), ("yes", "Locked out"), ("no", "Not locked out")],
        )

    def apply(queryset, value, owner):
        from .lockout import locked_user_ids

        locked = locked_user_ids(owner)
        if value == "yes":
            return queryset.filter(pk__in=locked)
        if value == "no":
            return queryset.exclude(pk__in=locked)
        return queryset

    register_filter(UserFilter("locked", field, apply))
