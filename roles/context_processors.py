"""Template context: the menu drawn from the same permissions that guard the views, and the links
and language of the page shell."""

from django.utils.html import format_html
from django.utils.translation import get_language

from .navigation import menu_for, shell_links

IDLE_ATTRIBUTES = (
    ' data-idle-remaining="{}" data-idle-timeout="{}" data-idle-warning="{}"'
    ' data-keep-alive-url="{}" data-sign-in-url="{}"'
)


def navigation(request):
    shell = shell_links()
    # The page's language for <html lang>; Django's i18n processor would also work out the list
    # of languages and the text direction, which no page uses.
    context = {"menu": menu_for(request), "shell": shell, "LANGUAGE_CODE": get_language()}
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        # A session signed in through the identity provider signs out there too.
        sso = request.session.get("auth_method") == "saml"
        context["sign_out_url"] = shell["sso_sign_out"] if sso else shell["sign_out"]
        timeouts = getattr(request, "session_timeouts", None)
        if timeouts:
            # The idle warning's settings, as attributes of <body> (read by session.js).
            context["idle_attributes"] = format_html(
                IDLE_ATTRIBUTES,
                timeouts["idle_remaining"],
                timeouts["idle_timeout"],
                timeouts["warning"],
                shell["keep_alive"],
                shell["sign_in"],
            )
    return context
