"""Template context: the menu drawn from the same permissions that guard the views, and the links
and language of the page shell."""

from django.conf import settings
from django.utils.safestring import SafeString
from django.utils.translation import get_language

from .navigation import menu_for, shell_links

IDLE_ATTRIBUTES = (
    ' data-idle-remaining="{:d}" data-idle-timeout="{:d}" data-idle-warning="{:d}"'
    ' data-keep-alive-url="{}" data-sign-in-url="{}"'
)


def navigation(request):
    shell = shell_links(request)
    # The page's language for <html lang> and `{% memo %}` (UserPreferencesMiddleware read it for
    # the signed-in person); Django's i18n processor would also work out the list of languages
    # and the text direction, which no page uses.
    language = getattr(request, "LANGUAGE_CODE", None) or get_language() or settings.LANGUAGE_CODE
    context = {"menu": menu_for(request), "shell": shell, "LANGUAGE_CODE": language}
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        # A session signed in through the identity provider signs out there too.
        sso = request.session.get("auth_method") == "saml"
        context["sign_out_url"] = shell["sso_sign_out"] if sso else shell["sign_out"]
        timeouts = getattr(request, "session_timeouts", None)
        if timeouts:
            # The idle warning's settings, as attributes of <body> (read by session.js): whole
            # numbers, and paths the shell escaped once (`{:d}` refuses anything but an int).
            context["idle_attributes"] = SafeString(
                IDLE_ATTRIBUTES.format(
                    timeouts["idle_remaining"],
                    timeouts["idle_timeout"],
                    timeouts["warning"],
                    shell["keep_alive"],
                    shell["sign_in"],
                )
            )
    return context
