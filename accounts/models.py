from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """Our own user model from the first migration, so roles can grow without a painful swap.

    Roles: consumers read the API; operators also see and start sync runs, the coverage map
    and the quarantine; staff use the admin (``is_staff``).
    """

    class Role(models.TextChoices):
        CONSUMER = "consumer", "Consumer (read)"
        OPERATOR = "operator", "Operator (read + sync operations)"
        STAFF = "staff", "Staff (admin)"

    role = models.CharField(max_length=16, choices=Role.choices, default=Role.CONSUMER)

    @property
    def is_operator(self) -> bool:
        return self.is_superuser or self.role in {self.Role.OPERATOR, self.Role.STAFF}
