"""JWT endpoints (obtain, refresh with rotation, verify, logout) and ``/me``.

simplejwt does the token work; these classes add the documentation, the ``auth`` throttle
(per client IP, so password guessing is slow) and logout, which blacklists a refresh token so
it can no longer mint access tokens.
"""

from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import status
from rest_framework.parsers import JSONParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.tokens import RefreshToken
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView, TokenVerifyView

from accounts.serializers import (
    MeSerializer,
    RefreshTokenSerializer,
    TokenObtainSerializer,
    TokenPairSerializer,
    TokenVerifySerializer,
)
from accounts.throttling import AuthThrottle
from pncp.api.openapi import curl, error_response

ACCESS = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ0b2tlbl90eXBlIjoiYWNjZXNzIn0.c2lnbmF0dXJh"
REFRESH = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ0b2tlbl90eXBlIjoicmVmcmVzaCJ9.c2lnbmF0dXJh"
PAIR_EXAMPLE = OpenApiExample(
    "par de tokens", value={"access": ACCESS, "refresh": REFRESH}, response_only=True
)
REQUIRED = "Este campo é obrigatório."
EMPTY_OBJECT = {"type": "object", "properties": {}, "additionalProperties": False}


def _token_errors(path: str, field: str, missing: str, invalid: str, message: str) -> dict:
    return {
        400: error_response(400, missing, path=path, message=f"{field}: {REQUIRED}"),
        401: error_response(401, invalid, path=path, error="token_not_valid", message=message),
        429: error_response(429, path=path),
    }


class _TokenView:
    """What every token endpoint shares: JSON bodies and the per-IP ``auth`` throttle."""

    parser_classes = [JSONParser]
    throttle_classes = [AuthThrottle]

    def get_authenticate_header(self, request) -> str:
        # No authentication classes, yet a bad token is a 401 (with this header), not a 403.
        return 'Bearer realm="api"'


@extend_schema_view(
    post=extend_schema(
        tags=["auth"],
        operation_id="auth_token_obtain",
        summary="Obter um par de tokens JWT",
        description="Troca usuário e senha por um token de acesso (15 min) e um de renovação "
        "(1 dia). Envie o de acesso em `Authorization: Bearer <access>`."
        + curl(
            "POST",
            "/api/v1/auth/token/",
            body='{"username": "ana", "password": "s3nh4-f0rt3"}',
            token=False,
        ),
        request=TokenObtainSerializer,
        responses={
            200: OpenApiResponse(TokenPairSerializer, "Par de tokens.", examples=[PAIR_EXAMPLE]),
            400: error_response(
                400,
                "Falta usuário ou senha.",
                path="/api/v1/auth/token/",
                message=f"password: {REQUIRED}",
            ),
            401: error_response(
                401,
                "Usuário ou senha incorretos, ou conta inativa.",
                path="/api/v1/auth/token/",
                error="authentication_failed",
                message="No active account found with the given credentials",
            ),
            429: error_response(429, path="/api/v1/auth/token/"),
        },
        examples=[
            OpenApiExample(
                "login", value={"username": "ana", "password": "s3nh4-f0rt3"}, request_only=True
            )
        ],
    )
)
class TokenObtainView(_TokenView, TokenObtainPairView):
    pass


@extend_schema_view(
    post=extend_schema(
        tags=["auth"],
        operation_id="auth_token_refresh",
        summary="Renovar o token de acesso",
        description="Troca um token de renovação por um novo par. A renovação é rotativa: o "
        "token enviado entra na lista negra e reusá-lo dá 401."
        + curl(
            "POST",
            "/api/v1/auth/token/refresh/",
            body=f'{{"refresh": "{REFRESH}"}}',
            token=False,
        ),
        request=RefreshTokenSerializer,
        responses={
            200: OpenApiResponse(
                TokenPairSerializer, "Novo par de tokens.", examples=[PAIR_EXAMPLE]
            ),
            **_token_errors(
                "/api/v1/auth/token/refresh/",
                "refresh",
                "Falta o token de renovação.",
                "Token de renovação inválido, expirado ou já usado.",
                "Token is blacklisted",
            ),
        },
    )
)
class TokenRotateView(_TokenView, TokenRefreshView):
    pass


@extend_schema_view(
    post=extend_schema(
        tags=["auth"],
        operation_id="auth_token_verify",
        summary="Verificar um token",
        description="Responde 200 com um objeto vazio se o token (de acesso ou de renovação) é "
        "válido, 401 se não é."
        + curl("POST", "/api/v1/auth/token/verify/", body=f'{{"token": "{ACCESS}"}}', token=False),
        request=TokenVerifySerializer,
        responses={
            200: OpenApiResponse(
                EMPTY_OBJECT,
                "Token válido.",
                examples=[OpenApiExample("válido", value={}, response_only=True)],
            ),
            **_token_errors(
                "/api/v1/auth/token/verify/",
                "token",
                "Falta o token.",
                "Token inválido ou expirado.",
                "Token is invalid or expired",
            ),
        },
    )
)
class TokenCheckView(_TokenView, TokenVerifyView):
    pass


class LogoutView(_TokenView, APIView):
    """Blacklist a refresh token: it can no longer be refreshed (access tokens simply expire).

    No authentication is needed: holding the refresh token is what proves the right to end it.
    """

    authentication_classes = ()
    permission_classes = ()

    @extend_schema(
        tags=["auth"],
        operation_id="auth_logout",
        summary="Encerrar a sessão",
        description="Põe o token de renovação na lista negra: ele não renova mais. O token de "
        "acesso em uso continua válido até expirar (no máximo 15 min). Responde 205 sem corpo."
        + curl("POST", "/api/v1/auth/logout/", body=f'{{"refresh": "{REFRESH}"}}', token=False),
        request=RefreshTokenSerializer,
        responses={
            205: OpenApiResponse(description="Token de renovação invalidado."),
            **_token_errors(
                "/api/v1/auth/logout/",
                "refresh",
                "Falta o token de renovação.",
                "Token de renovação inválido, expirado ou já invalidado.",
                "Token is blacklisted",
            ),
        },
    )
    def post(self, request):
        serializer = RefreshTokenSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            RefreshToken(serializer.validated_data["refresh"]).blacklist()
        except TokenError as exc:
            raise InvalidToken(exc.args[0]) from exc
        return Response(status=status.HTTP_205_RESET_CONTENT)


class MeView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        tags=["auth"],
        operation_id="auth_me",
        summary="O usuário atual",
        description="Quem é o dono do token e o que pode fazer: `role` é consumer (lê os "
        "registros), operator (também execuções, cobertura e quarentena) ou staff (admin)."
        + curl("GET", "/api/v1/auth/me/"),
        responses={
            200: OpenApiResponse(
                MeSerializer,
                "O usuário autenticado.",
                examples=[
                    OpenApiExample(
                        "operador",
                        value={
                            "id": 7,
                            "username": "ana",
                            "email": "ana@example.org",
                            "role": "operator",
                            "isOperator": True,
                            "isStaff": False,
                        },
                    )
                ],
            ),
            401: error_response(401, path="/api/v1/auth/me/"),
            429: error_response(429, path="/api/v1/auth/me/"),
        },
    )
    def get(self, request):
        return Response(MeSerializer(request.user).data)
