"""Record endpoints, included at ``/api/v1/``.

Números de controle contain a '/' (``33654831000136-1-000001/2023``), so detail routes take
a ``path`` converter and the view checks the format (a malformed one is a 404 in the API's
error shape, not Django's HTML page). Fixed routes come before the detail routes they could
be mistaken for (``contratacoes/proposta/`` before ``contratacoes/<numero>``).
"""

from django.urls import path

from pncp.api import views

app_name = "api"

LIST = {"get": "list"}
DETAIL = {"get": "retrieve"}

urlpatterns = [
    path(
        "contratacoes/",
        views.ContratacaoViewSet.as_view(LIST),
        name="contratacao-list",
    ),
    path(
        "contratacoes/proposta/",
        views.ContratacaoPropostaViewSet.as_view(LIST),
        name="contratacao-proposta",
    ),
    path(
        "contratacoes/<path:numeroControlePNCP>",
        views.ContratacaoViewSet.as_view(DETAIL),
        name="contratacao-detail",
    ),
    path(
        "orgaos/<str:cnpj>/compras/<str:ano>/<str:sequencial>",
        views.ContratacaoViewSet.as_view({"get": "compra"}),
        name="contratacao-compra",
    ),
    path("atas/", views.AtaViewSet.as_view(LIST), name="ata-list"),
    path(
        "atas/atualizacao/",
        views.AtaAtualizacaoViewSet.as_view(LIST),
        name="ata-atualizacao",
    ),
    path(
        "atas/<path:numeroControlePNCPAta>",
        views.AtaViewSet.as_view(DETAIL),
        name="ata-detail",
    ),
    path("contratos/", views.ContratoViewSet.as_view(LIST), name="contrato-list"),
    path(
        "contratos/<path:numeroControlePNCP>",
        views.ContratoViewSet.as_view(DETAIL),
        name="contrato-detail",
    ),
    path("pca/", views.ItemPCAViewSet.as_view(LIST), name="itempca-list"),
    path("pca/planos/", views.PlanoContratacaoViewSet.as_view(LIST), name="plano-list"),
    path(
        "pca/planos/<path:idPcaPncp>",
        views.PlanoContratacaoViewSet.as_view(DETAIL),
        name="plano-detail",
    ),
    path("dominios/", views.DominioViewSet.as_view(LIST), name="dominio-list"),
    path("dominios/<str:table>/", views.DominioViewSet.as_view(DETAIL), name="dominio-detail"),
]
