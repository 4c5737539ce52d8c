from django.core.management.base import BaseCommand, CommandError

from escalations.orgfile import OrgFileError, load_org


class Command(BaseCommand):
    help = (
        "Create or update markets, sources, teams, reps, thresholds and SLA policies from a "
        "YAML or JSON org file, all or nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("file")

    def handle(self, *args, file, **options):
        try:
            report = load_org(file)
        except OrgFileError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"{file}: {report.summary()}")
