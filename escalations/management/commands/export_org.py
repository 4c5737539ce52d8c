from pathlib import Path

from django.core.management.base import BaseCommand

from escalations.orgfile import dump_document, export_document


class Command(BaseCommand):
    help = "Write the org (markets, teams, reps, thresholds, policies) as YAML or JSON."

    def add_arguments(self, parser):
        parser.add_argument("--format", choices=["yaml", "json"], default=None)
        parser.add_argument("--output", "-o", help="file to write (default: standard output)")

    def handle(self, *args, format=None, output=None, **options):
        fmt = format or ("json" if output and output.endswith(".json") else "yaml")
        text = dump_document(export_document(), fmt)
        if output:
            Path(output).write_text(text, encoding="utf-8")
            self.stderr.write(f"wrote {output}")
        else:
            self.stdout.write(text, ending="")
