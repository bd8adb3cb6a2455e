"""Records out, with PNCP's field names and nesting, built from the model columns.

The response is built from the normalized columns (never by echoing ``raw``), so what the
API says is what the filters see. Each serializer declares its fields (that is what the
OpenAPI schema shows) but writes its output in a plain ``to_representation`` from the
``select_related`` row: DRF's per-field machinery would cost ~10x more per record, and a
page has up to 500 of them (target: ≤ 20 µs per record).

Formats follow PNCP: date-times are Brasília wall clock without offset
(``2025-06-24T00:00:46``), dates ``AAAA-MM-DD``, money a JSON number; atas keep PNCP's
date-only values. Every record adds ``pncpUrl`` (its page on pncp.gov.br) and ``_links``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from django.urls import reverse
from rest_framework import serializers

from pncp.api.selectors import domain_row, domain_rows

BRASILIA = ZoneInfo("America/Sao_Paulo")


# --- value formatters (hot path) -------------------------------------------------------------


def _constant_offset_span(tz, step=timedelta(days=30)) -> tuple[datetime, datetime, timedelta]:
    """The span around now in which ``tz`` keeps today's UTC offset, found from tzdata.

    Brasília has been UTC-3 since DST ended in February 2019: a date-time in that span is
    converted by one subtraction instead of a ``zoneinfo`` lookup (6 date-times per record,
    ~1.5 µs saved each). Should DST come back, tzdata ends the span and the slow path takes
    over for dates beyond it.
    """
    now = datetime.now(UTC).replace(microsecond=0)
    offset = now.astimezone(tz).utcoffset()

    def same(moment):
        return moment.astimezone(tz).utcoffset() == offset

    def edge(direction: int, limit: datetime) -> datetime:
        good = now
        while True:
            probe = good + direction * step
            if (probe - limit) * direction >= timedelta(0):
                return limit
            if not same(probe):
                break
            good = probe
        bad = probe
        while abs(bad - good) > timedelta(seconds=1):
            middle = good + (bad - good) / 2
            if same(middle):
                good = middle
            else:
                bad = middle
        return good

    start = edge(-1, datetime(1900, 1, 1, tzinfo=UTC))
    end = edge(1, datetime(2100, 1, 1, tzinfo=UTC))
    return start, end, offset


_SPAN_START, _SPAN_END, _OFFSET = _constant_offset_span(BRASILIA)


def _dt(value):
    """Aware datetime -> Brasília wall clock without offset, as PNCP sends it (list rows
    bring it formatted by PostgreSQL already: ``rows.BrasiliaWallClock``)."""
    if value is None or value.__class__ is str:
        return value
    if value.tzinfo is UTC and _SPAN_START <= value < _SPAN_END:
        return (value + _OFFSET).isoformat()[:19]
    return value.astimezone(BRASILIA).replace(tzinfo=None).isoformat(timespec="seconds")


def _dt_or_day(value):
    """Atas: PNCP sends date-only values; keep them date-only when the time is midnight."""
    text = _dt(value)
    if text is not None and text.endswith("T00:00:00"):
        return text[:10]
    return text


def _day(value):
    return None if value is None else value.isoformat()


def _num(value):
    return None if value is None else float(value)


def _orgao(orgao):
    if orgao is None:
        return None
    return {
        "cnpj": orgao.cnpj,
        "razaoSocial": orgao.razao_social,
        "poderId": orgao.poder_id,
        "esferaId": orgao.esfera_id,
    }


def _unidade(unidade):
    if unidade is None:
        return None
    return {
        "ufNome": unidade.uf_nome,
        "codigoIbge": unidade.codigo_ibge,
        "codigoUnidade": unidade.codigo_unidade,
        "nomeUnidade": unidade.nome_unidade,
        "ufSigla": unidade.uf_sigla,
        "municipioNome": unidade.municipio_nome,
    }


def _code(record, field: str, table: str):
    """The domain row of a code: joined when the query joined it (one record), otherwise
    from the per-process cache (pages: no join per code table)."""
    cached = record._state.fields_cache
    if field in cached:
        return cached[field]
    return domain_row(table, getattr(record, f"{field}_id"))


def _row(rows: dict, table: str, code):
    """A code's row from a response's snapshot of its table (``domain_rows``); a code the
    snapshot lacks goes through ``domain_row``, which reloads the table once."""
    if code is None:
        return None
    row = rows.get(code)
    return row if row is not None else domain_row(table, code)


def _name(related):
    return None if related is None else related.nome


def _id_nome(related):
    return None if related is None else {"id": related.codigo, "nome": related.nome}


# --- schema helpers --------------------------------------------------------------------------


def _str(help_text: str, **kw):
    return serializers.CharField(help_text=help_text, allow_null=True, **kw)


def _int(help_text: str, **kw):
    return serializers.IntegerField(help_text=help_text, allow_null=True, **kw)


def _bool(help_text: str):
    return serializers.BooleanField(help_text=help_text, allow_null=True)


def _money(help_text: str):
    return serializers.FloatField(help_text=f"{help_text} (R$, até 4 decimais).", allow_null=True)


def _datetime(help_text: str):
    return serializers.CharField(
        help_text=f"{help_text}: data e hora de Brasília sem fuso, `AAAA-MM-DDTHH:MM:SS`.",
        allow_null=True,
    )


def _date(help_text: str):
    return serializers.DateField(help_text=f"{help_text} (`AAAA-MM-DD`).", allow_null=True)


class LinksSerializer(serializers.Serializer):
    self = serializers.CharField(help_text="Este registro na API.")


class OrgaoEntidadeSerializer(serializers.Serializer):
    cnpj = serializers.CharField(help_text="CNPJ do órgão/entidade (14 dígitos).")
    razaoSocial = serializers.CharField(help_text="Razão social.")
    poderId = _str("Poder: L, E, J ou N (tabela `poder`).")
    esferaId = _str("Esfera: F, E, M, D ou N (tabela `esfera`).")


class UnidadeOrgaoSerializer(serializers.Serializer):
    ufNome = _str("Nome da UF.")
    codigoIbge = _str("Código IBGE do município (7 dígitos).")
    codigoUnidade = serializers.CharField(help_text="Código da unidade administrativa.")
    nomeUnidade = _str("Nome da unidade.")
    ufSigla = _str("Sigla da UF.")
    municipioNome = _str("Nome do município.")


class AmparoLegalSerializer(serializers.Serializer):
    codigo = serializers.IntegerField(help_text="Código (tabela `amparo_legal`).")
    nome = serializers.CharField()
    descricao = serializers.CharField()


class IdNomeSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="Código na tabela de domínio.")
    nome = serializers.CharField()


# The URL keyword of each detail route (it is also the path parameter's name in the docs).
DETAIL_ROUTES = {
    "contratacao-detail": "numeroControlePNCP",
    "contrato-detail": "numeroControlePNCP",
    "ata-detail": "numeroControlePNCPAta",
    "plano-detail": "idPcaPncp",
}


class FastSerializer(serializers.Serializer):
    """Declared fields document the output; ``to_representation`` writes it directly."""

    def link(self, route: str, key: str) -> str:
        """The API path of a record; the route prefix is resolved once per response."""
        context = self.context
        cache_key = f"_link_{route}"
        base = context.get(cache_key)
        if base is None:
            path = reverse(f"api:{route}", kwargs={DETAIL_ROUTES[route]: "KEY"})
            base = context[cache_key] = path[: -len("KEY")]
        return base + key


# --- contratação -----------------------------------------------------------------------------


class ContratacaoSerializer(FastSerializer):
    numeroControlePNCP = serializers.CharField(
        help_text="Número de controle PNCP: `CNPJ-1-sequencial/ano`."
    )
    srp = _bool("Sistema de Registro de Preços.")
    orgaoEntidade = OrgaoEntidadeSerializer()
    anoCompra = serializers.IntegerField()
    sequencialCompra = serializers.IntegerField()
    dataInclusao = _datetime("Inclusão no PNCP")
    dataPublicacaoPncp = _datetime("Publicação no PNCP")
    dataAtualizacao = _datetime("Última atualização")
    dataAtualizacaoGlobal = _datetime("Última atualização da contratação ou de um filho")
    numeroCompra = serializers.CharField()
    unidadeOrgao = UnidadeOrgaoSerializer(allow_null=True)
    amparoLegal = AmparoLegalSerializer(allow_null=True)
    dataAberturaProposta = _datetime("Abertura das propostas")
    dataEncerramentoProposta = _datetime("Encerramento das propostas")
    informacaoComplementar = _str("Informação complementar.")
    processo = serializers.CharField()
    objetoCompra = serializers.CharField(help_text="Objeto da contratação.")
    linkSistemaOrigem = _str("URL no sistema de origem.")
    linkProcessoEletronico = _str("URL do processo eletrônico.")
    justificativaPresencial = _str("Justificativa da modalidade presencial.")
    orgaoSubRogado = OrgaoEntidadeSerializer(allow_null=True)
    unidadeSubRogada = UnidadeOrgaoSerializer(allow_null=True)
    valorTotalEstimado = _money("Valor total estimado")
    valorTotalHomologado = _money("Valor total homologado")
    modalidadeId = _int("Modalidade (tabela `modalidade_contratacao`).")
    modalidadeNome = _str("Nome da modalidade.")
    modoDisputaId = _int("Modo de disputa (tabela `modo_disputa`).")
    modoDisputaNome = _str("Nome do modo de disputa.")
    tipoInstrumentoConvocatorioCodigo = _int("Instrumento (tabela `instrumento_convocatorio`).")
    tipoInstrumentoConvocatorioNome = _str("Nome do instrumento convocatório.")
    situacaoCompraId = _int("Situação (tabela `situacao_contratacao`).")
    situacaoCompraNome = _str("Nome da situação.")
    orcamentoSigilosoCodigo = _int("Orçamento sigiloso (tabela `orcamento_sigiloso`; 1 = sem).")
    indicadorOrcamentoSigiloso = _str("COMPRA_SEM_SIGILO, …PARCIALMENTE… ou …TOTALMENTE_SIGILOSA.")
    existeResultado = _bool("Há resultado (só vem da consulta de uma contratação).")
    fontesOrcamentarias = serializers.ListField(
        child=serializers.DictField(), allow_null=True, help_text="Fontes orçamentárias."
    )
    usuarioNome = _str("Sistema que publicou.")
    pncpUrl = serializers.CharField(help_text="A página da contratação em pncp.gov.br.")
    _links = LinksSerializer()

    CODES = (
        ("amparo_legal", "amparo_legal"),
        ("modalidade", "modalidade_contratacao"),
        ("modo_disputa", "modo_disputa"),
        ("instrumento_convocatorio", "instrumento_convocatorio"),
        ("orcamento_sigiloso", "orcamento_sigiloso"),
        ("situacao", "situacao_contratacao"),
    )
    _code_tables = None  # per serializer (one response): the CODES' tables, read once

    def to_representation(self, c):
        if c._state.fields_cache:  # one record with its codes joined (details)
            amparo, modalidade, modo, instrumento, sigilo, situacao = (
                _code(c, field, table) for field, table in self.CODES
            )
        else:  # list rows: each table's cached rows once per response, not per code
            tables = self._code_tables
            if tables is None:
                tables = self._code_tables = [domain_rows(table) for _, table in self.CODES]
            amparo = _row(tables[0], "amparo_legal", c.amparo_legal_id)
            modalidade = _row(tables[1], "modalidade_contratacao", c.modalidade_id)
            modo = _row(tables[2], "modo_disputa", c.modo_disputa_id)
            instrumento = _row(tables[3], "instrumento_convocatorio", c.instrumento_convocatorio_id)
            sigilo = _row(tables[4], "orcamento_sigiloso", c.orcamento_sigiloso_id)
            situacao = _row(tables[5], "situacao_contratacao", c.situacao_id)
        return {
            "numeroControlePNCP": c.numero_controle_pncp,
            "srp": c.srp,
            "orgaoEntidade": _orgao(c.orgao),
            "anoCompra": c.ano_compra,
            "sequencialCompra": c.sequencial_compra,
            "dataInclusao": _dt(c.data_inclusao),
            "dataPublicacaoPncp": _dt(c.data_publicacao_pncp),
            "dataAtualizacao": _dt(c.data_atualizacao),
            "dataAtualizacaoGlobal": _dt(c.data_atualizacao_global),
            "numeroCompra": c.numero_compra,
            "unidadeOrgao": _unidade(c.unidade),
            "amparoLegal": None
            if amparo is None
            else {"codigo": amparo.codigo, "nome": amparo.nome, "descricao": amparo.descricao},
            "dataAberturaProposta": _dt(c.data_abertura_proposta),
            "dataEncerramentoProposta": _dt(c.data_encerramento_proposta),
            "informacaoComplementar": c.informacao_complementar,
            "processo": c.processo,
            "objetoCompra": c.objeto_compra,
            "linkSistemaOrigem": c.link_sistema_origem,
            "linkProcessoEletronico": c.link_processo_eletronico,
            "justificativaPresencial": c.justificativa_presencial,
            "orgaoSubRogado": _orgao(c.orgao_sub_rogado),
            "unidadeSubRogada": _unidade(c.unidade_sub_rogada),
            "valorTotalEstimado": _num(c.valor_total_estimado),
            "valorTotalHomologado": _num(c.valor_total_homologado),
            "modalidadeId": c.modalidade_id,
            "modalidadeNome": None if modalidade is None else modalidade.nome,
            "modoDisputaId": c.modo_disputa_id,
            "modoDisputaNome": None if modo is None else modo.nome,
            "tipoInstrumentoConvocatorioCodigo": c.instrumento_convocatorio_id,
            "tipoInstrumentoConvocatorioNome": None if instrumento is None else instrumento.nome,
            "situacaoCompraId": c.situacao_id,
            "situacaoCompraNome": _name(situacao),
            "orcamentoSigilosoCodigo": c.orcamento_sigiloso_id,
            "indicadorOrcamentoSigiloso": c.indicador_orcamento_sigiloso
            or (None if sigilo is None else sigilo.nome),
            "existeResultado": c.existe_resultado,
            "fontesOrcamentarias": c.fontes_orcamentarias,
            "usuarioNome": c.usuario_nome,
            "pncpUrl": f"https://pncp.gov.br/app/editais/{c.orgao_id}/{c.ano_compra}/"
            f"{c.sequencial_compra}",
            "_links": {"self": self.link("contratacao-detail", c.numero_controle_pncp)},
        }


class AtaResumoSerializer(FastSerializer):
    numeroControlePNCPAta = serializers.CharField()
    numeroAtaRegistroPreco = serializers.CharField()
    anoAta = _int("Ano da ata.")
    cancelado = _bool("Ata cancelada.")
    vigenciaInicio = _str("Início da vigência (`AAAA-MM-DD`).")
    vigenciaFim = _str("Fim da vigência (`AAAA-MM-DD`).")
    dataPublicacaoPncp = _str("Publicação no PNCP.")
    _links = LinksSerializer()

    def to_representation(self, a):
        return {
            "numeroControlePNCPAta": a.numero_controle_pncp_ata,
            "numeroAtaRegistroPreco": a.numero_ata_registro_preco,
            "anoAta": a.ano_ata,
            "cancelado": a.cancelado,
            "vigenciaInicio": _day(a.vigencia_inicio),
            "vigenciaFim": _day(a.vigencia_fim),
            "dataPublicacaoPncp": _dt_or_day(a.data_publicacao_pncp),
            "_links": {"self": self.link("ata-detail", a.numero_controle_pncp_ata)},
        }


class ContratoResumoSerializer(FastSerializer):
    numeroControlePNCP = serializers.CharField()
    numeroContratoEmpenho = serializers.CharField()
    anoContrato = serializers.IntegerField()
    sequencialContrato = serializers.IntegerField()
    tipoContrato = IdNomeSerializer(allow_null=True)
    niFornecedor = serializers.CharField()
    nomeRazaoSocialFornecedor = serializers.CharField()
    valorGlobal = _money("Valor global")
    dataVigenciaInicio = _date("Início da vigência")
    dataVigenciaFim = _date("Fim da vigência")
    dataPublicacaoPncp = _datetime("Publicação no PNCP")
    _links = LinksSerializer()

    def to_representation(self, c):
        return {
            "numeroControlePNCP": c.numero_controle_pncp,
            "numeroContratoEmpenho": c.numero_contrato_empenho,
            "anoContrato": c.ano_contrato,
            "sequencialContrato": c.sequencial_contrato,
            "tipoContrato": _id_nome(c.tipo_contrato),
            "niFornecedor": c.ni_fornecedor,
            "nomeRazaoSocialFornecedor": c.nome_razao_social_fornecedor,
            "valorGlobal": _num(c.valor_global),
            "dataVigenciaInicio": _day(c.data_vigencia_inicio),
            "dataVigenciaFim": _day(c.data_vigencia_fim),
            "dataPublicacaoPncp": _dt(c.data_publicacao_pncp),
            "_links": {"self": self.link("contrato-detail", c.numero_controle_pncp)},
        }


class ContratacaoDetalheSerializer(ContratacaoSerializer):
    """One contratação with the atas and contratos that reference it (summaries)."""

    atas = AtaResumoSerializer(many=True, help_text="Atas de registro de preços da contratação.")
    contratos = ContratoResumoSerializer(many=True, help_text="Contratos/empenhos da contratação.")

    def to_representation(self, c):
        data = super().to_representation(c)
        data["atas"] = AtaResumoSerializer(
            self.context["atas"], many=True, context=self.context
        ).data
        data["contratos"] = ContratoResumoSerializer(
            self.context["contratos"], many=True, context=self.context
        ).data
        return data


# --- ata -------------------------------------------------------------------------------------


class AtaSerializer(FastSerializer):
    numeroControlePNCPAta = serializers.CharField(
        help_text="Número de controle da ata: `<contratação>-sequencial`."
    )
    numeroAtaRegistroPreco = serializers.CharField()
    anoAta = _int("Ano da ata.")
    numeroControlePNCPCompra = serializers.CharField(help_text="A contratação da ata.")
    cancelado = _bool("Ata cancelada.")
    dataCancelamento = _str("Cancelamento (`AAAA-MM-DD`).")
    dataAssinatura = _date("Assinatura")
    vigenciaInicio = _date("Início da vigência")
    vigenciaFim = _date("Fim da vigência")
    dataPublicacaoPncp = _str("Publicação no PNCP (`AAAA-MM-DD`, como o PNCP envia).")
    dataInclusao = _str("Inclusão no PNCP (`AAAA-MM-DD`).")
    dataAtualizacao = _str("Última atualização (`AAAA-MM-DD`).")
    dataAtualizacaoGlobal = _str("Última atualização global (`AAAA-MM-DD`).")
    usuario = _str("Sistema que publicou.")
    objetoContratacao = serializers.CharField()
    cnpjOrgao = serializers.CharField()
    nomeOrgao = serializers.CharField()
    cnpjOrgaoSubrogado = _str("CNPJ do órgão sub-rogado.")
    nomeOrgaoSubrogado = _str("Nome do órgão sub-rogado.")
    codigoUnidadeOrgao = _str("Código da unidade.")
    nomeUnidadeOrgao = _str("Nome da unidade.")
    codigoUnidadeOrgaoSubrogado = _str("Código da unidade sub-rogada.")
    nomeUnidadeOrgaoSubrogado = _str("Nome da unidade sub-rogada.")
    pncpUrl = serializers.CharField(help_text="A página da ata em pncp.gov.br.")
    _links = LinksSerializer()

    def to_representation(self, a):
        orgao, unidade = a.orgao, a.unidade
        sub, sub_unidade = a.orgao_sub_rogado, a.unidade_sub_rogada
        return {
            "numeroControlePNCPAta": a.numero_controle_pncp_ata,
            "numeroAtaRegistroPreco": a.numero_ata_registro_preco,
            "anoAta": a.ano_ata,
            "numeroControlePNCPCompra": a.numero_controle_pncp_compra,
            "cancelado": a.cancelado,
            "dataCancelamento": _dt_or_day(a.data_cancelamento),
            "dataAssinatura": _day(a.data_assinatura),
            "vigenciaInicio": _day(a.vigencia_inicio),
            "vigenciaFim": _day(a.vigencia_fim),
            "dataPublicacaoPncp": _dt_or_day(a.data_publicacao_pncp),
            "dataInclusao": _dt_or_day(a.data_inclusao),
            "dataAtualizacao": _dt_or_day(a.data_atualizacao),
            "dataAtualizacaoGlobal": _dt_or_day(a.data_atualizacao_global),
            "usuario": a.usuario,
            "objetoContratacao": a.objeto_contratacao,
            "cnpjOrgao": a.orgao_id,
            "nomeOrgao": orgao.razao_social,
            "cnpjOrgaoSubrogado": a.orgao_sub_rogado_id,
            "nomeOrgaoSubrogado": None if sub is None else sub.razao_social,
            "codigoUnidadeOrgao": None if unidade is None else unidade.codigo_unidade,
            "nomeUnidadeOrgao": None if unidade is None else unidade.nome_unidade,
            "codigoUnidadeOrgaoSubrogado": None
            if sub_unidade is None
            else sub_unidade.codigo_unidade,
            "nomeUnidadeOrgaoSubrogado": None if sub_unidade is None else sub_unidade.nome_unidade,
            "pncpUrl": a.pncp_url,
            "_links": {"self": self.link("ata-detail", a.numero_controle_pncp_ata)},
        }


# --- contrato --------------------------------------------------------------------------------


class ContratoSerializer(FastSerializer):
    numeroControlePNCP = serializers.CharField(
        help_text="Número de controle do contrato: `CNPJ-2-sequencial/ano`."
    )
    numeroControlePncpCompra = _str("A contratação do contrato.")
    codigoPaisFornecedor = _str("País do fornecedor (ISO 3 letras).")
    anoContrato = serializers.IntegerField()
    sequencialContrato = serializers.IntegerField()
    tipoContrato = IdNomeSerializer(allow_null=True, help_text="Tabela `tipo_contrato`.")
    numeroContratoEmpenho = serializers.CharField()
    dataAssinatura = _date("Assinatura")
    dataVigenciaInicio = _date("Início da vigência")
    dataVigenciaFim = _date("Fim da vigência")
    niFornecedor = serializers.CharField(help_text="CNPJ, CPF ou identificador do fornecedor.")
    tipoPessoa = _str("PJ, PF ou PE.")
    nomeRazaoSocialFornecedor = serializers.CharField()
    orgaoEntidade = OrgaoEntidadeSerializer()
    unidadeOrgao = UnidadeOrgaoSerializer(allow_null=True)
    orgaoSubRogado = OrgaoEntidadeSerializer(allow_null=True)
    unidadeSubRogada = UnidadeOrgaoSerializer(allow_null=True)
    categoriaProcesso = IdNomeSerializer(allow_null=True, help_text="Tabela `categoria_processo`.")
    dataPublicacaoPncp = _datetime("Publicação no PNCP")
    dataAtualizacao = _datetime("Última atualização")
    dataAtualizacaoGlobal = _datetime("Última atualização global")
    informacaoComplementar = _str("Informação complementar.")
    processo = serializers.CharField()
    niFornecedorSubContratado = _str("Fornecedor subcontratado.")
    nomeFornecedorSubContratado = _str("Nome do subcontratado.")
    tipoPessoaSubContratada = _str("PJ, PF ou PE.")
    receita = _bool("Receita (true) ou despesa (false).")
    numeroParcelas = _int("Número de parcelas.")
    numeroRetificacao = _int("Número de retificações.")
    objetoContrato = serializers.CharField()
    valorInicial = _money("Valor inicial")
    valorParcela = _money("Valor da parcela")
    valorGlobal = _money("Valor global")
    valorAcumulado = _money("Valor acumulado")
    identificadorCipi = _str("Identificador no CIPI.")
    urlCipi = _str("URL no CIPI.")
    usuarioNome = _str("Sistema que publicou.")
    pncpUrl = serializers.CharField(help_text="A página do contrato em pncp.gov.br.")
    _links = LinksSerializer()

    def to_representation(self, c):
        return {
            "numeroControlePNCP": c.numero_controle_pncp,
            "numeroControlePncpCompra": c.numero_controle_pncp_compra,
            "codigoPaisFornecedor": c.codigo_pais_fornecedor,
            "anoContrato": c.ano_contrato,
            "sequencialContrato": c.sequencial_contrato,
            "tipoContrato": _id_nome(c.tipo_contrato),
            "numeroContratoEmpenho": c.numero_contrato_empenho,
            "dataAssinatura": _day(c.data_assinatura),
            "dataVigenciaInicio": _day(c.data_vigencia_inicio),
            "dataVigenciaFim": _day(c.data_vigencia_fim),
            "niFornecedor": c.ni_fornecedor,
            "tipoPessoa": c.tipo_pessoa_id,
            "nomeRazaoSocialFornecedor": c.nome_razao_social_fornecedor,
            "orgaoEntidade": _orgao(c.orgao),
            "unidadeOrgao": _unidade(c.unidade),
            "orgaoSubRogado": _orgao(c.orgao_sub_rogado),
            "unidadeSubRogada": _unidade(c.unidade_sub_rogada),
            "categoriaProcesso": _id_nome(c.categoria_processo),
            "dataPublicacaoPncp": _dt(c.data_publicacao_pncp),
            "dataAtualizacao": _dt(c.data_atualizacao),
            "dataAtualizacaoGlobal": _dt(c.data_atualizacao_global),
            "informacaoComplementar": c.informacao_complementar,
            "processo": c.processo,
            "niFornecedorSubContratado": c.ni_fornecedor_sub_contratado,
            "nomeFornecedorSubContratado": c.nome_fornecedor_sub_contratado,
            "tipoPessoaSubContratada": c.tipo_pessoa_sub_contratada_id,
            "receita": c.receita,
            "numeroParcelas": c.numero_parcelas,
            "numeroRetificacao": c.numero_retificacao,
            "objetoContrato": c.objeto_contrato,
            "valorInicial": _num(c.valor_inicial),
            "valorParcela": _num(c.valor_parcela),
            "valorGlobal": _num(c.valor_global),
            "valorAcumulado": _num(c.valor_acumulado),
            "identificadorCipi": c.identificador_cipi,
            "urlCipi": c.url_cipi,
            "usuarioNome": c.usuario_nome,
            "pncpUrl": f"https://pncp.gov.br/app/contratos/{c.orgao_id}/{c.ano_contrato}/"
            f"{c.sequencial_contrato}",
            "_links": {"self": self.link("contrato-detail", c.numero_controle_pncp)},
        }


class WithContratacaoMixin:
    """Adds ``contratacao``: the record's contratação, which the view puts in the context
    (``None`` when the mirror does not have it)."""

    def to_representation(self, obj):
        data = super().to_representation(obj)
        compra = self.context.get("contratacao")
        data["contratacao"] = (
            None
            if compra is None
            else ContratacaoSerializer(compra, context=self.context).to_representation(compra)
        )
        return data


class ContratoDetalheSerializer(WithContratacaoMixin, ContratoSerializer):
    """One contrato with its contratação (when the mirror has it)."""

    contratacao = ContratacaoSerializer(
        allow_null=True, help_text="A contratação (`numeroControlePncpCompra`), se espelhada."
    )


class AtaDetalheSerializer(WithContratacaoMixin, AtaSerializer):
    """One ata with a summary of its contratação (when the mirror has it)."""

    contratacao = ContratacaoSerializer(
        allow_null=True, help_text="A contratação (`numeroControlePNCPCompra`), se espelhada."
    )


# --- PCA -------------------------------------------------------------------------------------


def _item_fields(i) -> dict:
    return {
        "numeroItem": i.numero_item,
        "categoriaItemPcaCodigo": i.categoria_item_pca_id,
        "categoriaItemPcaNome": i.categoria_item_pca_nome,
        "classificacaoCatalogoId": i.classificacao_catalogo_id,
        "nomeClassificacaoCatalogo": i.nome_classificacao_catalogo,
        "classificacaoSuperiorCodigo": i.classificacao_superior_codigo,
        "classificacaoSuperiorNome": i.classificacao_superior_nome,
        "codigoItem": i.codigo_item,
        "descricaoItem": i.descricao_item,
        "pdmCodigo": i.pdm_codigo,
        "pdmDescricao": i.pdm_descricao,
        "unidadeFornecimento": i.unidade_fornecimento,
        "unidadeRequisitante": i.unidade_requisitante,
        "grupoContratacaoCodigo": i.grupo_contratacao_codigo,
        "grupoContratacaoNome": i.grupo_contratacao_nome,
        "quantidadeEstimada": _num(i.quantidade_estimada),
        "valorUnitario": _num(i.valor_unitario),
        "valorTotal": _num(i.valor_total),
        "valorOrcamentoExercicio": _num(i.valor_orcamento_exercicio),
        "dataDesejada": _day(i.data_desejada),
        "dataInclusao": _dt(i.data_inclusao),
        "dataAtualizacao": _dt(i.data_atualizacao),
    }


class ItemPlanoSerializer(serializers.Serializer):
    """An item inside a plano (PNCP's ``itens`` list)."""

    numeroItem = serializers.IntegerField()
    categoriaItemPcaCodigo = _int("Categoria do item (tabela `categoria_item_pca`).")
    categoriaItemPcaNome = _str("Nome da categoria do item.")
    classificacaoCatalogoId = _int("Classificação do catálogo (tabela `classificacao_catalogo`).")
    nomeClassificacaoCatalogo = _str("Material ou Serviço.")
    classificacaoSuperiorCodigo = _str("Classe/grupo do catálogo.")
    classificacaoSuperiorNome = _str("Nome da classe/grupo.")
    codigoItem = _str("Código do item no catálogo.")
    descricaoItem = _str("Descrição do item.")
    pdmCodigo = _str("Código PDM.")
    pdmDescricao = _str("Descrição PDM.")
    unidadeFornecimento = _str("Unidade de fornecimento.")
    unidadeRequisitante = _str("Unidade requisitante.")
    grupoContratacaoCodigo = _str("Grupo de contratação.")
    grupoContratacaoNome = _str("Nome do grupo de contratação.")
    quantidadeEstimada = serializers.FloatField(allow_null=True)
    valorUnitario = _money("Valor unitário")
    valorTotal = _money("Valor total")
    valorOrcamentoExercicio = _money("Orçamento do exercício")
    dataDesejada = _date("Data desejada")
    dataInclusao = _datetime("Inclusão")
    dataAtualizacao = _datetime("Atualização")

    def to_representation(self, i):
        return _item_fields(i)


class ItemPCASerializer(ItemPlanoSerializer, FastSerializer):
    """A PCA item with its plano's identification (one row of ``/pca/``)."""

    idPcaPncp = serializers.CharField(help_text="O plano: `CNPJ-0-sequencial/ano`.")
    anoPca = serializers.IntegerField()
    orgaoEntidadeCnpj = serializers.CharField()
    orgaoEntidadeRazaoSocial = serializers.CharField()
    codigoUnidade = serializers.CharField()
    nomeUnidade = _str("Nome da unidade.")
    idUsuario = _int("Sistema que publicou o plano (quando conhecido).")
    dataPublicacaoPNCP = _datetime("Publicação do plano")
    dataAtualizacaoGlobalPCA = _datetime("Última atualização do plano")
    _links = serializers.DictField(
        child=serializers.CharField(), help_text="`plano`: o plano na API."
    )

    def to_representation(self, i):
        plano = i.plano
        unidade = plano.unidade
        data = {
            "idPcaPncp": plano.id_pca_pncp,
            "anoPca": i.ano_pca,
            "orgaoEntidadeCnpj": i.orgao_id,
            "orgaoEntidadeRazaoSocial": i.orgao.razao_social,
            "codigoUnidade": i.codigo_unidade,
            "nomeUnidade": None if unidade is None else unidade.nome_unidade,
            "idUsuario": plano.id_usuario,
            "dataPublicacaoPNCP": _dt(plano.data_publicacao_pncp),
            "dataAtualizacaoGlobalPCA": _dt(plano.data_atualizacao_global_pca),
        }
        data.update(_item_fields(i))
        data["_links"] = {"plano": self.link("plano-detail", plano.id_pca_pncp)}
        return data


class PlanoContratacaoSerializer(FastSerializer):
    """A plano with its itens, as PNCP's ``/v1/pca/*`` records."""

    idPcaPncp = serializers.CharField(help_text="`CNPJ-0-sequencial/ano`.")
    anoPca = serializers.IntegerField()
    orgaoEntidadeCnpj = serializers.CharField()
    orgaoEntidadeRazaoSocial = serializers.CharField()
    codigoUnidade = serializers.CharField()
    nomeUnidade = _str("Nome da unidade.")
    idUsuario = _int("Sistema que publicou (quando conhecido).")
    dataPublicacaoPNCP = _datetime("Publicação no PNCP")
    dataAtualizacaoGlobalPCA = _datetime("Última atualização do plano ou de um item")
    itens = ItemPlanoSerializer(many=True)
    pncpUrl = serializers.CharField(help_text="A página do plano em pncp.gov.br.")
    _links = LinksSerializer()

    def to_representation(self, p):
        unidade = p.unidade
        return {
            "idPcaPncp": p.id_pca_pncp,
            "anoPca": p.ano_pca,
            "orgaoEntidadeCnpj": p.orgao_id,
            "orgaoEntidadeRazaoSocial": p.orgao.razao_social,
            "codigoUnidade": p.codigo_unidade,
            "nomeUnidade": None if unidade is None else unidade.nome_unidade,
            "idUsuario": p.id_usuario,
            "dataPublicacaoPNCP": _dt(p.data_publicacao_pncp),
            "dataAtualizacaoGlobalPCA": _dt(p.data_atualizacao_global_pca),
            "itens": [_item_fields(i) for i in p.itens.all()],
            "pncpUrl": p.pncp_url,
            "_links": {"self": self.link("plano-detail", p.id_pca_pncp)},
        }


# --- domain tables ---------------------------------------------------------------------------


class DominioTabelaSerializer(serializers.Serializer):
    key = serializers.CharField(help_text="Chave da tabela, usada na URL.")
    name = serializers.CharField(help_text="Nome da tabela.")
    count = serializers.IntegerField(help_text="Quantos códigos ela tem.")
    url = serializers.CharField(help_text="Os códigos desta tabela na API.")


class DominioCodigoSerializer(serializers.Serializer):
    codigo = serializers.JSONField(
        help_text="O código (inteiro na maioria das tabelas; texto "
        "em poder, esfera, tipo_pessoa e natureza_juridica)."
    )
    nome = serializers.CharField()
    descricao = serializers.CharField()
    novoEmImportacao = serializers.BooleanField(
        help_text="Código que o PNCP enviou e não estava na tabela: criado pela importação."
    )
    ativo = serializers.BooleanField()

    def to_representation(self, row):
        return {
            "codigo": row.codigo,
            "nome": row.nome,
            "descricao": row.descricao,
            "novoEmImportacao": row.novo_em_importacao,
            "ativo": row.ativo,
        }
