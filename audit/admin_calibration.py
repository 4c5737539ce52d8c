"""The admin page "Calibration" (SPEC §11): period picker and filters, findings, charts, tables
and a CSV download of each table. Ops managers and superusers see every team, a team lead
their own (the admin kit's one scope rule)."""

from __future__ import annotations

from datetime import UTC

from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

from audit import admin_charts, calibration, calibration_output
from leadops.admin_kit import user_scope
from teams.models import Market


def scope_team_ids(request):
    """None for every team, else the user's teams (possibly none)."""
    scope = user_scope(request)
    return None if scope.all_teams else set(scope.team_ids)


def requested_period(params, now) -> tuple[calibration.Period, str]:
    """The period the page's `from`/`to`/`quarter` ask for (and no error), or the last full
    quarter and why the asked one was refused."""
    try:
        period = calibration.parse_period(
            start=params.get("from", ""),
            end=params.get("to", ""),
            quarter_text=params.get("quarter", ""),
            now=now,
        )
    except calibration.PeriodError as exc:
        return calibration.last_full_quarter(now), str(exc)
    return period, ""


def calibration_view(model_admin, request):
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    now = timezone.now()
    params = request.GET
    period, error = requested_period(params, now)
    team_ids = scope_team_ids(request)
    markets = Market.objects.order_by("code")
    if team_ids is not None:
        markets = markets.filter(teams__in=sorted(team_ids)).distinct()
    markets = list(markets)
    market = params.get("market", "")
    if market and market not in {m.code for m in markets}:
        error = error or f"no market {market!r} in your view"
        market = ""
    report = calibration.build_report(period, now=now, market=market or None, team_ids=team_ids)

    table = params.get("table", "")
    if params.get("format") == "csv" and table in calibration_output.TABLES:
        response = HttpResponse(
            calibration_output.as_csv(report, table), content_type="text/csv; charset=utf-8"
        )
        name = f"calibration-{period.label.replace(' ', '')}-{table}.csv"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response

    query = {k: v for k, v in params.items() if k in ("quarter", "from", "to", "market") and v}
    base = reverse("admin:audit_auditevent_calibration")
    tables = []
    for name, (title, columns) in calibration_output.TABLES.items():
        rows = getattr(report, name)
        tables.append(
            {
                "name": name,
                "title": title,
                "headers": [header for _, header in columns],
                "rows": [
                    [calibration_output.cell_text(key, row.get(key)) for key, _ in columns]
                    for row in rows
                ],
                "csv_url": f"{base}?{urlencode({**query, 'format': 'csv', 'table': name})}",
            }
        )
    findings = [
        {
            "finding": finding,
            "url": f"{base}rows/?{urlencode({**query, **finding.rows})}",
        }
        for finding in report.findings
    ]
    context = {
        **model_admin.admin_site.each_context(request),
        "title": f"Calibration {period.label}",
        "opts": model_admin.model._meta,
        "period": period,
        "error": error,
        "report": report,
        "findings": findings,
        "tables": tables,
        "markets": markets,
        "market": market,
        "quarters": calibration.recent_quarters(now),
        "chosen_quarter": params.get("quarter", "") or ("" if params.get("from") else period.label),
        "date_from": params.get("from", ""),
        "date_to": params.get("to", ""),
        "scoped": team_ids is not None,
        "charts": {
            "heat_map": admin_charts.breach_heat_map(report.by_source),
            "progress": admin_charts.progress_bars(report.progress_by_state),
            "teams": admin_charts.team_bars(report.teams),
            "notifications": admin_charts.notification_bars(report.notifications),
        },
    }
    return TemplateResponse(request, "admin/audit/calibration.html", context)


def finding_rows_view(model_admin, request):
    """The log rows behind a finding, in the same scope as the page."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    params = request.GET
    period, _ = requested_period(params, timezone.now())
    rows = {k: params[k] for k in ("kind", "market", "source", "team") if params.get(k)}
    if "kind" not in rows:
        rows["kind"] = calibration.K.SLA_BREACH
    events = calibration.finding_events(period, rows, team_ids=scope_team_ids(request))
    context = {
        **model_admin.admin_site.each_context(request),
        "title": f"Calibration {period.label}: the rows behind a finding",
        "opts": model_admin.model._meta,
        "period": period,
        "rows": rows,
        "events": [
            {
                "event": e,
                "url": reverse("admin:audit_auditevent_change", args=[e.pk]),
                "lead_url": reverse("admin:leadops_lead_change", args=[e.lead_id])
                if e.lead_id
                else "",
                "at": e.occurred_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            }
            for e in events
        ],
        "back": reverse("admin:audit_auditevent_calibration")
        + "?"
        + urlencode({k: v for k, v in params.items() if k in ("quarter", "from", "to") and v}),
    }
    return TemplateResponse(request, "admin/audit/calibration_rows.html", context)
