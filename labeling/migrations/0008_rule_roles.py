"""Give the roles their share of labeling rules.

- labeler: see rules, their figures and their runs.
- analyst: also create and edit rules, dry-run and apply them.

Deleting a rule stays with superusers: disabling one keeps its history.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

LABELER = ["labeling.view_rule", "labeling.view_rulerun"]
ANALYST = [
    *LABELER,
    "labeling.add_rule",
    "labeling.change_rule",
    "labeling.apply_rule",
]
ROLES = {"labeler": LABELER, "analyst": ANALYST}


def _permissions(apps, codes):
    Permission = apps.get_model("auth", "Permission")
    return [
        Permission.objects.get(content_type__app_label="labeling", codename=code)
        for code in (code.split(".")[1] for code in codes)
    ]


def grant(apps, schema_editor):
    # Permissions are normally created after all migrations have run.
    app_config = apps.get_app_config("labeling")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    for name, codes in ROLES.items():
        group = Group.objects.filter(name=name).first()
        if group is not None:
            group.permissions.add(*_permissions(apps, codes))


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for name, codes in ROLES.items():
        group = Group.objects.filter(name=name).first()
        if group is not None:
            group.permissions.remove(*_permissions(apps, codes))


class Migration(migrations.Migration):
    dependencies = [
        ("labeling", "0007_rules"),
        ("labeling", "0005_roles"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
