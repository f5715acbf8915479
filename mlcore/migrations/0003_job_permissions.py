from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("mlcore", "0002_features_cascade"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="job",
            options={
                "ordering": ["-created_at", "-id"],
                "permissions": [
                    ("run_feature_build", "Can start feature builds"),
                    ("run_dbt", "Can start dbt runs"),
                    ("run_training", "Can start model training"),
                ],
            },
        ),
    ]
