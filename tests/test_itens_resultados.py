"""Itens and resultados of contratações from PNCP's main API, end to end against the fake.

The expected values are read from the fake's JSON with a mapping written here, field by
field, independently of ``pncp.parsers``: every model column is covered, and every field of
PNCP's answer is either a column or (for nested domain objects) their id/name.
"""

from __future__ import annotations

import copy
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from domain_tables.models import PorteEmpresa
from pncp.client import PNCPRequestError, main_api_base_url
from pncp.models import (
    Contratacao,
    Fornecedor,
    ItemContratacao,
    RecordVersion,
    RejectedRecord,
    ResultadoItem,
    SyncCheckpoint,
    SyncRun,
)
from pncp.sync import SyncOptions, execute_run, resume_run, start_run
from tests.conftest import make_client
from tests.fakes.fake_pncp import FakeDataset, FakePNCP, FaultConfig

START, END = date(2025, 7, 1), date(2025, 7, 6)
BRT = ZoneInfo("America/Sao_Paulo")
pytestmark = [pytest.mark.e2e, pytest.mark.django_db]


def dataset(contratacoes=60, seed=3) -> FakeDataset:
    ds = FakeDataset.generate(contratacoes=contratacoes, start=START, days=5, seed=seed)
    ds.generate_itens(seed=seed, max_itens=5)
    return ds


def sync(base_url, resources=("contratacoes", "itens"), **overrides):
    options = SyncOptions(resources=list(resources), desde=START, ate=END, concurrency=4)
    for name, value in overrides.items():
        setattr(options, name, value)
    run = start_run(options, trigger=SyncRun.Trigger.TEST)
    progress = execute_run(run, client=make_client(base_url))
    run.refresh_from_db()
    return run, progress


# --- the field-by-field mapping (PNCP's JSON -> our columns) ---------------------------------


def money(value):
    return None if value is None else Decimal(str(value))


def moment(value):
    return None if value is None else datetime.fromisoformat(value).replace(tzinfo=BRT)


def day(value):
    return None if value is None else date.fromisoformat(value)


def same(value):
    return value


def integer(value):
    return None if value is None else int(value)


ITEM_COLUMNS = {
    "numero_item": ("numeroItem", integer),
    "descricao": ("descricao", same),
    "material_ou_servico": ("materialOuServico", same),
    "material_ou_servico_nome": ("materialOuServicoNome", same),
    "valor_unitario_estimado": ("valorUnitarioEstimado", money),
    "valor_total": ("valorTotal", money),
    "quantidade": ("quantidade", money),
    "unidade_medida": ("unidadeMedida", same),
    "orcamento_sigiloso": ("orcamentoSigiloso", same),
    "item_categoria_codigo": ("itemCategoriaId", integer),
    "item_categoria_nome": ("itemCategoriaNome", same),
    "patrimonio": ("patrimonio", same),
    "codigo_registro_imobiliario": ("codigoRegistroImobiliario", same),
    "criterio_julgamento_id": ("criterioJulgamentoId", integer),
    "situacao_id": ("situacaoCompraItem", integer),
    "tipo_beneficio_id": ("tipoBeneficio", integer),
    "incentivo_produtivo_basico": ("incentivoProdutivoBasico", same),
    "data_inclusao": ("dataInclusao", moment),
    "data_atualizacao": ("dataAtualizacao", moment),
    "tem_resultado": ("temResultado", same),
    "imagem": ("imagem", integer),
    "aplicabilidade_margem_preferencia_normal": ("aplicabilidadeMargemPreferenciaNormal", same),
    "aplicabilidade_margem_preferencia_adicional": (
        "aplicabilidadeMargemPreferenciaAdicional",
        same,
    ),
    "percentual_margem_preferencia_normal": ("percentualMargemPreferenciaNormal", money),
    "percentual_margem_preferencia_adicional": ("percentualMargemPreferenciaAdicional", money),
    "ncm_nbs_codigo": ("ncmNbsCodigo", same),
    "ncm_nbs_descricao": ("ncmNbsDescricao", same),
    "catalogo_codigo": ("catalogo.id", integer),
    "catalogo_nome": ("catalogo.nome", same),
    "categoria_item_catalogo_codigo": ("categoriaItemCatalogo.id", integer),
    "categoria_item_catalogo_nome": ("categoriaItemCatalogo.nome", same),
    "catalogo_codigo_item": ("catalogoCodigoItem", same),
    "informacao_complementar": ("informacaoComplementar", same),
    "tipo_margem_preferencia_codigo": ("tipoMargemPreferencia.codigo", integer),
    "tipo_margem_preferencia_nome": ("tipoMargemPreferencia.nome", same),
    "exigencia_conteudo_nacional": ("exigenciaConteudoNacional", same),
}
# Nested objects of which we keep the id and name (the rest is the domain's own metadata).
ITEM_NESTED_KEPT = {"catalogo", "categoriaItemCatalogo", "tipoMargemPreferencia"}

RESULTADO_COLUMNS = {
    "numero_controle_pncp_compra": ("numeroControlePNCPCompra", same),
    "numero_item": ("numeroItem", integer),
    "sequencial_resultado": ("sequencialResultado", integer),
    "situacao_id": ("situacaoCompraItemResultadoId", integer),
    "fornecedor_id": ("niFornecedor", same),
    "ni_fornecedor": ("niFornecedor", same),
    "tipo_pessoa_id": ("tipoPessoa", same),
    "nome_razao_social_fornecedor": ("nomeRazaoSocialFornecedor", same),
    "porte_fornecedor_id": ("porteFornecedorId", integer),
    "natureza_juridica_id": ("naturezaJuridicaId", same),
    "codigo_pais": ("codigoPais", same),
    "quantidade_homologada": ("quantidadeHomologada", money),
    "valor_unitario_homologado": ("valorUnitarioHomologado", money),
    "valor_total_homologado": ("valorTotalHomologado", money),
    "percentual_desconto": ("percentualDesconto", money),
    "moeda_estrangeira_codigo": ("moedaEstrangeira.id", integer),
    "moeda_estrangeira_simbolo": ("moedaEstrangeira.simbolo", same),
    "moeda_estrangeira_nome": ("moedaEstrangeira.nome", same),
    "valor_nominal_moeda_estrangeira": ("valorNominalMoedaEstrangeira", money),
    "timezone_cotacao_moeda_estrangeira": ("timezoneCotacaoMoedaEstrangeira", same),
    "data_cotacao_moeda_estrangeira": ("dataCotacaoMoedaEstrangeira", moment),
    "amparo_legal_margem_preferencia_id": ("amparoLegalMargemPreferencia.id", integer),
    "amparo_legal_criterio_desempate_id": ("amparoLegalCriterioDesempate.id", integer),
    "pais_origem_produto_servico_codigo": ("paisOrigemProdutoServico.id", same),
    "pais_origem_produto_servico_nome": ("paisOrigemProdutoServico.nome", same),
    "indicador_subcontratacao": ("indicadorSubcontratacao", same),
    "ordem_classificacao_srp": ("ordemClassificacaoSrp", integer),
    "data_resultado": ("dataResultado", day),
    "motivo_cancelamento": ("motivoCancelamento", same),
    "data_cancelamento": ("dataCancelamento", moment),
    "aplicacao_margem_preferencia": ("aplicacaoMargemPreferencia", same),
    "aplicacao_beneficio_me_epp": ("aplicacaoBeneficioMeEpp", same),
    "aplicacao_criterio_desempate": ("aplicacaoCriterioDesempate", same),
    "data_inclusao": ("dataInclusao", moment),
    "data_atualizacao": ("dataAtualizacao", moment),
}
RESULTADO_NESTED_KEPT = {
    "moedaEstrangeira",
    "amparoLegalMargemPreferencia",
    "amparoLegalCriterioDesempate",
    "paisOrigemProdutoServico",
}
# Names PNCP sends beside a code: they live in the domain table the code points at.
ITEM_NAMES_IN_DOMAIN_TABLES = {
    "criterioJulgamentoNome",
    "situacaoCompraItemNome",
    "tipoBeneficioNome",
}
RESULTADO_NAMES_IN_DOMAIN_TABLES = {
    "situacaoCompraItemResultadoNome",
    "porteFornecedorNome",
    "naturezaJuridicaNome",
}
BOOKKEEPING = {
    "id",
    "chave",
    "raw",
    "content_hash",
    "first_seen_at",
    "last_seen_at",
    "last_changed_at",
    "sync_run_id",
}


def pick(record: dict, path: str):
    value = record
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def columns(model) -> set[str]:
    return {f.attname for f in model._meta.concrete_fields} - BOOKKEEPING


def assert_row_matches(row, record: dict, mapping: dict) -> None:
    for column, (path, convert) in mapping.items():
        expected = convert(pick(record, path))
        assert getattr(row, column) == expected, f"{row.chave} {column}: {path}"
    assert row.raw == record


def test_mapping_covers_every_column_and_every_field_pncp_sends():
    ds = dataset(contratacoes=30)
    item_columns = columns(ItemContratacao) - {"contratacao_id", "numero_controle_pncp_compra"}
    assert set(ITEM_COLUMNS) == item_columns
    assert set(RESULTADO_COLUMNS) == columns(ResultadoItem) - {"item_id"}
    compras = ds.compras_with_itens()
    itens = [i for c in compras for i in ds.itens(c)]
    resultados = [
        r for c in compras for i in ds.itens(c) for r in ds.resultados(c, i["numeroItem"])
    ]
    mapped = {path.split(".")[0] for path, _ in ITEM_COLUMNS.values()}
    assert set().union(*(i.keys() for i in itens)) == mapped | ITEM_NAMES_IN_DOMAIN_TABLES
    assert mapped >= ITEM_NESTED_KEPT
    mapped = {path.split(".")[0] for path, _ in RESULTADO_COLUMNS.values()}
    assert set().union(*(r.keys() for r in resultados)) == mapped | RESULTADO_NAMES_IN_DOMAIN_TABLES
    assert mapped >= RESULTADO_NESTED_KEPT


def test_itens_and_resultados_import_field_for_field():
    ds = dataset()
    with FakePNCP(ds) as fake:
        run, _ = sync(fake.base_url)
        main_paths = {r.path for r in fake.requests(prefix="/api/pncp/")}
    assert run.status == SyncRun.Status.SUCCESS, run.errors
    assert all("/itens" in p for p in main_paths)
    counts = ds.item_counts()
    assert counts["itens"] >= 60 and counts["resultados"] >= 30
    assert ItemContratacao.objects.count() == counts["itens"]
    assert ResultadoItem.objects.count() == counts["resultados"]
    compras = ds.compras_with_itens()
    assert 0 < len(compras) < ds.count("contratacoes")  # some compras have no itens (404)
    for compra in ds.keys("contratacoes"):
        stored = {
            i.numero_item: i
            for i in ItemContratacao.objects.filter(numero_controle_pncp_compra=compra)
        }
        fake_itens = ds.itens(compra)
        assert set(stored) == {i["numeroItem"] for i in fake_itens}
        for record in fake_itens:
            row = stored[record["numeroItem"]]
            assert row.chave == f"{compra}#{record['numeroItem']}"
            assert row.contratacao.numero_controle_pncp == compra
            assert_row_matches(row, record, ITEM_COLUMNS)
            fake_resultados = ds.resultados(compra, record["numeroItem"])
            results = {r.sequencial_resultado: r for r in row.resultados.all()}
            assert set(results) == {r["sequencialResultado"] for r in fake_resultados}
            for resultado in fake_resultados:
                assert_row_matches(
                    results[resultado["sequencialResultado"]], resultado, RESULTADO_COLUMNS
                )
    # bookkeeping like every imported record
    item = ItemContratacao.objects.first()
    assert item.sync_run_id == run.pk and len(item.content_hash) == 32
    assert item.first_seen_at == item.last_seen_at == item.last_changed_at
    # itens of compras without a result cost no resultados call
    without = [(c, i["numeroItem"]) for c in compras for i in ds.itens(c) if not i["temResultado"]]
    assert without
    asked = {r.path for r in fake.requests(prefix="/api/pncp/") if r.path.endswith("/resultados")}
    for compra, numero in without:
        cnpj, rest = compra.split("-1-")
        seq, ano = rest.split("/")
        path = f"/api/pncp/v1/orgaos/{cnpj}/compras/{ano}/{int(seq)}/itens/{numero}/resultados"
        assert path not in asked


def test_reimport_is_a_noop_and_a_changed_resultado_writes_one_history_row():
    ds = dataset(seed=8)
    with FakePNCP(ds) as fake:
        first, _ = sync(fake.base_url)
        second, _ = sync(fake.base_url)
        assert (second.created, second.updated) == (0, 0)
        assert second.unchanged == first.created
        assert RecordVersion.objects.count() == 0

        compra = next(
            c
            for c in ds.compras_with_itens()
            if any(ds.resultados(c, i["numeroItem"]) for i in ds.itens(c))
        )
        numero = next(
            i["numeroItem"] for i in ds.itens(compra) if ds.resultados(compra, i["numeroItem"])
        )
        [old, *_] = ds.resultados(compra, numero)
        ds.update_resultado(
            compra, numero, old["sequencialResultado"], valorUnitarioHomologado=1.2345
        )
        third, _ = sync(fake.base_url)
    assert (third.created, third.updated) == (0, 1)
    [version] = RecordVersion.objects.all()
    chave = f"{compra}#{numero}#{old['sequencialResultado']}"
    assert (version.resource, version.natural_key) == ("resultados", chave)
    assert version.payload == old
    row = ResultadoItem.objects.get(chave=chave)
    assert row.valor_unitario_homologado == Decimal("1.2345")
    assert row.last_changed_at > row.first_seen_at and row.sync_run_id == third.pk


def test_fornecedores_are_normalized_by_ni():
    ds = dataset(seed=4)
    with FakePNCP(ds) as fake:
        sync(fake.base_url)
    resultados = [
        r
        for c in ds.compras_with_itens()
        for i in ds.itens(c)
        for r in ds.resultados(c, i["numeroItem"])
    ]
    by_ni = {}
    for r in resultados:
        by_ni.setdefault(r["niFornecedor"], r)
    assert len(resultados) > len(by_ni) > 1  # several resultados share a fornecedor
    assert set(Fornecedor.objects.values_list("ni_fornecedor", flat=True)) == set(by_ni)
    for ni, r in by_ni.items():
        f = Fornecedor.objects.get(ni_fornecedor=ni)
        assert (f.tipo_pessoa_id, f.nome_razao_social, f.porte_id, f.natureza_juridica_id) == (
            r["tipoPessoa"],
            r["nomeRazaoSocialFornecedor"],
            r["porteFornecedorId"],
            r["naturezaJuridicaId"],
        )
        assert f.resultados.count() == sum(1 for x in resultados if x["niFornecedor"] == ni)


def test_sync_with_itens_under_injected_faults_still_lands_everything():
    ds = dataset(contratacoes=80, seed=11)
    faults = FaultConfig(
        seed=5,
        rate_429=0.05,
        rate_5xx=0.08,
        rate_truncated=0.04,
        rate_timeout=0.01,
        hang_seconds=1.5,
    )
    with FakePNCP(ds, faults=faults) as fake:
        run, _ = sync(fake.base_url)
        faulted = [r for r in fake.requests(prefix="/api/pncp/") if r.fault]
    assert len(faulted) >= 5
    assert run.status == SyncRun.Status.SUCCESS, run.errors
    assert not run.checkpoints.exclude(status=SyncCheckpoint.Status.DONE).exists()
    assert run.checkpoints.filter(resource="itens").count() == ds.count("contratacoes")
    counts = ds.item_counts()
    assert ItemContratacao.objects.count() == counts["itens"]
    assert ResultadoItem.objects.count() == counts["resultados"]
    stored = dict(ResultadoItem.objects.values_list("chave", "raw"))
    for compra in ds.compras_with_itens():
        for item in ds.itens(compra):
            for r in ds.resultados(compra, item["numeroItem"]):
                assert stored[f"{compra}#{item['numeroItem']}#{r['sequencialResultado']}"] == r


def test_itens_alone_fetch_the_stored_contratacoes_of_the_window_and_resume_after_failure():
    ds = dataset(seed=6)
    with FakePNCP(ds) as fake:
        sync(fake.base_url, resources=["contratacoes"])
        assert ItemContratacao.objects.count() == 0
        window = (date(2025, 7, 2), date(2025, 7, 3))
        expected = set(
            Contratacao.objects.filter(data_publicacao_pncp__date__range=window).values_list(
                "numero_controle_pncp", flat=True
            )
        )
        assert 0 < len(expected) < ds.count("contratacoes")
        failing = sorted(expected & set(ds.compras_with_itens()))[0]
        cnpj, rest = failing.split("-1-")
        seq, ano = rest.split("/")
        failing_path = f"/api/pncp/v1/orgaos/{cnpj}/compras/{ano}/{int(seq)}/itens"
        fake.fail_always[failing_path] = 503
        fake.reset_log()
        options = SyncOptions(resources=["itens"], desde=window[0], ate=window[1])
        run = start_run(options, trigger=SyncRun.Trigger.TEST)
        assert run.checkpoints.count() == len(expected)
        execute_run(run, client=make_client(fake.base_url, max_attempts=2))
        run.refresh_from_db()
        assert not fake.requests(prefix="/v1/")  # no Consulta call: the compras are ours
        assert run.status == SyncRun.Status.PARTIAL
        assert run.checkpoints.get(status=SyncCheckpoint.Status.FAILED).params["compra"] == failing

        del fake.fail_always[failing_path]
        fake.reset_log()
        resumed = resume_run(run.pk)
        execute_run(resumed, client=make_client(fake.base_url))
        paths = {r.path for r in fake.requests()}
    resumed.refresh_from_db()
    assert resumed.status == SyncRun.Status.SUCCESS, resumed.errors
    assert {p.split("/itens")[0] for p in paths} == {failing_path.split("/itens")[0]}
    stored = set(ItemContratacao.objects.values_list("numero_controle_pncp_compra", flat=True))
    assert stored == expected & set(ds.compras_with_itens())


def test_bad_records_are_quarantined_and_unknown_codes_added():
    ds = dataset(contratacoes=20, seed=9)
    compra = ds.compras_with_itens()[0]
    itens = ds.itens(compra)
    broken = copy.deepcopy(itens[0])
    broken["quantidade"] = "muitas"
    ds.set_itens(compra, [broken, *itens[1:]])
    compra2 = next(
        c
        for c in ds.compras_with_itens()
        if c != compra and any(ds.resultados(c, i["numeroItem"]) for i in ds.itens(c))
    )
    numero = next(
        i["numeroItem"] for i in ds.itens(compra2) if ds.resultados(compra2, i["numeroItem"])
    )
    [first, *rest] = ds.resultados(compra2, numero)
    ds.set_resultados(
        compra2,
        numero,
        [{**first, "porteFornecedorId": 9, "porteFornecedorNome": "Porte novo"}, *rest],
    )
    with FakePNCP(ds) as fake:
        run, _ = sync(fake.base_url)
    assert run.status == SyncRun.Status.SUCCESS, run.errors
    [rejected] = RejectedRecord.objects.filter(resource="itens")
    # the resultados of a quarantined item are quarantined with it, saying why
    orphans = RejectedRecord.objects.filter(resource="resultados")
    assert orphans.count() == len(ds.resultados(compra, broken["numeroItem"]))
    assert all("not a stored item" in r.reason for r in orphans)
    assert rejected.natural_key == f"{compra}#{broken['numeroItem']}"
    assert "quantidade" in rejected.reason and rejected.payload == broken
    assert (
        ItemContratacao.objects.filter(numero_controle_pncp_compra=compra).count() == len(itens) - 1
    )
    novo = PorteEmpresa.objects.get(codigo=9)
    assert (novo.nome, novo.novo_em_importacao) == ("Porte novo", True)
    chave = f"{compra2}#{numero}#{first['sequencialResultado']}"
    assert ResultadoItem.objects.get(chave=chave).porte_fornecedor_id == 9


def test_main_api_base_url_is_derived_from_the_consulta_one(settings):
    assert main_api_base_url("https://pncp.gov.br/api/consulta") == "https://pncp.gov.br/api/pncp"
    assert main_api_base_url("http://h:1/api/consulta/") == "http://h:1/api/pncp"
    settings.PNCP_BASE_URL = "https://proxy.example/api/consulta"
    assert main_api_base_url() == "https://proxy.example/api/pncp"
    settings.PNCP_API_BASE_URL = "https://other.example/pncp-api"
    assert main_api_base_url() == "https://other.example/pncp-api"
    assert make_client("http://h:1/api/consulta").api_base_url == "http://h:1/api/pncp"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--itens"], "needs --desde"),
        (["contratos", "--itens", "--desde", "2025-07-01"], "use it with contratacoes"),
        (["check", "contratos"], "takes no resources"),
    ],
)
def test_itens_bad_input_is_refused_clearly(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("sync_pncp", *args)
    assert SyncRun.objects.count() == 0


def test_command_with_itens(settings):
    ds = dataset(contratacoes=20, seed=2)
    with FakePNCP(ds) as fake:
        settings.PNCP_BASE_URL = fake.base_url
        settings.PNCP_REQUESTS_PER_SECOND = 0
        settings.PNCP_RATE_LIMIT_REDIS_URL = ""
        settings.REDIS_URL = ""
        call_command(
            "sync_pncp",
            "contratacoes",
            "--desde",
            str(START),
            "--ate",
            str(END),
            "--itens",
            "--concurrency",
            "2",
        )
    run = SyncRun.objects.get()
    assert run.resources == ["contratacoes", "itens"] and run.status == SyncRun.Status.SUCCESS
    assert ItemContratacao.objects.count() == ds.item_counts()["itens"]


def test_fake_serves_itens_paged_and_404_when_empty_and_the_sync_shrinks_a_refused_page():
    ds = dataset(contratacoes=15, seed=1)
    compra = ds.keys("contratacoes")[0]
    template = ds.itens(ds.compras_with_itens()[0])[0]
    ds.set_itens(
        compra, [{**template, "numeroItem": n, "temResultado": False} for n in range(1, 24)]
    )
    cnpj, rest = compra.split("-1-")
    seq, ano = rest.split("/")
    path = f"/v1/orgaos/{cnpj}/compras/{ano}/{int(seq)}/itens"
    empty = ds.keys("contratacoes")[1]
    ds.set_itens(empty, [])
    cnpj2, rest2 = empty.split("-1-")
    seq2, ano2 = rest2.split("/")
    with FakePNCP(ds, page_limits={"itens": 10}) as fake:
        client = make_client(fake.base_url)
        assert len(client.get_list(path, {"pagina": 3, "tamanhoPagina": 10})) == 3
        assert client.get_list(path, {"pagina": 4, "tamanhoPagina": 10}) == []
        assert client.get_list(f"/v1/orgaos/{cnpj2}/compras/{ano2}/{int(seq2)}/itens") == []
        assert [r.status for r in fake.requests()][-2:] == [404, 404]
        with pytest.raises(PNCPRequestError):  # a path PNCP does not serve is no empty list
            client.get_list(f"/v1/orgaos/{cnpj}/compras/{ano}/{int(seq)}/itenz")
        run, _ = sync(fake.base_url)
        sizes = {r.params.get("tamanhoPagina") for r in fake.requests(prefix="/api/pncp/")}
        refused = fake.requests(prefix="/api/pncp/", status=400)
    assert 1 <= len(refused) <= 4  # learnt once per run (one per fetcher at most), not per compra
    assert run.status == SyncRun.Status.SUCCESS, run.errors
    assert sizes >= {"50", "10"}  # refused at 50, then PNCP's announced 10
    assert ItemContratacao.objects.filter(numero_controle_pncp_compra=compra).count() == 23
    assert ItemContratacao.objects.count() == ds.item_counts()["itens"]


def test_a_celery_window_task_also_fetches_the_itens_of_its_contratacoes():
    from pncp.tasks import options_from_kwargs

    options = options_from_kwargs(
        ["contratacoes"], desde=str(START), ate=str(END), modalidades=[6, 8], itens=True
    )
    assert options.resources == ["contratacoes", "itens"]
    ds = dataset(seed=14)
    day = min(
        r["dataPublicacaoPncp"][:10] for r in ds.records("contratacoes") if r["modalidadeId"] == 6
    )
    with FakePNCP(ds) as fake:
        run = start_run(options, trigger=SyncRun.Trigger.TEST)
        window = run.checkpoints.get(params__codigoModalidadeContratacao=6, window_start=day)
        execute_run(
            run, client=make_client(fake.base_url), checkpoint_ids=[window.pk], finish=False
        )
    compras = set(Contratacao.objects.values_list("numero_controle_pncp", flat=True))
    assert compras == {
        r["numeroControlePNCP"]
        for r in ds.records("contratacoes")
        if r["modalidadeId"] == 6 and r["dataPublicacaoPncp"][:10] == day
    }
    itens = run.checkpoints.filter(resource="itens")
    assert {cp.params["compra"] for cp in itens} == compras
    assert not itens.exclude(status=SyncCheckpoint.Status.DONE).exists()
    others = run.checkpoints.filter(resource="contratacoes").exclude(pk=window.pk)
    assert set(others.values_list("status", flat=True)) == {"pending"}
    assert ItemContratacao.objects.count() == sum(len(ds.itens(c)) for c in compras)
