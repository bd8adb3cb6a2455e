"""Operator endpoints: sync runs, the coverage map and the quarantine.

Read-only, operators only (consumers get 403, anonymous 401), paged with PNCP's envelope and
camelCase like the records API. Querysets are built by the ``*_queryset`` selectors here, each
one ordered (stable pages) with every relation a serializer reads already joined, so a page
costs a fixed number of queries whatever its size.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, datetime

import django_filters
from django import forms
from django.db.models import Count, QuerySet
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import mixins, serializers, viewsets
from rest_framework.response import Response

from accounts.permissions import IsOperator
from pncp.api.openapi import curl, error_response, error_responses
from pncp.models import Coverage, RejectedRecord, SyncCheckpoint, SyncRun

# --- selectors ------------------------------------------------------------------------------


def sync_run_queryset() -> QuerySet[SyncRun]:
    return SyncRun.objects.select_related("started_by").order_by("-created_at", "-id")


def checkpoint_summaries(run_ids: Iterable[int]) -> dict[int, dict[str, int]]:
    """Checkpoints per status of each run, in one grouped query."""
    run_ids = list(run_ids)
    summaries = {run_id: _empty_summary() for run_id in run_ids}
    if not run_ids:
        return summaries
    rows = (
        SyncCheckpoint.objects.filter(run_id__in=run_ids)
        .order_by()
        .values_list("run_id", "status")
        .annotate(n=Count("id"))
    )
    for run_id, status, n in rows:
        summary = summaries[run_id]
        summary["total"] += n
        if status in summary:
            summary[status] += n
    return summaries


def _empty_summary() -> dict[str, int]:
    return {"total": 0, **{status: 0 for status in SyncCheckpoint.Status.values}}


PROBLEM_CHECKPOINTS_SHOWN = 100


def problem_checkpoints(run_id: int) -> list[SyncCheckpoint]:
    """The windows of a run that did not end done (failed first), at most 100."""
    return list(
        SyncCheckpoint.objects.filter(
            run_id=run_id,
            status__in=[SyncCheckpoint.Status.FAILED, SyncCheckpoint.Status.INCOMPLETE],
        )
        .only(
            "id",
            "resource",
            "endpoint",
            "key",
            "window_start",
            "window_end",
            "status",
            "fetched",
            "total_registros",
            "attempts",
            "error",
        )
        .order_by("status", "window_start", "key")[:PROBLEM_CHECKPOINTS_SHOWN]
    )


def coverage_queryset() -> QuerySet[Coverage]:
    return Coverage.objects.order_by("-day", "resource", "endpoint", "modalidade", "day_end", "id")


def quarantine_queryset() -> QuerySet[RejectedRecord]:
    return RejectedRecord.objects.order_by("-created_at", "-id")


# --- filters --------------------------------------------------------------------------------


class AAAAMMDDField(forms.CharField):
    """A day written as PNCP writes it in query strings: AAAAMMDD."""

    def to_python(self, value) -> date | None:
        value = super().to_python(value)
        if not value:
            return None
        if not re.fullmatch(r"\d{8}", value):
            # the input goes in params, never in the message: django-filter %-formats it
            raise forms.ValidationError(
                "Use o formato AAAAMMDD, recebido %(value)r.", params={"value": value}
            )
        try:
            return datetime.strptime(value, "%Y%m%d").date()
        except ValueError:
            raise forms.ValidationError(
                "%(value)s não é uma data válida.", params={"value": value}
            ) from None


class AAAAMMDDFilter(django_filters.Filter):
    field_class = AAAAMMDDField


class IntegerFilter(django_filters.Filter):
    field_class = forms.IntegerField


def documented(filter_field: django_filters.Filter, **schema) -> django_filters.Filter:
    """Attach the OpenAPI schema (type, format, example, description) of a query parameter."""
    return extend_schema_field(schema)(filter_field)


def _choices_text(choices) -> str:
    return ", ".join(f"`{value}` ({label})" for value, label in choices)


class SyncRunFilter(django_filters.FilterSet):
    status = documented(
        django_filters.ChoiceFilter(choices=SyncRun.Status.choices),
        type="string",
        enum=SyncRun.Status.values,
        example="partial",
        description="Situação da execução: " + _choices_text(SyncRun.Status.choices) + ".",
    )
    trigger = documented(
        django_filters.ChoiceFilter(choices=SyncRun.Trigger.choices),
        type="string",
        enum=SyncRun.Trigger.values,
        example="beat",
        description="Quem iniciou: " + _choices_text(SyncRun.Trigger.choices) + ".",
    )
    mode = documented(
        django_filters.CharFilter(max_length=20),
        type="string",
        maxLength=20,
        example="incremental",
        description="Modo da execução (full, incremental, from_dir, …).",
    )

    class Meta:
        model = SyncRun
        fields = ["status", "trigger", "mode"]


class CoverageForm(forms.Form):
    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("dataInicial"), cleaned.get("dataFinal")
        if start and end and start > end:
            raise forms.ValidationError(
                "dataInicial (%(start)s) é posterior a dataFinal (%(end)s).",
                params={"start": f"{start:%Y%m%d}", "end": f"{end:%Y%m%d}"},
            )
        return cleaned


class CoverageFilter(django_filters.FilterSet):
    resource = documented(
        django_filters.CharFilter(max_length=20),
        type="string",
        maxLength=20,
        example="contratacoes",
        description="Recurso: pca, contratacoes, atas, contratos…",
    )
    endpoint = documented(
        django_filters.CharFilter(max_length=80),
        type="string",
        maxLength=80,
        example="/v1/contratacoes/publicacao",
        description="Caminho do endpoint do PNCP consultado.",
    )
    status = documented(
        django_filters.ChoiceFilter(choices=Coverage.Status.choices),
        type="string",
        enum=Coverage.Status.values,
        example="partial",
        description="Situação da janela: " + _choices_text(Coverage.Status.choices) + ".",
    )
    dataInicial = documented(
        AAAAMMDDFilter(field_name="day_end", lookup_expr="gte"),
        type="string",
        pattern=r"^\d{8}$",
        example="20240101",
        description="Janelas que terminam neste dia ou depois (AAAAMMDD).",
    )
    dataFinal = documented(
        AAAAMMDDFilter(field_name="day", lookup_expr="lte"),
        type="string",
        pattern=r"^\d{8}$",
        example="20240131",
        description="Janelas que começam neste dia ou antes (AAAAMMDD).",
    )
    modalidade = documented(
        IntegerFilter(field_name="modalidade", min_value=0, max_value=32767),
        type="integer",
        minimum=0,
        maximum=32767,
        example=6,
        description="Código da modalidade de contratação (0 nos endpoints sem modalidade).",
    )

    class Meta:
        model = Coverage
        fields = ["resource", "endpoint", "status", "dataInicial", "dataFinal", "modalidade"]
        form = CoverageForm


class QuarantineFilter(django_filters.FilterSet):
    resource = documented(
        django_filters.CharFilter(max_length=20),
        type="string",
        maxLength=20,
        example="contratos",
        description="Recurso do registro rejeitado: pca, contratacoes, atas, contratos…",
    )
    resolved = documented(
        django_filters.BooleanFilter(field_name="resolved_at", lookup_expr="isnull", exclude=True),
        type="boolean",
        example=False,
        description="true: só os já resolvidos; false: só os pendentes.",
    )
    naturalKey = documented(
        django_filters.CharFilter(field_name="natural_key", max_length=80),
        type="string",
        maxLength=80,
        example="00394460005887-2-000123/2024",
        description="Chave natural do registro (numeroControlePNCP, …).",
    )
    syncRun = documented(
        IntegerFilter(field_name="sync_run", min_value=1, max_value=2**63 - 1),
        type="integer",
        minimum=1,
        example=42,
        description="Execução que rejeitou o registro.",
    )

    class Meta:
        model = RejectedRecord
        fields = ["resource", "resolved", "naturalKey", "syncRun"]


# --- serializers ----------------------------------------------------------------------------


class CheckpointSummarySerializer(serializers.Serializer):
    total = serializers.IntegerField(help_text="Janelas planejadas.")
    done = serializers.IntegerField(help_text="Concluídas (tudo o que o PNCP anunciou).")
    failed = serializers.IntegerField(help_text="Falharam.")
    incomplete = serializers.IntegerField(help_text="Terminaram com menos que o anunciado.")
    pending = serializers.IntegerField(help_text="Ainda não começaram.")
    running = serializers.IntegerField(help_text="Em andamento.")


class ProblemCheckpointSerializer(serializers.ModelSerializer):
    dataInicial = serializers.DateField(source="window_start", allow_null=True)
    dataFinal = serializers.DateField(source="window_end", allow_null=True)
    totalRegistros = serializers.IntegerField(source="total_registros", allow_null=True)

    class Meta:
        model = SyncCheckpoint
        fields = [
            "id",
            "resource",
            "endpoint",
            "key",
            "dataInicial",
            "dataFinal",
            "status",
            "fetched",
            "totalRegistros",
            "attempts",
            "error",
        ]


class SyncRunSerializer(serializers.ModelSerializer):
    startedBy = serializers.CharField(
        source="started_by.username",
        allow_null=True,
        default=None,
        help_text="Usuário que iniciou, quando foi pela API ou pelo admin.",
    )
    createdAt = serializers.DateTimeField(source="created_at")
    startedAt = serializers.DateTimeField(source="started_at", allow_null=True)
    finishedAt = serializers.DateTimeField(source="finished_at", allow_null=True)
    heartbeatAt = serializers.DateTimeField(
        source="heartbeat_at", allow_null=True, help_text="Último sinal de vida do importador."
    )
    resumedFrom = serializers.IntegerField(
        source="resumed_from_id", allow_null=True, help_text="Execução que esta retomou."
    )
    resources = serializers.ListField(child=serializers.CharField(), help_text="Recursos.")
    params = serializers.DictField(help_text="Parâmetros da execução (período, filtros…).")
    checkpoints = serializers.SerializerMethodField(help_text="Janelas por situação.")

    class Meta:
        model = SyncRun
        fields = [
            "id",
            "status",
            "mode",
            "trigger",
            "resources",
            "params",
            "startedBy",
            "createdAt",
            "startedAt",
            "finishedAt",
            "heartbeatAt",
            "resumedFrom",
            "pages",
            "created",
            "updated",
            "unchanged",
            "rejected",
            "retries",
            "checkpoints",
        ]
        read_only_fields = fields

    @extend_schema_field(CheckpointSummarySerializer)
    def get_checkpoints(self, run: SyncRun) -> dict:
        return self.context["checkpoints"].get(run.pk) or _empty_summary()


class SyncRunDetailSerializer(SyncRunSerializer):
    errors = serializers.ListField(
        child=serializers.CharField(), help_text="Erros registrados (os 500 mais recentes)."
    )
    problemCheckpoints = serializers.SerializerMethodField(
        help_text=f"Janelas que falharam ou ficaram incompletas (até {PROBLEM_CHECKPOINTS_SHOWN})."
    )

    class Meta(SyncRunSerializer.Meta):
        fields = [*SyncRunSerializer.Meta.fields, "errors", "problemCheckpoints"]
        read_only_fields = fields

    @extend_schema_field(ProblemCheckpointSerializer(many=True))
    def get_problemCheckpoints(self, run: SyncRun) -> list:
        return ProblemCheckpointSerializer(problem_checkpoints(run.pk), many=True).data


class CoverageSerializer(serializers.ModelSerializer):
    dataInicial = serializers.DateField(source="day", help_text="Primeiro dia da janela.")
    dataFinal = serializers.DateField(source="day_end", help_text="Último dia da janela.")
    totalRegistros = serializers.IntegerField(
        source="total_registros", allow_null=True, help_text="O que o PNCP anunciou."
    )
    fetched = serializers.IntegerField(help_text="O que baixamos.")
    missing = serializers.SerializerMethodField(help_text="Anunciados e não baixados.")
    checkedAt = serializers.DateTimeField(source="checked_at")
    syncRun = serializers.IntegerField(source="run_id", allow_null=True)

    class Meta:
        model = Coverage
        fields = [
            "id",
            "resource",
            "endpoint",
            "dataInicial",
            "dataFinal",
            "modalidade",
            "status",
            "totalRegistros",
            "fetched",
            "missing",
            "checkedAt",
            "syncRun",
        ]
        read_only_fields = fields

    def get_missing(self, coverage: Coverage) -> int | None:
        if coverage.total_registros is None:
            return None
        return max(coverage.total_registros - coverage.fetched, 0)


class QuarantineRecordSerializer(serializers.ModelSerializer):
    naturalKey = serializers.CharField(source="natural_key")
    syncRun = serializers.IntegerField(source="sync_run_id", allow_null=True)
    createdAt = serializers.DateTimeField(source="created_at")
    resolvedAt = serializers.DateTimeField(source="resolved_at", allow_null=True)
    resolved = serializers.SerializerMethodField()
    source = serializers.CharField(help_text="De onde veio (janela e página, ou arquivo).")
    reason = serializers.CharField(help_text="Por que foi rejeitado.")

    class Meta:
        model = RejectedRecord
        fields = [
            "id",
            "resource",
            "naturalKey",
            "reason",
            "source",
            "syncRun",
            "createdAt",
            "attempts",
            "resolved",
            "resolvedAt",
        ]
        read_only_fields = fields

    def get_resolved(self, record: RejectedRecord) -> bool:
        return record.resolved_at is not None


class QuarantineRecordDetailSerializer(QuarantineRecordSerializer):
    payload = serializers.JSONField(help_text="O registro exatamente como o PNCP enviou.")

    class Meta(QuarantineRecordSerializer.Meta):
        fields = [*QuarantineRecordSerializer.Meta.fields, "payload"]
        read_only_fields = fields


# --- views ----------------------------------------------------------------------------------

ID_PARAMETER = OpenApiParameter(
    "id",
    {"type": "integer", "minimum": 1, "example": 42},
    OpenApiParameter.PATH,
    description="Identificador.",
)
OPERATOR_ONLY = (
    "Apenas operadores podem acessar execuções de sincronização, cobertura e quarentena."
)


def list_errors(path: str) -> dict:
    errors = error_responses(400, 401, 429, path=path)
    errors[403] = error_response(403, path=path, message=OPERATOR_ONLY)
    return errors


def detail_errors(path: str) -> dict:
    errors = error_responses(401, 404, 429, path=path)
    errors[403] = error_response(403, path=path, message=OPERATOR_ONLY)
    return errors


def page_of(serializer, description: str, name: str, record: dict) -> OpenApiResponse:
    """A paged list response; spectacular wraps the example record in the PNCP envelope."""
    return OpenApiResponse(
        serializer(many=True),
        description,
        examples=[OpenApiExample(name, value=record, response_only=True)],
    )


SYNC_RUN_EXAMPLE = {
    "id": 42,
    "status": "partial",
    "mode": "incremental",
    "trigger": "beat",
    "resources": ["contratacoes"],
    "params": {"desde": "2024-01-01", "ate": "2024-01-31"},
    "startedBy": None,
    "createdAt": "2024-02-01T03:00:00-03:00",
    "startedAt": "2024-02-01T03:00:01-03:00",
    "finishedAt": "2024-02-01T03:41:12-03:00",
    "heartbeatAt": "2024-02-01T03:41:10-03:00",
    "resumedFrom": None,
    "pages": 812,
    "created": 39120,
    "updated": 611,
    "unchanged": 80,
    "rejected": 2,
    "retries": 17,
    "checkpoints": {
        "total": 496,
        "done": 495,
        "failed": 1,
        "incomplete": 0,
        "pending": 0,
        "running": 0,
    },
}
COVERAGE_EXAMPLE = {
    "id": 9001,
    "resource": "contratacoes",
    "endpoint": "/v1/contratacoes/publicacao",
    "dataInicial": "2024-01-15",
    "dataFinal": "2024-01-15",
    "modalidade": 6,
    "status": "partial",
    "totalRegistros": 1520,
    "fetched": 1500,
    "missing": 20,
    "checkedAt": "2024-02-01T03:12:44-03:00",
    "syncRun": 42,
}
QUARANTINE_EXAMPLE = {
    "id": 7,
    "resource": "contratos",
    "naturalKey": "00394460005887-2-000123/2024",
    "reason": "dataAssinatura: data inválida '2024-02-30'",
    "source": "contratos:2024-01-15 p3",
    "syncRun": 42,
    "createdAt": "2024-02-01T03:20:00-03:00",
    "attempts": 1,
    "resolved": False,
    "resolvedAt": None,
}


class OperatorViewSet(viewsets.ReadOnlyModelViewSet):
    permission_classes = [IsOperator]
    # any segment reaches the view, so a bad id is a 404 in the API's error shape
    lookup_value_regex = "[^/]+"


@extend_schema_view(
    list=extend_schema(
        tags=["operações"],
        operation_id="sync_runs_list",
        summary="Listar execuções de sincronização",
        description="As execuções do importador, das mais recentes para as mais antigas, com "
        "contagens (criados, atualizados, inalterados, rejeitados), parâmetros e o resumo das "
        "janelas por situação. Só operadores."
        + curl("GET", "/api/v1/sync-runs/?status=partial&pagina=1&tamanhoPagina=20"),
        responses={
            200: page_of(
                SyncRunSerializer, "Uma página de execuções.", "execução", SYNC_RUN_EXAMPLE
            ),
            **list_errors("/api/v1/sync-runs/"),
        },
    ),
    retrieve=extend_schema(
        tags=["operações"],
        operation_id="sync_runs_retrieve",
        summary="Detalhar uma execução de sincronização",
        description="Uma execução com seus erros e as janelas que falharam ou ficaram "
        "incompletas. Só operadores." + curl("GET", "/api/v1/sync-runs/42/"),
        parameters=[ID_PARAMETER],
        responses={
            200: OpenApiResponse(
                SyncRunDetailSerializer,
                "A execução.",
                examples=[
                    OpenApiExample(
                        "execução parcial",
                        value={
                            **SYNC_RUN_EXAMPLE,
                            "errors": ["contratacoes:2024-01-15:m6: failed: PNCP 503"],
                            "problemCheckpoints": [
                                {
                                    "id": 3150,
                                    "resource": "contratacoes",
                                    "endpoint": "/v1/contratacoes/publicacao",
                                    "key": "contratacoes:2024-01-15:m6",
                                    "dataInicial": "2024-01-15",
                                    "dataFinal": "2024-01-15",
                                    "status": "failed",
                                    "fetched": 1500,
                                    "totalRegistros": 1520,
                                    "attempts": 3,
                                    "error": "PNCP 503",
                                }
                            ],
                        },
                    )
                ],
            ),
            **detail_errors("/api/v1/sync-runs/42/"),
        },
    ),
)
class SyncRunViewSet(OperatorViewSet):
    filterset_class = SyncRunFilter

    def get_queryset(self):
        queryset = sync_run_queryset()
        if self.action == "list":
            queryset = queryset.defer("errors")
        return queryset

    def get_serializer_class(self):
        return SyncRunDetailSerializer if self.action == "retrieve" else SyncRunSerializer

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        context = {
            **self.get_serializer_context(),
            "checkpoints": checkpoint_summaries(run.pk for run in page),
        }
        data = SyncRunSerializer(page, many=True, context=context).data
        return self.get_paginated_response(data)

    def retrieve(self, request, *args, **kwargs):
        run = self.get_object()
        context = {**self.get_serializer_context(), "checkpoints": checkpoint_summaries([run.pk])}
        return Response(SyncRunDetailSerializer(run, context=context).data)


@extend_schema_view(
    list=extend_schema(
        tags=["operações"],
        operation_id="coverage_list",
        summary="Mapa de cobertura",
        description="Por recurso × dia (× modalidade nas contratações): quantos registros o "
        "PNCP anunciou (`totalRegistros`) e quantos baixamos (`fetched`), para ver que nada "
        "foi truncado em silêncio. `dataInicial`/`dataFinal` (AAAAMMDD) selecionam as janelas "
        "que cruzam o período. Só operadores."
        + curl(
            "GET",
            "/api/v1/coverage/?resource=contratacoes&status=partial"
            "&dataInicial=20240101&dataFinal=20240131",
        ),
        responses={
            200: page_of(
                CoverageSerializer, "Uma página do mapa de cobertura.", "janela", COVERAGE_EXAMPLE
            ),
            **list_errors("/api/v1/coverage/"),
        },
    ),
)
class CoverageViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """List only: a window is identified by its filters, not by an id worth linking to."""

    permission_classes = [IsOperator]
    serializer_class = CoverageSerializer
    filterset_class = CoverageFilter

    def get_queryset(self):
        return coverage_queryset()


@extend_schema_view(
    list=extend_schema(
        tags=["operações"],
        operation_id="quarantine_list",
        summary="Listar a quarentena",
        description="Registros que o PNCP enviou e não pudemos importar, com o motivo; o "
        "conteúdo enviado está no detalhe. Só operadores."
        + curl("GET", "/api/v1/quarantine/?resource=contratos&resolved=false"),
        responses={
            200: page_of(
                QuarantineRecordSerializer,
                "Uma página da quarentena.",
                "registro rejeitado",
                QUARANTINE_EXAMPLE,
            ),
            **list_errors("/api/v1/quarantine/"),
        },
    ),
    retrieve=extend_schema(
        tags=["operações"],
        operation_id="quarantine_retrieve",
        summary="Detalhar um registro em quarentena",
        description="O registro rejeitado, com o motivo e o conteúdo exatamente como o PNCP o "
        "enviou. Só operadores." + curl("GET", "/api/v1/quarantine/7/"),
        parameters=[ID_PARAMETER],
        responses={
            200: OpenApiResponse(
                QuarantineRecordDetailSerializer,
                "O registro rejeitado.",
                examples=[
                    OpenApiExample(
                        "contrato com data inválida",
                        value={
                            **QUARANTINE_EXAMPLE,
                            "payload": {
                                "numeroControlePNCP": "00394460005887-2-000123/2024",
                                "dataAssinatura": "2024-02-30",
                            },
                        },
                    )
                ],
            ),
            **detail_errors("/api/v1/quarantine/7/"),
        },
    ),
)
class QuarantineViewSet(OperatorViewSet):
    filterset_class = QuarantineFilter

    def get_queryset(self):
        queryset = quarantine_queryset()
        if self.action == "list":
            queryset = queryset.defer("payload")
        return queryset

    def get_serializer_class(self):
        if self.action == "retrieve":
            return QuarantineRecordDetailSerializer
        return QuarantineRecordSerializer
