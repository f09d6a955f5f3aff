"""Turn on the audit listener `siem` for the owners that already have an enabled SiemStream."""

import secrets

from django.db import migrations


def listen(apps, schema_editor):
    receivers = apps.get_model("siem", "SiemStream")
    head_model = apps.get_model("audit", "AuditChainHead")
    owners = set(receivers.objects.filter(enabled=True).values_list("owner_id", flat=True))
    for owner_id in sorted(owners):
        head, _ = head_model.objects.get_or_create(chain=owner_id)
        head.listeners = sorted(set(head.listeners) | {"siem"})
        head.listeners_stamp = secrets.randbits(62)
        head.save(update_fields=["listeners", "listeners_stamp"])


class Migration(migrations.Migration):
    dependencies = [
        ("siem", "0001_initial"),
        ("audit", "0007_chain_head_listeners"),
    ]

    operations = [migrations.RunPython(listen, migrations.RunPython.noop)]
