"""Screens of the accounts app."""

from __future__ import annotations

from django.shortcuts import render

from roles.access import signed_in
from roles.navigation import menu


@signed_in
def home(request):
    """Show who is signed in and the screens they may open."""
    sections = [(name, items) for name, items in menu(request.permissions) if name != "You"]
    return render(request, "home.html", {"sections": sections})
