"""The floor: a bare signed-in Django view with only session and authentication middleware."""

from tests.bench.settings import *  # noqa: F403

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
ROOT_URLCONF = "tests.bench.floor_urls"
