"""``sync_pncp dominios``: domain tables refreshed from PNCP's domain services (the fake's)."""

from __future__ import annotations

import copy

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from domain_tables.models import ModalidadeContratacao, PorteEmpresa, TipoContrato
from pncp.dominios import refresh_domain_tables
from pncp.ingest import Ingester
from pncp.models import Contratacao
from pncp.resources import DOMAIN_SERVICES
from tests.conftest import make_client, sample_records
from tests.fakes.fake_pncp import FakePNCP

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]


def row(codigo, nome, ativo=True) -> dict:
    return {
        "id": codigo,
        "nome": nome,
        "descricao": "",
        "dataInclusao": "2026-01-05T10:00:00",
        "dataAtualizacao": "2026-01-05T10:00:00",
        "statusAtivo": ativo,
    }


def refresh(fake, **kwargs):
    reports = refresh_domain_tables(client=make_client(fake.base_url), **kwargs)
    return {r.table: r for r in reports}


def test_nothing_changes_when_pncp_lists_what_we_have():
    with FakePNCP() as fake:
        reports = refresh(fake)
    assert set(reports) == set(DOMAIN_SERVICES)
    assert not [r.summary() for r in reports.values() if r.changed or r.error]
    assert all(r.listed > 0 for r in reports.values())


def test_adds_renames_and_deactivates_without_deleting_a_code_in_use():
    contratacao = copy.deepcopy(sample_records("contratacao_1.json")[0])
    contratacao.update(modalidadeId=13, modalidadeNome="Leilão - Presencial")
    Ingester().ingest("contratacoes", [contratacao])
    key = contratacao["numeroControlePNCP"]
    assert Contratacao.objects.get(numero_controle_pncp=key).modalidade_id == 13

    with FakePNCP() as fake:
        modalidades = fake.domains["/v1/modalidades"]
        fake.domains["/v1/modalidades"] = [
            {**m, "nome": "Pregão Eletrônico"} if m["id"] == 6 else m
            for m in modalidades
            if m["id"] != 13  # PNCP stops listing 13, which a stored contratação uses
        ] + [row(14, "Modalidade Nova")]
        fake.domains["/v1/modalidades"][11]["statusAtivo"] = False  # 12, still listed
        reports = refresh(fake)
        requests = {r.path for r in fake.requests()}

    report = reports["modalidade_contratacao"]
    assert report.added == [(14, "Modalidade Nova")]
    assert report.renamed == [(6, "Pregão - Eletrônico", "Pregão Eletrônico")]
    assert sorted(report.deactivated) == [12, 13]
    assert "1 added" in report.summary() and "1 renamed" in report.summary()
    assert "2 deactivated (12, 13)" in report.summary()
    assert not any(r.changed for t, r in reports.items() if t != "modalidade_contratacao")
    assert "/api/pncp/v1/modalidades" in requests

    assert ModalidadeContratacao.objects.get(codigo=14).nome == "Modalidade Nova"
    assert ModalidadeContratacao.objects.get(codigo=6).nome == "Pregão Eletrônico"
    kept = ModalidadeContratacao.objects.get(codigo=13)
    assert (kept.nome, kept.ativo) == ("Leilão - Presencial", False)
    assert Contratacao.objects.get(numero_controle_pncp=key).modalidade_id == 13
    assert ModalidadeContratacao.objects.get(codigo=12).ativo is False
    assert ModalidadeContratacao.objects.filter(ativo=True).count() == 12

    with FakePNCP() as fake:  # PNCP lists 13 again: it comes back
        reports = refresh(fake, tables=["modalidade_contratacao"])
    assert sorted(reports["modalidade_contratacao"].reactivated) == [12, 13]


def test_code_first_seen_in_a_record_is_confirmed_with_pncps_name():
    PorteEmpresa.objects.create(
        codigo=6, nome="Código 6 (sem nome no PNCP)", novo_em_importacao=True
    )
    with FakePNCP() as fake:
        fake.domains["/v1/portes-empresa"].append(row(6, "Cooperativa"))
        report = refresh(fake, tables=["porte_empresa"])["porte_empresa"]
    porte = PorteEmpresa.objects.get(codigo=6)
    assert (porte.nome, porte.novo_em_importacao, porte.ativo) == ("Cooperativa", False, True)
    assert report.confirmed == [6] and report.renamed


def test_a_failing_or_empty_service_leaves_its_table_alone(settings, capsys):
    settings.PNCP_REQUESTS_PER_SECOND = 0
    settings.PNCP_RATE_LIMIT_REDIS_URL = ""
    settings.REDIS_URL = ""
    before = list(TipoContrato.objects.values_list("codigo", "nome", "ativo"))
    with FakePNCP() as fake:
        settings.PNCP_BASE_URL = fake.base_url
        fake.domains["/v1/tipos-contratos"] = []
        fake.fail_always["/api/pncp/v1/portes-empresa"] = 422
        fake.domains["/v1/modos-disputas"].append(row(7, "Disputa Nova"))
        with pytest.raises(CommandError, match=r"not refreshed: .*tipo_contrato"):
            call_command("sync_pncp", "dominios")
    out = capsys.readouterr().out
    assert list(TipoContrato.objects.values_list("codigo", "nome", "ativo")) == before
    assert "tipo_contrato: not refreshed: PNCP listed no codes" in out
    assert "porte_empresa: not refreshed" in out
    assert "modo_disputa: 7 codes; 1 added (7 'Disputa Nova')" in out
    assert "not served by PNCP" in out and "situacao_contratacao" in out
