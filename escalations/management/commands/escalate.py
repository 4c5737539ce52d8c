import json

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from escalations.sweep import run_sweep
from escalations.sweep_runs import fired_by


class Command(BaseCommand):
    help = (
        "Run one escalation sweep now (or as of --now) and print what fired: lead, stage, owner "
        "and new owner, one line each, then the totals (--json: one JSON document)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--now", help="ISO-8601 instant with offset, e.g. 2026-12-01T09:00Z")
        parser.add_argument("--batch-size", type=int, default=None)
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help="print JSON instead of text"
        )

    def handle(self, *args, now=None, batch_size=None, as_json=False, **options):
        at = None
        if now:
            at = parse_datetime(now.replace("Z", "+00:00"))
            if at is None:
                raise CommandError(f"--now {now!r} is not an ISO-8601 date-time")
            if timezone.is_naive(at):
                raise CommandError(f"--now {now!r} needs a UTC offset (e.g. Z or +05:30)")
        at = at or timezone.now()
        result = run_sweep(now=at, batch_size=batch_size)
        fired = fired_by(result.correlation_id, at)
        if as_json:
            self.stdout.write(
                json.dumps(
                    {
                        "as_of": at.isoformat(),
                        "totals": result.as_dict(),
                        "fired": [item.as_dict() for item in fired],
                    },
                    indent=2,
                )
            )
            return
        for item in fired:
            line = f"{item.stage:<32} {item.lead} (lead {item.lead_id}), owner {item.owner}"
            if item.new_owner:
                line += f" → new owner {item.new_owner}"
            self.stdout.write(line)
        self.stdout.write(result.summary())
