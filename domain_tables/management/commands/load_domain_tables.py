from django.core.management.base import BaseCommand

from domain_tables.loader import load_domain_tables


class Command(BaseCommand):
    help = "Load (or reload) every PNCP domain table from the fixtures. Idempotent."

    def handle(self, *args, **options):
        counts = load_domain_tables()
        for label, n in sorted(counts.items()):
            self.stdout.write(f"{label}: {n}")
        total = sum(counts.values())
        self.stdout.write(self.style.SUCCESS(f"{total} codes in {len(counts)} tables"))
