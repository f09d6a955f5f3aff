"""States and kinds of outbound email."""

from django.db import models


class EmailState(models.TextChoices):
    QUEUED = "queued", "Queued"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class EmailKind(models.TextChoices):
    ACCESS_EMAIL = "access_email", "Access email"
    RECOVERY_CODE = "recovery_code", "Recovery code"
    ACCOUNT_NOTICE = "account_notice", "Account notice"
    ACCESS_REQUEST = "access_request", "Access request"
    INTEGRATION_NOTICE = "integration_notice", "Integration notice"
