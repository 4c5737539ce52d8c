"""Writing the org file (SPEC §13): the org as one document, in the order `load` reads it, so
an exported file loads back unchanged."""

from __future__ import annotations

import json

import yaml

from escalations.models import SlaPolicy, SlaThresholds
from escalations.orgfile.schema import STATE_ORDER
from leadops.models import Source
from teams import hours as hours_format
from teams.models import Market, Rep, Team


def export_document() -> dict:
    thresholds = SlaThresholds.objects.filter(pk=1).first() or SlaThresholds()
    doc: dict = {
        "thresholds": {
            "warn": thresholds.warn_percent,
            "breach": thresholds.breach_percent,
            "reassign": thresholds.reassign_percent,
        },
        "markets": [],
        "sources": [{"code": s.code, "name": s.name} for s in Source.objects.order_by("code")],
        "teams": [],
        "reps": [],
        "sla_policies": [],
    }
    for m in Market.objects.order_by("code"):
        doc["markets"].append(
            {
                "code": m.code,
                "name": m.name,
                "timezone": m.timezone,
                "holidays": {
                    "country": m.holiday_country or None,
                    "subdivision": m.holiday_subdivision or None,
                    "extra_closed": sorted(m.extra_closed_dates or []),
                    "extra_open": m.extra_open_dates or [],
                },
                "hours": {
                    day: ivs for day, ivs in hours_format.normalize_week(m.hours).items() if ivs
                },
            }
        )
    for t in Team.objects.select_related("market").order_by("slug"):
        doc["teams"].append(
            {
                "slug": t.slug,
                "name": t.name,
                "market": t.market.code,
                "slack_channel": t.slack_channel_id or None,
                "teams_webhook": t.teams_webhook_url or None,
            }
        )
    for r in Rep.objects.select_related("team").prefetch_related("time_off").order_by("email"):
        doc["reps"].append(
            {
                "email": r.email,
                "name": r.name,
                "team": r.team.slug,
                "role": r.role,
                "slack_user_id": r.slack_user_id or None,
                "capacity": r.capacity,
                "hours": r.hours,
                "timezone": r.timezone or None,
                "active": r.active,
                "pto": [
                    {
                        "start": p.start.isoformat(),
                        "end": p.end.isoformat(),
                        **({"reason": p.reason} if p.reason else {}),
                    }
                    for p in sorted(r.time_off.all(), key=lambda p: (p.start, p.end))
                ],
            }
        )
    policies = SlaPolicy.objects.select_related("market", "source")
    for p in sorted(
        policies,
        key=lambda p: (
            STATE_ORDER[p.state],
            p.market.code if p.market_id else "",
            p.source.code if p.source_id else "",
        ),
    ):
        entry = {"state": p.state}
        if p.market_id:
            entry["market"] = p.market.code
        if p.source_id:
            entry["source"] = p.source.code
        entry.update({"window": p.window, "clock": p.clock, "active": p.active})
        doc["sla_policies"].append(entry)
    return doc


class _NoAliasDumper(yaml.SafeDumper):
    """`load` refuses anchors and aliases: a value used twice is written out twice."""

    def ignore_aliases(self, data) -> bool:
        return True


def dump_document(doc: dict, fmt: str = "yaml") -> str:
    if fmt == "json":
        return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    return yaml.dump(doc, Dumper=_NoAliasDumper, sort_keys=False, allow_unicode=True, width=100)
