"""The demo (issue 11 "demo history that looks real"): every row is stamped at its own instant,
and a quarter of history gives calibration something to show."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from audit import calibration
from audit.models import AuditEvent, AuditKind
from escalations.models import Notification, SlaTimer
from escalations.orgfile import load_org
from leadops.demo import ORG_FILE, _demo_leads, ensure_logins
from leadops.demo.history import PREFIX, build_history
from leadops.models import Activity, Lead

pytestmark = pytest.mark.django_db

TWO_WEEKS = calibration.Period(
    datetime(2026, 9, 1, tzinfo=UTC), datetime(2026, 9, 22, tzinfo=UTC), "three weeks"
)


@pytest.fixture
def demo_org():
    load_org(ORG_FILE)
    ensure_logins()


def test_history_rows_are_stamped_inside_their_period_not_at_load_time(demo_org):
    report = build_history(period=TWO_WEEKS, leads_per_team=3)
    assert report.leads == 18 and report.sweeps > 0
    leads = Lead.objects.filter(external_id__startswith=PREFIX)
    timers = SlaTimer.objects.filter(lead__in=leads)
    assert timers.count() > 18
    assert not timers.exclude(started_at__range=(TWO_WEEKS.start, TWO_WEEKS.end)).exists()
    assert not timers.filter(completed_at__isnull=True).exists()  # every story has ended
    assert not leads.exclude(state__in=("WON", "LOST", "UNQUALIFIED")).exists()
    activities = Activity.objects.filter(lead__in=leads)
    assert activities.exists()
    assert not activities.exclude(recorded_at__lt=TWO_WEEKS.end).exists()
    events = AuditEvent.objects.filter(lead__in=leads)
    assert not events.exclude(occurred_at__lt=TWO_WEEKS.end + timedelta(days=1)).exists()
    assert events.filter(kind=AuditKind.SLA_BREACH).exists()
    assert events.filter(
        kind=AuditKind.NOTIFICATION_SENT, occurred_at__gte=TWO_WEEKS.start
    ).exists()
    history = Lead.history.filter(external_id__startswith=PREFIX)
    assert not history.exclude(history_date__lt=TWO_WEEKS.end).exists()
    assert not Notification.objects.filter(lead__in=leads, status="pending").exists()
    # Calibration reads it.
    report = calibration.build_report(TWO_WEEKS, now=timezone.now())
    breached = timers.filter(stage__in=("breached", "reassigned")).count()
    assert breached and sum(row["breached"] for row in report.by_source) == breached
    # Loading again adds nothing.
    assert build_history(period=TWO_WEEKS, leads_per_team=3).existing == 18


def test_current_demo_leads_have_their_earlier_states_in_the_past(demo_org):
    before = timezone.now()
    created, _ = _demo_leads()
    assert created == 32
    for lead in Lead.objects.filter(external_id__startswith="demo-", state="QUALIFIED"):
        timers = list(SlaTimer.objects.filter(lead=lead).order_by("started_at"))
        assert [t.state for t in timers] == ["NEW", "CONTACTED", "QUALIFIED"]
        assert timers[0].started_at < timers[1].started_at < timers[2].started_at < before
        assert lead.created_at == timers[0].started_at
        call = Activity.objects.get(lead=lead, kind="call")
        assert call.recorded_at == call.occurred_at == timers[1].started_at
