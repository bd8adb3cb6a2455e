"""Beat schedules: a daily incremental sync of every resource, open propostas every 30 min.

Created here so a fresh ``migrate`` leaves a working schedule; staff can retune them in the
admin (Periodic tasks). Times are Brasília, staggered so resources do not start together.
"""

import json

from django.db import migrations

DAILY = {"pca": 2, "contratacoes": 3, "atas": 4, "contratos": 5}  # hour of the day


def create(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for resource, hour in DAILY.items():
        crontab, _ = CrontabSchedule.objects.get_or_create(
            minute="15", hour=str(hour), day_of_week="*", day_of_month="*",
            month_of_year="*", timezone="America/Sao_Paulo",
        )
        PeriodicTask.objects.update_or_create(
            name=f"pncp: daily incremental sync of {resource}",
            defaults={
                "task": "pncp.sync_incremental",
                "crontab": crontab,
                "kwargs": json.dumps({"resource": resource}),
                "enabled": True,
                "description": f"sync_pncp {resource} --incremental, every day at {hour}:15",
            },
        )
    every_30, _ = IntervalSchedule.objects.get_or_create(every=30, period="minutes")
    PeriodicTask.objects.update_or_create(
        name="pncp: contratações with open propostas",
        defaults={
            "task": "pncp.sync_propostas",
            "interval": every_30,
            "kwargs": "{}",
            "enabled": True,
            "description": "sync_pncp contratacoes --endpoint contratacoes.proposta, every 30 min",
        },
    )


def remove(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name__startswith="pncp: ").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("pncp", "0003_sync_lock"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create, remove)]
