"""Request and response bodies of the auth endpoints (camelCase, like the rest of the API)."""

from rest_framework import serializers

from accounts.models import User


class TokenObtainSerializer(serializers.Serializer):
    """Documentation of the obtain request; simplejwt's serializer does the work."""

    username = serializers.CharField(help_text="Nome de usuário.")
    password = serializers.CharField(help_text="Senha.", style={"input_type": "password"})


class TokenPairSerializer(serializers.Serializer):
    access = serializers.CharField(help_text="Token de acesso JWT (válido por 15 minutos).")
    refresh = serializers.CharField(
        help_text="Token de renovação JWT (1 dia; cada uso devolve um novo e invalida este)."
    )


class RefreshTokenSerializer(serializers.Serializer):
    refresh = serializers.CharField(help_text="Token de renovação JWT.")


class TokenVerifySerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Token JWT (de acesso ou de renovação) a verificar.")


class MeSerializer(serializers.ModelSerializer):
    # may be empty, so not documented with the "email" format
    email = serializers.CharField(read_only=True, help_text="E-mail (pode ser vazio).")
    isOperator = serializers.BooleanField(
        source="is_operator",
        read_only=True,
        help_text="Pode ver execuções de sincronização, cobertura e quarentena.",
    )
    isStaff = serializers.BooleanField(
        source="is_staff", read_only=True, help_text="Pode usar o admin."
    )

    class Meta:
        model = User
        fields = ["id", "username", "email", "role", "isOperator", "isStaff"]
        read_only_fields = fields
