from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from audit import calibration, calibration_output
from teams.models import Market


class Command(BaseCommand):
    help = (
        "The calibration report (SPEC §11) for a period (default: the last full quarter): "
        "findings first, then timers, reassignments, messages and policy versions."
    )

    def add_arguments(self, parser):
        parser.add_argument("--from", dest="start", default="", help="first day, e.g. 2026-07-01")
        parser.add_argument("--to", dest="end", default="", help="last day (included)")
        parser.add_argument("--quarter", default="", help="e.g. 2026Q3")
        parser.add_argument("--market", default="", help="market code, e.g. IN")
        parser.add_argument("--format", choices=("text", "json", "csv"), default="text")
        parser.add_argument(
            "--table",
            choices=tuple(calibration_output.TABLES),
            default="by_state",
            help="the table written as CSV (with --format csv)",
        )

    def handle(self, *args, start, end, quarter, market, format, table, **options):
        now = timezone.now()
        try:
            period = calibration.parse_period(start=start, end=end, quarter_text=quarter, now=now)
        except calibration.PeriodError as exc:
            raise CommandError(str(exc)) from None
        if market and not Market.objects.filter(code=market).exists():
            codes = ", ".join(Market.objects.order_by("code").values_list("code", flat=True))
            raise CommandError(f"no market {market!r} (markets: {codes or 'none'})")
        report = calibration.build_report(period, now=now, market=market or None)
        if format == "json":
            self.stdout.write(calibration_output.as_json(report))
        elif format == "csv":
            self.stdout.write(calibration_output.as_csv(report, table), ending="")
        else:
            self.stdout.write(calibration_output.as_text(report), ending="")
