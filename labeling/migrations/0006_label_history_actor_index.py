from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("labeling", "0005_roles"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddIndex(
            model_name="labelhistory",
            index=models.Index(
                fields=["actor", "changed_at"], name="label_history_actor_idx"
            ),
        ),
    ]
