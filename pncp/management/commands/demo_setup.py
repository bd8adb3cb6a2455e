"""Prepare the demo: an admin login and real PNCP records imported offline.

Idempotent: run it as often as you like (``make run`` does, each time).
"""

import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the demo admin user (printed) and import the bundled PNCP sample offline."

    def add_arguments(self, parser):
        parser.add_argument("--username", default=os.environ.get("DEMO_ADMIN_USER", "admin"))
        parser.add_argument("--skip-import", action="store_true")

    def handle(self, *args, username, skip_import, **options):
        User = get_user_model()
        password = os.environ.get("DEMO_ADMIN_PASSWORD") or secrets.token_urlsafe(9)
        user, _created = User.objects.get_or_create(
            username=username,
            defaults={"is_staff": True, "is_superuser": True, "role": User.Role.STAFF},
        )
        user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.save()
        if not skip_import:
            call_command("sync_pncp", "all", from_dir=str(sample_dir()), stdout=self.stdout)
        line = "=" * 64
        self.stdout.write(
            self.style.SUCCESS(
                f"\n{line}\n  Admin: http://localhost:8000/admin/\n"
                f"  Login: {username}\n  Password: {password}\n{line}\n"
            )
        )


def sample_dir():
    from pncp.sync import SAMPLE_DIR

    return SAMPLE_DIR
