from django.core.management.base import BaseCommand

from leadops.demo import load_demo


class Command(BaseCommand):
    help = "Load the demo org, persona logins and demo leads of different ages (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--no-leads", action="store_true", help="only the org and logins")

    def handle(self, *args, no_leads=False, **options):
        report = load_demo(with_leads=not no_leads)
        for line in report.lines():
            self.stdout.write(line)
