"""Load the signed-in person once, and apply their locale and time zone to every page."""

import zoneinfo

from django.conf import settings
from django.contrib import auth
from django.contrib.auth import middleware as auth_middleware
from django.utils import timezone, translation


class AuthenticationMiddleware(auth_middleware.AuthenticationMiddleware):
    """Django's authentication middleware, with the signed-in user loaded at once.

    Every portal page reads the user first thing (session rules, permissions, the page shell),
    so Django's lazy wrapper saves no query here and costs two extra calls on each of the
    dozens of attribute reads a page makes. Without a session cookie nothing is queried.
    """

    def process_request(self, request):
        super().process_request(request)
        request.user = auth.get_user(request)


class UserPreferencesMiddleware:
    """Activate the person's language and time zone for the request.

    The settings' language and time zone are what Django uses when nothing is activated, so a
    person who keeps them costs nothing here.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        language = None
        activated = False
        if user is not None and user.is_authenticated:
            if user.locale and user.locale != settings.LANGUAGE_CODE:
                translation.activate(user.locale)
                activated = True
                language = translation.get_language()
            else:
                language = settings.LANGUAGE_CODE  # Django's language when none is activated
            request.LANGUAGE_CODE = language
            if user.time_zone and user.time_zone != settings.TIME_ZONE:
                activated = True
                try:
                    timezone.activate(zoneinfo.ZoneInfo(user.time_zone))
                except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                    timezone.deactivate()
        try:
            response = self.get_response(request)
        finally:
            if activated:
                timezone.deactivate()
                translation.deactivate()
        if language:
            response.headers.setdefault("Content-Language", language)
        return response
