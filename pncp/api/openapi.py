"""OpenAPI helpers shared by every API module: the ``Erro`` component, error responses and
example calls.

``document_error_responses`` (a drf-spectacular postprocessing hook, see
``SPECTACULAR_SETTINGS``) adds the error answers any operation can give and references
``Erro`` for them, so no view has to repeat them and none can forget them: 401 (a missing,
invalid or expired token), 403 (authenticated but not allowed) where the operation needs a
token, 400 where it takes parameters or a body, 404 where the path names an object, and 429
(throttled) everywhere. A view that documents one of those codes itself keeps its own.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiResponse
from rest_framework import serializers

ERROR_COMPONENT = "Erro"
ERROR_REF = {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"}

ERROR_DESCRIPTIONS = {
    400: "Parâmetro ou corpo inválido (a mensagem diz qual e por quê).",
    401: "Token ausente, inválido ou expirado.",
    403: "Autenticado, mas sem permissão para este recurso.",
    404: "Não encontrado.",
    429: "Limite de requisições excedido; tente de novo após `Retry-After` segundos.",
}

ERROR_EXAMPLES = {
    400: ("invalid", "tamanhoPagina: tamanhoPagina deve ser menor ou igual a 500 (recebido 900)."),
    401: ("not_authenticated", "As credenciais de autenticação não foram fornecidas."),
    403: ("permission_denied", "Você não tem permissão para executar essa ação."),
    404: ("not_found", "Não encontrado."),
    429: ("throttled", "Pedido foi limitado. Espera-se que esteja disponível em 42 segundos."),
}


def error_example(code: int, path: str, message: str | None = None, **extra) -> dict:
    """An example ``Erro`` body (what ``pncp.api.exceptions`` answers)."""
    error, default_message = ERROR_EXAMPLES.get(code, ("error", "Erro."))
    body = {"status": code, "error": error, "message": message or default_message, "path": path}
    if code == 429:
        body["retry_after"] = "42"
    body.update(extra)
    return body


class ErroSerializer(serializers.Serializer):
    """The one error shape of the API (see ``pncp.api.exceptions``)."""

    status = serializers.IntegerField(help_text="O código HTTP, repetido.", min_value=400)
    error = serializers.CharField(
        help_text="Código curto do erro: invalid, not_authenticated, authentication_failed, "
        "token_not_valid, permission_denied, not_found, throttled, server_error…"
    )
    message = serializers.CharField(help_text="Uma frase para pessoas.")
    path = serializers.CharField(help_text="O caminho pedido.")
    detail = serializers.JSONField(
        required=False,
        help_text="Mensagens por campo ou parâmetro, quando há (objeto ou lista).",
    )
    retry_after = serializers.CharField(
        required=False,
        allow_null=True,
        help_text="Só em 429: segundos até poder tentar de novo.",
    )


ERROR_SCHEMA = {
    "type": "object",
    "description": "The one error shape of the API (see ``pncp.api.exceptions``).",
    "properties": {
        "status": {"type": "integer", "minimum": 400, "description": "O código HTTP, repetido."},
        "error": {"type": "string", "description": ErroSerializer().fields["error"].help_text},
        "message": {"type": "string", "description": "Uma frase para pessoas."},
        "path": {"type": "string", "description": "O caminho pedido."},
        "detail": {"description": "Mensagens por campo ou parâmetro, quando há (objeto ou lista)."},
        "retry_after": {
            "type": "string",
            "nullable": True,
            "description": "Só em 429: segundos até poder tentar de novo.",
        },
    },
    "required": ["error", "message", "path", "status"],
}


def error_response(
    code: int, description: str | None = None, *, path: str = "/api/v1/...", **example
) -> OpenApiResponse:
    """An ``Erro`` response for ``extend_schema(responses=...)``, with an example body."""
    return OpenApiResponse(
        response=ErroSerializer,
        description=description or ERROR_DESCRIPTIONS.get(code, "Erro."),
        examples=[
            OpenApiExample(
                f"erro {code}", value=error_example(code, path, **example), status_codes=[code]
            )
        ],
    )


def error_responses(*codes: int, path: str = "/api/v1/...") -> dict[int, OpenApiResponse]:
    return {code: error_response(code, path=path) for code in codes}


def curl(method: str, path: str, *, body: str | None = None, token: bool = True) -> str:
    """A markdown block with an example HTTP call, for an operation's description."""
    lines = [f"curl -X {method} 'https://mirror.example{path}'"]
    if token:
        lines.append("  -H 'Authorization: Bearer $ACCESS'")
    if body is not None:
        lines.append("  -H 'Content-Type: application/json'")
        lines.append(f"  -d '{body}'")
    return "\n\nExemplo:\n\n```bash\n" + " \\\n".join(lines) + "\n```"


def document_error_responses(result, generator, request, public):
    """Postprocessing hook: add the ``Erro`` responses every operation can give (see above)."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    # Normally registered by the views that reference ErroSerializer; a test keeps this copy
    # equal to what drf-spectacular generates from it.
    schemas.setdefault(ERROR_COMPONENT, ERROR_SCHEMA)
    for item in result.get("paths", {}).values():
        for method, operation in item.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            responses = operation.setdefault("responses", {})
            codes = [401, 429]
            if operation.get("parameters") or operation.get("requestBody"):
                codes.append(400)
            if any(p.get("in") == "path" for p in operation.get("parameters", [])):
                codes.append(404)
            if any(requirement for requirement in operation.get("security", [])):
                codes.append(403)
            for code in sorted(codes):
                responses.setdefault(
                    str(code),
                    {
                        "content": {"application/json": {"schema": ERROR_REF}},
                        "description": ERROR_DESCRIPTIONS[code],
                    },
                )
    return result
