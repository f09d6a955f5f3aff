"""ASGI entry point."""

import os
from importlib import import_module

from django.conf import settings
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing_access.settings")
application = get_asgi_application()

# Import every URL module at start-up rather than on the first request (see wsgi.py).
import_module(settings.ROOT_URLCONF)
