"""The single sign-on models, moved from the security app: the tables stay where they are
(db_table keeps their names), so only the migration state changes hands."""

import django.db.models.deletion
import django.db.models.functions.text
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('security', '0004_passkey_policy'),
        ('accounts', '0011_known_sign_ins'),
        ('roles', '0003_separation_of_duties'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name='SamlIdentityProvider',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('name', models.CharField(help_text='Shown on the sign-in page as "Sign in with <name>".', max_length=120)),
                        ('slug', models.SlugField(max_length=60)),
                        ('entity_id', models.CharField(editable=False, help_text='Read from the metadata.', max_length=500, verbose_name='entity ID')),
                        ('metadata_xml', models.TextField(verbose_name='metadata XML')),
                        ('preset', models.CharField(choices=[('okta', 'Okta'), ('entra', 'Microsoft Entra ID (Azure AD)'), ('custom', 'Other identity provider')], default='custom', max_length=20)),
                        ('username_attribute', models.CharField(blank=True, help_text='Empty: the NameID is the login.', max_length=300)),
                        ('email_attribute', models.CharField(blank=True, max_length=300)),
                        ('first_name_attribute', models.CharField(blank=True, max_length=300)),
                        ('last_name_attribute', models.CharField(blank=True, max_length=300)),
                        ('groups_attribute', models.CharField(blank=True, max_length=300)),
                        ('jit_provisioning', models.BooleanField(default=False, help_text='Off: only people who already have an identity here may sign in.', verbose_name='create users at first sign-in')),
                        ('allow_idp_initiated', models.BooleanField(default=False, help_text="Off: only sign-ins started from this portal's sign-in page are accepted.", verbose_name='allow sign-in started at the identity provider')),
                        ('enabled', models.BooleanField(default=True)),
                        ('row_version', models.PositiveIntegerField(default=1)),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('updated_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('default_role', models.ForeignKey(blank=True, help_text='The role of people whose groups map to no role.', null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='roles.role')),
                        ('owner', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='identity_providers', to='accounts.owner')),
                    ],
                    options={
                        'verbose_name': 'identity provider',
                        'db_table': 'security_samlidentityprovider',
                        'ordering': ['name'],
                    },
                ),
                migrations.CreateModel(
                    name='SamlGroupMapping',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('idp_group', models.CharField(help_text='As the IdP sends it: the group name (Okta) or object ID (Entra ID).', max_length=300, verbose_name='IdP group')),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('role', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='roles.role')),
                        ('role_groups', models.ManyToManyField(blank=True, db_table='security_samlgroupmapping_role_groups', related_name='+', to='roles.rolegroup')),
                        ('provider', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='group_mappings', to='sso.samlidentityprovider')),
                    ],
                    options={
                        'db_table': 'security_samlgroupmapping',
                        'ordering': ['id'],
                    },
                ),
                migrations.CreateModel(
                    name='SamlAssertionId',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('assertion_id', models.CharField(max_length=256, unique=True)),
                        ('expires_at', models.DateTimeField(db_index=True)),
                        ('provider', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='sso.samlidentityprovider')),
                    ],
                    options={
                        'db_table': 'security_samlassertionid',
                    },
                ),
                migrations.CreateModel(
                    name='SsoIdentity',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('name_id', models.CharField(max_length=500, verbose_name='NameID')),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('last_used_at', models.DateTimeField(blank=True, null=True)),
                        ('provider', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='identities', to='sso.samlidentityprovider')),
                        ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='sso_identities', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'verbose_name_plural': 'SSO identities',
                        'db_table': 'security_ssoidentity',
                    },
                ),
                migrations.AddIndex(
                    model_name='samlidentityprovider',
                    index=models.Index(fields=['entity_id'], name='samlidp_entity_id'),
                ),
                migrations.AddConstraint(
                    model_name='samlidentityprovider',
                    constraint=models.UniqueConstraint(models.F('owner'), models.F('slug'), name='samlidp_unique_slug_per_owner'),
                ),
                migrations.AddConstraint(
                    model_name='samlidentityprovider',
                    constraint=models.UniqueConstraint(models.F('owner'), django.db.models.functions.text.Lower('name'), name='samlidp_unique_name_per_owner'),
                ),
                migrations.AddConstraint(
                    model_name='samlgroupmapping',
                    constraint=models.UniqueConstraint(models.F('provider'), models.F('idp_group'), name='samlgroupmapping_unique_group_per_provider'),
                ),
                migrations.AddConstraint(
                    model_name='ssoidentity',
                    constraint=models.UniqueConstraint(models.F('provider'), models.F('name_id'), name='ssoidentity_unique_name_id'),
                ),
            ],
        ),
    ]
