from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from delivery import panels as email_panels
        from roles import catalog
        from security import services as security_services
        from security import signals, stepup

        from . import listing, record
        from .takeover import services as takeover
        from .twofactor import services as twofactor

        # Codes entered at step-up go through the same check as at sign-in.
        stepup.register_second_factor_check(twofactor.verify_second_factor)
        # The policy screen's warning before "require two-factor": who it sends to set-up.
        security_services.register_enrolment_impact(twofactor.enrolment_impact)
        # A changed password is told to the person (and their old address), as every change is.
        signals.password_changed.connect(
            takeover.on_password_changed, dispatch_uid="accounts.takeover.password_changed"
        )
        listing.register_filter(listing.locked_out_filter())
        # The user record's Emails panel: each email to the person and its delivery state.
        record.register_security_panel(
            record.SecurityPanel(
                name="emails",
                template_name="delivery/emails_panel.html",
                area=catalog.USERS,
                level=catalog.READ,
                context=email_panels.emails_of,
            )
        )
