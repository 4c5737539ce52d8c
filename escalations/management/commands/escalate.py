from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from escalations.sweep import run_sweep


class Command(BaseCommand):
    help = "Run one escalation sweep now (or as of --now) and print what fired."

    def add_arguments(self, parser):
        parser.add_argument("--now", help="ISO-8601 instant with offset, e.g. 2026-12-01T09:00Z")
        parser.add_argument("--batch-size", type=int, default=None)

    def handle(self, *args, now=None, batch_size=None, **options):
        at = None
        if now:
            at = parse_datetime(now.replace("Z", "+00:00"))
            if at is None:
                raise CommandError(f"--now {now!r} is not an ISO-8601 date-time")
            if timezone.is_naive(at):
                raise CommandError(f"--now {now!r} needs a UTC offset (e.g. Z or +05:30)")
        self.stdout.write(run_sweep(now=at, batch_size=batch_size).summary())
