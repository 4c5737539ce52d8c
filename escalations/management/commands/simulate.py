import json

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from audit import calibration
from escalations import whatif
from escalations.orgfile.parse import read_document
from escalations.orgfile.schema import OrgFileError


class Command(BaseCommand):
    help = (
        "What-if (SPEC §11): replay a period's timer episodes under a draft policy set (the org "
        "file's sla_policies section, and thresholds if given) and print predicted warnings, "
        "breaches and reassign stages beside the actual ones."
    )

    def add_arguments(self, parser):
        parser.add_argument("--policy-file", required=True, help="YAML or JSON draft")
        parser.add_argument("--from", dest="start", default="", help="first day, e.g. 2026-07-01")
        parser.add_argument("--to", dest="end", default="", help="last day (included)")
        parser.add_argument("--quarter", default="", help="e.g. 2026Q3")
        parser.add_argument("--market", default="", help="market code, e.g. IN")
        parser.add_argument("--format", choices=("text", "json"), default="text")

    def handle(self, *args, policy_file, start, end, quarter, market, format, **options):
        now = timezone.now()
        try:
            period = calibration.parse_period(start=start, end=end, quarter_text=quarter, now=now)
            draft = whatif.draft_from_document(read_document(policy_file), source=policy_file)
        except (calibration.PeriodError, OrgFileError) as exc:
            raise CommandError(str(exc)) from None
        result = whatif.replay(period, draft, now=now, market=market or None)
        if format == "json":
            self.stdout.write(json.dumps(result.as_dict(), indent=2, ensure_ascii=False))
            return
        self.stdout.write(text(result), ending="")


COLUMNS = (
    ("warnings", "predicted_warnings", "warnings"),
    ("breaches", "predicted_breaches", "breaches"),
    ("reassign_stages", "predicted_reassign_stages", "reassign stages"),
)


def text(result: whatif.WhatIf) -> str:
    t = result.draft.thresholds
    lines = [
        f"What-if {result.period.label}: {result.draft.label} "
        f"(warn {t['warn']} %, breach {t['breach']} %, reassign {t['reassign']} %) over "
        f"{result.episodes} episodes",
        "",
        "market  source              state        episodes  "
        + "  ".join(f"{label} actual → draft" for _, _, label in COLUMNS),
    ]
    for row in result.rows:
        cells = "  ".join(f"{row[a]:>{len(label) + 7}} → {row[p]:<5}" for a, p, label in COLUMNS)
        lines.append(
            f"{row['market']:<7} {row['source']:<19} {row['state']:<12} {row['episodes']:>8}  "
            + cells
        )
    lines += ["", f"Leads whose outcome would change: {result.changed_total}"]
    lines += [
        f"  lead {c['lead_id']} {c['lead']} ({c['market']} · {c['source']} · {c['state']}): "
        f"{c['actual']} → {c['predicted']}"
        for c in result.changed
    ]
    if result.changed_total > len(result.changed):
        lines.append(f"  … and {result.changed_total - len(result.changed)} more")
    lines += ["", result.note]
    return "\n".join(lines) + "\n"
