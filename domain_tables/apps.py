from django.apps import AppConfig


class DomainTablesConfig(AppConfig):
    name = "domain_tables"
    verbose_name = "PNCP domain tables"
