"""Who may do what through the API.

consumer: read records; operator: also sync runs, coverage map and quarantine; staff: admin.
Anonymous read of records is configurable (``API_ANONYMOUS_READ``) and off by default.
"""

from django.conf import settings
from rest_framework.permissions import SAFE_METHODS, BasePermission


class CanReadRecords(BasePermission):
    message = "Autenticação necessária: obtenha um token em /api/v1/auth/token/."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if user and user.is_authenticated:
            return request.method in SAFE_METHODS or getattr(view, "allow_writes", False)
        return settings.API_ANONYMOUS_READ and request.method in SAFE_METHODS


class IsOperator(BasePermission):
    message = "Apenas operadores podem acessar execuções de sincronização, cobertura e quarentena."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and getattr(user, "is_operator", False))
