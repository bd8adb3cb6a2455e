"""Read endpoints of the mirrored records, under ``/api/v1/``.

Views only translate HTTP: the querysets come from ``selectors``, the parameters are parsed
and validated by one FilterSet per resource (``filters``), records are written by
``serializers``, pages by the project's PNCP envelope and errors by the project's handler.
Each list page costs a fixed number of queries (count + page, + itens for planos).
"""

from __future__ import annotations

import re

from django.db import connection
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, viewsets
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.settings import api_settings

from domain_tables.models import TABLES
from pncp.api import filters, selectors, serializers
from pncp.api.openapi import curl, error_response
from pncp.api.renderers import FastJSONRenderer

NUMERO_CONTRATACAO = re.compile(r"[0-9]{14}-1-[0-9]{6}/[0-9]{4}")
NUMERO_CONTRATO = re.compile(r"[0-9]{14}-2-[0-9]{6}/[0-9]{4}")
NUMERO_ATA = re.compile(r"[0-9]{14}-1-[0-9]{6}/[0-9]{4}-[0-9]{6}")
ID_PCA = re.compile(r"[0-9]{14}-0-[0-9]{6}/[0-9]{4}")


def _key(value: str) -> str:
    """A path parameter that contains '/': tolerate a trailing slash."""
    return value.strip().rstrip("/")


def _not_found(what: str, key: str, *, feminine: bool = True) -> NotFound:
    found = "encontrada" if feminine else "encontrado"
    return NotFound(f"{what} {key!r} não {found} no espelho.")


def _path_param(name: str, description: str, example: str, pattern: str) -> OpenApiParameter:
    return OpenApiParameter(
        name,
        OpenApiTypes.STR,
        OpenApiParameter.PATH,
        description=description,
        examples=[OpenApiExample(name, value=example)],
        pattern=pattern,
    )


def _bad_request(path: str, message: str):
    return error_response(400, path=path, message=message)


def _missing(path: str, message: str):
    return error_response(404, path=path, message=message)


LIST_NOTE = (
    "\n\nResposta no envelope de página do PNCP (`data`, `totalRegistros`, `totalPaginas`, "
    "`numeroPagina`, `paginasRestantes`, `empty`); `pagina` ≥ 1, `tamanhoPagina` 1..500 "
    "(padrão 50). Uma página além da última vem vazia, com os totais. Registros com os nomes "
    "de campo e o aninhamento do PNCP, lidos das colunas normalizadas do espelho."
)


class RecordViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """A list of records filtered by the resource's FilterSet."""

    selector = None  # staticmethod: a selector returning the ordered base queryset
    row_shape = None  # rows.RowShape: list pages read as light rows instead of instances
    # records are written by orjson (same output as DRF's JSONRenderer), then the defaults
    renderer_classes = [
        FastJSONRenderer,
        *(r for r in api_settings.DEFAULT_RENDERER_CLASSES if r is not JSONRenderer),
    ]

    def get_queryset(self):
        return self.selector()

    def list(self, request, *args, **kwargs):
        """DRF's list, except that the page goes out as a plain list.

        DRF's ``serializer.data`` keeps the page's rows (``instance``) and records
        (``_data``, and a ``ReturnList`` pointing back at the serializer) on a list serializer
        that sits in a reference cycle with its child: a page of 500 stayed in memory until
        Python's full collection, which then had every such page to walk (up to ~150 ms,
        BENCHMARKS.md). Here the records are built by ``to_representation`` and nothing keeps
        the rows; with ``config.middleware.ReleaseRenderedResponse`` the page is freed when
        its response is.
        """
        if request.query_params.get("q") and connection.vendor == "postgresql":
            selectors.prepare_search_connection()
        if self.paginator is None:  # a subclass without pages: DRF's own list
            return super().list(request, *args, **kwargs)
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        records = self.get_serializer(many=True).to_representation(page)
        return self.get_paginated_response(records)


# --- contratações ----------------------------------------------------------------------------

CONTRATACAO_PATH = "/api/v1/contratacoes/"


COMPRA_SCHEMA = extend_schema(
    operation_id="contratacoes_por_compra",
    tags=["contratações"],
    summary="Uma contratação por CNPJ, ano e sequencial (como o PNCP)",
    description="O mesmo que `/v1/orgaos/{cnpj}/compras/{ano}/{sequencial}` do PNCP: a "
    "contratação do órgão `cnpj` com `anoCompra` e `sequencialCompra`, com suas atas e "
    "contratos." + curl("GET", "/api/v1/orgaos/00394429000100/compras/2026/2346"),
    parameters=[
        OpenApiParameter(
            "cnpj",
            OpenApiTypes.STR,
            OpenApiParameter.PATH,
            description="CNPJ do órgão (14 dígitos).",
            pattern=r"^\d{14}$",
            examples=[OpenApiExample("cnpj", value="00394429000100")],
        ),
        OpenApiParameter(
            "ano",
            OpenApiTypes.INT,
            OpenApiParameter.PATH,
            description="Ano da compra (`anoCompra`).",
            examples=[OpenApiExample("ano", value=2026)],
        ),
        OpenApiParameter(
            "sequencial",
            OpenApiTypes.INT,
            OpenApiParameter.PATH,
            description="Sequencial da compra no PNCP (`sequencialCompra`).",
            examples=[OpenApiExample("sequencial", value=2346)],
        ),
    ],
    responses={
        200: serializers.ContratacaoDetalheSerializer,
        400: _bad_request(
            "/api/v1/orgaos/123/compras/2026/1",
            "cnpj: CNPJ inválido '123', informe os 14 dígitos",
        ),
        404: _missing(
            "/api/v1/orgaos/00394429000100/compras/2026/9999",
            "Contratação '00394429000100/2026/9999' não encontrada no espelho.",
        ),
    },
)


@extend_schema_view(
    list=extend_schema(
        operation_id="contratacoes_listar",
        tags=["contratações"],
        summary="Contratações por período de publicação",
        description="Contratações (editais, avisos, dispensas…) publicadas no PNCP entre "
        "`dataInicial` e `dataFinal` (obrigatórias, AAAAMMDD, até 365 dias), como "
        "`/v1/contratacoes/publicacao` do PNCP, mas com `codigoModalidadeContratacao` "
        "opcional e mais filtros: modo de disputa, situação, instrumento convocatório, amparo "
        "legal, UF, município, órgão, unidade, sistema de origem, SRP, faixa de valor estimado "
        "e busca textual no objeto (`q`)."
        + LIST_NOTE
        + curl(
            "GET",
            f"{CONTRATACAO_PATH}?dataInicial=20250701&dataFinal=20250731"
            "&codigoModalidadeContratacao=6&uf=RS&q=ve%C3%ADculo",
        ),
        responses={
            200: serializers.ContratacaoSerializer(many=True),
            400: _bad_request(
                CONTRATACAO_PATH, "codigoModalidadeContratacao: código 99 desconhecido"
            ),
        },
    ),
    retrieve=extend_schema(
        operation_id="contratacoes_detalhar",
        tags=["contratações"],
        summary="Uma contratação pelo número de controle PNCP",
        description="A contratação com suas atas de registro de preços e seus contratos "
        "(resumos com links). O número de controle contém uma barra: "
        "`33654831000136-1-000001/2023`."
        + curl("GET", f"{CONTRATACAO_PATH}00394429000100-1-002346/2026"),
        parameters=[
            _path_param(
                "numeroControlePNCP",
                "Número de controle PNCP da contratação (`CNPJ-1-sequencial/ano`).",
                "00394429000100-1-002346/2026",
                r"^\d{14}-1-\d{6}/\d{4}$",
            )
        ],
        responses={
            200: serializers.ContratacaoDetalheSerializer,
            404: _missing(
                f"{CONTRATACAO_PATH}00000000000000-1-000001/2025",
                "Contratação '00000000000000-1-000001/2025' não encontrada no espelho.",
            ),
        },
    ),
)
class ContratacaoViewSet(RecordViewSet):
    selector = staticmethod(selectors.contratacao_list)
    row_shape = selectors.CONTRATACAO_ROWS
    serializer_class = serializers.ContratacaoSerializer
    filterset_class = filters.ContratacaoFilterSet

    def _detail(self, request, contratacao):
        context = {
            **self.get_serializer_context(),
            "atas": list(selectors.atas_of_contratacao(contratacao)),
            "contratos": list(selectors.contratos_of_contratacao(contratacao)),
        }
        serializer = serializers.ContratacaoDetalheSerializer(contratacao, context=context)
        return Response(serializer.data)

    def retrieve(self, request, numeroControlePNCP: str):
        key = _key(numeroControlePNCP)
        contratacao = selectors.contratacao_get(key) if NUMERO_CONTRATACAO.fullmatch(key) else None
        if contratacao is None:
            raise _not_found("Contratação", key)
        return self._detail(request, contratacao)

    @COMPRA_SCHEMA
    def compra(self, request, cnpj: str, ano: str, sequencial: str):
        digits = filters.CNPJ_PUNCTUATION.sub("", cnpj)
        if not re.fullmatch(r"[0-9]{14}", digits):
            raise ValidationError({"cnpj": [f"CNPJ inválido '{cnpj}', informe os 14 dígitos"]})
        for name, value in (("ano", ano), ("sequencial", sequencial)):
            if not re.fullmatch(r"[0-9]{1,9}", value):
                raise ValidationError({name: [f"valor inválido '{value}', informe um número"]})
        contratacao = selectors.contratacao_by_compra(digits, int(ano), int(sequencial))
        if contratacao is None:
            raise _not_found("Contratação", f"{digits}/{ano}/{sequencial}")
        return self._detail(request, contratacao)


@extend_schema_view(
    list=extend_schema(
        operation_id="contratacoes_propostas_abertas",
        tags=["contratações"],
        summary="Contratações com recebimento de propostas em aberto",
        description="Como `/v1/contratacoes/proposta` do PNCP: contratações cujo "
        "`dataEncerramentoProposta` é agora ou depois e, com `dataFinal` (hoje ou depois), "
        "até o fim desse dia. Os demais filtros de `/contratacoes/` valem aqui."
        + LIST_NOTE
        + curl(
            "GET",
            f"{CONTRATACAO_PATH}proposta/?dataFinal=20291231&codigoModalidadeContratacao=6",
        ),
        responses={
            200: serializers.ContratacaoSerializer(many=True),
            400: _bad_request(
                f"{CONTRATACAO_PATH}proposta/",
                "dataFinal: Data Final inválida (20200101): deve ser maior ou igual à data atual",
            ),
        },
    )
)
class ContratacaoPropostaViewSet(ContratacaoViewSet):
    filterset_class = filters.ContratacaoPropostaFilterSet


# --- atas ------------------------------------------------------------------------------------

ATA_PATH = "/api/v1/atas/"


@extend_schema_view(
    list=extend_schema(
        operation_id="atas_listar",
        tags=["atas"],
        summary="Atas de registro de preços por período de vigência",
        description="Como `/v1/atas` do PNCP: atas cuja vigência (`vigenciaInicio`.."
        "`vigenciaFim`) cruza o período `dataInicial`..`dataFinal` (obrigatórias, até 365 "
        "dias). Filtros: órgão, unidade, cancelada, busca textual no objeto."
        + LIST_NOTE
        + curl("GET", f"{ATA_PATH}?dataInicial=20250701&dataFinal=20250731&cancelado=false"),
        responses={
            200: serializers.AtaSerializer(many=True),
            400: _bad_request(ATA_PATH, "dataInicial: data inválida '2025-07-01', use AAAAMMDD"),
        },
    ),
    retrieve=extend_schema(
        operation_id="atas_detalhar",
        tags=["atas"],
        summary="Uma ata pelo número de controle PNCP",
        description="A ata, com a sua contratação quando o espelho a tem."
        + curl("GET", f"{ATA_PATH}92324706000127-1-000203/2023-000002"),
        parameters=[
            _path_param(
                "numeroControlePNCPAta",
                "Número de controle PNCP da ata (`<contratação>-sequencial`).",
                "92324706000127-1-000203/2023-000002",
                r"^\d{14}-1-\d{6}/\d{4}-\d{6}$",
            )
        ],
        responses={
            200: serializers.AtaDetalheSerializer,
            404: _missing(
                f"{ATA_PATH}00000000000000-1-000001/2025-000001",
                "Ata '00000000000000-1-000001/2025-000001' não encontrada no espelho.",
            ),
        },
    ),
)
class AtaViewSet(RecordViewSet):
    selector = staticmethod(selectors.ata_list)
    row_shape = selectors.ATA_ROWS
    serializer_class = serializers.AtaSerializer
    filterset_class = filters.AtaFilterSet

    def retrieve(self, request, numeroControlePNCPAta: str):
        key = _key(numeroControlePNCPAta)
        ata = selectors.ata_get(key) if NUMERO_ATA.fullmatch(key) else None
        if ata is None:
            raise _not_found("Ata", key)
        context = {
            **self.get_serializer_context(),
            "contratacao": selectors.contratacao_get(ata.numero_controle_pncp_compra),
        }
        return Response(serializers.AtaDetalheSerializer(ata, context=context).data)


@extend_schema_view(
    list=extend_schema(
        operation_id="atas_por_atualizacao",
        tags=["atas"],
        summary="Atas atualizadas no período",
        description="Como `/v1/atas/atualizacao` do PNCP: atas com `dataAtualizacaoGlobal` "
        "entre `dataInicial` e `dataFinal` (obrigatórias, até 365 dias); para incrementos."
        + LIST_NOTE
        + curl("GET", f"{ATA_PATH}atualizacao/?dataInicial=20250701&dataFinal=20250707"),
        responses={
            200: serializers.AtaSerializer(many=True),
            400: _bad_request(
                f"{ATA_PATH}atualizacao/",
                "dataFinal: período de 20240101 a 20250701 maior que 365 dias; divida a consulta "
                "em janelas de até 365 dias",
            ),
        },
    )
)
class AtaAtualizacaoViewSet(AtaViewSet):
    filterset_class = filters.AtaAtualizacaoFilterSet


# --- contratos -------------------------------------------------------------------------------

CONTRATO_PATH = "/api/v1/contratos/"


@extend_schema_view(
    list=extend_schema(
        operation_id="contratos_listar",
        tags=["contratos"],
        summary="Contratos e empenhos por período de publicação",
        description="Como `/v1/contratos` do PNCP: contratos publicados entre `dataInicial` e "
        "`dataFinal` (obrigatórias, até 365 dias). Filtros: órgão (`cnpjOrgao`), unidade, "
        "sistema de origem (`usuarioId`), fornecedor (`niFornecedor`), tipo de contrato, "
        "categoria do processo, vigência que cruza `vigenciaInicial`..`vigenciaFinal`, busca "
        "textual no objeto."
        + LIST_NOTE
        + curl(
            "GET",
            f"{CONTRATO_PATH}?dataInicial=20250701&dataFinal=20250731&niFornecedor=35377598000117",
        ),
        responses={
            200: serializers.ContratoSerializer(many=True),
            400: _bad_request(
                CONTRATO_PATH,
                "cnpjOrgao: CNPJ inválido '123', informe os 14 dígitos",
            ),
        },
    ),
    retrieve=extend_schema(
        operation_id="contratos_detalhar",
        tags=["contratos"],
        summary="Um contrato pelo número de controle PNCP",
        description="O contrato com a sua contratação (`numeroControlePncpCompra`) quando o "
        "espelho a tem." + curl("GET", f"{CONTRATO_PATH}00394460005887-2-002468/2025"),
        parameters=[
            _path_param(
                "numeroControlePNCP",
                "Número de controle PNCP do contrato (`CNPJ-2-sequencial/ano`).",
                "00394460005887-2-002468/2025",
                r"^\d{14}-2-\d{6}/\d{4}$",
            )
        ],
        responses={
            200: serializers.ContratoDetalheSerializer,
            404: _missing(
                f"{CONTRATO_PATH}00000000000000-2-000001/2025",
                "Contrato '00000000000000-2-000001/2025' não encontrado no espelho.",
            ),
        },
    ),
)
class ContratoViewSet(RecordViewSet):
    selector = staticmethod(selectors.contrato_list)
    row_shape = selectors.CONTRATO_ROWS
    serializer_class = serializers.ContratoSerializer
    filterset_class = filters.ContratoFilterSet

    def retrieve(self, request, numeroControlePNCP: str):
        key = _key(numeroControlePNCP)
        contrato = selectors.contrato_get(key) if NUMERO_CONTRATO.fullmatch(key) else None
        if contrato is None:
            raise _not_found("Contrato", key, feminine=False)
        compra = contrato.numero_controle_pncp_compra
        context = {
            **self.get_serializer_context(),
            "contratacao": selectors.contratacao_get(compra) if compra else None,
        }
        return Response(serializers.ContratoDetalheSerializer(contrato, context=context).data)


# --- PCA -------------------------------------------------------------------------------------

PCA_PATH = "/api/v1/pca/"


@extend_schema_view(
    list=extend_schema(
        operation_id="pca_itens_listar",
        tags=["pca"],
        summary="Itens dos planos de contratações anuais (PCA)",
        description="Os itens dos PCAs de `anoPca` (obrigatório) com ao menos um destes "
        "filtros, como no PNCP: `idUsuario` (`/v1/pca/usuario`), `codigoClassificacaoSuperior` "
        "(`/v1/pca/`), `cnpj` ou `codigoUnidade`. Também: categoria do item e busca textual na "
        "descrição. Cada item traz a identificação do seu plano."
        + LIST_NOTE
        + curl("GET", f"{PCA_PATH}?anoPca=2025&codigoClassificacaoSuperior=7110"),
        responses={
            200: serializers.ItemPCASerializer(many=True),
            400: _bad_request(
                PCA_PATH,
                "informe, além de anoPca, um destes filtros: idUsuario, "
                "codigoClassificacaoSuperior, cnpj ou codigoUnidade (como no PNCP)",
            ),
        },
    )
)
class ItemPCAViewSet(RecordViewSet):
    selector = staticmethod(selectors.item_pca_queryset)
    serializer_class = serializers.ItemPCASerializer
    filterset_class = filters.ItemPCAFilterSet


@extend_schema_view(
    list=extend_schema(
        operation_id="pca_planos_listar",
        tags=["pca"],
        summary="Planos de contratações anuais com seus itens",
        description="Planos (um por unidade e ano) com a lista de itens, como os registros de "
        "`/v1/pca/*` do PNCP. Informe `dataInicio` e `dataFim` (última atualização, como "
        "`/v1/pca/atualizacao`) ou `anoPca` com `idUsuario`, `cnpj` ou `codigoUnidade`."
        + LIST_NOTE
        + curl("GET", f"{PCA_PATH}planos/?anoPca=2025&cnpj=47015532000166"),
        responses={
            200: serializers.PlanoContratacaoSerializer(many=True),
            400: _bad_request(
                f"{PCA_PATH}planos/",
                "informe dataInicio e dataFim, ou anoPca com idUsuario, cnpj ou codigoUnidade "
                "(como no PNCP)",
            ),
        },
    ),
    retrieve=extend_schema(
        operation_id="pca_planos_detalhar",
        tags=["pca"],
        summary="Um plano pelo seu id PNCP",
        description="O plano com seus itens. O id contém uma barra: "
        "`47015532000166-0-000002/2025`."
        + curl("GET", f"{PCA_PATH}planos/47015532000166-0-000002/2025"),
        parameters=[
            _path_param(
                "idPcaPncp",
                "Id PNCP do plano (`CNPJ-0-sequencial/ano`).",
                "47015532000166-0-000002/2025",
                r"^\d{14}-0-\d{6}/\d{4}$",
            )
        ],
        responses={
            200: serializers.PlanoContratacaoSerializer,
            404: _missing(
                f"{PCA_PATH}planos/00000000000000-0-000001/2025",
                "Plano '00000000000000-0-000001/2025' não encontrado no espelho.",
            ),
        },
    ),
)
class PlanoContratacaoViewSet(RecordViewSet):
    selector = staticmethod(selectors.plano_queryset)
    serializer_class = serializers.PlanoContratacaoSerializer
    filterset_class = filters.PlanoContratacaoFilterSet

    def retrieve(self, request, idPcaPncp: str):
        key = _key(idPcaPncp)
        plano = selectors.plano_get(key) if ID_PCA.fullmatch(key) else None
        if plano is None:
            raise _not_found("Plano", key, feminine=False)
        return Response(self.get_serializer(plano).data)


# --- domain tables ---------------------------------------------------------------------------

DOMINIO_PATH = "/api/v1/dominios/"


@extend_schema_view(
    list=extend_schema(
        operation_id="dominios_listar",
        tags=["domínios"],
        summary="As tabelas de domínio do PNCP",
        description="Cada tabela com sua chave, nome, quantidade de códigos e o endereço dos "
        "seus códigos. Lista curta e fixa: sem paginação." + curl("GET", DOMINIO_PATH),
        responses={200: serializers.DominioTabelaSerializer(many=True)},
    ),
    retrieve=extend_schema(
        operation_id="dominios_codigos",
        tags=["domínios"],
        summary="Os códigos de uma tabela de domínio",
        description="Todos os códigos da tabela, em ordem (sem paginação: a maior tem poucas "
        "centenas). `novoEmImportacao` marca códigos que o PNCP enviou e a tabela não tinha."
        + curl("GET", f"{DOMINIO_PATH}modalidade_contratacao/"),
        parameters=[
            OpenApiParameter(
                "table",
                OpenApiTypes.STR,
                OpenApiParameter.PATH,
                description="Chave da tabela (veja `/api/v1/dominios/`).",
                enum=sorted(TABLES),
                examples=[OpenApiExample("table", value="modalidade_contratacao")],
            )
        ],
        responses={
            200: serializers.DominioCodigoSerializer(many=True),
            404: _missing(
                f"{DOMINIO_PATH}xyz/",
                "Tabela de domínio 'xyz' desconhecida; veja /api/v1/dominios/.",
            ),
        },
    ),
)
class DominioViewSet(viewsets.ViewSet):
    pagination_class = None

    def list(self, request):
        tables = selectors.domain_tables_summary()
        for table in tables:
            table["url"] = reverse(
                "api:dominio-detail", kwargs={"table": table["key"]}, request=request
            )
        return Response(serializers.DominioTabelaSerializer(tables, many=True).data)

    def retrieve(self, request, table: str):
        if table not in TABLES:
            raise NotFound(f"Tabela de domínio {table!r} desconhecida; veja /api/v1/dominios/.")
        rows = selectors.domain_codes(table)
        return Response(serializers.DominioCodigoSerializer(rows, many=True).data)
