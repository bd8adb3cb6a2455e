from django.db import migrations


def load(apps, schema_editor):
    from domain_tables.loader import load_domain_tables

    load_domain_tables(apps)


class Migration(migrations.Migration):
    dependencies = [("domain_tables", "0001_initial")]

    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
