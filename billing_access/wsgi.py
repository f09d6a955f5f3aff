"""WSGI entry point (gunicorn billing_access.wsgi)."""

import os
from importlib import import_module

from django.conf import settings
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing_access.settings")
application = get_wsgi_application()

# Import every URL module now, and with them SAML, SCIM and the JSON API (about 1.5 s), rather
# than on a worker's first request; under `gunicorn --preload` the workers share the result.
import_module(settings.ROOT_URLCONF)
