"""Give analysts the model registry and the suggestions.

- analyst: see model versions, aliases, the alias change log and stored
  suggestions; promote, roll back and remove aliases.

Labelers get suggestions where they label (the transaction list, the
queue and the suggestion endpoint, which needs only
``labeling.view_transaction``), not the registry.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

ANALYST = [
    "mlcore.view_modelversion",
    "mlcore.view_modelalias",
    "mlcore.view_modelaliaschange",
    "mlcore.view_suggestion",
    "mlcore.promote_modelversion",
]


def _permissions(apps, codes):
    Permission = apps.get_model("auth", "Permission")
    return [
        Permission.objects.get(content_type__app_label="mlcore", codename=code)
        for code in (code.split(".")[1] for code in codes)
    ]


def grant(apps, schema_editor):
    # Permissions are normally created after all migrations have run.
    app_config = apps.get_app_config("mlcore")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None

    group = apps.get_model("auth", "Group").objects.filter(name="analyst").first()
    if group is not None:
        group.permissions.add(*_permissions(apps, ANALYST))


def revoke(apps, schema_editor):
    group = apps.get_model("auth", "Group").objects.filter(name="analyst").first()
    if group is not None:
        group.permissions.remove(*_permissions(apps, ANALYST))


class Migration(migrations.Migration):
    dependencies = [
        ("mlcore", "0005_suggestion_outcomes"),
        ("labeling", "0005_roles"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
