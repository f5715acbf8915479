from django.apps import AppConfig
from django.db.backends.signals import connection_created


class MlcoreConfig(AppConfig):
    name = "mlcore"
    verbose_name = "ML core"

    def ready(self):
        from finance_project.db import prepare_on_server

        connection_created.connect(prepare_on_server, dispatch_uid="prepare-on-server")
