"""One JSON error shape for every 4xx/5xx the API returns.

``{"status": 400, "error": "bad_request", "message": "...", "detail": {...}, "path": "..."}``:
``message`` is one human sentence, ``detail`` keeps DRF's per-field messages when there are any.
"""

from __future__ import annotations

import logging

from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.views import exception_handler

logger = logging.getLogger(__name__)


def _first_message(detail) -> str:
    if isinstance(detail, dict):
        for key, value in detail.items():
            message = _first_message(value)
            return message if key in ("detail", "non_field_errors") else f"{key}: {message}"
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    return str(detail)


def error_body(status_code: int, code: str, message: str, detail=None, path: str = "") -> dict:
    body = {"status": status_code, "error": code, "message": message, "path": path}
    if detail is not None:
        body["detail"] = detail
    return body


def api_exception_handler(exc, context):
    request = context.get("request")
    path = request.path if request is not None else ""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    response = exception_handler(exc, context)
    if response is None:
        logger.exception("unhandled API error", exc_info=exc)
        return JsonResponse(
            error_body(500, "server_error", "Erro interno do servidor.", path=path), status=500
        )
    detail = response.data
    code = getattr(exc, "default_code", "error")
    if isinstance(exc, exceptions.ValidationError):
        code = "invalid"
    message = _first_message(detail)
    response.data = error_body(
        response.status_code,
        code,
        message,
        detail if isinstance(detail, (dict, list)) and not _only_detail(detail) else None,
        path,
    )
    if response.status_code == status.HTTP_429_TOO_MANY_REQUESTS:
        response.data["retry_after"] = response.get("Retry-After")
    return response


def _only_detail(detail) -> bool:
    return isinstance(detail, dict) and set(detail) == {"detail"}
