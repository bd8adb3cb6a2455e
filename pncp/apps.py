from django.apps import AppConfig


class PncpConfig(AppConfig):
    name = "pncp"
    verbose_name = "PNCP mirror"
