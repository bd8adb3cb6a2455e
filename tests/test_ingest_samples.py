"""Every real record in the samples, stored through the models, reads back field for field.

The expectations below are written from fields.md, independently of pncp/parsers.py, so a
wrong mapping in the parser fails here.
"""

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from pncp.models import AtaRegistroPreco, Contratacao, Contrato, PlanoContratacao
from tests.conftest import sample_records

SP = ZoneInfo("America/Sao_Paulo")

CONTRATACAO_FILES = (
    "contratacao_1.json",
    "contratacao_3.json",
    "contratacao_5.json",
    "contratacao_proposta_1.json",
    "contratacao_proposta_2.json",
    "contratacao_proposta_3.json",
    "contratacoes_publicacao_sc_pregao.json",
    "compra_1.json",
)
CONTRATO_FILES = (
    "contrato_1.json",
    "contrato_2.json",
    "contrato_3.json",
    "contrato_5.json",
    "contratos_publicacao_page.json",
)
ATA_FILES = ("ata_1.json", "ata_5.json")


def dt(value):
    if value in (None, ""):
        return None
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=SP)


def d(value):
    return None if value in (None, "") else date.fromisoformat(value[:10])


def money(value):
    return None if value is None else Decimal(str(value))


def same_instant(stored, expected):
    if expected is None:
        return stored is None
    return stored is not None and stored == expected


def check(obj, expectations):
    problems = []
    for label, stored, expected in expectations:
        if isinstance(expected, datetime) or (expected is None and isinstance(stored, datetime)):
            ok = same_instant(stored, expected)
        elif isinstance(expected, Decimal):
            ok = stored is not None and Decimal(stored) == expected
        else:
            ok = stored == expected
        if not ok:
            problems.append(f"{label}: stored {stored!r} != sent {expected!r}")
    assert not problems, f"{obj}: " + "; ".join(problems)


def orgao_expectations(prefix, stored_orgao, stored_unidade, o, u):
    exp = []
    if o is None:
        exp.append((f"{prefix} orgao", stored_orgao, None))
    else:
        exp += [
            (f"{prefix}.cnpj", stored_orgao.cnpj, o["cnpj"]),
            (f"{prefix}.razaoSocial", stored_orgao.razao_social, o["razaoSocial"]),
            (f"{prefix}.poderId", stored_orgao.poder_id, o["poderId"]),
            (f"{prefix}.esferaId", stored_orgao.esfera_id, o["esferaId"]),
        ]
    if u is None:
        exp.append((f"{prefix} unidade", stored_unidade, None))
    else:
        exp += [
            ("codigoUnidade", stored_unidade.codigo_unidade, u["codigoUnidade"]),
            ("nomeUnidade", stored_unidade.nome_unidade, u["nomeUnidade"]),
            ("ufSigla", stored_unidade.uf_sigla, u["ufSigla"]),
            ("ufNome", stored_unidade.uf_nome, u["ufNome"]),
            ("municipioNome", stored_unidade.municipio_nome, u["municipioNome"]),
            ("codigoIbge", stored_unidade.codigo_ibge, u["codigoIbge"]),
        ]
    return exp


@pytest.mark.django_db
def test_every_sample_contratacao_reads_back_field_for_field(ingester):
    records = sample_records(*CONTRATACAO_FILES)
    result = ingester.ingest("contratacoes", records)
    assert result.rejected == 0
    by_key = {r["numeroControlePNCP"]: r for r in records}
    assert Contratacao.objects.count() == len(by_key) == result.created
    for c in Contratacao.objects.select_related("orgao", "unidade"):
        r = by_key[c.numero_controle_pncp]
        amparo = r.get("amparoLegal") or {}
        check(
            c,
            [
                ("anoCompra", c.ano_compra, r["anoCompra"]),
                ("sequencialCompra", c.sequencial_compra, r["sequencialCompra"]),
                ("numeroCompra", c.numero_compra, r["numeroCompra"]),
                ("processo", c.processo, r["processo"]),
                ("objetoCompra", c.objeto_compra, r["objetoCompra"]),
                (
                    "informacaoComplementar",
                    c.informacao_complementar,
                    r.get("informacaoComplementar"),
                ),
                ("srp", c.srp, r["srp"]),
                ("modalidadeId", c.modalidade_id, r["modalidadeId"]),
                ("modoDisputaId", c.modo_disputa_id, r.get("modoDisputaId")),
                (
                    "tipoInstrumentoConvocatorioCodigo",
                    c.instrumento_convocatorio_id,
                    r.get("tipoInstrumentoConvocatorioCodigo"),
                ),
                ("amparoLegal.codigo", c.amparo_legal_id, amparo.get("codigo")),
                ("situacaoCompraId", c.situacao_id, int(r["situacaoCompraId"])),
                (
                    "orcamentoSigilosoCodigo",
                    c.orcamento_sigiloso_id,
                    r.get("orcamentoSigilosoCodigo"),
                ),
                ("valorTotalEstimado", c.valor_total_estimado, money(r["valorTotalEstimado"])),
                (
                    "valorTotalHomologado",
                    c.valor_total_homologado,
                    money(r.get("valorTotalHomologado")),
                ),
                ("dataInclusao", c.data_inclusao, dt(r["dataInclusao"])),
                ("dataPublicacaoPncp", c.data_publicacao_pncp, dt(r["dataPublicacaoPncp"])),
                ("dataAtualizacao", c.data_atualizacao, dt(r["dataAtualizacao"])),
                (
                    "dataAtualizacaoGlobal",
                    c.data_atualizacao_global,
                    dt(r.get("dataAtualizacaoGlobal")),
                ),
                (
                    "dataAberturaProposta",
                    c.data_abertura_proposta,
                    dt(r.get("dataAberturaProposta")),
                ),
                (
                    "dataEncerramentoProposta",
                    c.data_encerramento_proposta,
                    dt(r.get("dataEncerramentoProposta")),
                ),
                ("linkSistemaOrigem", c.link_sistema_origem, r.get("linkSistemaOrigem")),
                (
                    "linkProcessoEletronico",
                    c.link_processo_eletronico,
                    r.get("linkProcessoEletronico"),
                ),
                (
                    "justificativaPresencial",
                    c.justificativa_presencial,
                    r.get("justificativaPresencial"),
                ),
                ("usuarioNome", c.usuario_nome, r["usuarioNome"]),
                ("fontesOrcamentarias", c.fontes_orcamentarias, r.get("fontesOrcamentarias")),
                ("uf", c.uf, r["unidadeOrgao"]["ufSigla"]),
                ("codigoIbge", c.codigo_municipio_ibge, r["unidadeOrgao"]["codigoIbge"]),
                ("raw", c.raw, r),
                *orgao_expectations(
                    "orgaoEntidade", c.orgao, c.unidade, r["orgaoEntidade"], r["unidadeOrgao"]
                ),
            ],
        )
        assert c.modalidade.nome  # the code resolves to a domain row


@pytest.mark.django_db
def test_every_sample_contrato_reads_back_field_for_field(ingester):
    records = sample_records(*CONTRATO_FILES)
    result = ingester.ingest("contratos", records)
    assert result.rejected == 0
    by_key = {r["numeroControlePNCP"]: r for r in records}
    assert Contrato.objects.count() == len(by_key)
    for c in Contrato.objects.select_related("orgao", "unidade"):
        r = by_key[c.numero_controle_pncp]
        check(
            c,
            [
                (
                    "numeroControlePncpCompra",
                    c.numero_controle_pncp_compra,
                    r["numeroControlePncpCompra"],
                ),
                ("codigoPaisFornecedor", c.codigo_pais_fornecedor, r.get("codigoPaisFornecedor")),
                ("anoContrato", c.ano_contrato, r["anoContrato"]),
                ("sequencialContrato", c.sequencial_contrato, r["sequencialContrato"]),
                ("tipoContrato.id", c.tipo_contrato_id, r["tipoContrato"]["id"]),
                ("categoriaProcesso.id", c.categoria_processo_id, r["categoriaProcesso"]["id"]),
                ("numeroContratoEmpenho", c.numero_contrato_empenho, r["numeroContratoEmpenho"]),
                ("dataAssinatura", c.data_assinatura, d(r["dataAssinatura"])),
                ("dataVigenciaInicio", c.data_vigencia_inicio, d(r["dataVigenciaInicio"])),
                ("dataVigenciaFim", c.data_vigencia_fim, d(r["dataVigenciaFim"])),
                ("niFornecedor", c.ni_fornecedor, r["niFornecedor"]),
                ("tipoPessoa", c.tipo_pessoa_id, r["tipoPessoa"]),
                (
                    "nomeRazaoSocialFornecedor",
                    c.nome_razao_social_fornecedor,
                    r["nomeRazaoSocialFornecedor"],
                ),
                (
                    "tipoPessoaSubContratada",
                    c.tipo_pessoa_sub_contratada_id,
                    r.get("tipoPessoaSubContratada"),
                ),
                (
                    "niFornecedorSubContratado",
                    c.ni_fornecedor_sub_contratado,
                    r.get("niFornecedorSubContratado"),
                ),
                (
                    "nomeFornecedorSubContratado",
                    c.nome_fornecedor_sub_contratado,
                    r.get("nomeFornecedorSubContratado"),
                ),
                (
                    "informacaoComplementar",
                    c.informacao_complementar,
                    r.get("informacaoComplementar"),
                ),
                ("processo", c.processo, r["processo"]),
                ("receita", c.receita, r["receita"]),
                ("objetoContrato", c.objeto_contrato, r["objetoContrato"]),
                ("numeroParcelas", c.numero_parcelas, r.get("numeroParcelas")),
                ("numeroRetificacao", c.numero_retificacao, r.get("numeroRetificacao")),
                ("valorInicial", c.valor_inicial, money(r.get("valorInicial"))),
                ("valorParcela", c.valor_parcela, money(r.get("valorParcela"))),
                ("valorGlobal", c.valor_global, money(r.get("valorGlobal"))),
                ("valorAcumulado", c.valor_acumulado, money(r.get("valorAcumulado"))),
                ("dataPublicacaoPncp", c.data_publicacao_pncp, dt(r["dataPublicacaoPncp"])),
                ("dataAtualizacao", c.data_atualizacao, dt(r["dataAtualizacao"])),
                (
                    "dataAtualizacaoGlobal",
                    c.data_atualizacao_global,
                    dt(r.get("dataAtualizacaoGlobal")),
                ),
                ("identificadorCipi", c.identificador_cipi, r.get("identificadorCipi")),
                ("urlCipi", c.url_cipi, r.get("urlCipi")),
                ("usuarioNome", c.usuario_nome, r["usuarioNome"]),
                ("raw", c.raw, r),
                *orgao_expectations(
                    "orgaoEntidade", c.orgao, c.unidade, r["orgaoEntidade"], r["unidadeOrgao"]
                ),
            ],
        )


@pytest.mark.django_db
def test_every_sample_ata_reads_back_field_for_field(ingester):
    records = sample_records(*ATA_FILES)
    result = ingester.ingest("atas", records)
    assert result.rejected == 0
    by_key = {r["numeroControlePNCPAta"]: r for r in records}
    assert AtaRegistroPreco.objects.count() == len(by_key)
    for a in AtaRegistroPreco.objects.select_related("orgao", "unidade"):
        r = by_key[a.numero_controle_pncp_ata]
        check(
            a,
            [
                (
                    "numeroControlePNCPCompra",
                    a.numero_controle_pncp_compra,
                    r["numeroControlePNCPCompra"],
                ),
                (
                    "numeroAtaRegistroPreco",
                    a.numero_ata_registro_preco,
                    r["numeroAtaRegistroPreco"],
                ),
                ("anoAta", a.ano_ata, r["anoAta"]),
                ("cancelado", a.cancelado, r["cancelado"]),
                ("dataCancelamento", a.data_cancelamento, dt(r.get("dataCancelamento"))),
                ("dataAssinatura", a.data_assinatura, d(r["dataAssinatura"])),
                ("vigenciaInicio", a.vigencia_inicio, d(r["vigenciaInicio"])),
                ("vigenciaFim", a.vigencia_fim, d(r["vigenciaFim"])),
                ("dataPublicacaoPncp", a.data_publicacao_pncp, dt(r["dataPublicacaoPncp"])),
                ("dataInclusao", a.data_inclusao, dt(r["dataInclusao"])),
                ("dataAtualizacao", a.data_atualizacao, dt(r["dataAtualizacao"])),
                (
                    "dataAtualizacaoGlobal",
                    a.data_atualizacao_global,
                    dt(r.get("dataAtualizacaoGlobal")),
                ),
                ("usuario", a.usuario, r["usuario"]),
                ("objetoContratacao", a.objeto_contratacao, r["objetoContratacao"]),
                ("cnpjOrgao", a.orgao.cnpj, r["cnpjOrgao"]),
                ("nomeOrgao", a.orgao.razao_social, r["nomeOrgao"]),
                ("codigoUnidadeOrgao", a.unidade.codigo_unidade, r["codigoUnidadeOrgao"]),
                ("nomeUnidadeOrgao", a.unidade.nome_unidade, r["nomeUnidadeOrgao"]),
                ("cnpjOrgaoSubrogado", a.orgao_sub_rogado_id, r.get("cnpjOrgaoSubrogado")),
                (
                    "codigoUnidadeOrgaoSubrogado",
                    a.unidade_sub_rogada and a.unidade_sub_rogada.codigo_unidade,
                    r.get("codigoUnidadeOrgaoSubrogado"),
                ),
                ("raw", a.raw, r),
            ],
        )


def pca_item_expectations(item, r):
    return [
        ("numeroItem", item.numero_item, r["numeroItem"]),
        ("categoriaItemPcaNome", item.categoria_item_pca_nome, r["categoriaItemPcaNome"]),
        ("categoria code", item.categoria_item_pca.nome, r["categoriaItemPcaNome"]),
        ("classificacaoCatalogoId", item.classificacao_catalogo_id, r["classificacaoCatalogoId"]),
        (
            "nomeClassificacaoCatalogo",
            item.nome_classificacao_catalogo,
            r["nomeClassificacaoCatalogo"],
        ),
        (
            "classificacaoSuperiorCodigo",
            item.classificacao_superior_codigo,
            r["classificacaoSuperiorCodigo"],
        ),
        (
            "classificacaoSuperiorNome",
            item.classificacao_superior_nome,
            r["classificacaoSuperiorNome"],
        ),
        ("codigoItem", item.codigo_item, r["codigoItem"]),
        ("descricaoItem", item.descricao_item, r["descricaoItem"]),
        ("pdmCodigo", item.pdm_codigo, r["pdmCodigo"]),
        ("pdmDescricao", item.pdm_descricao, r["pdmDescricao"]),
        ("unidadeFornecimento", item.unidade_fornecimento, r["unidadeFornecimento"]),
        ("unidadeRequisitante", item.unidade_requisitante, r["unidadeRequisitante"]),
        ("grupoContratacaoCodigo", item.grupo_contratacao_codigo, r["grupoContratacaoCodigo"]),
        ("grupoContratacaoNome", item.grupo_contratacao_nome, r["grupoContratacaoNome"]),
        ("quantidadeEstimada", item.quantidade_estimada, money(r["quantidadeEstimada"])),
        ("valorUnitario", item.valor_unitario, money(r["valorUnitario"])),
        ("valorTotal", item.valor_total, money(r["valorTotal"])),
        (
            "valorOrcamentoExercicio",
            item.valor_orcamento_exercicio,
            money(r["valorOrcamentoExercicio"]),
        ),
        ("dataDesejada", item.data_desejada, d(r["dataDesejada"])),
        ("dataInclusao", item.data_inclusao, dt(r["dataInclusao"])),
        ("dataAtualizacao", item.data_atualizacao, dt(r["dataAtualizacao"])),
        ("raw", item.raw, r),
    ]


@pytest.mark.django_db
def test_sample_pca_reads_back_with_its_itens(ingester):
    [plano_json] = sample_records("pca_1.json")
    result = ingester.ingest("pca", [plano_json])
    assert (result.created, result.rejected) == (1, 0)
    plano = PlanoContratacao.objects.select_related("orgao", "unidade").get()
    check(
        plano,
        [
            ("idPcaPncp", plano.id_pca_pncp, plano_json["idPcaPncp"]),
            ("anoPca", plano.ano_pca, plano_json["anoPca"]),
            ("orgaoEntidadeCnpj", plano.orgao.cnpj, plano_json["orgaoEntidadeCnpj"]),
            (
                "orgaoEntidadeRazaoSocial",
                plano.orgao.razao_social,
                plano_json["orgaoEntidadeRazaoSocial"],
            ),
            ("codigoUnidade", plano.unidade.codigo_unidade, plano_json["codigoUnidade"]),
            ("nomeUnidade", plano.unidade.nome_unidade, plano_json["nomeUnidade"]),
            (
                "dataPublicacaoPNCP",
                plano.data_publicacao_pncp,
                dt(plano_json["dataPublicacaoPNCP"]),
            ),
            (
                "dataAtualizacaoGlobalPCA",
                plano.data_atualizacao_global_pca,
                dt(plano_json["dataAtualizacaoGlobalPCA"]),
            ),
            ("raw", plano.raw, plano_json),
        ],
    )
    itens = list(plano.itens.select_related("categoria_item_pca").order_by("numero_item"))
    assert [i.numero_item for i in itens] == [i["numeroItem"] for i in plano_json["itens"]]
    for item, r in zip(itens, plano_json["itens"], strict=True):
        check(item, pca_item_expectations(item, r))


@pytest.mark.django_db
def test_partial_pca_item_sample_reads_back(ingester):
    """pca_2.json kept only one item (no header): wrap it in a plano built from fields.md."""
    [partial] = sample_records("pca_2.json")
    plano_json = {
        "idPcaPncp": "01367770000130-0-000001/2023",
        "anoPca": 2023,
        "orgaoEntidadeCnpj": "01367770000130",
        "orgaoEntidadeRazaoSocial": "MUNICIPIO DE ITUMBIARA",
        "codigoUnidade": "1",
        "nomeUnidade": "PREFEITURA",
        "dataPublicacaoPNCP": "2023-07-24T10:58:49",
        "dataAtualizacaoGlobalPCA": "2023-07-24T10:58:49",
        "itens": partial["itens"],
    }
    assert ingester.ingest("pca", [plano_json]).created == 1
    [item] = PlanoContratacao.objects.get().itens.select_related("categoria_item_pca")
    check(item, pca_item_expectations(item, partial["itens"][0]))
    assert item.unidade_fornecimento == "LATA   "  # trailing spaces kept, as PNCP sent them
