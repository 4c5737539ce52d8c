from django.core.management.base import BaseCommand, CommandError

from escalations.orgfile import OrgFileError, load_org


class Command(BaseCommand):
    help = (
        "Create or update markets, sources, teams, reps, thresholds and SLA policies from a "
        "YAML or JSON org file, all or nothing. --dry-run validates the file and reports what "
        "would change (created / updated / unchanged per section) without writing anything."
    )

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument(
            "--dry-run", action="store_true", help="validate and report, change nothing"
        )

    def handle(self, *args, file, dry_run=False, **options):
        try:
            report = load_org(file, dry_run=dry_run)
        except OrgFileError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"{file}: {report.summary()}")
