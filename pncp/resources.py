"""One declarative spec per PNCP Consulta endpoint we mirror.

Adding an endpoint is adding a spec, not copying a loop: ``pncp.sync`` plans windows, pages
and modalidades from these fields alone. Page-size maxima are PNCP's current ones (the
contratações maximum fell from 500 to 50 in February 2026); each can be overridden by the
setting ``PNCP_PAGE_SIZES`` (``{"contratacoes.publicacao": 50}``) and the sync shrinks it
by itself when PNCP answers that a page is too large.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings


@dataclass(frozen=True)
class EndpointSpec:
    name: str
    resource: str  # the ingest spec it feeds (pncp.ingest.SPECS)
    path: str
    page_size_max: int
    # Query parameter names of the window, or None for endpoints without a date window.
    date_params: tuple[str, str] | None = ("dataInicial", "dataFinal")
    # Longest window PNCP accepts (365 days) and the one we use by default: single days give
    # a per-day coverage map and small, restartable windows.
    max_window_days: int = 365
    default_window_days: int = 1
    modalidade: str = "none"  # "required" (iterate every code), "optional", "none"
    # Our filter names -> PNCP's parameter names (they differ between resources).
    filters: dict[str, str] = field(default_factory=dict)
    required: tuple[str, ...] = ()  # non-date parameters PNCP requires
    incremental: bool = False  # an /atualizacao endpoint, used by --incremental
    unpaged: bool = False
    # Columns known from the query rather than the record (``idUsuario`` -> id_usuario).
    extra_from_params: dict[str, str] = field(default_factory=dict)

    @property
    def page_size(self) -> int:
        configured = getattr(settings, "PNCP_PAGE_SIZES", {}) or {}
        return int(configured.get(self.name, self.page_size_max))


CONTRATACAO_FILTERS = {
    "uf": "uf",
    "municipio": "codigoMunicipioIbge",
    "cnpj": "cnpj",
    "unidade": "codigoUnidadeAdministrativa",
    "id_usuario": "idUsuario",
    "modo_disputa": "codigoModoDisputa",
}
ATA_FILTERS = {"cnpj": "cnpj", "unidade": "codigoUnidadeAdministrativa", "id_usuario": "idUsuario"}
CONTRATO_FILTERS = {
    "cnpj": "cnpjOrgao",
    "unidade": "codigoUnidadeAdministrativa",
    "id_usuario": "usuarioId",
}

ENDPOINTS: dict[str, EndpointSpec] = {
    spec.name: spec
    for spec in (
        EndpointSpec(
            "pca.usuario",
            "pca",
            "/v1/pca/usuario",
            500,
            date_params=None,
            required=("anoPca", "idUsuario"),
            filters={"classificacao": "codigoClassificacaoSuperior", "cnpj": "cnpj"},
            extra_from_params={"idUsuario": "id_usuario"},
        ),
        EndpointSpec(
            "pca.classificacao",
            "pca",
            "/v1/pca/",
            500,
            date_params=None,
            required=("anoPca", "codigoClassificacaoSuperior"),
        ),
        EndpointSpec(
            "pca.atualizacao",
            "pca",
            "/v1/pca/atualizacao",
            500,
            date_params=("dataInicio", "dataFim"),
            filters={"cnpj": "cnpj", "unidade": "codigoUnidade"},
            incremental=True,
        ),
        EndpointSpec(
            "contratacoes.publicacao",
            "contratacoes",
            "/v1/contratacoes/publicacao",
            50,
            modalidade="required",
            filters=CONTRATACAO_FILTERS,
            extra_from_params={"idUsuario": "id_usuario"},
        ),
        EndpointSpec(
            "contratacoes.atualizacao",
            "contratacoes",
            "/v1/contratacoes/atualizacao",
            50,
            modalidade="required",
            filters=CONTRATACAO_FILTERS,
            incremental=True,
            extra_from_params={"idUsuario": "id_usuario"},
        ),
        EndpointSpec(
            "contratacoes.proposta",
            "contratacoes",
            "/v1/contratacoes/proposta",
            50,
            date_params=(None, "dataFinal"),
            modalidade="optional",
            filters={k: v for k, v in CONTRATACAO_FILTERS.items() if k != "modo_disputa"},
        ),
        EndpointSpec(
            "contratacoes.detalhe",
            "contratacoes",
            "/v1/orgaos/{cnpj}/compras/{ano}/{sequencial}",
            1,
            date_params=None,
            unpaged=True,
        ),
        EndpointSpec(
            "atas.vigencia",
            "atas",
            "/v1/atas",
            500,
            filters=ATA_FILTERS,
            # An ata comes back on every day of its vigência: a day-by-day sweep would fetch the
            # same atas hundreds of times, so this endpoint takes the period whole.
            default_window_days=365,
        ),
        EndpointSpec(
            "atas.atualizacao",
            "atas",
            "/v1/atas/atualizacao",
            500,
            filters=ATA_FILTERS,
            incremental=True,
        ),
        EndpointSpec(
            "contratos.publicacao", "contratos", "/v1/contratos", 500, filters=CONTRATO_FILTERS
        ),
        EndpointSpec(
            "contratos.atualizacao",
            "contratos",
            "/v1/contratos/atualizacao",
            500,
            filters=CONTRATO_FILTERS,
            incremental=True,
        ),
    )
}

RESOURCES = ("pca", "contratacoes", "atas", "contratos")
# What `sync_pncp <resource> --desde --ate` uses, and what `--incremental` uses.
DEFAULT_ENDPOINT = {
    "pca": "pca.atualizacao",
    "contratacoes": "contratacoes.publicacao",
    "atas": "atas.vigencia",
    "contratos": "contratos.publicacao",
}
INCREMENTAL_ENDPOINT = {
    "pca": "pca.atualizacao",
    "contratacoes": "contratacoes.atualizacao",
    "atas": "atas.atualizacao",
    "contratos": "contratos.atualizacao",
}

# --- PNCP's main API (``/api/pncp``): sub-resources of a compra and the domain services --------
#
# Paths are those of the main API's OpenAPI document (``/api/pncp/v3/api-docs``). The client
# reaches them through ``PNCPClient.api_base_url`` (PNCP_BASE_URL with ``/api/consulta``
# replaced by ``/api/pncp``, or PNCP_API_BASE_URL). Lists answer a bare JSON array, and 404
# when there is nothing.

ITENS = EndpointSpec(
    "itens",
    "itens",
    "/v1/orgaos/{cnpj}/compras/{ano}/{sequencial}/itens",
    # The OpenAPI document declares no maximum for tamanhoPagina here; 50 is what collectors
    # use without refusals, and the sync shrinks it if PNCP says otherwise.
    50,
    date_params=None,
)
RESULTADOS = EndpointSpec(
    "resultados",
    "resultados",
    "/v1/orgaos/{cnpj}/compras/{ano}/{sequencial}/itens/{numeroItem}/resultados",
    1,
    date_params=None,
    unpaged=True,
)

# Domain table (``domain_tables.models.TABLES`` key) -> the main API's list service. Each
# answers ``[{id, nome, descricao, dataInclusao, dataAtualizacao, statusAtivo}, ...]`` (amparos
# legais add ``tipoAmparoLegal``); without ``statusAtivo`` it lists active and inactive codes.
# The other domain tables (situações, tipos de benefício, poder, esfera, ...) have no service.
DOMAIN_SERVICES: dict[str, str] = {
    "modalidade_contratacao": "/v1/modalidades",
    "modo_disputa": "/v1/modos-disputas",
    "criterio_julgamento": "/v1/criterios-julgamentos",
    "instrumento_convocatorio": "/v1/tipos-instrumentos-convocatorios",
    "amparo_legal": "/v1/amparos-legais",
    "categoria_item_pca": "/v1/categoriaItemPcas",
    "tipo_contrato": "/v1/tipos-contratos",
    "tipo_documento": "/v1/tipos-documentos",
    "porte_empresa": "/v1/portes-empresa",
    "tipo_instrumento_cobranca": "/v1/tipos-instrumentos-cobranca",
}
