"""Telling an owner's administrators that an endpoint was disabled (through the outbox)."""

from __future__ import annotations

from django.urls import reverse

from delivery import email as outbox
from delivery.choices import EmailKind
from roles import catalog
from roles.reports import who_has_access

# Who looks after webhooks and SIEM streams: the same level that opens their screens.
AREA, LEVEL = catalog.PARAMETERS, catalog.FULL


def administrators(owner_id: int) -> list:
    from django.apps import apps

    owner = apps.get_model("accounts", "Owner").objects.get(pk=owner_id)
    return [person for person in who_has_access(owner, AREA, LEVEL)[:50] if person.email]


def endpoint_disabled(endpoint, reason: str) -> None:
    from django.conf import settings

    url = settings.PUBLIC_URL + reverse("webhooks:endpoint_detail", args=[endpoint.pk])
    for person in administrators(endpoint.owner_id):
        outbox.queue(
            to=person.email,
            subject=f"Billing Access: webhook endpoint {endpoint.name} was disabled",
            body=(
                f"Hello {person.get_short_name()},\n\n"
                f"The webhook endpoint {endpoint.name} ({endpoint.url}) was disabled: {reason}\n\n"
                f"Nothing more is sent to it until it is enabled again: {url}\n\nBilling Access"
            ),
            kind=EmailKind.INTEGRATION_NOTICE,
            owner=endpoint.owner_id,
            user=person,
        )
