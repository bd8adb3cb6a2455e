"""Operators start a sync through the API and follow it until it ends.

``POST /api/v1/sync-tasks/`` validates the request like ``sync_pncp`` does, plans the run
(taking the resources' locks: a run already going answers 409 naming it) and enqueues the
Celery chord of window tasks; it answers 202 with the task id. ``GET /api/v1/sync-tasks/{id}/``
reports progress (windows done / total, records, errors) until the run ends. The same
functions as the command and the beat schedule: nothing here moves data itself.
"""

from __future__ import annotations

from django.db.models import Count
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsOperator
from pncp.api.openapi import curl, error_response, error_responses
from pncp.models import SyncCheckpoint, SyncRun
from pncp.resources import ENDPOINTS, RESOURCES
from pncp.sync import SyncInputError, SyncLockedError, SyncOptions, start_run
from pncp.validation import UFS, cnpj_check_digits_ok


class StartSyncSerializer(serializers.Serializer):
    resources = serializers.ListField(
        child=serializers.ChoiceField(choices=[*RESOURCES, "all"]),
        min_length=1,
        help_text="pca, contratacoes, atas, contratos, or all.",
    )
    desde = serializers.DateField(required=False, help_text="First day (YYYY-MM-DD).")
    ate = serializers.DateField(required=False, help_text="Last day (YYYY-MM-DD).")
    incremental = serializers.BooleanField(default=False)
    endpoint = serializers.ChoiceField(choices=sorted(ENDPOINTS), required=False)
    modalidades = serializers.ListField(child=serializers.IntegerField(min_value=1), required=False)
    uf = serializers.CharField(required=False, max_length=2)
    cnpj = serializers.CharField(required=False, max_length=18)

    def validate_uf(self, value: str) -> str:
        if value.upper() not in UFS:
            raise serializers.ValidationError(f"UF desconhecida: {value!r}.")
        return value.upper()

    def validate_cnpj(self, value: str) -> str:
        digits = "".join(c for c in value if c.isdigit())
        if not cnpj_check_digits_ok(digits):
            raise serializers.ValidationError(f"CNPJ malformado: {value!r}.")
        return digits

    def validate(self, attrs):
        if attrs.get("desde") and attrs.get("ate") and attrs["desde"] > attrs["ate"]:
            raise serializers.ValidationError({"desde": "desde é posterior a ate."})
        if "all" in attrs["resources"]:
            attrs["resources"] = list(RESOURCES)
        return attrs

    def to_options(self) -> SyncOptions:
        data = self.validated_data
        filters = {k: data[k] for k in ("uf", "cnpj") if data.get(k)}
        return SyncOptions(
            resources=list(dict.fromkeys(data["resources"])),
            desde=data.get("desde"),
            ate=data.get("ate"),
            incremental=data["incremental"],
            endpoint=data.get("endpoint"),
            modalidades=data.get("modalidades"),
            filters=filters,
            concurrency=1,
        )


def progress_of(run: SyncRun) -> dict:
    counts = dict(
        run.checkpoints.values_list("status").annotate(n=Count("id")).values_list("status", "n")
    )
    total = sum(counts.values())
    done = counts.get(SyncCheckpoint.Status.DONE, 0)
    return {
        "taskId": run.params.get("task_id"),
        "syncRunId": run.pk,
        "status": run.status,
        "finished": run.finished_at is not None,
        "windowsTotal": total,
        "windowsDone": done,
        "windowsFailed": counts.get(SyncCheckpoint.Status.FAILED, 0)
        + counts.get(SyncCheckpoint.Status.INCOMPLETE, 0),
        "records": {
            "created": run.created,
            "updated": run.updated,
            "unchanged": run.unchanged,
            "rejected": run.rejected,
        },
        "pages": run.pages,
        "errors": run.errors[:50],
        "startedAt": run.started_at,
        "finishedAt": run.finished_at,
    }


PROGRESS_SCHEMA = inline_serializer(
    "SyncTaskProgress",
    {
        "taskId": serializers.CharField(),
        "syncRunId": serializers.IntegerField(),
        "status": serializers.ChoiceField(choices=SyncRun.Status.choices),
        "finished": serializers.BooleanField(),
        "windowsTotal": serializers.IntegerField(),
        "windowsDone": serializers.IntegerField(),
        "windowsFailed": serializers.IntegerField(),
        "records": inline_serializer(
            "SyncTaskRecords",
            {
                "created": serializers.IntegerField(),
                "updated": serializers.IntegerField(),
                "unchanged": serializers.IntegerField(),
                "rejected": serializers.IntegerField(),
            },
        ),
        "pages": serializers.IntegerField(),
        "errors": serializers.ListField(child=serializers.CharField()),
        "startedAt": serializers.DateTimeField(allow_null=True),
        "finishedAt": serializers.DateTimeField(allow_null=True),
    },
)
PROGRESS_EXAMPLE = {
    "taskId": "6f1c2d3e-8a9b-4c5d-9e0f-1a2b3c4d5e6f",
    "syncRunId": 42,
    "status": "running",
    "finished": False,
    "windowsTotal": 31,
    "windowsDone": 12,
    "windowsFailed": 0,
    "records": {"created": 10210, "updated": 12, "unchanged": 0, "rejected": 1},
    "pages": 27,
    "errors": [],
    "startedAt": "2025-08-01T10:00:00-03:00",
    "finishedAt": None,
}


class SyncTaskListView(APIView):
    permission_classes = [IsOperator]
    allow_writes = True

    @extend_schema(
        tags=["operações"],
        operation_id="sync_tasks_create",
        summary="Iniciar uma sincronização",
        description=(
            "Valida o pedido como `sync_pncp`, planeja as janelas e enfileira as tarefas Celery "
            "(uma por janela). Responde 202 com o id da tarefa; acompanhe em "
            "`GET /api/v1/sync-tasks/{taskId}/`. Um recurso já em sincronização responde 409.\n\n"
            + curl(
                "POST",
                "/api/v1/sync-tasks/",
                body='{"resources": ["contratos"], "desde": "2025-07-01", "ate": "2025-07-31"}',
            )
        ),
        request=StartSyncSerializer,
        responses={
            202: OpenApiResponse(
                PROGRESS_SCHEMA,
                "Sincronização enfileirada.",
                examples=[OpenApiExample("enfileirada", value=PROGRESS_EXAMPLE)],
            ),
            409: error_response(409, "Recurso já em sincronização.", path="/api/v1/sync-tasks/"),
            **error_responses(400, 401, 403, 429, path="/api/v1/sync-tasks/"),
        },
    )
    def post(self, request):
        from pncp.tasks import fan_out

        serializer = StartSyncSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            run = start_run(serializer.to_options(), trigger=SyncRun.Trigger.API, user=request.user)
        except SyncLockedError as exc:
            return Response(
                {"status": 409, "error": "conflict", "message": str(exc), "path": request.path},
                status=status.HTTP_409_CONFLICT,
            )
        except SyncInputError as exc:
            raise serializers.ValidationError({"detail": str(exc)}) from None
        result = fan_out(run)
        run.params = {**run.params, "task_id": result.id}
        run.save(update_fields=["params"])
        run.refresh_from_db()
        return Response(progress_of(run), status=status.HTTP_202_ACCEPTED)


class SyncTaskDetailView(APIView):
    permission_classes = [IsOperator]

    @extend_schema(
        tags=["operações"],
        operation_id="sync_tasks_retrieve",
        summary="Progresso de uma sincronização",
        description=(
            "Janelas feitas / total, registros, erros, até o fim da execução.\n\n"
            + curl("GET", "/api/v1/sync-tasks/6f1c2d3e-8a9b-4c5d-9e0f-1a2b3c4d5e6f/")
        ),
        responses={
            200: OpenApiResponse(
                PROGRESS_SCHEMA,
                "Progresso.",
                examples=[OpenApiExample("em andamento", value=PROGRESS_EXAMPLE)],
            ),
            **error_responses(401, 403, 404, 429, path="/api/v1/sync-tasks/{taskId}/"),
        },
    )
    def get(self, request, task_id: str):
        run = SyncRun.objects.filter(params__task_id=task_id).first()
        if run is None:
            raise NotFound(f"Nenhuma sincronização com a tarefa {task_id!r}.")
        return Response(progress_of(run))
