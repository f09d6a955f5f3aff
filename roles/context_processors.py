"""Template context: the menu drawn from the same permissions that guard the views."""

from .navigation import menu


def navigation(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not hasattr(request, "permissions"):
        return {"menu": []}
    return {"menu": menu(request.permissions, user)}
