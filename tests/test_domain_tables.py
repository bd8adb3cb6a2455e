"""Every PNCP domain table is in the database after migrate, code for code, name for name."""

import json
from pathlib import Path

import pytest
from django.core.management import call_command

from domain_tables.loader import load_domain_tables
from domain_tables.models import TABLES

SOURCE = Path(__file__).resolve().parent.parent / "domain_tables" / "source" / "domain_tables.json"


def source_tables():
    return json.loads(SOURCE.read_text(encoding="utf-8"))


def test_every_source_table_has_a_model():
    assert set(source_tables()) == set(TABLES)


@pytest.mark.django_db
@pytest.mark.parametrize("key", sorted(source_tables()))
def test_table_rows_match_the_source_after_migrate(key):
    table = source_tables()[key]
    model = TABLES[key]
    stored = {row.codigo: row for row in model.objects.all()}
    expected = {row["codigo"]: row for row in table["rows"]}
    assert len(stored) == len(expected), f"{key}: {len(stored)} rows, source has {len(expected)}"
    for codigo, row in expected.items():
        assert codigo in stored, f"{key}: code {codigo!r} missing"
        assert stored[codigo].nome == row["nome"]
        assert stored[codigo].descricao == (row.get("descricao") or "")
        assert stored[codigo].novo_em_importacao is False


@pytest.mark.django_db
def test_reloading_is_idempotent_and_keeps_codes_added_by_imports():
    from domain_tables.models import AmparoLegal, ModalidadeContratacao

    before = {key: model.objects.count() for key, model in TABLES.items()}
    AmparoLegal.objects.create(codigo=171, nome="Lei nova", novo_em_importacao=True)
    ModalidadeContratacao.objects.filter(codigo=6).update(nome="renamed by hand")
    load_domain_tables()
    call_command("load_domain_tables", verbosity=0)
    after = {key: model.objects.count() for key, model in TABLES.items()}
    assert after == {**before, "amparo_legal": before["amparo_legal"] + 1}
    assert AmparoLegal.objects.get(codigo=171).novo_em_importacao is True
    assert ModalidadeContratacao.objects.get(codigo=6).nome == "Pregão - Eletrônico"


def test_fixture_is_in_step_with_the_source():
    from domain_tables.loader import FIXTURE
    from domain_tables.management.commands.build_domain_fixtures import build_fixture

    assert json.loads(FIXTURE.read_text(encoding="utf-8")) == build_fixture(source_tables())
