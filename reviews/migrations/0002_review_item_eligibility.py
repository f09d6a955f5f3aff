from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("reviews", "0001_access_review_campaigns"),
    ]

    operations = [
        migrations.AddField(
            model_name="reviewitem",
            name="eligibility_id",
            field=models.BigIntegerField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name="reviewitem",
            name="decision",
            field=models.CharField(
                choices=[
                    ("pending", "Pending"),
                    ("keep", "Keep access"),
                    ("change_role", "Change role"),
                    ("remove_override", "Remove override"),
                    ("remove_eligibility", "Remove eligibility"),
                    ("deactivate", "Deactivate"),
                ],
                default="pending",
                max_length=20,
            ),
        ),
    ]
