"""Regenerate ``fixtures/domain_tables.json`` from ``source/domain_tables.json``.

The source file is the research record of PNCP's domain tables (where each code came from);
the fixture is what Django loads. Keep them in step by running this after editing the source.
"""

import json
from pathlib import Path

from django.core.management.base import BaseCommand

from domain_tables.loader import FIXTURE
from domain_tables.models import TABLES

SOURCE = Path(__file__).resolve().parents[2] / "source" / "domain_tables.json"


def build_fixture(source: dict) -> list[dict]:
    objects = []
    for key, table in source.items():
        model = TABLES[key]
        for row in table["rows"]:
            objects.append(
                {
                    "model": f"domain_tables.{model._meta.model_name}",
                    "pk": row["codigo"],
                    "fields": {"nome": row["nome"], "descricao": row.get("descricao") or ""},
                }
            )
    return objects


class Command(BaseCommand):
    help = "Rebuild domain_tables/fixtures/domain_tables.json from source/domain_tables.json."

    def handle(self, *args, **options):
        source = json.loads(SOURCE.read_text(encoding="utf-8"))
        missing = set(source) - set(TABLES)
        if missing:
            raise SystemExit(f"source tables without a model: {sorted(missing)}")
        objects = build_fixture(source)
        FIXTURE.write_text(json.dumps(objects, ensure_ascii=False, indent=1) + "\n", "utf-8")
        self.stdout.write(f"wrote {len(objects)} rows of {len(source)} tables to {FIXTURE}")
