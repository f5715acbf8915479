"""Create the labeler and analyst groups with their model permissions.

- labeler: look at transactions, features and jobs; add, change and clear
  labels (the history keeps every change). No deleting transactions, no
  imports, no jobs, no models.
- analyst: everything a labeler may do, plus importing transactions,
  editing categories, and starting feature builds, dbt runs and training.

Superusers need no group. Re-running adds missing permissions and leaves
anything an administrator added in place.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

LABELER = [
    "labeling.view_transaction",
    "labeling.view_category",
    "labeling.view_transactionlabel",
    "labeling.add_transactionlabel",
    "labeling.change_transactionlabel",
    "labeling.delete_transactionlabel",
    "labeling.view_labelhistory",
    "mlcore.view_featurevector",
    "mlcore.view_job",
]

ANALYST = [
    *LABELER,
    "labeling.add_transaction",
    "labeling.add_category",
    "labeling.change_category",
    "mlcore.view_trainingrun",
    "mlcore.run_feature_build",
    "mlcore.run_dbt",
    "mlcore.run_training",
]

ROLES = {"labeler": LABELER, "analyst": ANALYST}


def create_roles(apps, schema_editor):
    # Permissions are normally created after all migrations have run; make
    # sure the ones named here exist already.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codes in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        for code in codes:
            app_label, codename = code.split(".")
            group.permissions.add(
                Permission.objects.get(
                    content_type__app_label=app_label, codename=codename
                )
            )


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("labeling", "0004_transactions_deleted_index"),
        ("mlcore", "0003_job_permissions"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
