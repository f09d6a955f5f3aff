"""What a person's sign-ins looked like before: the browser families and countries seen."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

__all__ = ["KnownSignIn"]


class KnownSignIn(models.Model):
    """A browser family ("Firefox on Windows") or a country a person has signed in from.

    One row per person, kind and value; `last_seen_at` moves at each sign-in. A sign-in whose
    browser family or country has no row yet (while the person has rows of that kind) is new.
    """

    class Kind(models.TextChoices):
        DEVICE = "device", "Browser and system"
        COUNTRY = "country", "Country"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="known_sign_ins"
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    value = models.CharField(max_length=100)
    first_seen_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "kind", "value"], name="known_sign_in_unique")
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.value} of user {self.user_id}"
