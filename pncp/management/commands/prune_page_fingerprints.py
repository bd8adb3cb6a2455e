"""``manage.py prune_page_fingerprints``: forget old page fingerprints.

``sync_pncp --from-dir`` remembers every clean page it imported by the hash of its bytes
(``PageFingerprint``, ~4 kB per page of 50: ~80 MB per million records), so that importing the
same saved pages again needs no decoding. Nothing else ever deletes them. A fingerprint only
saves time: once forgotten, the same bytes are decoded and compared record by record, with
the same result. This command deletes those created more than ``--older-than`` days ago
(default 90), in batches, and says how many and how much it freed.
"""

from __future__ import annotations

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import Count, Sum
from django.db.models.functions import Length
from django.utils import timezone

from pncp.models import PageFingerprint
from pncp.resources import RESOURCES

BATCH = 5_000


class Command(BaseCommand):
    help = (
        "Delete page fingerprints of --from-dir imports created more than --older-than days "
        "ago (default 90). They only spare re-imports of the same saved pages the decoding. "
        "Example: prune_page_fingerprints --older-than 30 --dry-run"
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than",
            type=int,
            default=90,
            metavar="DAYS",
            help="delete fingerprints created more than DAYS days ago (default 90; 0: all)",
        )
        parser.add_argument(
            "--resource",
            choices=RESOURCES,
            help="only this resource's fingerprints",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="count what would go; delete nothing"
        )

    def handle(self, *args, older_than: int, resource: str | None, dry_run: bool, **options):
        if older_than < 0:
            raise CommandError(f"--older-than must be 0 or more days, got {older_than}")
        cutoff = timezone.now() - timedelta(days=older_than)
        old = PageFingerprint.objects.filter(created_at__lt=cutoff)
        if resource:
            old = old.filter(resource=resource)
        found = old.aggregate(pages=Count("digest"), size=Sum(Length("entries")))
        pages, size = found["pages"] or 0, found["size"] or 0
        what = f"{pages:,} page fingerprint(s) created before {cutoff:%Y-%m-%d %H:%M} UTC"
        what += f" ({size / 1e6:.1f} MB of entries)"
        if resource:
            what += f", resource {resource}"
        if dry_run:
            self.stdout.write(f"would delete {what}")
            return
        deleted = 0
        while True:
            with transaction.atomic():
                batch = list(old.values_list("digest", flat=True)[:BATCH])
                if not batch:
                    break
                deleted += PageFingerprint.objects.filter(digest__in=batch).delete()[0]
        self.stdout.write(self.style.SUCCESS(f"deleted {deleted:,} of {what}"))
