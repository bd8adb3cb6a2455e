"""Beat schedule: the daily PNCP contract check, before the daily syncs (2:15 onwards).

It probes each Consulta endpoint's page limit and payload shape, stores a ContractCheck row
and logs a warning when PNCP drifted, so an operator hears of it before a sync runs into it.
"""

from django.db import migrations

# Not "pncp: ..." like the sync schedules of 0004: that prefix names the sync jobs.
NAME = "pncp contract check (daily)"


def create(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute="30", hour="1", day_of_week="*", day_of_month="*",
        month_of_year="*", timezone="America/Sao_Paulo",
    )
    PeriodicTask.objects.update_or_create(
        name=NAME,
        defaults={
            "task": "pncp.contract_check",
            "crontab": crontab,
            "kwargs": "{}",
            "enabled": True,
            "description": "sync_pncp check (page limits and payload shapes), every day at 1:30",
        },
    )


def remove(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("pncp", "0006_itens_resultados_contract_check"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create, remove)]
