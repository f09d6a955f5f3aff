"""The single sign-on models moved to the sso app (sso 0001): they leave this app's migration
state; their tables stay, and belong to sso from now on."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("security", "0004_passkey_policy"),
        ("sso", "0001_initial"),
        ("scim", "0002_provider_in_sso"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.DeleteModel(name="SamlAssertionId"),
                migrations.DeleteModel(name="SsoIdentity"),
                migrations.DeleteModel(name="SamlGroupMapping"),
                migrations.DeleteModel(name="SamlIdentityProvider"),
            ],
        ),
    ]
