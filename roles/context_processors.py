"""Template context: the menu drawn from the same permissions that guard the views, and the links
of the page shell."""

from .navigation import menu_for, shell_links


def navigation(request):
    shell = shell_links()
    context = {"menu": menu_for(request), "shell": shell}
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        # A session signed in through the identity provider signs out there too.
        sso = request.session.get("auth_method") == "saml"
        context["sign_out_url"] = shell["sso_sign_out"] if sso else shell["sign_out"]
        context["session_timeouts"] = getattr(request, "session_timeouts", None)
    return context
