"""The SCIM token's identity provider now belongs to the sso app; the column and its foreign key
are unchanged (the table kept its name), so only the migration state follows it."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("scim", "0001_provisioning"),
        ("sso", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.AlterField(
                    model_name="scimtoken",
                    name="provider",
                    field=models.ForeignKey(
                        blank=True,
                        help_text="Its group mappings turn SCIM group membership into roles and role groups.",
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="sso.samlidentityprovider",
                    ),
                ),
            ],
        ),
    ]
