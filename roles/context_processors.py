"""Template context: the menu drawn from the same permissions that guard the views."""

from .navigation import menu_for


def navigation(request):
    return {"menu": menu_for(request)}
