"""Load the domain-table fixtures into the database, idempotently.

Runs from a data migration (so a fresh ``migrate`` has every table filled) and from the
``load_domain_tables`` command. It upserts by code: reloading changes nothing that is
already right, and never deletes a code (records may point at codes PNCP added later).
"""

import json
from pathlib import Path

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "domain_tables.json"


def fixture_rows() -> dict[str, list[dict]]:
    """Rows of the fixture grouped by model label (``domain_tables.modalidadecontratacao``)."""
    grouped: dict[str, list[dict]] = {}
    for obj in json.loads(FIXTURE.read_text(encoding="utf-8")):
        grouped.setdefault(obj["model"], []).append({"codigo": obj["pk"], **obj["fields"]})
    return grouped


def load_domain_tables(apps=None) -> dict[str, int]:
    """Upsert every fixture row; returns rows per model label. ``apps`` is a migration's."""
    if apps is None:
        from django.apps import apps as global_apps

        apps = global_apps
    counts = {}
    for label, rows in fixture_rows().items():
        app_label, model_name = label.split(".")
        model = apps.get_model(app_label, model_name)
        objs = [model(novo_em_importacao=False, ativo=True, **row) for row in rows]
        model.objects.bulk_create(
            objs,
            update_conflicts=True,
            unique_fields=["codigo"],
            update_fields=["nome", "descricao", "novo_em_importacao"],
        )
        counts[label] = len(objs)
    return counts
