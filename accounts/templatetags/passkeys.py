"""Passkey fragments of other apps' pages: sign-in, the second step, step-up, the 2FA page.

`{% passkey_sign_in %}` (sign-in page), `{% passkey_second_step user %}` (second step),
`{% passkey_step_up user as options %}` (what the re-authentication page offers),
`{% passkey_list user %}` (the person's passkeys on their two-factor page).
"""

from django import template
from django.urls import reverse
from django.utils.http import urlencode

from ..passkeys import policy, services
from ..passkeys.ceremony import Purpose
from ..twofactor import services as twofactor

register = template.Library()


def _with_next(url: str, next_url: str) -> str:
    return f"{url}?{urlencode({'next': next_url})}" if next_url else url


@register.inclusion_tag("passkeys/_sign_in.html", takes_context=True)
def passkey_sign_in(context):
    """The passkey button (and autofill in the username field) of the sign-in page."""
    return {
        "begin_url": reverse("passkeys:sign_in_begin"),
        "complete_url": _with_next(reverse("passkeys:sign_in_complete"), context.get("next")),
        "purpose": Purpose.PASSWORDLESS,
    }


@register.simple_tag
def passkey_second_step(user) -> dict:
    """What the second step offers `user`: a passkey, a code, or both."""
    has_passkey = policy.has_passkey(user)
    return {
        "passkey": has_passkey,
        "code": twofactor.has_confirmed_device(user) and not policy.codes_refused(user),
        "passkey_required": has_passkey and policy.codes_refused(user),
        "begin_url": reverse("passkeys:sign_in_begin"),
        "complete_url": reverse("passkeys:sign_in_complete"),
        "purpose": Purpose.SECOND_STEP,
    }


@register.simple_tag
def passkey_step_up(user, next_url="") -> dict:
    """What the re-authentication page offers `user`: a passkey, the password form, or both.

    The password form goes when it could not succeed or is not allowed: a passkey holder with
    no authenticator app (the form would ask for a code), or one whose codes the owner refuses.
    """
    has_passkey = policy.has_passkey(user)
    password_form = not has_passkey or (
        twofactor.has_confirmed_device(user) and not policy.codes_refused(user)
    )
    return {
        "passkey": has_passkey,
        "password_form": password_form,
        "begin_url": reverse("passkeys:step_up_begin"),
        "complete_url": _with_next(reverse("passkeys:step_up_complete"), next_url),
    }


@register.inclusion_tag("passkeys/_list.html")
def passkey_list(user):
    """The person's own passkeys, with the links to add and remove them."""
    return {
        "passkeys": [a for a in services.authenticators_of(user) if a.kind != services.APP],
        "required": policy.phishing_resistant_required(user),
    }
