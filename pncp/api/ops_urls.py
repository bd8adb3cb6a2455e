"""Operator endpoints under /api/v1/: sync runs, coverage map, quarantine."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from pncp.api import operations, sync_control

app_name = "ops"

router = SimpleRouter()
router.register("sync-runs", operations.SyncRunViewSet, basename="sync-run")
router.register("coverage", operations.CoverageViewSet, basename="coverage")
router.register("quarantine", operations.QuarantineViewSet, basename="quarantine")

urlpatterns = [
    path("sync-tasks/", sync_control.SyncTaskListView.as_view(), name="sync-task-list"),
    path(
        "sync-tasks/<str:task_id>/",
        sync_control.SyncTaskDetailView.as_view(),
        name="sync-task-detail",
    ),
    *router.urls,
]
