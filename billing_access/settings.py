"""Settings of the portal, read from the environment (see README, "Configuration")."""

import base64
import hashlib
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

from . import env

BASE_DIR = Path(__file__).resolve().parent.parent
# Templates and static files sit beside this package: the checkout's templates/ and static/
# through the links billing_access/templates and billing_access/static, an installed wheel's
# copies inside it. VAR_DIR defaults to the checkout's var/, or ./var for an installed portal.
PACKAGE_DIR = Path(__file__).resolve().parent
_CHECKOUT = (BASE_DIR / "manage.py").exists()
VAR_DIR = Path(env.get_str("VAR_DIR") or (BASE_DIR if _CHECKOUT else Path.cwd()) / "var")

DEBUG = env.get_bool("DEBUG", False)
SECRET_KEY = env.get_str("SECRET_KEY") or ""
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set it to a long random value, or set DEBUG=true for a "
            "development key."
        )
    SECRET_KEY = "dev-insecure-key-only-for-DEBUG-" + "x" * 32

# Fernet key(s) that encrypt secrets at rest (TOTP keys): urlsafe base64 of 32 bytes; several keys
# separated by commas rotate them (the first encrypts, all decrypt).
FIELD_ENCRYPTION_KEY = env.get_str("FIELD_ENCRYPTION_KEY") or ""
if not FIELD_ENCRYPTION_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            'FIELD_ENCRYPTION_KEY is not set. Generate one with: python -c "from cryptography.'
            'fernet import Fernet; print(Fernet.generate_key().decode())", or set DEBUG=true '
            "for a development key."
        )
    FIELD_ENCRYPTION_KEY = base64.urlsafe_b64encode(
        hashlib.sha256(b"field-encryption:" + SECRET_KEY.encode()).digest()
    ).decode()
for _key in FIELD_ENCRYPTION_KEY.split(","):
    try:
        _valid = len(base64.urlsafe_b64decode(_key.strip().encode())) == 32
    except ValueError:
        _valid = False
    if not _valid:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEY must be urlsafe base64 of 32 bytes.")

ALLOWED_HOSTS = env.get_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.get_list("CSRF_TRUSTED_ORIGINS", [])
# Number of reverse proxies in front of the portal whose X-Forwarded-For entries are trusted.
TRUSTED_PROXY_COUNT = env.get_int("TRUSTED_PROXY_COUNT", 0)
if TRUSTED_PROXY_COUNT:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.forms",
    "axes",
    "portal",
    "audit",
    "roles",
    "accounts",
    "security",
    "sso",
    "reviews",
    "scim",
    "djangosaml2",
    "django_otp",
    "django_otp_webauthn",
    "django_tasks_db",
    "delivery",
    "ops",
    "webhooks",
    "siem",
    "demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "billing_access.middleware.RequestIdMiddleware",
    "ops.middleware.OpsMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "sso.middleware.SamlSessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "accounts.middleware.AuthenticationMiddleware",
    "axes.middleware.AxesMiddleware",
    "security.middleware.SessionSecurityMiddleware",
    "accounts.middleware.UserPreferencesMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "roles.middleware.PermissionMiddleware",
    "security.middleware.PasswordChangeRequiredMiddleware",
    "accounts.passkeys.middleware.PasskeyEnrolmentMiddleware",
    "accounts.twofactor.middleware.TwoFactorEnrolmentMiddleware",
]

FORM_RENDERER = "billing_access.forms.PortalFormRenderer"
ROOT_URLCONF = "billing_access.urls"
WSGI_APPLICATION = "billing_access.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [PACKAGE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.context_processors.navigation",
            ],
        },
    },
]

DATABASES = {"default": env.database_config(env.get_str("DATABASE_URL"), VAR_DIR / "db.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES = {"default": env.cache_config(env.get_str("CACHE_URL"))}

AUTH_USER_MODEL = "accounts.User"
# Usernames are unique case-insensitively (constraint user_unique_username_ci), which Django's
# check for a plain unique column does not recognise.
# HSTS preloading binds every subdomain of the customer's domain for months, so it is an explicit
# opt-in (SECURE_HSTS_PRELOAD=true) rather than a default; its reminder is silenced.
# Lockout counts per account on purpose (an attacker rotates addresses), so axes' reminder to
# also count per IP address is silenced.
SILENCED_SYSTEM_CHECKS = ["auth.W004", "security.W021", "axes.W006"]
# Axes first: it refuses a locked-out account before any password is checked.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "accounts.backends.PortalBackend"]
LOGIN_URL = "accounts:sign_in"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "accounts:sign_in"

PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "sso.validators.NoLocalPasswordForSsoUsers"},
    {"NAME": "security.validators.OwnerPolicyValidator"},
]

LANGUAGE_CODE = "en-gb"
LANGUAGES = [
    ("en", "English (US)"),
    ("en-gb", "English (UK)"),
    ("de", "Deutsch"),
    ("fr", "Français"),
    ("es", "Español"),
    ("nl", "Nederlands"),
]
TIME_ZONE = env.get_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [PACKAGE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# Out of the request (delivery/): email, webhooks and SIEM streams go through an outbox whose tasks
# django-tasks-db writes in the same database and transaction as the change (never on commit);
# `manage.py deliver` runs them. A task running longer than the lease is taken as abandoned by a
# dead worker and run again (every task locks its outbox row, so a second run is harmless).
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}
DELIVERY_LEASE_SECONDS = env.get_int("DELIVERY_LEASE_SECONDS", 120)
# Webhook receivers (webhooks/transport.py): only public addresses unless this is on; timeouts in
# seconds for connecting and for each read.
WEBHOOK_ALLOW_PRIVATE_ADDRESSES = env.get_bool("WEBHOOK_ALLOW_PRIVATE_ADDRESSES", False)
WEBHOOK_CONNECT_TIMEOUT = env.get_int("WEBHOOK_CONNECT_TIMEOUT", 3)
WEBHOOK_READ_TIMEOUT = env.get_int("WEBHOOK_READ_TIMEOUT", 10)

MAILERS = {"default": env.email_config(env.get_str("EMAIL_URL"))}
DEFAULT_FROM_EMAIL = env.get_str("DEFAULT_FROM_EMAIL", "Billing Access <no-reply@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# The address people use to reach the portal, written into emailed links.
PUBLIC_URL = (env.get_str("PUBLIC_URL") or "http://127.0.0.1:8000").rstrip("/")
# How long the set-password link of an access email stays valid, in hours.
ACCESS_LINK_HOURS = env.get_int("ACCESS_LINK_HOURS", 72)

# Sessions and cookies.
SESSION_ENGINE = "django.contrib.sessions.backends.db"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = 12 * 3600
SECURE_COOKIES = env.get_bool("SECURE_COOKIES", not DEBUG)
SESSION_COOKIE_SECURE = SECURE_COOKIES
CSRF_COOKIE_SECURE = SECURE_COOKIES
CSRF_COOKIE_HTTPONLY = True
# The CSRF cookie lasts as long as the browser session: an idle session ends long before a
# year-old form could be posted.
CSRF_COOKIE_AGE = None
SESSION_COOKIE_NAME = "__Host-session" if SECURE_COOKIES else "session"
CSRF_COOKIE_NAME = "__Host-csrf" if SECURE_COOKIES else "csrftoken"

# Transport and browser security.
SECURE_SSL_REDIRECT = env.get_bool("SECURE_SSL_REDIRECT", not DEBUG)
# Probes and scrapes reach a process directly, often over plain HTTP (ops.middleware).
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SECURE_HSTS_SECONDS = env.get_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = env.get_bool("SECURE_HSTS_PRELOAD", False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_CSP = {
    "default-src": [CSP.NONE],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "font-src": [CSP.SELF],
    "connect-src": [CSP.SELF],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "object-src": [CSP.NONE],
}

# Lockout (django-axes): limits and cool-off come from the attempted account's owner policy;
# counted per account in the database (security.lockout explains the atomic count).
AXES_ENABLED = env.get_bool("AXES_ENABLED", True)
AXES_HANDLER = "security.lockout.PolicyLockoutHandler"
AXES_LOCKOUT_PARAMETERS = ["username"]
AXES_USERNAME_CALLABLE = "security.lockout.axes_username"
AXES_FAILURE_LIMIT = "security.lockout.failure_limit"
AXES_COOLOFF_TIME = "security.lockout.cool_off"
AXES_CLIENT_IP_CALLABLE = "security.lockout.client_ip"
AXES_LOCKOUT_CALLABLE = "accounts.auth_views.locked_out"
AXES_RESET_ON_SUCCESS = True
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_ENABLE_ADMIN = False
AXES_VERBOSE = False

# SAML single sign-on (sso/config.py): the service provider's signing key and
# certificate (PEM files; generated once under VAR_DIR/saml/ when unset) and the xmlsec1 binary.
SAML_SP_KEY_FILE = env.get_str("SAML_SP_KEY_FILE") or ""
SAML_SP_CERT_FILE = env.get_str("SAML_SP_CERT_FILE") or ""
SAML_XMLSEC_BINARY = env.get_str("SAML_XMLSEC_BINARY") or ""
SAML_SESSION_COOKIE_NAME = "saml_session"
SAML_LOGOUT_REQUEST_PREFERRED_BINDING = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
# djangosaml2 looks for django-csp otherwise; the portal's CSP comes from Django itself.
SAML_CSP_HANDLER = ""

# Permission cache entries live this long at most; versions make them exact before that.
PERMISSION_CACHE_SECONDS = env.get_int("PERMISSION_CACHE_SECONDS", 3600)

# Audit: how long events that belong to no owner (sign-in attempts for unknown logins) are kept,
# and an optional MaxMind GeoIP2/GeoLite2 database (.mmdb) for sign-in locations.
AUDIT_UNOWNED_RETENTION_DAYS = env.get_int("AUDIT_UNOWNED_RETENTION_DAYS", 2555)
GEOIP_PATH = env.get_str("GEOIP_PATH") or ""

LOG_FORMAT = env.get_str("LOG_FORMAT", "text")
LOG_LEVEL = env.get_str("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "billing_access.logging.RequestIdFilter"}},
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"},
        "json": {"()": "billing_access.logging.JsonFormatter"},
    },
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "filters": ["request_id"],
            "formatter": "json" if LOG_FORMAT == "json" else "text",
        }
    },
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "INFO"}, "xmlschema": {"level": "WARNING"}},
}

# Two-factor sign-in and recovery (accounts/twofactor.py, accounts/recovery.py).
OTP_TOTP_ISSUER = env.get_str("OTP_TOTP_ISSUER", "Billing Access")
RECOVERY_CODE_MINUTES = env.get_int("RECOVERY_CODE_MINUTES", 30)

# Passkeys and security keys (accounts/passkeys, on django-otp-webauthn): the relying party is the
# host people reach the portal at, and only these origins may answer a ceremony. WebAuthn refuses
# an IP address as RP ID, so a PUBLIC_URL on 127.0.0.1 (make run's) gives localhost: use passkeys
# there at http://localhost:8000.
_WEBAUTHN_RP_ID, _WEBAUTHN_ORIGIN = env.webauthn_relying_party(PUBLIC_URL)
OTP_WEBAUTHN_RP_ID = env.get_str("WEBAUTHN_RP_ID") or _WEBAUTHN_RP_ID
OTP_WEBAUTHN_RP_NAME = env.get_str("WEBAUTHN_RP_NAME", "Billing Access")
OTP_WEBAUTHN_ALLOWED_ORIGINS = env.get_list("WEBAUTHN_ORIGINS", [_WEBAUTHN_ORIGIN])
OTP_WEBAUTHN_HELPER_CLASS = "accounts.passkeys.ceremony.PortalWebAuthnHelper"
OTP_WEBAUTHN_EXCEPTION_LOGGER_NAME = ""  # refusals are audited by accounts.passkeys instead

MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"

# Requests per token in a fixed window of the JSON API ("600/minute"; second, minute or hour).
API_RATE_LIMIT = env.get_str("API_RATE_LIMIT", "600/minute")

# Who may read /metrics and the details of /readyz (ops/): the holder of this bearer token
# (compared in constant time), or a caller from these networks (comma-separated CIDRs).
METRICS_TOKEN = env.get_str("METRICS_TOKEN") or ""
METRICS_ALLOWED_NETWORKS = env.get_list("METRICS_ALLOWED_NETWORKS", [])
